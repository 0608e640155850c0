"""Data-mixing laws on held-out mixtures: predicted against actual loss, one panel per target domain."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.stats import spearmanr

from .style import as_array, new_figure, save


def plot_mixture_heldout(path, *, actual: Mapping[str, object], predicted: Mapping[str, object],
                         title: str = "Mixing law on held-out mixtures", target_label: str = "loss (nats/token)"):
    """Write a PNG and return its path. actual, predicted: ``{target domain: array over held-out
    mixtures}``. Each panel shows the y = x line, Spearman's rho and the mean absolute error."""
    domains = [d for d in actual if d in predicted]
    if not domains:
        raise ValueError(f"expected common target domains, got actual {sorted(actual)} and predicted {sorted(predicted)}")
    ncols = min(3, len(domains))
    nrows = int(np.ceil(len(domains) / ncols))
    fig, axes = new_figure(4.0 * ncols, 3.8 * nrows, nrows, ncols)
    axes = np.atleast_1d(axes).ravel()
    for ax, d in zip(axes, domains):
        a = as_array(actual[d], f"actual[{d}]")
        p = as_array(predicted[d], f"predicted[{d}]", a.size)
        ax.scatter(a, p, s=14, alpha=0.75, color="#1f77b4", edgecolor="none")
        lo, hi = float(np.nanmin([a.min(), p.min()])), float(np.nanmax([a.max(), p.max()]))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="y = x")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        rho = spearmanr(a, p).statistic if a.size > 2 else float("nan")
        ax.set_title(f"{d}: Spearman {rho:.3f}, MAE {np.mean(np.abs(p - a)):.3g}", fontsize=9)
        ax.set_xlabel(f"actual {target_label}", fontsize=8)
        ax.set_ylabel(f"predicted {target_label}", fontsize=8)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[len(domains):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return save(fig, path)
