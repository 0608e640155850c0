"""Residual diagnostics and flags for degenerate fits; ``assess`` checks any parameter set.

The flags' names, meanings and which of them block a fit are defined in `scaling.flags`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..flags import SPAN_RATIO, blocking_flags
from ..laws.base import Law
from ..laws.registry import get_law
from .objective import residuals
from .problem import Problem

TREND_R2, TREND_P = 0.3, 1e-3
FLAT_RATIO = 1e-12
FLAT_LOADING = 0.3


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
    from scipy.stats import f as f_dist  # here, not at the top: scipy.stats takes a third of a second to import

    return {"r2": r2, "p_value": float(f_dist.sf(F, 2, dof)), "slope": float(coef[1])}


def hessian_ratio(problem: Problem, z) -> float:
    """Smallest over largest |eigenvalue| of the objective's Hessian in z (central differences)."""
    return flat_direction(problem, z)[0]


def flat_direction(problem: Problem, z) -> tuple[float, np.ndarray]:
    """(smallest / largest |eigenvalue| of the Hessian in z, the unit eigenvector of the smallest)."""
    z = np.asarray(z, dtype=float)
    k = z.size
    if k == 0:
        return 1.0, np.zeros(0)
    H = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * max(1.0, abs(z[j]))
        zp, zm = z.copy(), z.copy()
        zp[j] += h
        zm[j] -= h
        H[:, j] = (problem.value_and_grad(zp)[1] - problem.value_and_grad(zm)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    if not np.all(np.isfinite(H)):
        return 0.0, np.zeros(k)
    w, V = np.linalg.eigh(H)
    ev = np.abs(w)
    j = int(np.argmin(ev))
    return (float(ev.min() / ev.max()) if ev.max() > 0 else 0.0), V[:, j]


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
    flags += sigmoid_flags(problem.law, th, problem.X)
    return flags


def sigmoid_flags(law: Law | str, params: Mapping[str, float], X: Mapping[str, np.ndarray]) -> list[str]:
    """``sigmoid_inverted`` for an accuracy sigmoid (a law that ``predicts`` accuracy between a ``floor``
    and a ``ceiling``: ``downstream_sigmoid``, ``accuracy_sigmoid_flops``) whose floor is not below its
    ceiling, whose floor or ceiling leaves [0, 1], or whose predictions on ``X`` leave [0, 1]."""
    law = get_law(law)
    if law.predicts != "accuracy" or not {"floor", "ceiling"} <= set(law.param_names):
        return []
    floor, ceiling = float(params["floor"]), float(params["ceiling"])
    with np.errstate(all="ignore"):
        pred = np.asarray(law.fn({v: np.asarray(X[v], dtype=float) for v in law.variables},
                                 {k: float(params[k]) for k in law.param_names}), dtype=float)
    if not floor < ceiling or np.any(pred < 0.0) or np.any(pred > 1.0) or not (0.0 <= floor and ceiling <= 1.0):
        return ["sigmoid_inverted"]
    return []


def diagnose(problem: Problem, z) -> tuple[dict, list[str]]:
    d = residual_diagnostics(problem, z)
    ratio, vec = flat_direction(problem, z)
    d["hessian_ratio"] = ratio
    # the parameters that make up a flat direction (their profile is flat)
    d["flat_parameters"] = [n for n, v in zip(problem.names, vec) if abs(v) >= FLAT_LOADING] \
        if ratio < FLAT_RATIO else []
    return d, flags_for(problem, z, d)


def identification_flags(problem: Problem, draws: np.ndarray, level: float = 0.95,
                         flat_parameters=()) -> list[str]:
    """``not_identified:<name>`` for each free parameter whose bootstrap percentile interval (``draws``:
    (n_draws, n_params) in the law's order) reaches a bound of its box (within 0.1%, in the optimizer's
    coordinates), spans more than ``SPAN_RATIO`` for a positive parameter, or that is in
    ``flat_parameters`` (its loading on the Hessian's near-null eigenvector is at least ``FLAT_LOADING``)."""
    draws = np.asarray(draws, dtype=float)
    ok = np.all(np.isfinite(draws), axis=1)
    out = []
    q = [(1 - level) / 2, (1 + level) / 2]
    names = problem.law.param_names
    for p, (zlo, zhi) in zip(problem.free, problem.zbounds):
        j = names.index(p.name)
        reason = p.name in flat_parameters
        if ok.sum() >= 2 and not reason:
            lo, hi = np.quantile(draws[ok, j], q)
            zl, zh = (np.log(max(lo, 1e-300)), np.log(max(hi, 1e-300))) if p.log else (lo, hi)
            span = max(1.0, abs(zh - zl))
            tol = 1e-3 * span if not p.log else 1e-3
            reason = (zlo is not None and zl <= zlo + tol) or (zhi is not None and zh >= zhi - tol) \
                or (lo > 0 and hi / lo > SPAN_RATIO)
        if reason:
            out.append(f"not_identified:{p.name}")
    return out


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
