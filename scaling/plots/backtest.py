"""Predicted against actual for backtests: interval bars, one colour per law, the y = x line."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from .style import as_array, new_figure, save


def plot_predicted_vs_actual(path, *, actual, predicted, ci_low=None, ci_high=None, laws=None,
                             title: str = "Backtest: predicted vs actual", target_label: str = "loss",
                             log: bool = False):
    """Write a PNG and return its path. laws: a law name per point (one colour and legend entry
    each). Each point's interval is drawn as a vertical bar when ``ci_low``/``ci_high`` are given."""
    a = as_array(actual, "actual")
    p = as_array(predicted, "predicted", a.size)
    lo = None if ci_low is None else as_array(ci_low, "ci_low", a.size)
    hi = None if ci_high is None else as_array(ci_high, "ci_high", a.size)
    names = np.array(["prediction"] * a.size if laws is None else [str(x) for x in laws])
    if names.size != a.size:
        raise ValueError(f"expected {a.size} law names, got {names.size}")
    fig, ax = new_figure(6.0, 5.5)
    cmap = colormaps["tab10"]
    for i, law in enumerate(dict.fromkeys(names)):
        m = names == law
        yerr = None
        if lo is not None and hi is not None:
            yerr = np.vstack([np.clip(p[m] - lo[m], 0, None), np.clip(hi[m] - p[m], 0, None)])
            yerr = np.where(np.isfinite(yerr), yerr, 0.0)
        err = np.mean(np.abs(p[m] / a[m] - 1))
        ax.errorbar(a[m], p[m], yerr=yerr, fmt="o", ms=5, color=cmap(i % 10), ecolor=cmap(i % 10), elinewidth=1,
                    capsize=2, alpha=0.85, label=f"{law} (mean |error| {err:.1%})")
    vals = np.concatenate([a, p] + ([lo[np.isfinite(lo)], hi[np.isfinite(hi)]] if lo is not None else []))
    vmin, vmax = float(np.nanmin(vals)), float(np.nanmax(vals))
    pad = 0.05 * (vmax - vmin or abs(vmax) or 1.0)
    line = [vmin - pad, vmax + pad]
    ax.plot(line, line, color="black", lw=1, ls="--", label="y = x (perfect prediction)")
    ax.set_xlim(line)
    ax.set_ylim(line)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"actual {target_label}")
    ax.set_ylabel(f"predicted {target_label}")
    ax.set_title(title)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    return save(fig, path)
