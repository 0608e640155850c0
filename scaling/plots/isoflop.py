"""IsoFLOP profiles (Hoffmann et al. 2022, approach 2): loss against model size at fixed budgets,
a parabola in log N per budget, and each budget's minimum marked."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib import colormaps

from .style import as_array, new_figure, readable_log_axis, save


def isoflop_profiles(params, tokens, loss, runs=None, *, budgets: Sequence[float], flops=None,
                     tolerance: float = 0.1) -> list[dict]:
    """Per budget: ``{"flops", "params", "loss"}`` with one point per run reaching the budget
    (curves interpolated in log compute; single-point runs within ``tolerance`` of it)."""
    N, D = as_array(params, "params"), as_array(tokens, "tokens")
    L = as_array(loss, "loss", N.size)
    C = 6.0 * N * D if flops is None else as_array(flops, "flops", N.size)
    runs = np.arange(N.size) if runs is None else np.asarray(runs).ravel()
    tol = np.log1p(tolerance)
    out = []
    for b in budgets:
        lb = np.log(b)
        ns, ls = [], []
        for r in np.unique(runs):
            idx = np.flatnonzero(runs == r)
            idx = idx[np.argsort(C[idx])]
            lc = np.log(C[idx])
            if lc.size == 1 or lc[0] == lc[-1]:
                if abs(lc[0] - lb) <= tol:
                    ns.append(N[idx[0]])
                    ls.append(L[idx[0]])
            elif lc[0] <= lb <= lc[-1]:
                ns.append(np.exp(np.interp(lb, lc, np.log(N[idx]))))
                ls.append(np.interp(lb, lc, L[idx]))
        order = np.argsort(ns)
        out.append({"flops": float(b), "params": np.asarray(ns)[order], "loss": np.asarray(ls)[order]})
    return out


def plot_isoflop(path, profiles: Sequence[dict], *, minima: Sequence[dict] | None = None,
                 title: str = "IsoFLOP profiles", target_label: str = "loss (nats/token)"):
    """Write a PNG of ``profiles`` (from ``isoflop_profiles``) and return its path. minima: the
    per-budget optima (``isoflop(...).approach2.points``: ``flops``, ``params_opt``, ``loss_opt``, and
    ``params_opt_ci_low``/``_high`` drawn as horizontal error bars when present)."""
    if not profiles:
        raise ValueError("expected at least one isoFLOP profile")
    fig, ax = new_figure()
    cmap = colormaps["viridis"]
    lo, hi = np.log([min(p["flops"] for p in profiles), max(p["flops"] for p in profiles)])
    color = {}
    for p in profiles:
        t = 0.0 if hi == lo else (np.log(p["flops"]) - lo) / (hi - lo)
        c = cmap(0.05 + 0.85 * t)
        color[p["flops"]] = c
        N, L = np.asarray(p["params"], float), np.asarray(p["loss"], float)
        if N.size == 0:
            continue
        ax.scatter(N, L, color=c, s=22, zorder=3, label=f"C = {p['flops']:.2g} FLOPs")
        if N.size >= 3:
            a2, a1, a0 = np.polyfit(np.log(N), L, 2)
            x = np.linspace(np.log(N.min()), np.log(N.max()), 100)
            ax.plot(np.exp(x), a0 + a1 * x + a2 * x * x, color=c, lw=1.2, alpha=0.8)
    for i, m in enumerate(minima or []):
        lo, hi = m.get("params_opt_ci_low"), m.get("params_opt_ci_high")
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
            ax.errorbar([m["params_opt"]], [m["loss_opt"]], xerr=[[max(m["params_opt"] - lo, 0)],
                                                                   [max(hi - m["params_opt"], 0)]],
                        color=_nearest(color, m["flops"]), lw=1.0, capsize=3, zorder=4)
        ax.scatter([m["params_opt"]], [m["loss_opt"]], marker="*", s=160, color=_nearest(color, m["flops"]),
                   edgecolor="black", lw=0.7, zorder=5, label="minimum per budget" if i == 0 else None)
    ax.set_xscale("log")
    readable_log_axis(ax.xaxis)
    ax.set_xlabel("parameters N")
    ax.set_ylabel(target_label)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save(fig, path)


def _nearest(colors: dict, flops: float):
    keys = np.array(list(colors))
    return colors[keys[np.argmin(np.abs(np.log(keys) - np.log(flops)))]] if keys.size else "black"
