"""The study report's renderer and the plots' axis labels, on small frames and figures (no storage)."""

from __future__ import annotations

import base64
import re

import numpy as np
import polars as pl

from scaling.plots.style import new_figure, readable_log_axis
from scaling.report import StudyReport, markdown_table, render_html, render_markdown
from scaling.report.render import with_intervals

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==")


def _report() -> StudyReport:
    params = pl.DataFrame({"group_name": ["", ""], "law": ["chinchilla", "chinchilla"], "target": ["loss", "loss"],
                           "parameter": ["alpha", "beta"], "estimate": [0.34, 0.28], "ci_low": [0.31, 0.25],
                           "ci_high": [0.37, 0.31], "flags": ["", "at_bound:beta"]})
    return StudyReport(
        study="toy", description="a toy study",
        tables={
            "overview": pl.DataFrame({"runs": [12], "groups": [1], "min_params": [1e7], "max_params": [3e8],
                                      "min_tokens": [5e7], "max_tokens": [2.4e10], "min_flops": [3e15],
                                      "max_flops": [4.3e19], "min_tokens_per_param": [5.0],
                                      "max_tokens_per_param": [80.0], "points": [12],
                                      "flops_convention": ["6ND"]}),
            "fits": pl.DataFrame({"group_name": [""], "law": ["chinchilla"], "target": ["loss"], "converged": [True],
                                  "flags": ["at_bound:beta"]}),
            "parameters": params,
            "ranking": pl.DataFrame({"group_name": [""], "target": ["loss"], "rank": [1], "law": ["chinchilla"],
                                     "coverage": [0.75], "verdict": ["best"]}),
        },
        plots={"frontier_loss": PNG, "backtests_loss": PNG, "zzz_other": PNG})


def test_intervals_become_one_column_where_the_low_end_was():
    out = with_intervals(_report().table("parameters"), {"95% interval": ("ci_low", "ci_high")})
    assert out.columns == ["group_name", "law", "target", "parameter", "estimate", "95% interval", "flags"]
    assert out["95% interval"].to_list() == ["[0.31, 0.37]", "[0.25, 0.31]"]


def test_html_report_has_every_section_anchor_plot_and_flag():
    page = render_html(_report())
    anchors = re.findall(r'href="#([^"]+)"', page)
    assert anchors == ["data", "laws", "backtests", "plots"]
    assert all(f'id="{a}"' in page for a in anchors)
    assert page.count("data:image/png;base64,") == 3  # every plot, the unsorted one under "Other plots"
    assert "at_bound:beta" in page and "[0.31, 0.37]" in page and "a toy study" in page
    assert "12 runs, 12 points; N 1e+07 to 3e+08 parameters" in page and "5 to 80 per parameter" in page
    assert "group_name" not in page  # a study without groups does not show the empty column


def test_markdown_report_links_each_plot():
    md = render_markdown(_report(), lambda stem: f"plots/toy/{stem}.png")
    assert "## Fitted laws" in md and "| chinchilla | loss | alpha | 0.34 | [0.31, 0.37] |  |" in md
    assert sorted(re.findall(r"\]\((plots/toy/[^)]+)\)", md)) == [
        "plots/toy/backtests_loss.png", "plots/toy/frontier_loss.png", "plots/toy/zzz_other.png"]


def test_markdown_table_escapes_pipes_and_counts_the_rest():
    text = markdown_table(pl.DataFrame({"a": ["x|y", "z", "w"], "b": [1.0, float("nan"), 2e-5]}), limit=2)
    assert text.splitlines()[:4] == ["| a | b |", "|---|---|", "| x\\|y | 1 |", "| z | NaN |"]
    assert text.endswith("_1 more rows_")


def _overlaps(fig, axis) -> list[tuple[str, str]]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()
              and axis.axes.get_ylim()[0] <= t.get_position()[1] <= axis.axes.get_ylim()[1]]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    return [(a, b) for i, (a, x) in enumerate(boxes) for b, y in boxes[i + 1:] if x.overlaps(y)]


def test_log_loss_axis_labels_never_overlap_and_stay_plain_numbers():
    for lo, hi in ((2.0, 11.0), (2.1, 2.8), (1.5, 400.0)):
        fig, ax = new_figure()
        ax.plot(np.geomspace(1e16, 1e21, 50), np.geomspace(hi, lo, 50))
        ax.set_yscale("log")
        readable_log_axis(ax.yaxis)
        assert _overlaps(fig, ax.yaxis) == [], (lo, hi)
        fig.canvas.draw()
        texts = [t.get_text() for t in ax.yaxis.get_ticklabels(which="both") if t.get_text()
                 and lo * 0.95 <= t.get_position()[1] <= hi * 1.05]
        assert len(texts) >= 3, (lo, hi, texts)
        assert all(re.fullmatch(r"[0-9.]+", t) for t in texts), texts
