"""Prediction intervals calibrated on rollouts inside the fitted data.

A bootstrap over runs measures how much the law's parameters move with the data; it does not see
that the law's form is only approximately right, an error that grows the further a forecast
reaches beyond the largest run fitted, nor always the scatter of single runs. Both are measured
here, on the fitted data alone, with rollouts (as OLMo-core's ``ScalingLawRollout``): for each
cut-off, fit the law to the runs below it and predict the final point of each run above it. Each
prediction gives a residual r (log(actual) - log(predicted) in log space, actual - predicted in
linear space) at an extrapolation distance d = log10(C / C_fit), C_fit the largest compute fitted.

The residuals are modelled as r ~ N(0, sigma(d)^2) with sigma(d)^2 = s0^2 + (s1·d)^2 (run scatter
s0 plus a model-form error growing linearly in log compute, s1 per decade; maximum likelihood),
and the interval's multiplier k is the split-conformal quantile of |r| / sigma(d) at the level
(rank ceil((n + 1)·level) of n scores; Vovk et al. 2005, Lei et al. 2018 normalized scores), never
below the Gaussian quantile. A prediction at distance d then gets, in the fit's space,

    predicted · exp(±k·sigma(d))  (log space)   or   predicted ± k·sigma(d)  (linear space),

and the interval reported is the hull of that band and the bootstrap interval. Nothing outside the
data handed to ``calibrate_intervals`` is used: a backtest calibrates on its training runs only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from ..laws.base import Law
from ..laws.registry import get_law
from .fitter import fit_law

# Rollout cut-offs: hold out the top fraction of runs by compute, fit the rest.
ROLLOUT_FRACTIONS = (0.5, 0.35, 0.2)
MIN_RESIDUALS = 5


def run_max_compute(runs, compute) -> dict:
    """Each run's largest compute."""
    runs = np.asarray(runs).ravel()
    compute = np.asarray(compute, dtype=float).ravel()
    uniq, inv = np.unique(runs, return_inverse=True)
    top = np.full(uniq.size, -np.inf)
    np.maximum.at(top, inv, compute)
    return dict(zip(uniq.tolist(), top.tolist()))


def top_runs(runs, compute, fraction: float) -> list:
    """The top ``fraction`` of runs by their largest compute (at least one); ties broken by run id."""
    by_run = run_max_compute(runs, compute)
    ids = sorted(by_run, key=lambda r: (-by_run[r], str(r)))
    k = max(1, int(np.ceil(fraction * len(ids))))
    return ids[:k]


def min_train_runs(law: Law, fixed: Mapping | None = None) -> int:
    """Fewest runs a rollout fits on: two more than the law's free parameters, and at least 4."""
    free = [p for p in law.params if p.name not in (fixed or {})]
    return max(4, len(free) + 2)


def final_points(runs, compute, held: Sequence) -> np.ndarray:
    """Index of each held run's largest-compute point, in ``held`` order."""
    runs = np.asarray(runs).ravel()
    compute = np.asarray(compute, dtype=float).ravel()
    out = []
    for r in held:
        idx = np.flatnonzero(runs == r)
        out.append(idx[np.argmax(compute[idx])])
    return np.asarray(out, dtype=int)


def residual(actual, predicted, space: str) -> np.ndarray:
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    with np.errstate(all="ignore"):
        if space == "log":
            return np.log(actual) - np.log(np.maximum(predicted, 1e-300))
        return actual - predicted


def distance(compute, fitted_max_compute: float) -> np.ndarray:
    """Extrapolation distance in decades of compute beyond the largest fitted: log10(C / C_fit), >= 0."""
    with np.errstate(all="ignore"):
        d = np.log10(np.asarray(compute, dtype=float) / float(fitted_max_compute))
    return np.where(np.isfinite(d), np.maximum(d, 0.0), 0.0)


K_NEIGHBOURS = 10
MAX_STORED = 400


def coordinates(law: Law, X: Mapping[str, np.ndarray], log_scale=None) -> tuple[tuple[bool, ...], np.ndarray]:
    """The law's variables as columns, shape (n, k): log10 where ``log_scale`` says so (default: where
    every value is positive, as sizes, tokens and compute are). Returns (log_scale, coordinates)."""
    cols, logs = [], []
    for i, v in enumerate(law.variables):
        a = np.atleast_1d(np.asarray(X[v], dtype=float)).ravel()
        use_log = bool(np.all(a > 0)) if log_scale is None else bool(log_scale[i])
        with np.errstate(all="ignore"):
            cols.append(np.log10(a) if use_log else a)
        logs.append(use_log)
    return tuple(logs), np.column_stack(cols) if cols else np.zeros((0, 0))


def local_scatter(ref: np.ndarray, ref_resid: np.ndarray, query: np.ndarray, spread: np.ndarray,
                  k: int = K_NEIGHBOURS) -> np.ndarray:
    """RMS residual of the ``k`` fitted points nearest each query point (coordinates scaled by
    ``spread``): the run-to-run scatter, and any in-sample misfit, where the prediction is made."""
    if ref.shape[0] == 0:
        return np.zeros(query.shape[0])
    k = max(1, min(k, ref.shape[0]))
    a = ref / spread
    b = query / spread
    d2 = np.sum((b[:, None, :] - a[None, :, :]) ** 2, axis=2)
    near = np.argpartition(d2, k - 1, axis=1)[:, :k]
    return np.sqrt(np.mean(ref_resid[near] ** 2, axis=1))


@dataclass
class IntervalCalibration:
    """Inflation of prediction intervals, calibrated on rollouts inside the fitted data.

    sigma(x) = sqrt((scale·s_local(x))² + (growth·d(x))²) in the fit's residual ``space``, where
    s_local is the RMS residual of the ``K_NEIGHBOURS`` fitted points nearest x (``reference``: their
    coordinates, ``reference_residuals``: the full fit's residuals there; log10 for positive
    variables, scaled by ``spread``), d(x) = log10(C / ``fitted_max_compute``) >= 0 the extrapolation
    distance in decades, ``growth`` the model-form error per decade, and ``multiplier`` (k) the
    conformal quantile of |r|/sigma over ``n_residuals`` rollout predictions from ``n_cutoffs``
    cut-offs (reaching ``max_distance`` decades; ``calibration_coverage`` of them inside the band)."""

    scale: float
    growth: float
    multiplier: float
    level: float
    space: str
    variables: tuple
    log_scale: tuple
    fitted_max_compute: float
    spread: list
    reference: list
    reference_residuals: list
    n_residuals: int
    n_cutoffs: int
    max_distance: float
    calibration_coverage: float

    def sigma(self, X: Mapping[str, np.ndarray], compute) -> np.ndarray:
        cols = []
        for v, use_log in zip(self.variables, self.log_scale):
            a = np.atleast_1d(np.asarray(X[v], dtype=float)).ravel()
            with np.errstate(all="ignore"):
                cols.append(np.log10(a) if use_log else a)
        q = np.column_stack(cols)
        s_loc = local_scatter(np.asarray(self.reference, dtype=float), np.asarray(self.reference_residuals),
                              q, np.asarray(self.spread, dtype=float))
        d = distance(np.atleast_1d(compute), self.fitted_max_compute)
        return np.sqrt((self.scale * s_loc) ** 2 + (self.growth * d) ** 2)

    def band(self, predicted, X: Mapping[str, np.ndarray], compute):
        """(lo, hi) of the calibrated band around ``predicted`` at points ``X`` of compute ``compute``."""
        p = np.atleast_1d(np.asarray(predicted, dtype=float))
        h = self.multiplier * self.sigma(X, compute)
        if self.space == "log":
            return p * np.exp(-h), p * np.exp(h)
        return p - h, p + h

    def widen(self, predicted, lo, hi, X: Mapping[str, np.ndarray], compute):
        """The hull of the bootstrap interval (lo, hi) and the calibrated band (nan bounds ignored)."""
        blo, bhi = self.band(predicted, X, compute)
        return np.fmin(np.asarray(lo, dtype=float), blo), np.fmax(np.asarray(hi, dtype=float), bhi)

    def summary(self) -> dict:
        """The calibration without its reference points (for messages and metadata)."""
        d = self.to_dict()
        for k in ("reference", "reference_residuals", "spread"):
            d.pop(k)
        return d

    def to_dict(self) -> dict:
        out = {}
        for k, v in asdict(self).items():
            if isinstance(v, np.ndarray):
                v = v.tolist()
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "IntervalCalibration | None":
        if not d:
            return None
        if any(k not in d for k in cls.__dataclass_fields__ if k != "log_scale"):
            return None  # written by another version: no calibration rather than a wrong one
        vals = {k: d.get(k) for k in cls.__dataclass_fields__}
        vals["variables"] = tuple(vals["variables"])
        vals["log_scale"] = tuple(bool(v) for v in (vals["log_scale"] or [True] * len(vals["variables"])))
        return cls(**vals)


def _round(a: np.ndarray) -> list:
    return [float(f"{v:.6g}") for v in np.asarray(a, dtype=float).ravel()]


def rollout_residuals(law: Law | str, X: Mapping[str, np.ndarray], y, runs, compute, *,
                      fractions: Sequence[float] = ROLLOUT_FRACTIONS, **fit_kwargs) -> dict:
    """Rollouts on ``(X, y)``: per cut-off, fit the runs below it and predict the final point of each
    run above it. Returns arrays ``residual``, ``local`` (local scatter of the cut-off's own fit at the
    predicted point), ``distance`` and ``cutoff`` (index into ``fractions``), and ``n_cutoffs`` used
    (those leaving at least ``min_train_runs`` runs and fitting)."""
    law = get_law(law)
    y = np.asarray(y, dtype=float).ravel()
    runs = np.asarray(runs).ravel()
    compute = np.asarray(compute, dtype=float).ravel()
    need = min_train_runs(law, fit_kwargs.get("fixed"))
    n_runs = len(run_max_compute(runs, compute))
    _, coords = coordinates(law, X)
    spread = np.where(np.std(coords, axis=0) > 0, np.std(coords, axis=0), 1.0)
    parts = {"residual": [], "local": [], "distance": [], "cutoff": []}
    used = 0
    seen = set()
    for i, f in enumerate(fractions):
        held = top_runs(runs, compute, f)
        key = frozenset(held)
        if key in seen or n_runs - len(held) < need:
            continue
        seen.add(key)
        train = ~np.isin(runs, held)
        Xtr = {v: np.asarray(X[v], dtype=float)[train] for v in law.variables}
        try:
            fit = fit_law(law, Xtr, y[train], runs=runs[train], **fit_kwargs)
        except Exception:  # a rollout that cannot fit adds no residuals
            continue
        if not fit.converged:
            continue
        space = fit.settings.get("space", law.space)
        t = final_points(runs, compute, held)
        pred = fit.predict({v: np.asarray(X[v], dtype=float)[t] for v in law.variables})
        r = residual(y[t], pred, space)
        r_tr = residual(y[train], fit.predict(Xtr), space)
        s_loc = local_scatter(coords[train], r_tr, coords[t], spread)
        ok = np.isfinite(r) & np.isfinite(s_loc)
        parts["residual"].append(r[ok])
        parts["local"].append(s_loc[ok])
        parts["distance"].append(distance(compute[t][ok], compute[train].max()))
        parts["cutoff"].append(np.full(int(ok.sum()), i))
        used += 1
    out = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    out["cutoff"] = out["cutoff"].astype(int)
    out["n_cutoffs"] = used
    return out


def _fit_sigma(r: np.ndarray, s_loc: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """Maximum likelihood (a, s1) of r ~ N(0, (a·s_local)² + (s1·d)²)."""
    r2 = r * r
    rms = float(np.sqrt(np.mean(r2))) or 1e-12
    floor2 = (1e-6 * rms) ** 2
    sl2 = np.maximum(s_loc * s_loc, floor2)

    def nll(z):
        a, s1 = np.exp(z)
        v = a * a * sl2 + (s1 * d) ** 2 + floor2
        return 0.5 * float(np.sum(np.log(v) + r2 / v))

    best = None
    for z0 in ([0.0, np.log(rms)], [0.0, np.log(rms / 10)], [np.log(2.0), np.log(rms / 100)]):
        out = minimize(nll, np.array(z0), method="Nelder-Mead",
                       options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 2000})
        if best is None or out.fun < best.fun:
            best = out
    a, s1 = np.exp(best.x)
    return float(a), float(s1)


def calibrate_intervals(law: Law | str, X: Mapping[str, np.ndarray], y, runs, compute, *, level: float = 0.95,
                        fractions: Sequence[float] = ROLLOUT_FRACTIONS, fit=None,
                        **fit_kwargs) -> IntervalCalibration | None:
    """An ``IntervalCalibration`` from rollouts on ``(X, y)`` alone (``fit``: the full-data fit, else
    refitted), or ``None`` when the data give fewer than ``MIN_RESIDUALS`` rollout predictions."""
    law = get_law(law)
    if not 0.0 < level < 1.0:
        raise ValueError(f"expected a level in (0, 1), got {level}")
    y = np.asarray(y, dtype=float).ravel()
    runs = np.arange(y.size) if runs is None else np.asarray(runs).ravel()
    compute = np.asarray(compute, dtype=float).ravel()
    ro = rollout_residuals(law, X, y, runs, compute, fractions=fractions, **fit_kwargs)
    r, s_loc, d = ro["residual"], ro["local"], ro["distance"]
    if r.size < MIN_RESIDUALS:
        return None
    a, s1 = _fit_sigma(r, s_loc, d)
    sig = np.sqrt((a * s_loc) ** 2 + (s1 * d) ** 2)
    sig = np.maximum(sig, 1e-12)
    u = np.sort(np.abs(r) / sig)
    n = u.size
    rank = int(np.ceil((n + 1) * level))
    from scipy.stats import norm  # here, not at the top: scipy.stats takes a third of a second to import

    k = max(float(u[min(rank, n) - 1]), float(norm.ppf(0.5 + level / 2)))
    fit = fit or fit_law(law, X, y, runs=runs, **fit_kwargs)
    space = fit.settings.get("space", law.space)
    log_scale, coords = coordinates(law, X)
    resid = residual(y, fit.predict({v: X[v] for v in law.variables}), space)
    spread = np.where(np.std(coords, axis=0) > 0, np.std(coords, axis=0), 1.0)
    keep = np.flatnonzero(np.isfinite(resid))
    if keep.size > MAX_STORED:
        keep = np.sort(np.random.default_rng(0).choice(keep, MAX_STORED, replace=False))
    return IntervalCalibration(
        scale=a, growth=s1, multiplier=k, level=float(level), space=space, variables=tuple(law.variables),
        log_scale=log_scale,
        fitted_max_compute=float(np.max(compute)), spread=_round(spread),
        reference=[_round(row) for row in coords[keep]], reference_residuals=_round(resid[keep]),
        n_residuals=int(n), n_cutoffs=int(ro["n_cutoffs"]), max_distance=float(np.max(d)),
        calibration_coverage=float(np.mean(np.abs(r) <= k * sig)))
