"""Fit one mixing law to one target domain, and refit it on bootstrap resamples.

The linear law is solved in closed form. The exp laws ``L = c + exp(phi . theta)`` are
fitted by Levenberg-Marquardt (scipy ``least_squares``, analytic Jacobian) from a few
starts: for each trial offset c0 below the smallest loss, theta0 is the least-squares
solution of ``ln(L - c0) = phi . theta``. Bootstrap refits start from the full-data
optimum and weight each run by how often it was drawn, so every resample reuses the same
design matrix and all resamples step together (``batch_lm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from ..errors import FitError

from ..fit.threads import single_thread_blas
from .batch_lm import batched_exp_lm
from .laws import MixingLaw

OFFSET_STARTS = (0.05, 0.3, 1.0, 3.0)  # c0 = min(L) - f * range(L)


@dataclass(frozen=True)
class MixingLawFit:
    """Result of fitting a law: parameter values, residual sum of squares, convergence."""

    law: str
    params: np.ndarray
    param_names: tuple[str, ...]
    sse: float
    nfev: int
    converged: bool
    message: str


def _lstsq_weighted(phi: np.ndarray, y: np.ndarray, counts: np.ndarray | None, penalty: np.ndarray) -> np.ndarray:
    """Weighted least squares with penalty theta' P theta; counts (B, n) -> (B, p), else (p,)."""
    p = phi.shape[1]
    jitter = 1e-12 * np.eye(p)
    if counts is None:
        if not penalty.any():
            return np.linalg.lstsq(phi, y, rcond=None)[0]
        a = phi.T @ phi + penalty
        return np.linalg.solve(a + jitter * np.trace(a), phi.T @ y)
    a = np.einsum("bn,np,nq->bpq", counts, phi, phi) + penalty
    a += np.trace(a, axis1=1, axis2=2)[:, None, None] * jitter
    b = np.einsum("bn,np,bn->bp", counts, phi, np.broadcast_to(y, counts.shape))
    return np.linalg.solve(a, b[..., None])[..., 0]


def _exp_problem(phi: np.ndarray, y: np.ndarray, sw: np.ndarray, root: np.ndarray | None):
    """Residuals and Jacobian of sw * (c + exp(phi . theta) - y), plus penalty rows root @ theta."""
    n, p = phi.shape

    def residuals(x):
        e = np.exp(np.minimum(phi @ x[1:], 700.0))
        r = sw * (x[0] + e - y)
        return r if root is None else np.concatenate([r, root @ x[1:]])

    def jacobian(x):
        e = np.exp(np.minimum(phi @ x[1:], 700.0))
        j = np.empty((n, p + 1))
        j[:, 0] = sw
        j[:, 1:] = (sw * e)[:, None] * phi
        if root is not None:
            j = np.vstack([j, np.column_stack([np.zeros(len(root)), root])])
        return j

    return residuals, jacobian


def penalty_matrix(law: MixingLaw, n_domains: int, ridge: float) -> np.ndarray:
    """P = ridge * R'R for the law's penalty matrix R (see ``MixingLaw.penalty``)."""
    r = law.penalty(n_domains)
    return ridge * (r.T @ r)


def fit_mixing_law(
    law: MixingLaw,
    weights: np.ndarray,
    losses: np.ndarray,
    domains: list[str],
    *,
    own: int | None = None,
    ridge: float | None = None,
    start: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> MixingLawFit:
    """Least-squares fit of ``law`` to (weights, losses) for one target domain.

    ``ridge`` (default: the law's own) weights the penalty ``MixingLaw.penalty``.
    """
    ridge = law.ridge if ridge is None else ridge
    phi = law.features(weights, own)
    y = np.asarray(losses, dtype=float)
    names = law.param_names(domains, own)
    n_params = len(names)
    if len(y) < n_params:
        raise FitError(f"law {law.name!r} has {n_params} parameters and needs at least that many runs, got {len(y)}")
    pen = penalty_matrix(law, len(domains), ridge)
    sw = np.ones_like(y) if sample_weight is None else np.sqrt(np.asarray(sample_weight, dtype=float))
    if law.shape == "linear":
        theta = _lstsq_weighted(sw[:, None] * phi, sw * y, None, pen)
        sse = float(np.sum((sw * (phi @ theta - y)) ** 2))
        return MixingLawFit(law.name, theta, names, sse, 1, True, "closed-form least squares")

    root = np.sqrt(ridge) * law.penalty(len(domains)) if ridge else None
    residuals, jacobian = _exp_problem(phi, y, sw, root)
    method = "lm" if len(residuals(np.zeros(n_params))) >= n_params else "trf"
    if start is not None:
        starts = [np.asarray(start, dtype=float)]
    else:
        span = float(np.ptp(y)) or 1.0
        starts = []
        for f in OFFSET_STARTS:
            c0 = float(y.min()) - f * span
            theta0 = _lstsq_weighted(sw[:, None] * phi, sw * np.log(y - c0), None, pen)
            starts.append(np.concatenate([[c0], theta0]))
    best = None
    last_error = "non-finite parameters"
    for x0 in starts:
        try:
            res = least_squares(residuals, x0, jac=jacobian, method=method)
        except (ValueError, np.linalg.LinAlgError) as err:  # non-finite start or singular step
            last_error = str(err)
            continue
        if np.all(np.isfinite(res.x)) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        raise FitError(f"law {law.name!r} did not converge from any start: {last_error}")
    sse = float(np.sum((sw * (law.predict(best.x, weights, own) - y)) ** 2))
    return MixingLawFit(law.name, best.x, names, sse, int(best.nfev), bool(best.status > 0), str(best.message))


def bootstrap_mixing_law(
    law: MixingLaw,
    weights: np.ndarray,
    losses: np.ndarray,
    domains: list[str],
    fit: MixingLawFit,
    counts: np.ndarray,
    *,
    own: int | None = None,
    ridge: float | None = None,
) -> tuple[np.ndarray, int]:
    """Refit on each bootstrap resample (``counts`` is (B, n_runs) draw counts, from
    ``scaling.fit.bootstrap.resample_counts``). ``losses`` is (n_runs,), or (B, n_runs) when every
    resample has its own responses (the nested pipeline refits the mixing law on each resample's
    extrapolated losses).

    Returns (parameter draws (B, p) with NaN rows where a refit failed, number failed).
    """
    ridge = law.ridge if ridge is None else ridge
    y = np.asarray(losses, dtype=float)
    phi = law.features(weights, own)
    pen = penalty_matrix(law, len(domains), ridge)
    if law.shape == "linear":
        return _lstsq_weighted(phi, y, counts.astype(float), pen), 0
    # many small products: one BLAS thread each is faster than contending threads
    with single_thread_blas():
        x, ok = batched_exp_lm(phi, y, counts.astype(float), fit.params, penalty=pen)
    x[~ok] = np.nan
    return x, int(np.sum(~ok))


