"""Compute conventions and budget grids.

Training compute C = flops_per_token(N) · D. The default convention is C = 6·N·D (Kaplan et al.
2020; Hoffmann et al. 2022); ``transformer_flops_per_token`` adds the attention term,
6N + 6·n_layer·n_ctx·d_model (Kaplan et al. 2020, Table 1, forward plus backward).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

FlopsPerToken = Callable[[np.ndarray], np.ndarray]


def six_n(params):
    """6·N FLOPs per training token."""
    return 6.0 * np.asarray(params, dtype=float)


def transformer_flops_per_token(n_layer: float, n_ctx: float, d_model: float) -> FlopsPerToken:
    """6·N + 6·n_layer·n_ctx·d_model FLOPs per token, for a fixed architecture shape.

    Valid when depth, width and context stay as given while N varies; for a family whose shape
    changes with N pass your own callable ``N -> FLOPs per token``.
    """
    for name, v in (("n_layer", n_layer), ("n_ctx", n_ctx), ("d_model", d_model)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"expected a positive {name}, got {v!r}")
    attn = 6.0 * float(n_layer) * float(n_ctx) * float(d_model)

    def fpt(params):
        return 6.0 * np.asarray(params, dtype=float) + attn

    fpt.__name__ = f"6N + {attn:.6g}"
    return fpt


def family_flops_per_token(params, attention_per_token) -> FlopsPerToken:
    """6·N + a(N) FLOPs per token for a model family whose shape changes with N.

    a(N) = 6·n_layer·n_ctx·d_model (Kaplan et al. 2020, Table 1) is known for the family's runs
    (``params``, ``attention_per_token``); it is interpolated and extrapolated as a power law in N,
    a(N) = k·N^p, fitted by least squares in log-log (a constant when the runs share one size).
    This is how compute-optimal allocations honour the 6ND+attention convention, where no single
    architecture shape is given.
    """
    n = np.asarray(params, dtype=float).ravel()
    a = np.asarray(attention_per_token, dtype=float).ravel()
    ok = np.isfinite(n) & np.isfinite(a) & (n > 0) & (a > 0)
    if not ok.any():
        raise ValueError("expected at least one run with a positive size and attention term")
    ln, la = np.log(n[ok]), np.log(a[ok])
    if np.ptp(ln) > 0:
        p, logk = np.polyfit(ln, la, 1)
    else:
        p, logk = 0.0, float(la.mean())

    def fpt(params):
        N = np.asarray(params, dtype=float)
        return 6.0 * N + np.exp(logk) * N ** p

    fpt.__name__ = f"6N + {np.exp(logk):.4g}*N^{p:.4f}"
    return fpt


def convention_name(flops_per_token: FlopsPerToken | None) -> str:
    if flops_per_token is None or flops_per_token is six_n:
        return "6N"
    return getattr(flops_per_token, "__name__", "custom")


def budget_grid(max_observed_flops: float, *, factor: float = 1000.0, n: int = 7) -> np.ndarray:
    """``n`` log-spaced budgets from the largest observed budget to ``factor`` times it."""
    if not (np.isfinite(max_observed_flops) and max_observed_flops > 0):
        raise ValueError(f"expected a positive largest observed budget, got {max_observed_flops!r}")
    if n < 1 or not factor >= 1.0:
        raise ValueError(f"expected n >= 1 and factor >= 1, got n={n}, factor={factor}")
    return np.geomspace(max_observed_flops, max_observed_flops * factor, n)


def budget_label(flops: float) -> str:
    """'1e+24 FLOPs'-style label: three significant digits."""
    return f"{float(flops):.3g} FLOPs"
