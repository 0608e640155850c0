"""Figures without pyplot: the Agg canvas directly, so no global backend is touched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 130
HELDOUT_COLOR = "#d62728"
FIT_COLOR = "#1f77b4"
BAND_ALPHA = 0.2


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
    fig.savefig(path, format="png", dpi=DPI)
    return path


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
    over more than 1.5 decades, at 2, 3 and 5 over more than half a decade, at every integer
    multiple below that, none over more than 4 decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.autoscale_view()
    lo, hi = axis.get_view_interval()
    span = np.log10(max(hi, 1e-300) / max(lo, 1e-300)) if lo > 0 else 1.0
    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    if span > 4:
        axis.set_minor_formatter(NullFormatter())
        return
    subs = (2.0, 5.0) if span > 1.5 else (2.0, 3.0, 5.0) if span > 0.5 else tuple(range(2, 10))
    axis.set_minor_locator(LogLocator(subs=subs))
    axis.set_minor_formatter(fmt)
