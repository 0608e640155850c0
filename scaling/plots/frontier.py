"""Loss against compute: observed runs, held-out runs, the fitted compute-optimal frontier and its
forecast band out to the largest budget."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib import colormaps

from .style import BAND_ALPHA, FIT_COLOR, HELDOUT_COLOR, as_array, columns, new_figure, readable_log_axis, save


def plot_loss_vs_compute(path, *, flops, loss, heldout=None, curves: Sequence | None = None, frontier=None,
                         max_observed_flops: float | None = None, title: str = "Loss vs compute",
                         target_label: str = "loss (nats/token)", law_label: str = "fit",
                         frontiers: Mapping | None = None):
    """Write a PNG and return its path.

    flops, loss: each run's final point. heldout: boolean mask of held-out runs (drawn red).
    curves: optional ``[(flops_array, loss_array), ...]`` training curves, drawn faintly.
    frontier: the compute-optimal frontier, a mapping of arrays or rows (e.g. ``compute_optimal``
    forecast rows) with ``flops``, ``predicted`` and optionally ``ci_low``/``ci_high``.
    frontiers: ``{law: frontier}`` to draw several laws' frontiers, each with its band in its own
    colour (``frontier`` alone is drawn in black, labelled ``law_label``).
    max_observed_flops: a dotted line where extrapolation starts (default: the largest run).
    """
    C = as_array(flops, "flops")
    L = as_array(loss, "loss", C.size)
    held = np.zeros(C.size, dtype=bool) if heldout is None else np.asarray(heldout, dtype=bool).ravel()
    if held.size != C.size:
        raise ValueError(f"expected {C.size} held-out flags, got {held.size}")
    fig, ax = new_figure()
    for i, (cf, lf) in enumerate(curves or []):
        ax.plot(as_array(cf, "curve flops"), as_array(lf, "curve loss"), color="0.6", lw=0.7, alpha=0.35,
                label="training curves" if i == 0 else None, zorder=1)
    ax.scatter(C[~held], L[~held], s=28, color=FIT_COLOR, edgecolor="white", lw=0.5, zorder=3,
               label=f"runs fitted ({int((~held).sum())})")
    if held.any():
        ax.scatter(C[held], L[held], s=60, marker="D", color=HELDOUT_COLOR, edgecolor="black", lw=0.6, zorder=4,
                   label=f"held-out runs ({int(held.sum())})")
    lines = [(law_label, frontier, "black")] if frontier is not None else []
    cmap = colormaps["tab10"]
    lines += [(law, rows, cmap((i + 2) % 10)) for i, (law, rows) in enumerate((frontiers or {}).items())]
    for label, rows, color in lines:
        f = columns(rows, [k for k in ("flops", "predicted", "ci_low", "ci_high") if _has(rows, k)])
        order = np.argsort(f["flops"])
        fx, fy = f["flops"][order], f["predicted"][order]
        ok = np.isfinite(fy)
        ax.plot(fx[ok], fy[ok], color=color, lw=1.6, zorder=5, label=f"compute-optimal frontier ({label})")
        if "ci_low" in f and np.isfinite(f["ci_low"]).any():
            band = np.isfinite(f["ci_low"][order]) & np.isfinite(f["ci_high"][order])
            ax.fill_between(fx[band], f["ci_low"][order][band], f["ci_high"][order][band], color=color,
                            alpha=BAND_ALPHA, lw=0, zorder=2, label=f"95% interval ({label})")
    edge = max_observed_flops if max_observed_flops is not None else float(np.max(C))
    ax.axvline(edge, color="0.3", ls=":", lw=1)
    ax.annotate("largest observed budget", (edge, 0.02), xycoords=("data", "axes fraction"), rotation=90,
                ha="right", va="bottom", fontsize=8, color="0.3")
    ax.set_xscale("log")
    ax.set_yscale("log")
    readable_log_axis(ax.xaxis)
    readable_log_axis(ax.yaxis)
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel(target_label)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper right", framealpha=0.9)
    return save(fig, path)


def _has(data, key) -> bool:
    if hasattr(data, "columns") and not isinstance(data, dict):
        return key in data.columns
    if isinstance(data, dict):
        return key in data
    rows = list(data)
    return bool(rows) and key in rows[0] and any(r.get(key) is not None for r in rows)
