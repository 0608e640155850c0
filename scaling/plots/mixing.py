"""Data-mixing laws on held-out mixtures: predicted against actual loss, one panel per target domain."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.stats import spearmanr

from ..fit.bootstrap import percentile_interval
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


def plot_nested_mixing(path, pred, *, heldout: Mapping[str, tuple] | None = None, max_mixtures: int = 6,
                       title: str = "Nested mixing prediction", target_label: str = "loss (nats/token)"):
    """Write a PNG of the three stages of a nested mixing prediction (`scaling.mixing.NestedPrediction`)
    and return its path: (1) one mixture's checkpoints and step laws, extended to the target steps;
    (2) the runs' losses at the target steps against model size, with size laws extended to the target
    size and the bootstrap interval there, for up to ``max_mixtures`` mixtures; (3) the mixing law's
    predictions against the extrapolated losses it was fitted to, and, when ``heldout`` gives
    ``{split: (actual, predicted, ci_low, ci_high)}`` at the target scale, against held-out runs."""
    fig, axes = new_figure(15.0, 4.6, 1, 3)
    ax1, ax2, ax3 = np.ravel(axes)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    first = pred.mixture_ids[0]
    runs = [r for r in pred.runs if r[0] == first]
    s_hi = max(pred.target_steps, max(float(np.max(pred.checkpoints[r][0])) for r in runs))
    for c, run in zip(colors * 4, runs):
        st, ls = pred.checkpoints[run]
        ax1.scatter(st, ls, s=14, color=c, label=f"{run[1]:.3g} params")
        grid = np.geomspace(float(np.min(st)), s_hi, 80)
        ax1.plot(grid, pred.step_fits[run].predict(grid), color=c, lw=1)
    ax1.axvline(pred.target_steps, color="k", ls=":", lw=1, label="target steps")
    ax1.set_xscale("log")
    ax1.set_xlabel("steps")
    ax1.set_ylabel(target_label)
    ax1.set_title(f"1. step law per run (mixture {first})", fontsize=9)
    ax1.legend(fontsize=7)
    have = pred.n_resamples > 0
    n_hi = max(pred.target_params, max(r[1] for r in pred.runs))
    for c, (m, mid) in zip(colors, list(enumerate(pred.mixture_ids))[:max_mixtures]):
        idx = [i for i, r in enumerate(pred.runs) if r[0] == mid]
        sizes = np.array([pred.runs[i][1] for i in idx])
        ax2.scatter(sizes, pred.at_steps[idx], s=14, color=c)
        grid = np.geomspace(sizes.min(), n_hi, 80)
        ax2.plot(grid, pred.size_fits[mid].predict(grid), color=c, lw=1)
        if have:
            lo, hi = percentile_interval(pred.at_target_draws[:, m], pred.level)
            ax2.errorbar([pred.target_params], [pred.losses_at_target[m]],
                         yerr=[[pred.losses_at_target[m] - lo], [hi - pred.losses_at_target[m]]], color=c, capsize=3,
                         fmt="o", ms=4)
    ax2.axvline(pred.target_params, color="k", ls=":", lw=1)
    ax2.set_xscale("log")
    ax2.set_xlabel("parameters")
    ax2.set_ylabel(f"{target_label} at {pred.target_steps:.3g} steps")
    ax2.set_title("2. size law per mixture, to the target size", fontsize=9)
    fitted = pred.predict(pred.weights)
    ax3.scatter(pred.losses_at_target, fitted, s=14, color="#7f7f7f", label="fitted mixtures (extrapolated)")
    vals = [pred.losses_at_target, fitted]
    for c, (split, (actual, predicted, lo, hi)) in zip(colors, (heldout or {}).items()):
        actual, predicted = as_array(actual, "actual"), as_array(predicted, "predicted")
        ax3.errorbar(actual, predicted, yerr=[predicted - np.asarray(lo), np.asarray(hi) - predicted], fmt="o", ms=4,
                     color=c, capsize=2, label=f"held-out {split}")
        vals += [actual, predicted]
    lo_v, hi_v = float(np.nanmin(np.concatenate(vals))), float(np.nanmax(np.concatenate(vals)))
    pad = 0.05 * (hi_v - lo_v or 1.0)
    ax3.plot([lo_v - pad, hi_v + pad], [lo_v - pad, hi_v + pad], "k--", lw=1, label="y = x")
    ax3.set_xlabel(f"actual or extrapolated {target_label}")
    ax3.set_ylabel(f"predicted ({pred.law.name})")
    ax3.set_title(f"3. mixing law at {pred.target_params:.3g} params, {pred.target_steps:.3g} steps", fontsize=9)
    ax3.legend(fontsize=7, loc="upper left")
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.25)
    fig.suptitle(title)
    return save(fig, path)
