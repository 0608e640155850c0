"""Every figure a study shows, drawn for a grouped study and the mixing law, keeps its texts apart:
no tick label, axis label, legend, title or annotation overlaps another (extents from the renderer)."""

from __future__ import annotations

import numpy as np
import polars as pl
from scaling.plan.study_figures import study_figures
from scaling.plots import plot_mixture_heldout
from scaling.plots.style import drawn_figures

STUDY = "optimizer_ablation"
# the second arm is an ablation at a few nearby sizes, forecast to twice its largest budget: its axes
# span a fraction of a decade
GROUPS = {"optimizer=adamw": (np.geomspace(1e7, 3e8, 5), 100.0, 0.0),
          "optimizer=lion": (np.geomspace(1e8, 1.6e8, 5), 2.0, 0.08)}


def _grouped_study():
    """Training curves of 15 runs per group (so the isoFLOP profiles are drawn), two laws' compute-optimal
    forecasts per group, backtests and downstream forecasts: the tables `study_figures` reads."""
    rows, runs, fc = [], [], []
    for group, (sizes, factor, shift) in GROUPS.items():
        for n in sizes:
            for k in (5, 20, 80):
                run = f"{group}-{n:.3g}-{k}"
                runs.append({"run": run, "group_name": group, "params": n})
                for i, d in enumerate(np.geomspace(n * k / 30, n * k, 10)):
                    loss = 1.7 + shift + 400 / n**0.34 + 400 / d**0.28
                    rows.append({"run": run, "group_name": group, "metric": "loss", "unit": "nats", "value": loss,
                                 "loss_nats": loss, "flops": 6 * n * d, "tokens": d, "is_final": i == 9})
        edge = 6 * sizes[-1] ** 2 * 80
        for law, lower in (("chinchilla", 0.0), ("kaplan", -0.1)):
            for c in np.geomspace(edge, edge * factor, 5):
                fc.append({"group_name": group, "law": law, "target": "loss", "kind": "compute_optimal", "name": "",
                           "flops": c, "params": (c / 120) ** 0.5, "params_ci_low": (c / 150) ** 0.5,
                           "params_ci_high": (c / 100) ** 0.5, "tokens": (c * 20 / 6) ** 0.5,
                           "tokens_ci_low": (c * 15 / 6) ** 0.5, "tokens_ci_high": (c * 25 / 6) ** 0.5,
                           "predicted": 2.0 + shift + lower, "ci_low": 1.9 + shift + lower,
                           "ci_high": 2.1 + shift + lower, "actual": None})
        fc += [{"group_name": group, "law": "chinchilla", "target": "acc_task", "kind": "downstream", "name": name,
                "flops": edge, "predicted": p, "ci_low": p - 0.05, "ci_high": p + 0.05, "actual": p - 0.01}
               for name, p in (("big", 0.61), ("bigger", 0.7))]
    points, runs = pl.DataFrame(rows), pl.DataFrame(runs)
    forecasts = pl.DataFrame(fc, infer_schema_length=None)
    final = points.filter(pl.col("is_final"))
    held = final.filter(pl.col("flops") >= pl.col("flops").max().over("group_name") / 10)
    backtests = pl.DataFrame({"group_name": held["group_name"], "run": held["run"], "target": "loss",
                              "actual": held["value"]}).join(pl.DataFrame({"law": ["chinchilla", "kaplan"]}),
                                                              how="cross")
    backtests = backtests.with_columns(predicted=pl.col("actual") * 1.01, ci_low=pl.col("actual") * 0.98,
                                       ci_high=pl.col("actual") * 1.04)
    ranking = pl.DataFrame({"group_name": list(GROUPS), "target": ["loss", "loss"], "rank": [1, 1],
                            "law": ["chinchilla", "kaplan"]})
    return points, runs, forecasts, backtests, ranking


def _in_view(axis, value: float) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    return lo - 1e-9 * abs(lo) <= value <= hi + 1e-9 * abs(hi)


def _texts(fig) -> list[tuple[str, object]]:
    """Every text the figure shows, with its extent on the canvas."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    if fig._suptitle is not None and fig._suptitle.get_text():
        out.append(("suptitle", fig._suptitle.get_window_extent(renderer)))
    for n, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        for axis, coord in ((ax.xaxis, 0), (ax.yaxis, 1)):
            for t in axis.get_ticklabels(which="both"):
                if t.get_visible() and t.get_text() and _in_view(axis, t.get_position()[coord]):
                    out.append((f"axes {n} {axis.axis_name} tick {t.get_text()!r}", t.get_window_extent(renderer)))
            if axis.label.get_text():
                out.append((f"axes {n} {axis.axis_name} label", axis.label.get_window_extent(renderer)))
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text():
                out.append((f"axes {n} title", title.get_window_extent(renderer)))
        for t in ax.texts:
            if t.get_visible() and t.get_text():
                out.append((f"axes {n} text {t.get_text()!r}", t.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            out.append((f"axes {n} legend", ax.get_legend().get_window_extent(renderer)))
    return out


def overlapping_texts(fig, texts=None) -> list[tuple[str, str]]:
    """Pairs of texts that overlap, and texts that reach past the figure's edge (paired with "edge")."""
    texts = _texts(fig) if texts is None else texts
    edge = fig.bbox.padded(0.5)
    return [(a, b) for i, (a, x) in enumerate(texts) for b, y in texts[i + 1:] if x.overlaps(y)] + \
        [(a, "edge") for a, x in texts if not (edge.x0 <= x.x0 and x.x1 <= edge.x1 and edge.y0 <= x.y0
                                               and x.y1 <= edge.y1)]


def test_every_study_figure_of_a_grouped_study_keeps_its_texts_apart(tmp_path):
    with drawn_figures() as drawn:
        figures = study_figures(tmp_path, STUDY, *_grouped_study())
    kinds = {f.name.split("_")[0] for f in figures}
    assert kinds == {"frontier", "allocation", "isoflop", "backtests", "downstream"}, [f.name for f in figures]
    assert {f.name.split("__")[1] for f in figures} == set(GROUPS)
    assert sorted(p.stem for p, _ in drawn) == sorted(f.name for f in figures)
    for path, fig in drawn:
        texts = _texts(fig)
        assert len(texts) > 10, path.stem
        assert overlapping_texts(fig, texts) == [], path.stem


def test_mixing_figure_keeps_its_texts_apart(tmp_path):
    domains = 13  # RegMix's validation domains: five rows of three panels, the last two left out
    rng = np.random.default_rng(0)
    names = [f"domain_{i}_validation" for i in range(domains)]
    actual = {d: 2.0 + rng.random(64) for d in names}
    predicted = {d: a + rng.normal(0, 0.02, a.size) for d, a in actual.items()}
    with drawn_figures() as drawn:
        plot_mixture_heldout(tmp_path / "mixing_test.png", actual=actual, predicted=predicted,
                             title="mixture_ablation: held-out mixtures, split test_60m (ye_exp_log)")
    ((_, fig),) = drawn
    texts = _texts(fig)
    assert sum(t.startswith(f"axes {domains - 1} ") for t, _ in texts) > 5
    assert overlapping_texts(fig, texts) == []
