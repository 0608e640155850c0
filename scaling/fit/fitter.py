"""``fit_law``: a global fit of a scaling law with no user-chosen starting points.

1. seed: a grid over the non-linear parameters (exponents), the linear ones (E, A, B)
   solved at each grid point by non-negative least squares (variable projection), every grid
   point scored on the real objective, the best distinct few kept;
2. refine the seeds together: Gauss-Newton steps (analytic Jacobians, Huber IRLS weights) from
   a smoother Huber delta (x100, x10) down to the target, vectorized across seeds;
3. finish the lowest with L-BFGS-B (the same continuation in delta); diagnose and flag it.
The procedure has no randomness: the same data give the same numbers.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from dataclasses import fields, replace
from typing import Mapping

import numpy as np

from ..errors import FitError
from ..laws.base import Law
from ..laws.registry import get_law
from .diagnostics import diagnose
from .polish import newton_polish, polish_rows
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
    law = get_law(law)
    key = _key(law, X, y, runs, weights, objective=objective, delta=delta, space=space, fixed=fixed,
               bounds=bounds, n_starts=n_starts, tau=tau, start=start)
    if key is not None and key in _RECENT:
        _RECENT.move_to_end(key)
        return _copy(_RECENT[key][1])
    with single_thread_blas(), np.errstate(all="ignore"):
        fit = _fit(law, X, y, objective=objective, delta=delta, space=space, weights=weights,
                   fixed=fixed, bounds=bounds, runs=runs, n_starts=n_starts, tau=tau, start=start)
    if key is not None:
        _RECENT[key] = (law, _copy(fit))  # the law is kept so its id is not reused while the entry lives
        while len(_RECENT) > RECENT_FITS:
            _RECENT.popitem(last=False)
    return fit


# The last few unweighted fits, by their inputs: a study's backtests and rollouts fit the same
# subsets of runs several times (a backtest's cut-off is also a rollout of the full fit's
# calibration, and cut-offs of nested subsets coincide); the fit is deterministic, so a repeat
# returns a copy of the first. Weighted fits (bootstrap resamples) are never repeated and not kept.
RECENT_FITS = 32
_RECENT: OrderedDict = OrderedDict()


def forget_fits() -> None:
    """Drop the kept fits (a benchmark timing the fit itself calls this before each run)."""
    _RECENT.clear()


def _key(law, X, y, runs, weights, **settings):
    if weights is not None:
        return None
    h = hashlib.sha1()
    try:
        for v in law.variables:
            h.update(v.encode())
            h.update(np.ascontiguousarray(X[v], dtype=float).tobytes())
        h.update(np.ascontiguousarray(y, dtype=float).tobytes())
        if runs is not None:
            h.update("\x00".join(map(str, np.asarray(runs).ravel().tolist())).encode())
    except (KeyError, TypeError, ValueError):
        return None  # malformed inputs: the fit itself says what is wrong
    return id(law), h.hexdigest(), repr(sorted((k, sorted(v.items()) if isinstance(v, Mapping) else v)
                                               for k, v in settings.items()))


def _copy(fit: FitResult) -> FitResult:
    """A copy the caller may change (flags, settings) without changing the kept one."""
    return replace(fit, **{f.name: copy.deepcopy(getattr(fit, f.name)) for f in fields(fit) if f.name != "law"})


def _fit(law, X, y, *, objective, delta, space, weights, fixed, bounds, runs, n_starts, tau, start):
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
    Z0 = np.array([problem.to_z(s) for s in seeds])
    z, f, ok, msg, nit = polish_rows(problem, Z0)[0] if start is None else newton_polish(problem, Z0[0])
    diagnostics, flags = diagnose(problem, z)
    if not ok:
        flags.insert(0, "not_converged")
    settings = {"objective": objective, "delta": delta, "space": problem.space, "fixed": dict(problem.fixed),
                "bounds": dict(bounds or {}), "tau": tau}
    return FitResult(law=law, params={k: problem.theta(z)[k] for k in law.param_names}, objective=f,
                     converged=ok, message=msg, n_points=n, n_runs=n_runs, n_starts=len(seeds),
                     flags=flags, diagnostics=diagnostics, settings=settings, free=tuple(problem.names),
                     n_iterations=nit)
