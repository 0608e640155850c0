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
