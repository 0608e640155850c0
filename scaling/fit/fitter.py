"""``fit_law``: a global fit of a scaling law with no user-chosen starting points.

1. seed: a grid over the non-linear parameters (exponents), the linear ones (E, A, B)
   solved at each grid point by non-negative least squares (variable projection), every grid
   point scored on the real objective, the best distinct few kept;
2. refine each seed with L-BFGS-B and analytic gradients, continuing from a smoother Huber
   delta (x100, x10) down to the target;
3. keep the lowest objective; diagnose and flag it.
The procedure has no randomness: the same data give the same numbers.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import FitError
from ..laws.base import Law
from ..laws.registry import get_law
from .diagnostics import diagnose
from .polish import newton_polish, polish
from .problem import Problem
from .result import FitResult
from .seeding import seed_grid
from .threads import single_thread_blas


def fit_law(law: Law | str, X: Mapping[str, np.ndarray], y, *, objective: str = "huber",
            delta: float = 1e-3, space: str | None = None, weights=None, fixed: dict | None = None,
            bounds: dict | None = None, runs=None, n_starts: int = 4,
            tau: float = 0.5, start: Mapping[str, float] | None = None) -> FitResult:
    """Fit ``law`` to ``y`` given variables ``X`` (a mapping name -> array).

    objective: ``"huber"`` (default, summed over points, as Hoffmann et al. 2022 and Besiroglu
    et al. 2024), ``"least_squares"`` or ``"asymmetric"`` (Huber weighted ``tau`` / ``1 - tau``
    for over- / under-prediction). space: ``"log"`` residuals log(pred) - log(y) (default for loss
    laws) or ``"linear"`` (default for accuracy laws); ``None`` takes the law's default.
    fixed: parameters held at given values (e.g. ``law.defaults`` for published constants).
    bounds: ``{name: (low, high)}`` overriding the law's box. runs: a run id per point (counts
    ``n_runs``). There is no ``seed``: the fit has no randomness (seeds belong to ``bootstrap``
    and ``backtest``), so passing one is an error rather than a silent no-op.
    start: skip the grid and refine from these values only (Gauss-Newton, the bootstrap's fast path).
    """
    with single_thread_blas(), np.errstate(all="ignore"):
        return _fit(law, X, y, objective=objective, delta=delta, space=space, weights=weights,
                    fixed=fixed, bounds=bounds, runs=runs, n_starts=n_starts, tau=tau, start=start)


def _fit(law, X, y, *, objective, delta, space, weights, fixed, bounds, runs, n_starts, tau, start):
    law = get_law(law)
    problem = Problem(law, X, y, objective=objective, delta=delta, space=space, weights=weights,
                      fixed=fixed, bounds=bounds, tau=tau)
    n = problem.y.size
    if runs is not None:
        runs = np.asarray(runs).ravel()
        if runs.size != n:
            raise FitError(f"expected {n} run ids (one per point), got {runs.size}", field="runs")
    n_runs = int(np.unique(runs).size) if runs is not None else n
    if n < 2:
        raise FitError(f"expected at least 2 points to fit {law.name!r}, got {n}")
    if start is not None:
        seeds = [dict(start)]
    else:
        seeds, _ = seed_grid(problem, n_starts=n_starts)
        if not seeds:
            raise FitError(f"no finite starting point for {law.name!r}: the law cannot be evaluated on this data")
    best = None
    for s in seeds:
        z0 = problem.to_z(s)
        z, f, ok, msg, nit = polish(problem, z0) if start is None else newton_polish(problem, z0)
        if best is None or f < best[1]:
            best = (z, f, ok, msg, nit)
    z, f, ok, msg, nit = best
    diagnostics, flags = diagnose(problem, z)
    if not ok:
        flags.insert(0, "not_converged")
    settings = {"objective": objective, "delta": delta, "space": problem.space, "fixed": dict(problem.fixed),
                "bounds": dict(bounds or {}), "tau": tau}
    return FitResult(law=law, params={k: problem.theta(z)[k] for k in law.param_names}, objective=f,
                     converged=ok, message=msg, n_points=n, n_runs=n_runs, n_starts=len(seeds),
                     flags=flags, diagnostics=diagnostics, settings=settings, free=tuple(problem.names),
                     n_iterations=nit)
