"""The compute-optimal (N, D) of a fitted law: min L(N, D) subject to flops_per_token(N)·D = C.

Chinchilla's form under C = 6·N·D has a closed form (Hoffmann et al. 2022, eq. 4):
N_opt = G·(C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G,
G = (alpha·A / (beta·B))^(1/(alpha+beta)).
Any other (N, D) law (Kaplan, data-constrained) or compute convention is minimized numerically
along the iso-compute line: a grid in log N (tokens per parameter from 1e-2 to 1e6 under 6N),
then a parabola through the best grid point and its neighbours. Both paths are vectorized over
parameter draws, so bootstrap intervals cost one grid evaluation per budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..laws.base import Law
from .budgets import FlopsPerToken, six_n

GRID_POINTS = 401
TPP_RANGE = (1e-2, 1e6)


@dataclass
class Allocation:
    """Per budget (and per draw when parameters are arrays): ``params``, ``tokens``, ``loss``;
    ``at_edge`` marks optima on the edge of the searched range (not a true minimum)."""

    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    at_edge: np.ndarray
    method: str


def _is_chinchilla(law: Law) -> bool:
    """The closed form holds for Chinchilla's own parameters (not rescaled inputs or tied ones)."""
    return law.name == "chinchilla" and not law.input_scale and not law.ties


def optimal_allocation(law: Law, params: Mapping[str, object], flops, *,
                       flops_per_token: FlopsPerToken | None = None, unique_tokens=None,
                       method: str = "auto") -> Allocation:
    """Compute-optimal N and D of ``law`` at budgets ``flops``.

    params: parameter values, scalars or equal-length arrays (one entry per bootstrap draw);
    results are then shaped (n_draws, n_budgets). flops_per_token: ``N -> FLOPs per token``
    (default 6N). unique_tokens: a cap U_D on distinct tokens for laws that take it (the
    repeated-data law sees ``min(D, U_D)`` unique tokens; without a cap every token is unique).
    method: ``"auto"`` (closed form for Chinchilla under 6N, else numeric), ``"closed_form"``
    or ``"numeric"``.
    """
    if method not in ("auto", "closed_form", "numeric"):
        raise ValueError(f"expected method 'auto', 'closed_form' or 'numeric', got {method!r}")
    if not {"params", "tokens"} <= set(law.variables):
        raise ValueError(f"law {law.name!r} is not a law in (params, tokens); it takes {law.variables}")
    C = np.atleast_1d(np.asarray(flops, dtype=float))
    if np.any(~np.isfinite(C) | (C <= 0)):
        raise ValueError(f"expected positive finite budgets, got {C.tolist()}")
    default_fpt = flops_per_token is None or flops_per_token is six_n
    closed = _is_chinchilla(law) and default_fpt
    if method == "closed_form" and not closed:
        raise ValueError("the closed form needs the chinchilla law under C = 6·N·D")
    p = {k: np.asarray(params[k], dtype=float) for k in law.param_names}
    batched = any(v.ndim > 0 for v in p.values())
    if closed and method != "numeric":
        out = _closed_form(law, p, C, batched)
    else:
        out = _numeric(law, p, C, flops_per_token or six_n, unique_tokens, batched)
    return out


def _closed_form(law, p, C, batched):
    col = (lambda v: v.reshape(-1, 1)) if batched else (lambda v: v)
    A, B, al, be = (col(p[k]) for k in ("A", "B", "alpha", "beta"))
    with np.errstate(all="ignore"):
        G = (al * A / (be * B)) ** (1.0 / (al + be))
        c6 = C / 6.0
        N = G * c6 ** (be / (al + be))
        D = c6 ** (al / (al + be)) / G
        L = law.fn({"params": N, "tokens": D}, {k: col(v) for k, v in p.items()})
    return Allocation(N, D, np.asarray(L, dtype=float), np.zeros(np.shape(N), dtype=bool), "closed_form")


def _numeric(law, p, C, fpt, unique_tokens, batched):
    G = max((v.size for v in p.values()), default=1) if batched else 1
    q = {k: (v.reshape(-1, 1) if batched else v.reshape(1, 1)) for k, v in p.items()}
    shape = (G, C.size)
    N_out, D_out, L_out = np.empty(shape), np.empty(shape), np.empty(shape)
    edge = np.zeros(shape, dtype=bool)
    for j, c in enumerate(C):
        lo = np.log(np.sqrt(c / (6.0 * TPP_RANGE[1])))
        hi = np.log(np.sqrt(c / (6.0 * TPP_RANGE[0])))
        u = np.linspace(lo, hi, GRID_POINTS)
        loss = _loss_on_line(law, q, u, c, fpt, unique_tokens)
        loss = np.where(np.isfinite(loss), loss, np.inf)
        k = np.argmin(loss, axis=1)
        at_edge = (k == 0) | (k == u.size - 1)
        kk = np.clip(k, 1, u.size - 2)
        rows = np.arange(loss.shape[0])
        y0, y1, y2 = loss[rows, kk - 1], loss[rows, kk], loss[rows, kk + 1]
        h = u[1] - u[0]
        denom = y0 - 2 * y1 + y2
        with np.errstate(all="ignore"):
            shift = np.where((denom > 0) & ~at_edge & np.isfinite(denom), 0.5 * h * (y0 - y2) / denom, 0.0)
        ustar = np.where(at_edge, u[k], u[kk] + np.clip(shift, -h, h))
        N = np.exp(ustar)
        D = c / np.asarray(fpt(N), dtype=float)
        X = {"params": N, "tokens": D}
        if "unique_tokens" in law.variables:
            X["unique_tokens"] = D if unique_tokens is None else np.minimum(D, float(unique_tokens))
        qd = {k2: (v.ravel() if v.size > 1 else v.ravel()[0]) for k2, v in q.items()}
        with np.errstate(all="ignore"):
            L = np.asarray(law.fn(X, qd), dtype=float)
        N_out[:, j], D_out[:, j], L_out[:, j], edge[:, j] = N, D, np.broadcast_to(L, N.shape), at_edge
    if not batched:
        N_out, D_out, L_out, edge = N_out[0], D_out[0], L_out[0], edge[0]
    return Allocation(N_out, D_out, L_out, edge, "numeric")


def _loss_on_line(law, q, u, c, fpt, unique_tokens):
    N = np.exp(u)
    D = c / np.asarray(fpt(N), dtype=float)
    X = {"params": N, "tokens": D}
    if "unique_tokens" in law.variables:
        X["unique_tokens"] = D if unique_tokens is None else np.minimum(D, float(unique_tokens))
    with np.errstate(all="ignore"):
        return np.asarray(law.fn(X, q), dtype=float)
