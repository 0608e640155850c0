"""Compute-optimal allocation: N_opt(C) and D_opt(C) with their 95% intervals, one line per law
(Hoffmann et al. 2022, Fig. 3; the exponents a and b are the slopes on these log-log axes)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib import colormaps

from .style import BAND_ALPHA, columns, new_figure, readable_log_axis, save

KEYS = ("flops", "params", "params_ci_low", "params_ci_high", "tokens", "tokens_ci_low", "tokens_ci_high")


def plot_compute_optimal(path, allocations: Mapping[str, object], *, max_observed_flops: float | None = None,
                         title: str = "Compute-optimal allocation"):
    """Write a PNG and return its path. allocations: ``{law: rows}`` with ``flops``, ``params``,
    ``tokens`` and their ``*_ci_low``/``*_ci_high`` (the `forecasts` table's compute-optimal rows)."""
    if not allocations:
        raise ValueError("expected at least one law's compute-optimal rows")
    fig, axes = new_figure(11.0, 4.6, 1, 2)
    axes = np.ravel(axes)
    cmap = colormaps["tab10"]
    for i, (law, rows) in enumerate(allocations.items()):
        f = columns(rows, KEYS)
        order = np.argsort(f["flops"])
        color = cmap((i + 2) % 10)
        for ax, key in zip(axes, ("params", "tokens")):
            x, y = f["flops"][order], f[key][order]
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            slope = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0] if ok.sum() > 1 else float("nan")
            ax.plot(x[ok], y[ok], color=color, lw=1.6, label=f"{law} (slope {slope:.3f})")
            lo, hi = f[f"{key}_ci_low"][order], f[f"{key}_ci_high"][order]
            band = ok & np.isfinite(lo) & np.isfinite(hi)
            if band.any():
                ax.fill_between(x[band], lo[band], hi[band], color=color, alpha=BAND_ALPHA, lw=0,
                                label=f"95% interval ({law})")
    for ax, name in zip(axes, ("compute-optimal parameters N_opt", "compute-optimal tokens D_opt")):
        if max_observed_flops is not None:
            ax.axvline(max_observed_flops, color="0.3", ls=":", lw=1)
            ax.annotate("largest observed budget", (max_observed_flops, 0.98), xycoords=("data", "axes fraction"),
                        rotation=90, ha="left", va="top", fontsize=8, color="0.3")
        ax.set_xscale("log")
        ax.set_yscale("log")
        readable_log_axis(ax.xaxis)
        readable_log_axis(ax.yaxis)
        ax.set_xlabel("training compute C (FLOPs)")
        ax.set_ylabel(name)
        ax.grid(True, which="major", alpha=0.25)
        ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    fig.suptitle(title)
    return save(fig, path)
