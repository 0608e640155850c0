"""Propose a training mixture: minimize a weighted sum of predicted target losses.

    minimize_r  sum_i a_i L_i(r)   subject to  sum_j r_j = 1,  lower_j <= r_j <= upper_j,
                r_j <= max_epochs_j * unique_tokens_j / planned_tokens   (token availability)

under a fitted mixing law (Ye et al. 2024, sec. 5; RegMix, Liu et al. 2024). SLSQP with
the law's analytic gradient runs from several feasible starts (the baseline, the uniform
mixture, the best of many random feasible mixtures, random vertices of the box); the
best converged end point wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from ..errors import SpecError
from ..fit.bootstrap import percentile_interval
from .domains import match_own_domains
from .study import LossPrediction, MixingStudyResult


@dataclass(frozen=True)
class MixtureRow:
    """One row of the ``optimal_mixtures`` table (a train domain, or a target without one)."""

    objective: str
    domain: str
    target_domain: str | None
    weight: float | None
    baseline_weight: float | None
    predicted_loss: float | None
    ci_low: float | None
    ci_high: float | None
    baseline_predicted_loss: float | None
    baseline_ci_low: float | None
    baseline_ci_high: float | None


@dataclass(frozen=True)
class MixtureProposal:
    """The proposed mixture, its predicted losses and objective, and the same for the baseline."""

    objective: str
    law: str
    domains: tuple[str, ...]
    targets: tuple[str, ...]
    objective_weights: np.ndarray
    weights: np.ndarray
    baseline_weights: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    predicted: LossPrediction
    baseline_predicted: LossPrediction
    objective_value: float
    objective_ci: tuple[float, float]
    baseline_objective_value: float
    baseline_objective_ci: tuple[float, float]
    improvement_probability: float  # share of bootstrap draws where the proposal beats the baseline
    converged: bool
    n_starts: int
    message: str

    def rows(self) -> list[MixtureRow]:
        own = match_own_domains(self.domains, self.targets)
        target_of = {j: t for t, j in own.items() if j is not None}
        k_of = {t: k for k, t in enumerate(self.targets)}
        p, b = self.predicted, self.baseline_predicted

        def loss_fields(t):
            if t is None:
                return (None,) * 6
            k = k_of[t]
            return (float(p.loss[0, k]), float(p.ci_low[0, k]), float(p.ci_high[0, k]),
                    float(b.loss[0, k]), float(b.ci_low[0, k]), float(b.ci_high[0, k]))

        rows = [
            MixtureRow(self.objective, d, target_of.get(j), float(self.weights[j]),
                       float(self.baseline_weights[j]), *loss_fields(target_of.get(j)))
            for j, d in enumerate(self.domains)
        ]
        rows += [MixtureRow(self.objective, t, t, None, None, *loss_fields(t))
                 for t in self.targets if own[t] is None]
        return rows


def token_upper_bounds(unique_tokens, planned_tokens: float, max_epochs=1.0) -> np.ndarray:
    """Upper bound on each weight from token availability: max_epochs_j * U_j / D_planned."""
    u = np.asarray(unique_tokens, dtype=float)
    if planned_tokens <= 0 or np.any(u < 0):
        raise SpecError("expected positive planned_tokens and non-negative unique_tokens", field="unique_tokens")
    return np.broadcast_to(np.asarray(max_epochs, dtype=float), u.shape) * u / float(planned_tokens)


def project_to_feasible(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``x`` onto {lower <= r <= upper, sum r = 1}.

    The projection is r = clip(x - tau, lower, upper) with tau found by bisection.
    """
    x = np.asarray(x, dtype=float)
    rows = np.atleast_2d(x)
    lo = np.min(rows - upper, axis=1)
    hi = np.max(rows - lower, axis=1)
    for _ in range(100):
        tau = 0.5 * (lo + hi)
        over = np.clip(rows - tau[:, None], lower, upper).sum(axis=1) > 1.0
        lo = np.where(over, tau, lo)
        hi = np.where(over, hi, tau)
    out = np.clip(rows - 0.5 * (lo + hi)[:, None], lower, upper)
    return out[0] if x.ndim == 1 else out


def _as_vector(value, names: Sequence[str], default: float, what: str) -> np.ndarray:
    if value is None:
        return np.full(len(names), default, dtype=float)
    if isinstance(value, Mapping):
        unknown = set(value) - set(names)
        if unknown:
            raise SpecError(f"unknown {what} {sorted(unknown)}; expected some of {list(names)}", field=what)
        return np.array([float(value.get(n, default)) for n in names])
    v = np.broadcast_to(np.asarray(value, dtype=float), (len(names),)).copy()
    return v


def _baseline(baseline, domains, unique_tokens) -> np.ndarray:
    if baseline is None or (isinstance(baseline, str) and baseline == "natural"):
        if unique_tokens is not None:
            u = np.asarray(unique_tokens, dtype=float)
            return u / u.sum()
        return np.full(len(domains), 1.0 / len(domains))
    if isinstance(baseline, str):
        if baseline == "uniform":
            return np.full(len(domains), 1.0 / len(domains))
        raise SpecError(f"expected baseline 'natural', 'uniform' or weights, got {baseline!r}", field="baseline")
    b = _as_vector(baseline, domains, 0.0, "baseline")
    if np.any(b < 0) or b.sum() <= 0:
        raise SpecError("expected non-negative baseline weights", field="baseline")
    return b / b.sum()


def optimize_mixture(
    result: MixingStudyResult,
    *,
    law: str | None = None,
    objective: str = "mean_loss",
    objective_weights: Mapping[str, float] | Sequence[float] | None = None,
    lower: Mapping[str, float] | Sequence[float] | float | None = None,
    upper: Mapping[str, float] | Sequence[float] | float | None = None,
    unique_tokens: Sequence[float] | None = None,
    planned_tokens: float | None = None,
    max_epochs: Sequence[float] | float = 1.0,
    baseline: str | Sequence[float] | Mapping[str, float] | None = "natural",
    n_starts: int = 8,
    seed: int = 0,
) -> MixtureProposal:
    """Minimize sum_i a_i L_i(r) over feasible mixtures under a fitted law of ``result``.

    ``objective_weights`` a_i default to 1/n_targets (the mean loss); targets left out of a
    mapping get 0. ``lower``/``upper`` bound each weight; with ``unique_tokens`` and
    ``planned_tokens`` the upper bound is also ``max_epochs * unique_tokens / planned_tokens``.
    ``baseline`` is ``"natural"`` (unique-token proportions, else uniform), ``"uniform"`` or
    weights; its predicted losses are reported beside the proposal's.
    """
    domains, targets = list(result.domains), list(result.targets)
    d = len(domains)
    if objective_weights is None:
        a = np.full(len(targets), 1.0 / len(targets))
    else:
        a = _as_vector(objective_weights, targets, 0.0, "objective_weights")
    used = [t for t, ak in zip(targets, a) if ak != 0]
    if not used:
        raise SpecError("expected at least one target with a non-zero objective weight", field="objective_weights")
    law = law or result.best_law(used)
    lo = _as_vector(lower, domains, 0.0, "lower")
    hi = _as_vector(upper, domains, 1.0, "upper")
    if unique_tokens is not None:
        if planned_tokens is None:
            raise SpecError("unique_tokens needs planned_tokens", field="planned_tokens")
        if len(unique_tokens) != d:
            raise SpecError(f"expected {d} unique_tokens, one per domain, got {len(unique_tokens)}",
                            field="unique_tokens")
        hi = np.minimum(hi, token_upper_bounds(unique_tokens, planned_tokens, max_epochs))
    if np.any(lo < 0) or np.any(lo > hi + 1e-12):
        j = int(np.flatnonzero((lo < 0) | (lo > hi + 1e-12))[0])
        raise SpecError(f"domain {domains[j]!r}: bounds [{lo[j]:.6g}, {hi[j]:.6g}] are empty or negative",
                        field="lower")
    if lo.sum() > 1 + 1e-9 or hi.sum() < 1 - 1e-9:
        raise SpecError(f"no mixture fits the bounds: lower bounds sum to {lo.sum():.6g}, upper bounds "
                        f"(after token availability) to {hi.sum():.6g}; expected lower <= 1 <= upper",
                        field="upper")
    base = _baseline(baseline, domains, unique_tokens)
    fits = [result.fits[(law, t)] for t in used]
    a_used = a[[targets.index(t) for t in used]]

    def f(r):
        return float(sum(ak * tf.predict(r)[0] for ak, tf in zip(a_used, fits)))

    def grad(r):
        return sum(ak * tf.gradient(r)[0] for ak, tf in zip(a_used, fits))

    rng = np.random.default_rng(seed)
    cloud = project_to_feasible(rng.dirichlet(np.full(d, 0.5), size=2000), lo, hi)
    cloud_values = sum(ak * tf.predict(cloud) for ak, tf in zip(a_used, fits))
    starts = [project_to_feasible(base, lo, hi), project_to_feasible(np.full(d, 1.0 / d), lo, hi),
              cloud[int(np.argmin(cloud_values))]]
    while len(starts) < n_starts:
        starts.append(project_to_feasible(rng.dirichlet(np.full(d, 0.2)), lo, hi))

    cons = [{"type": "eq", "fun": lambda r: r.sum() - 1.0, "jac": lambda r: np.ones_like(r)}]
    best, best_val, messages = None, np.inf, []
    for x0 in starts[:n_starts]:
        res = minimize(f, x0, jac=grad, method="SLSQP", bounds=list(zip(lo, hi)), constraints=cons,
                       options={"maxiter": 500, "ftol": 1e-12})
        r = project_to_feasible(res.x, lo, hi)
        val = f(r)
        messages.append(res.message)
        if val < best_val:
            best, best_val, best_res = r, val, res
    pred = result.predict(best[None], law=law)
    bpred = result.predict(base[None], law=law)

    def objective_draws(p: LossPrediction) -> np.ndarray:
        return p.draws[:, 0, :] @ a

    od, bd = objective_draws(pred), objective_draws(bpred)
    ok = np.isfinite(od) & np.isfinite(bd)

    def ci(x):
        return tuple(float(v) for v in percentile_interval(x[ok], result.confidence)) if ok.any() else (np.nan, np.nan)

    return MixtureProposal(
        objective=objective, law=law, domains=tuple(domains), targets=tuple(targets), objective_weights=a,
        weights=best, baseline_weights=base, lower=lo, upper=hi, predicted=pred, baseline_predicted=bpred,
        objective_value=float(pred.loss[0] @ a), objective_ci=ci(od),
        baseline_objective_value=float(bpred.loss[0] @ a), baseline_objective_ci=ci(bd),
        improvement_probability=float(np.mean(od[ok] < bd[ok])) if ok.any() else np.nan,
        converged=bool(best_res.success), n_starts=min(n_starts, len(starts)), message=str(best_res.message),
    )
