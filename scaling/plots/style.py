"""Figures without pyplot: the Agg canvas directly, so no global backend is touched."""

from __future__ import annotations

import textwrap
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 130
HELDOUT_COLOR = "#d62728"
FIT_COLOR = "#1f77b4"
BAND_ALPHA = 0.2
_drawn: ContextVar[list | None] = ContextVar("scaling_plots_drawn", default=None)


def new_figure(width: float = 7.0, height: float = 5.0, nrows: int = 1, ncols: int = 1):
    """A figure on an Agg canvas and its axes (a single Axes, or an array for a grid)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=(nrows == 1 and ncols == 1))
    return fig, axes


def save(fig: Figure, path) -> Path:
    """Write ``fig`` as PNG to ``path`` (parents created) and return the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"expected a .png path, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _wrap_titles(fig)
    fig.savefig(path, format="png", dpi=DPI)
    kept = _drawn.get()
    if kept is not None:
        kept.append((path, fig))
    return path


def _wrap_titles(fig: Figure) -> None:
    """Break a title wider than its axes (a figure's title: wider than the figure) at spaces, so it
    stays inside the figure and clear of its neighbours' titles."""
    renderer = fig.canvas.get_renderer()
    titles = [(t, fig.get_figwidth() * fig.dpi) for t in [fig._suptitle] if t is not None]
    titles += [(ax.title, ax.get_position().width * fig.get_figwidth() * fig.dpi) for ax in fig.axes]
    for text, room in titles:
        line = text.get_text()
        if not line or "\n" in line:
            continue
        width = renderer.get_text_width_height_descent(line, text.get_fontproperties(), ismath=False)[0]
        if width > 0.95 * room:
            text.set_text("\n".join(textwrap.wrap(line, max(10, int(len(line) * 0.95 * room / width)))))


@contextmanager
def drawn_figures() -> Iterator[list[tuple[Path, Figure]]]:
    """Collect ``(path, figure)`` of every figure `save` writes inside the block, to inspect what a
    plot drew (where its texts landed, say) beyond the PNG."""
    out: list[tuple[Path, Figure]] = []
    token = _drawn.set(out)
    try:
        yield out
    finally:
        _drawn.reset(token)


def as_array(values, name: str, n: int | None = None) -> np.ndarray:
    """A float array, checked for length ``n`` when given."""
    a = np.asarray(values, dtype=float).ravel()
    if n is not None and a.size != n:
        raise ValueError(f"expected {n} values for {name!r}, got {a.size}")
    return a


def columns(data, keys) -> dict:
    """``{key: array}`` from a mapping of arrays, a sequence of row dicts, or a polars DataFrame."""
    if hasattr(data, "get_column"):
        return {k: data.get_column(k).to_numpy().astype(float) for k in keys}
    if isinstance(data, dict):
        return {k: as_array(data[k], k) for k in keys}
    rows = list(data)
    return {k: np.array([np.nan if r.get(k) is None else float(r[k]) for r in rows]) for k in keys}


def readable_log_axis(axis) -> None:
    """Plain-number tick labels on a log axis that never crowd: minor labels at 2 and 5 per decade
    over up to 4 decades, at 2, 3 and 5 over up to 1.5, at every integer multiple over up to half a
    decade, none over more than 4 decades; of these the densest whose labels keep apart along the
    axis (their widths along an x axis, their heights along a y axis). Over a fraction of a decade
    with fewer than two such labels, 4 to 2 evenly spaced ones."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    axis.axes.autoscale_view()
    lo, hi = sorted(axis.get_view_interval())
    span = np.log10(max(hi, 1e-300) / max(lo, 1e-300)) if lo > 0 else 1.0
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    majors = LogLocator().tick_values(lo, hi) if lo > 0 else np.array([])
    majors = majors[(majors >= lo) & (majors <= hi)]
    choices = [LogLocator(subs=tuple(range(2, 10)))] if span <= 0.5 else []
    choices += [LogLocator(subs=(2.0, 3.0, 5.0))] if span <= 1.5 else []
    choices += [LogLocator(subs=(2.0, 5.0))] if span <= 4 else []
    choices += [MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]) for n in (4, 3, 2)] if span <= 1 else []
    for locator in choices if lo > 0 else []:
        minors = locator.tick_values(lo, hi)
        ticks = np.union1d(minors[(minors >= lo) & (minors <= hi)], majors)
        if (ticks.size >= 2 or span > 1) and _labels_apart(axis, ticks, lo, hi):
            axis.set_minor_locator(locator)
            axis.set_minor_formatter(fmt)
            return
    axis.set_minor_formatter(NullFormatter())


def _labels_apart(axis, ticks: np.ndarray, lo: float, hi: float) -> bool:
    """Whether labels ``f"{v:g}"`` at ``ticks`` on a log axis over [lo, hi] leave a gap of half a
    label between neighbours (the axis length taken as 90% of its share of the figure)."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    if ticks.size < 2:
        return True
    fig = axis.axes.figure
    renderer = fig.canvas.get_renderer()
    along_x = axis.axis_name == "x"
    prop = FontProperties(size=rcParams[f"{axis.axis_name}tick.labelsize"])
    box = axis.axes.get_position()
    length = 0.9 * fig.dpi * (box.width * fig.get_figwidth() if along_x else box.height * fig.get_figheight())
    where = np.log10(ticks / lo) / np.log10(hi / lo) * length
    size = np.array([renderer.get_text_width_height_descent(f"{v:g}", prop, ismath=False)[0 if along_x else 1]
                     for v in ticks])
    return bool(np.all(np.diff(where) >= 0.75 * (size[:-1] + size[1:])))
