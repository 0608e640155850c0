"""BiMix (Ge et al. 2024): loss of target domain i from its own weight r_i and steps s.

    L_i(r_i, s) = A_i / r_i^alpha_i * (B_i / s^beta_i + C_i)

Only the products A_i B_i and A_i C_i are identifiable, so A_i is fixed to 1 and B_i, C_i
carry the scale. r_i = 0 (the domain left out of a run) makes r_i^-alpha infinite; the
weight is floored, r_i -> r_i + floor (default 1e-3, the rounding step of published
mixture weights). Fitted by a grid over (alpha, beta) with (B, C) solved by non-negative
least squares at each grid point, then polished with scipy ``least_squares``.

Bootstrap over runs: a run's checkpoints (one mixture trained for many steps) share its noise, so
resamples draw whole runs with replacement (`scaling.fit.bootstrap.resample_counts`), weighting each
checkpoint by its run's draw count, and refit from the full fit; each point is its own run when no
run ids are given. Intervals: `scaling.fit.bootstrap.percentile_interval`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls

from ..errors import FitError
from ..fit.bootstrap import percentile_interval, resample_counts
from .laws import DEFAULT_FLOOR

PARAM_NAMES = ("alpha", "beta", "B", "C")
FORMULA = "L_i(r_i, s) = A_i / (r_i + floor)^alpha_i * (B_i / s^beta_i + C_i),  A_i = 1"
REFERENCE = "Ge et al. 2024, BiMix: Bivariate Data Mixing Law for Language Model Pretraining"


@dataclass(frozen=True)
class BiMixFit:
    """Fitted BiMix parameters (alpha, beta, B, C), bootstrap draws, and fit diagnostics."""

    params: np.ndarray
    draws: np.ndarray
    sse: float
    converged: bool
    message: str
    floor: float = DEFAULT_FLOOR
    param_names: tuple[str, ...] = PARAM_NAMES
    resampled: str = "points"
    n_groups: int = 0

    @property
    def n_failed(self) -> int:
        return int(np.sum(~np.all(np.isfinite(self.draws), axis=1)))

    def predict(self, own_weight, steps) -> np.ndarray:
        return bimix_loss(self.params, own_weight, steps, self.floor)

    def predict_draws(self, own_weight, steps) -> np.ndarray:
        """Predictions under every bootstrap draw, (n_resamples, n_points); NaN rows for failed refits."""
        return np.stack([bimix_loss(d, own_weight, steps, self.floor) for d in self.draws]) if len(self.draws) \
            else np.zeros((0, np.size(own_weight)))

    def intervals(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile intervals of (alpha, beta, B, C)."""
        return percentile_interval(self.draws, level)


def bimix_loss(params, own_weight, steps, floor: float = DEFAULT_FLOOR) -> np.ndarray:
    """L = (r + floor)^-alpha * (B s^-beta + C)."""
    alpha, beta, b, c = params
    r = np.asarray(own_weight, dtype=float) + floor
    s = np.asarray(steps, dtype=float)
    return r ** (-alpha) * (b * s ** (-beta) + c)


def _grid_start(r, s, y, floor, sw):
    lr, ls = np.log(r + floor), np.log(s)
    best = (np.inf, None)
    for alpha in np.linspace(0.0, 1.5, 31):
        m = np.exp(-alpha * lr)
        for beta in np.linspace(0.02, 1.5, 38):
            design = np.column_stack([m * np.exp(-beta * ls), m]) * sw[:, None]
            (b, c), rnorm = nnls(design, sw * y)
            if rnorm < best[0]:
                best = (rnorm, np.array([alpha, beta, b, c]))
    return best[1]


def _fit_once(r, s, y, floor, sw, x0):
    lr, ls = np.log(r + floor), np.log(s)

    def res(x):
        return sw * (bimix_loss(x, r, s, floor) - y)

    def jac(x):
        alpha, beta, b, c = x
        m = np.exp(-alpha * lr)
        sb = np.exp(-beta * ls)
        inner = b * sb + c
        return sw[:, None] * np.column_stack([-lr * m * inner, -b * ls * sb * m, m * sb, m])

    out = least_squares(res, x0, jac=jac, method="trf", bounds=([0, 0, 0, 0], [np.inf] * 4), x_scale="jac")
    return out


def fit_bimix(
    own_weight,
    steps,
    losses,
    *,
    runs=None,
    floor: float = DEFAULT_FLOOR,
    n_resamples: int = 0,
    seed: int = 0,
) -> BiMixFit:
    """Fit BiMix to runs that vary both the target's own weight and the training steps.

    ``runs``: a run id per point (a run's checkpoints are resampled together); each point is its own
    run when ``None``."""
    r = np.asarray(own_weight, dtype=float)
    s = np.asarray(steps, dtype=float)
    y = np.asarray(losses, dtype=float)
    if not (len(r) == len(s) == len(y)):
        raise FitError(f"expected equal lengths, got own_weight {len(r)}, steps {len(s)}, losses {len(y)}")
    if len(np.unique(s)) < 2 or len(np.unique(r)) < 2:
        raise FitError("BiMix needs runs that vary both the own-domain weight and the steps")
    if np.any(s <= 0) or np.any(r < 0):
        raise FitError("expected positive steps and non-negative weights")
    if runs is None:
        group, n_groups, resampled = np.arange(len(y)), len(y), "points"
    else:
        runs = np.asarray(runs).ravel()
        if runs.size != len(y):
            raise FitError(f"expected {len(y)} run ids (one per point), got {runs.size}", field="runs")
        _, group = np.unique(runs, return_inverse=True)
        n_groups, resampled = int(group.max()) + 1, "runs"
    ones = np.ones_like(y)
    out = _fit_once(r, s, y, floor, ones, _grid_start(r, s, y, floor, ones))
    draws = np.full((n_resamples, 4), np.nan)
    for k, counts in enumerate(resample_counts(n_groups, n_resamples, seed)):
        b = _fit_once(r, s, y, floor, np.sqrt(counts[group]), out.x)
        if b.status > 0:
            draws[k] = b.x
    sse = float(np.sum((bimix_loss(out.x, r, s, floor) - y) ** 2))
    return BiMixFit(out.x, draws, sse, bool(out.status > 0), str(out.message), floor, resampled=resampled,
                    n_groups=n_groups)
