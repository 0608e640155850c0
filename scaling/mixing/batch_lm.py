"""Levenberg-Marquardt for many weighted refits of ``L = c + exp(phi . theta)`` at once.

Bootstrap refits share the design matrix phi and differ only in per-run weights (draw
counts), so all resamples take their damped Gauss-Newton steps together: one batched
matrix product forms every J^T W J. Each resample keeps its own damping, is frozen once
converged, and is reported as failed if it has not converged after ``max_iter`` steps.

Besides the usual relative-decrease and step-size tests, a resample stops once the
decrease its next Gauss-Newton step predicts is below ``stat_tol`` times the residual
variance per run: the distance left to the optimum (in the metric of J'WJ) is then
about sqrt(stat_tol) of a standard error, far below the bootstrap spread being measured.
"""

from __future__ import annotations

import numpy as np


def _cost(phi, y, w, x, penalty):
    e = np.exp(np.minimum(x[:, 1:] @ phi.T, 700.0))
    r = x[:, :1] + e - y
    pen = np.einsum("bi,ij,bj->b", x[:, 1:], penalty, x[:, 1:])
    return np.sum(w * r * r, axis=1) + pen, r, e


def batched_exp_lm(
    phi: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    x0: np.ndarray,
    *,
    penalty: np.ndarray | None = None,
    max_iter: int = 200,
    ftol: float = 1e-9,
    xtol: float = 1e-8,
    stat_tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimize sum_n w_bn (c + exp(phi_n . theta) - y_n)^2 + theta' P theta for every row b.

    ``weights`` is (B, n); ``y`` is (n,) or (B, n) (one response vector per row); ``x0`` is the shared start (p+1,) = (c, theta); ``penalty`` is
    P (p, p), symmetric positive semi-definite (default none). Returns
    (parameters (B, p+1), converged (B,) bool).
    """
    n_b = weights.shape[0]
    y = np.broadcast_to(np.asarray(y, dtype=float), weights.shape)
    p = phi.shape[1] + 1
    x = np.tile(np.asarray(x0, dtype=float), (n_b, 1))
    lam = np.full(n_b, 1e-3)
    nu = np.full(n_b, 2.0)
    n_eff = np.maximum(weights.sum(axis=1), 1.0)
    done = np.zeros(n_b, dtype=bool)
    pen = np.zeros((p - 1, p - 1)) if penalty is None else np.asarray(penalty, dtype=float)
    cost, r, e = _cost(phi, y, weights, x, pen)
    reg = np.zeros((p, p))
    reg[1:, 1:] = pen
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        w, ya, ea, ra, xa = weights[act], y[act], e[act], r[act], x[act]
        sw = np.sqrt(w)
        jac = np.empty((act.size, phi.shape[0], p))
        jac[:, :, 0] = sw
        jac[:, :, 1:] = (sw * ea)[:, :, None] * phi[None]
        h = np.matmul(jac.transpose(0, 2, 1), jac) + reg
        g = np.einsum("bnp,bn->bp", jac, sw * ra)
        g[:, 1:] += xa[:, 1:] @ pen
        diag = np.einsum("bii->bi", h)
        damped = h + (lam[act, None] * np.maximum(diag, 1e-12))[:, :, None] * np.eye(p)
        try:
            step = -np.linalg.solve(damped, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(damped, g)])
        trial = xa + step
        new_cost, new_r, new_e = _cost(phi, ya, w, trial, pen)
        # gain ratio: actual over predicted decrease of the Gauss-Newton model (Nielsen 1999)
        predicted = np.einsum("bp,bp->b", step, lam[act, None] * np.maximum(diag, 1e-12) * step - g)
        rho = (cost[act] - new_cost) / np.maximum(predicted, 1e-300)
        better = np.isfinite(new_cost) & (new_cost <= cost[act]) & (rho > 0)
        acc = act[better]
        rel = (cost[acc] - new_cost[better]) / np.maximum(cost[acc], 1e-300)
        small_step = np.linalg.norm(step[better], axis=1) <= xtol * (np.linalg.norm(xa[better], axis=1) + xtol)
        x[acc], cost[acc], r[acc], e[acc] = trial[better], new_cost[better], new_r[better], new_e[better]
        lam[acc] *= np.maximum(1.0 / 3.0, 1.0 - (2.0 * rho[better] - 1.0) ** 3)
        lam[acc] = np.maximum(lam[acc], 1e-15)
        nu[acc] = 2.0
        # statistically converged: the remaining decrease is a tiny fraction of the noise
        # variance per run, so the parameters are within ~stat_tol^0.5 standard errors
        near = predicted[better] < stat_tol * cost[acc] / n_eff[acc]
        done[acc[(rel < ftol) | small_step | near]] = True
        rej = act[~better]
        lam[rej] *= nu[rej]
        nu[rej] *= 2.0
        done[rej[lam[rej] > 1e12]] = True  # no descent left: at a (local) minimum
    converged = done & np.all(np.isfinite(x), axis=1)
    return x, converged
