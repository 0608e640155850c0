"""HTML and Markdown rendering of a `StudyReport`: the same sections, tables and plots in both."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Callable

import polars as pl

from .model import StudyReport


def format_value(v) -> str:
    """A cell as text: 4 significant digits for large or tiny numbers, else up to 4 decimals."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}" if (abs(v) >= 1e5 or (0 < abs(v) < 1e-3)) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def markdown_table(frame: pl.DataFrame, limit: int | None = 20) -> str:
    """A frame as a Markdown table (the first `limit` rows, then a note of how many more)."""
    if frame.height == 0:
        return "_no rows_"
    head = frame if limit is None else frame.head(limit)
    cell = lambda v: format_value(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    if limit is not None and frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows_")
    return "\n".join(lines)


def with_intervals(frame: pl.DataFrame, pairs: dict[str, tuple[str, str]]) -> pl.DataFrame:
    """Replace each (low, high) column pair by one text column "[low, high]" named by `pairs`' key,
    placed where the low column was."""
    if frame.height == 0:
        return frame
    out = frame
    for name, (lo, hi) in pairs.items():
        if lo not in out.columns or hi not in out.columns:
            continue
        text = [f"[{format_value(a)}, {format_value(b)}]" if a is not None and b is not None else ""
                for a, b in zip(out[lo].to_list(), out[hi].to_list())]
        idx = out.columns.index(lo)
        out = out.drop(lo, hi).insert_column(idx, pl.Series(name, text))
    return out


@dataclass
class Section:
    anchor: str
    title: str
    intro: str
    tables: list[tuple[str, pl.DataFrame]]
    plots: dict[str, bytes]


def _drop_empty_group(frame: pl.DataFrame) -> pl.DataFrame:
    """Hide `group_name` when the study has no groups (every value '')."""
    if "group_name" in frame.columns and frame.height and (frame["group_name"].fill_null("") == "").all():
        return frame.drop("group_name")
    return frame


def sections(r: StudyReport) -> list[Section]:
    """The report's sections in reading order; empty ones are left out."""
    out = []
    ov = r.table("overview")
    if ov.height and ov["runs"][0]:
        o = ov.row(0, named=True)
        groups = f" in {o['groups']} groups" if o["groups"] and o["groups"] > 1 else ""
        intro = (f"{o['runs']} runs{groups}, {format_value(o['points'])} points; "
                 f"N {format_value(o['min_params'])} to {format_value(o['max_params'])} parameters, "
                 f"D {format_value(o['min_tokens'])} to {format_value(o['max_tokens'])} tokens "
                 f"({format_value(o['min_tokens_per_param'])} to {format_value(o['max_tokens_per_param'])} per "
                 f"parameter), C {format_value(o['min_flops'])} to {format_value(o['max_flops'])} FLOPs "
                 f"({o['flops_convention']}).")
        tables = [("Metrics", r.table("metrics")), ("Runs", _drop_empty_group(r.table("runs")))]
        if r.table("quarantine").height:
            tables.append(("Quarantined rows", r.table("quarantine")))
        out.append(Section("data", "Data", intro, tables, {}))
    if r.table("fits").height:
        params = with_intervals(_drop_empty_group(r.table("parameters")), {"95% interval": ("ci_low", "ci_high")})
        out.append(Section(
            "laws", "Fitted laws",
            "Each law fitted to each target; intervals are 2.5th-97.5th percentiles over bootstrap refits "
            "(resampling runs). A fit with a blocking flag is not used for forecasts.",
            [("Fits", _drop_empty_group(r.table("fits"))), ("Parameters", params)], r.plots_for("fit_")))
    if r.table("ranking").height:
        bt = with_intervals(_drop_empty_group(r.table("backtests")), {"95% interval": ("ci_low", "ci_high")})
        out.append(Section(
            "backtests", "Backtests",
            "Each law refitted without the largest-compute runs and asked to predict them; coverage is the "
            "share of held-out values inside their 95% prediction interval. Rank 1 is recommended.",
            [("Ranking", _drop_empty_group(r.table("ranking"))), ("Held-out runs", bt)],
            r.plots_for("backtest", "predicted_")))
    fc = r.table("forecasts")
    if fc.height:
        intervals = {"95% interval": ("ci_low", "ci_high"), "N interval": ("params_ci_low", "params_ci_high"),
                     "D interval": ("tokens_ci_low", "tokens_ci_high")}
        best = fc.filter(pl.col("recommended") & (pl.col("kind") == "compute_optimal")).drop(
            "kind", "name", "epochs", "actual", "rel_error", "recommended")
        other = fc.filter(pl.col("kind") != "compute_optimal").drop("extrapolation")
        tables = [("Compute-optimal allocation, recommended law", with_intervals(_drop_empty_group(best), intervals))]
        if other.height:
            tables.append(("Target runs, data-constrained, fixed-size and downstream forecasts",
                           with_intervals(_drop_empty_group(other), intervals)))
        tables.append(("All compute-optimal forecasts", with_intervals(_drop_empty_group(
            fc.filter(pl.col("kind") == "compute_optimal").drop("name", "epochs", "actual", "rel_error")), intervals)))
        out.append(Section(
            "forecasts", "Forecasts",
            "Compute-optimal model size N_opt and data D_opt with predicted loss per budget, and named targets; "
            "intervals combine the bootstrap draws (and, for downstream accuracy, both steps' draws).",
            tables, r.plots_for("frontier", "allocation", "isoflop", "downstream")))
    if r.table("observational_components").height:
        out.append(Section(
            "observational", "Observational scaling law",
            "Benchmark scores -> principal components (missing scores imputed), per-family maps from log compute, "
            "a sigmoid link to the target (Ruan et al. 2024), fitted on the models at or below the compute "
            "cut-off; the held-out models' errors are in the backtests beside compute-only laws. Intervals over "
            "model resamples.",
            [("Components", with_intervals(r.table("observational_components"),
                                           {"95% interval": ("loading_ci_low", "loading_ci_high")})),
             ("Families", with_intervals(r.table("observational_families"), {
                 "slope interval": ("slope_ci_low", "slope_ci_high"),
                 "efficiency interval": ("efficiency_ci_low", "efficiency_ci_high")})),
             ("Held-out and named models", with_intervals(r.table("observational_models"), {
                 "95% interval": ("ci_low", "ci_high"), "from compute interval": ("compute_ci_low", "compute_ci_high")}))],
            r.plots_for("observational")))
    if r.table("mixing_scores").height:
        out.append(Section(
            "mixtures", "Mixtures",
            "Data-mixing laws per target domain with held-out scores, and the proposed mixture beside the baseline.",
            [("Held-out scores", r.table("mixing_scores")),
             ("Proposed mixture", with_intervals(r.table("mixture"), {
                 "95% interval": ("ci_low", "ci_high"), "baseline interval": ("baseline_ci_low", "baseline_ci_high")})),
             ("Parameters", with_intervals(r.table("mixing_parameters"), {"95% interval": ("ci_low", "ci_high")}))],
            r.plots_for("mixing")))
    shown = {k for s in out for k in s.plots}
    rest = {k: v for k, v in sorted(r.plots.items()) if k not in shown}
    if rest:
        out.append(Section("plots", "Other plots", "", [], rest))
    return out


def _caption(stem: str) -> str:
    return stem.replace("__", " / ").replace("_", " ")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;
color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
nav a{margin-right:1rem}.muted{color:#666}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:right;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}td.t,th.t{text-align:left}
figure{display:inline-block;margin:.5rem 1rem 1rem 0;vertical-align:top}figure img{max-width:100%;height:auto;
border:1px solid #eee}figcaption{font-size:.8rem;color:#555}
details>summary{cursor:pointer;font-weight:600;margin:.6rem 0}
"""


def _html_table(frame: pl.DataFrame, limit: int | None = None) -> str:
    if frame.height == 0:
        return '<p class="muted">no rows</p>'
    head = frame if limit is None else frame.head(limit)
    numeric = [dt.is_numeric() for dt in head.dtypes]
    rows = ["<tr>" + "".join(f"<th>{html.escape(c)}</th>" if num else f'<th class="t">{html.escape(c)}</th>'
                             for c, num in zip(head.columns, numeric)) + "</tr>"]
    for row in head.iter_rows():
        rows.append("<tr>" + "".join(
            f"<td>{html.escape(format_value(v))}</td>" if num else f'<td class="t">{html.escape(format_value(v))}</td>'
            for v, num in zip(row, numeric)) + "</tr>")
    more = f'<p class="muted">{frame.height - limit} more rows</p>' if limit is not None and frame.height > limit else ""
    return "<table>" + "".join(rows) + "</table>" + more


def _img(stem: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure id="plot-{html.escape(stem)}"><img alt="{html.escape(_caption(stem))}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(_caption(stem))}</figcaption></figure>')


FOLDED = {"Runs", "Held-out runs", "All compute-optimal forecasts", "Parameters", "Families"}


def render_html(r: StudyReport) -> str:
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(r.study)}: "
             f"scaling study report</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(r.study)}</h1>"]
    if r.description:
        parts.append(f"<p>{html.escape(r.description)}</p>")
    if r.generated:
        parts.append(f'<p class="muted">Report generated {html.escape(r.generated)} from the warehouse catalog.</p>')
    secs = sections(r)
    if not secs:
        parts.append('<p class="muted">Nothing in the warehouse for this study yet: run <code>scaling run</code>.</p>')
    parts.append("<nav>" + "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in secs) + "</nav>")
    for s in secs:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        if s.intro:
            parts.append(f"<p>{html.escape(s.intro)}</p>")
        for title, frame in s.tables:
            body = f"<h3>{html.escape(title)}</h3>{_html_table(frame)}"
            if title in FOLDED and frame.height > 15:
                body = f"<details><summary>{html.escape(title)} ({frame.height} rows)</summary>{_html_table(frame)}</details>"
            parts.append(body)
        parts += [_img(k, v) for k, v in s.plots.items()]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(r: StudyReport, image_link: Callable[[str], str] | None = None) -> str:
    """The report as Markdown; plots as image links (`image_link(stem)`, default ``plots/<stem>.png``)."""
    link = image_link or (lambda stem: f"plots/{stem}.png")
    parts = [f"# {r.study}", ""]
    if r.description:
        parts += [r.description, ""]
    if r.generated:
        parts += [f"_Report generated {r.generated} from the warehouse catalog._", ""]
    for s in sections(r):
        parts += [f"## {s.title}", ""]
        if s.intro:
            parts += [s.intro, ""]
        for title, frame in s.tables:
            parts += [f"### {title}", "", markdown_table(frame, limit=None), ""]
        for stem in s.plots:
            parts += [f"![{_caption(stem)}]({link(stem)})", ""]
    return "\n".join(parts)


def render_index(entries: list[tuple[str, str, str, str]]) -> str:
    """An index page: (study, description, html file, markdown file) per study."""
    rows = "".join(f'<li><a href="{html.escape(h)}">{html.escape(s)}</a> <span class="muted">'
                   f'{html.escape(d)}</span> (<a href="{html.escape(m)}">Markdown</a>)</li>' for s, d, h, m in entries)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Scaling study reports</title>"
            f"<style>{CSS}</style></head><body><h1>Scaling study reports</h1><ul>{rows}</ul></body></html>")
