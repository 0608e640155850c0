"""Residual diagnostics and flags for degenerate fits; ``assess`` checks any parameter set.

Flags:
- ``at_bound:<name>``: a free parameter sits on its bound;
- ``exponent_implausible:<name>`` / ``coefficient_implausible:<name>``: outside the law's plausible
  range (e.g. an exponent near 5 or a coefficient e^89, as in a degenerate grid-search fit);
- ``flat_direction``: the objective's Hessian (in optimizer coordinates) is near-singular, so some
  combination of parameters is not determined by the data;
- ``residual_trend:<variable>``: a quadratic in the variable's log explains the residuals
  (R² > 0.3, F-test p < 0.001), i.e. the law's shape misses the data (a slope or a bend);
- ``few_points``: fewer than three points per free parameter;
- ``not_converged``: the optimizer did not report convergence (added by the fitter).

``BLOCKING_FLAGS`` is the one definition of which flags make a fit unusable: such a fit gets no
forecasts, fails the ``fit_converged`` check when no other law of its target is usable, and ranks
after every clean law in the backtests. The other flags are warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from scipy.stats import f as f_dist

from ..laws.base import Law
from ..laws.registry import get_law
from .objective import residuals
from .problem import Problem

TREND_R2, TREND_P = 0.3, 1e-3
FLAT_RATIO = 1e-12
BLOCKING_FLAGS = ("not_converged", "exponent_implausible", "coefficient_implausible", "flat_direction")


def blocking_flags(flags) -> list[str]:
    """The flags among ``flags`` that make a fit unusable (``BLOCKING_FLAGS``, with or without ``:<name>``)."""
    return [f for f in (flags or []) if f.split(":", 1)[0] in BLOCKING_FLAGS]


def residual_diagnostics(problem: Problem, z) -> dict:
    pred = problem.predict(z)
    r = residuals(pred, problem.y, problem.space)
    out = {
        "rmse": float(np.sqrt(np.mean(r * r))),
        "max_abs_rel_error": float(np.max(np.abs(pred / problem.y - 1.0))) if np.all(problem.y != 0) else float("nan"),
        "trend": {},
    }
    if r.size >= 8 and out["rmse"] > 1e-9:
        for v in problem.law.variables:
            x = problem.X[v]
            if np.ptp(x) > 0:
                out["trend"][v] = _trend(np.log(x) if np.all(x > 0) else x, r)
    return out


def _trend(x, r) -> dict:
    """R² and F-test p-value of residuals regressed on a quadratic in x (plus the linear slope)."""
    t = (x - x.mean()) / x.std()
    A = np.column_stack([np.ones_like(t), t, t * t])
    coef, *_ = np.linalg.lstsq(A, r, rcond=None)
    ss_tot = float(np.sum((r - r.mean()) ** 2))
    ss_res = float(np.sum((r - A @ coef) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0
    dof = r.size - 3
    F = (r2 / 2) / max((1 - r2) / dof, 1e-300)
    return {"r2": r2, "p_value": float(f_dist.sf(F, 2, dof)), "slope": float(coef[1])}


def hessian_ratio(problem: Problem, z) -> float:
    """Smallest over largest |eigenvalue| of the objective's Hessian in z (central differences)."""
    z = np.asarray(z, dtype=float)
    k = z.size
    if k == 0:
        return 1.0
    H = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(z[j]))
        zp, zm = z.copy(), z.copy()
        zp[j] += h
        zm[j] -= h
        H[:, j] = (problem.value_and_grad(zp)[1] - problem.value_and_grad(zm)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    ev = np.abs(np.linalg.eigvalsh(H))
    return float(ev.min() / ev.max()) if ev.max() > 0 else 0.0


def flags_for(problem: Problem, z, diagnostics: dict) -> list[str]:
    flags = []
    th = problem.theta(z)
    for p, zj, (lo, hi) in zip(problem.free, np.asarray(z, dtype=float), problem.zbounds):
        tol = 1e-6 * max(1.0, abs(zj))
        if (lo is not None and zj <= lo + tol) or (hi is not None and zj >= hi - tol):
            flags.append(f"at_bound:{p.name}")
    for p in problem.law.params:
        if p.plausible is not None and not p.plausible[0] <= th[p.name] <= p.plausible[1]:
            flags.append(f"{'exponent' if p.exponent else 'coefficient'}_implausible:{p.name}")
    if diagnostics.get("hessian_ratio", 1.0) < FLAT_RATIO:
        flags.append("flat_direction")
    for v, t in diagnostics["trend"].items():
        if t["r2"] > TREND_R2 and t["p_value"] < TREND_P:
            flags.append(f"residual_trend:{v}")
    if problem.y.size < 3 * len(problem.free):
        flags.append("few_points")
    return flags


def diagnose(problem: Problem, z) -> tuple[dict, list[str]]:
    d = residual_diagnostics(problem, z)
    d["hessian_ratio"] = hessian_ratio(problem, z)
    return d, flags_for(problem, z, d)


@dataclass
class Assessment:
    """Flags and diagnostics of a given parameter set on given data."""

    law: str
    params: dict
    objective: float
    flags: list[str] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)

    @property
    def degenerate(self) -> bool:
        return bool(blocking_flags(self.flags))


def assess(law: Law | str, params: Mapping[str, float], X, y, *, objective: str = "huber",
           delta: float = 1e-3, space: str | None = None, weights=None, bounds=None) -> Assessment:
    """Flag a parameter set (e.g. a published fit) on data ``(X, y)`` as the fitter would."""
    law = get_law(law)
    problem = Problem(law, X, y, objective=objective, delta=delta, space=space, weights=weights, bounds=bounds)
    z = problem.to_z(params)
    d, flags = diagnose(problem, z)
    return Assessment(law.name, {k: float(params[k]) for k in law.param_names}, problem.value(z), flags, d)
