"""Every figure of a study from its tables, per target and per group, each saying what it shows.

Per target and group: loss vs compute with every law's compute-optimal frontier and band
(`frontier_*`), N_opt and D_opt vs C with intervals (`allocation_*`), isoFLOP profiles
(`isoflop_*`), backtests' predicted vs actual (`backtests_*`); per group: downstream forecasts
against the observed runs (`downstream_*`). File names are ``<kind>_<target>[__<group>].png``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from scaling.plan.figures import isoflop_figure
from scaling.plots import plot_loss_vs_compute, plot_predicted_vs_actual
from scaling.plots.allocation import plot_compute_optimal

KINDS = ("frontier", "allocation", "isoflop", "backtests", "downstream")


@dataclass(frozen=True)
class StudyFigure:
    name: str      # metadata key / file stem
    path: Path
    caption: str   # which study, target and group it shows


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_")


def figure_name(kind: str, target: str, group: str = "") -> str:
    return f"{kind}_{_slug(target)}" + (f"__{_slug(group)}" if group else "")


def _where(study: str, target: str, group: str) -> str:
    return f"study {study}, target {target}, " + (f"group {group}" if group else "all runs (no groups)")


def _y(frame: pl.DataFrame) -> pl.Expr:
    return pl.when(pl.col("unit").is_in(["nats", "bits", "perplexity"])).then(pl.col("loss_nats")) \
        .otherwise(pl.col("value"))


def clear_figures(folder: Path) -> None:
    """Remove this module's figures from an earlier run (targets or groups may have gone)."""
    for kind in KINDS:
        for old in folder.glob(f"{kind}*.png"):
            old.unlink(missing_ok=True)


def study_figures(folder: Path, study: str, points: pl.DataFrame, runs: pl.DataFrame | None,
                  forecasts: pl.DataFrame, backtests: pl.DataFrame, ranking: pl.DataFrame) -> list[StudyFigure]:
    """Write the study's figures into `folder` and return them, in reading order."""
    folder.mkdir(parents=True, exist_ok=True)
    clear_figures(folder)
    out: list[StudyFigure] = []
    co = forecasts.filter(pl.col("kind") == "compute_optimal") if forecasts.height else forecasts
    pairs = co.select("target", "group_name").unique().sort("target", "group_name").rows() if co.height else []
    for target, group in pairs:
        where = _where(study, target, group)
        pts = points.filter((pl.col("metric") == target) & (pl.col("group_name") == group)).drop_nulls(["flops"])
        final = pts.filter(pl.col("is_final")).with_columns(y=_y(pts))
        rows = co.filter((pl.col("target") == target) & (pl.col("group_name") == group))
        ranked = ranking.filter((pl.col("target") == target) & (pl.col("group_name") == group)).sort("rank") \
            if ranking.height else ranking
        laws = ranked["law"].to_list() if ranked.height else []
        laws += [law for law in rows["law"].unique().sort().to_list() if law not in laws]
        by_law = {law: rows.filter(pl.col("law") == law).sort("flops") for law in laws
                  if rows.filter(pl.col("law") == law).height}
        if final.height:
            best = laws[0] if laws else None
            held = set(backtests.filter((pl.col("law") == best) & (pl.col("target") == target)
                                        & (pl.col("group_name") == group))["run"].to_list()) if best else set()
            curves = []
            if pts.height > final.height:
                for _, run in pts.with_columns(y=_y(pts)).sort("flops").group_by("run", maintain_order=True):
                    if run.height > 1:
                        curves.append((run["flops"].to_numpy(), run["y"].to_numpy()))
            path = plot_loss_vs_compute(
                folder / f"{figure_name('frontier', target, group)}.png", flops=final["flops"].to_numpy(),
                loss=final["y"].to_numpy(), heldout=np.array([r in held for r in final["run"].to_list()]),
                curves=curves[:60] or None, frontiers={f"{law}{' (best)' if i == 0 and ranked.height else ''}": r
                                                       for i, (law, r) in enumerate(by_law.items())},
                title=f"{study}: {target} vs compute" + (f" [{group}]" if group else ""), target_label=target)
            out.append(StudyFigure(path.stem, path, f"Loss vs compute with every law's frontier and 95% band: {where}"))
        alloc = {law: r for law, r in by_law.items() if r["params"].drop_nulls().len()}
        if alloc:
            edge = float(final["flops"].max()) if final.height else None
            path = plot_compute_optimal(folder / f"{figure_name('allocation', target, group)}.png", alloc,
                                        max_observed_flops=edge,
                                        title=f"{study}: compute-optimal N and D ({target})"
                                        + (f" [{group}]" if group else ""))
            out.append(StudyFigure(path.stem, path, f"N_opt and D_opt vs compute with 95% intervals: {where}"))
        if runs is not None and pts.height:
            grp_runs = runs.filter(pl.col("group_name") == group)
            path = isoflop_figure(folder / f"{figure_name('isoflop', target, group)}.png",
                                  f"{study} [{group}]" if group else study, target,
                                  points.filter(pl.col("group_name") == group), grp_runs)
            if path:
                title_group = f" [{group}]" if group else ""
                out.append(StudyFigure(path.stem, path, f"IsoFLOP profiles and their minima{title_group}: {where}"))
    if backtests.height:
        for target, group in backtests.select("target", "group_name").unique().sort("target", "group_name").rows():
            bt = backtests.filter((pl.col("target") == target) & (pl.col("group_name") == group))
            path = plot_predicted_vs_actual(
                folder / f"{figure_name('backtests', target, group)}.png", actual=bt["actual"].to_numpy(),
                predicted=bt["predicted"].to_numpy(), ci_low=bt["ci_low"].to_numpy(), ci_high=bt["ci_high"].to_numpy(),
                laws=bt["law"].to_list(), target_label=target,
                title=f"{study}: held-out runs ({target})" + (f" [{group}]" if group else ""))
            out.append(StudyFigure(path.stem, path, f"Backtests, predicted vs actual on held-out runs: "
                                                    f"{_where(study, target, group)}"))
    down = forecasts.filter((pl.col("kind") == "downstream") & pl.col("actual").is_not_null()) \
        if forecasts.height else forecasts
    for (group,) in (down.select("group_name").unique().sort("group_name").rows() if down.height else []):
        d = down.filter(pl.col("group_name") == group)
        path = plot_predicted_vs_actual(
            folder / f"{figure_name('downstream', 'accuracy', group)}.png", actual=d["actual"].to_numpy(),
            predicted=d["predicted"].to_numpy(), ci_low=d["ci_low"].to_numpy(), ci_high=d["ci_high"].to_numpy(),
            laws=[f"{t} ({n})" for t, n in zip(d["target"].to_list(), d["name"].to_list())],
            target_label="downstream value",
            title=f"{study}: downstream forecasts vs observed" + (f" [{group}]" if group else ""))
        out.append(StudyFigure(path.stem, path, "Downstream forecasts (two-step) against the observed runs: "
                                                f"study {study}, " + (f"group {group}" if group else "all runs")))
    return out
