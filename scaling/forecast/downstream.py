"""Two-step downstream forecasts (Bhagia et al. 2024, "Establishing Task Scaling Laws via
Compute-Efficient Model Ladders"; Gadre et al. 2024).

Step 1: (N, D) -> task loss (bits per byte), L = E + A/N^alpha + B/D^beta, fitted on each
ladder run's final point. Step 2: task loss -> accuracy, acc = floor + (ceiling - floor)·
sigmoid(-k·(L - L0)), fitted on (loss, accuracy) pairs, intermediate checkpoints included.
Chained: acc(N, D) = step2(step1(N, D)). Intervals carry both steps' uncertainty: bootstrap
draw i of step 1 is paired with draw i of step 2 (independent resamples), the chain is
evaluated per pair and percentiles are taken over pairs.

Step 1 extrapolates like any other forecast, so its loss draws get the same rollout calibration
(``scaling.fit.calibration``, fitted on step 1's own runs when ``fit_two_step`` is given their
compute) before they are chained. With g = log (the fit's log space; identity in linear space),
L̂ the step-1 point prediction at a target and r_i = g(L_i) - g(L̂) the residual of draw i, the
bootstrap interval of r is [q_lo, q_hi] and the calibrated band is [-h, h], h = k·sigma(x) (as
for every forecast). Each side of the draws is stretched about L̂ so that their percentile
interval becomes the hull [min(q_lo, -h), max(q_hi, h)], the interval a one-step forecast of the
task loss would report:

    r_i' = r_i · max(q_hi, h) / q_hi   (r_i > 0),      r_i' = r_i · min(q_lo, -h) / q_lo   (r_i < 0),

L_i' = g^-1(g(L̂) + r_i'). The stretch is monotone, so the order of the draws and their pairing
with step 2 are kept; a side with no draws beyond L̂ (q_hi <= 0 or q_lo >= 0) is left as it is.
The chained accuracy interval is then the percentile interval of step2_i(L_i') over the pairs.
Point predictions do not change.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import FitError, ScalingError
from ..fit.bootstrap import BootstrapResult, bootstrap
from ..fit.calibration import calibrate_intervals
from ..fit.fitter import fit_law
from ..fit.result import FitResult
from ..laws.base import Law
from ..laws.downstream import downstream_sigmoid
from ..laws.registry import get_law
from .budgets import FlopsPerToken, six_n
from .draws import calibration_of, percentile_interval
from .rows import ForecastResult, forecast_row, relative_error


@dataclass
class TwoStepPrediction:
    """Per target: the step-1 ``loss`` and chained ``accuracy``, each with a percentile interval."""

    loss: np.ndarray
    loss_ci: tuple[np.ndarray, np.ndarray]
    accuracy: np.ndarray
    accuracy_ci: tuple[np.ndarray, np.ndarray]
    n_pairs: int
    level: float


@dataclass
class TwoStepFit:
    """The two fits and their bootstraps; ``predict`` chains them."""

    step1: FitResult
    step2: FitResult
    step1_boot: BootstrapResult | None = None
    step2_boot: BootstrapResult | None = None
    settings: dict = field(default_factory=dict)

    def predict(self, X: Mapping[str, np.ndarray], level: float = 0.95, compute=None) -> TwoStepPrediction:
        """Chain step 1 and step 2 on inputs ``X`` (the step-1 law's variables). With ``compute`` (the
        targets' compute) and a step-1 calibration, the step-1 draws are calibrated before chaining
        (module docstring)."""
        Xa = {v: np.atleast_1d(np.asarray(X[v], dtype=float)) for v in self.step1.law.variables}
        loss = np.atleast_1d(self.step1.predict(Xa))
        acc = np.atleast_1d(self.step2.predict({"loss": loss}))
        nan = np.full(loss.shape, np.nan)
        if self.step1_boot is None or self.step2_boot is None:
            return TwoStepPrediction(loss, (nan, nan), acc, (nan, nan), 0, level)
        p1, p2 = self.step1_boot.params_draws(), self.step2_boot.params_draws()
        n = min(next(iter(p1.values())).size, next(iter(p2.values())).size)
        q1 = {k: v[:n, None] for k, v in p1.items()}
        q2 = {k: v[:n, None] for k, v in p2.items()}
        with np.errstate(all="ignore"):
            L = np.asarray(self.step1.law.fn(Xa, q1), dtype=float)  # (n, targets)
            cal = calibration_of(self.step1)
            if cal is not None and compute is not None:
                L = calibrated_draws(L, loss, cal.band(loss, Xa, np.atleast_1d(compute)), level, cal.space)
            A = np.asarray(self.step2.law.fn({"loss": L}, q2), dtype=float)
        return TwoStepPrediction(loss, percentile_interval(L, level), acc, percentile_interval(A, level), n, level)


def calibrated_draws(draws, predicted, band, level: float, space: str = "log") -> np.ndarray:
    """Draws (n, targets) stretched about ``predicted``, each side separately, so that their
    percentile interval is the hull of their own and ``band`` = (lo, hi) (module docstring)."""
    draws = np.asarray(draws, dtype=float)
    p = np.atleast_1d(np.asarray(predicted, dtype=float))
    blo, bhi = (np.atleast_1d(np.asarray(b, dtype=float)) for b in band)
    g = np.log if space == "log" else (lambda a: a)
    ginv = np.exp if space == "log" else (lambda a: a)
    with np.errstate(all="ignore"):
        r = g(draws) - g(p)
        qlo, qhi = percentile_interval(r, level)
        lo_b, hi_b = g(blo) - g(p), g(bhi) - g(p)
        up = np.where(qhi > 0, np.fmax(qhi, hi_b) / qhi, 1.0)
        down = np.where(qlo < 0, np.fmin(qlo, lo_b) / qlo, 1.0)
        up = np.where(np.isfinite(up), up, 1.0)
        down = np.where(np.isfinite(down), down, 1.0)
        return ginv(g(p) + np.where(r > 0, r * up, r * down))


@contextmanager
def _step(label: str):
    """Name the step a fitting error comes from: ``step 1 (chinchilla -> 'bpb' on 1 run): <problem>``."""
    try:
        yield
    except ScalingError as exc:
        raise FitError(f"{label}: {exc}") from exc


def _count(runs, values) -> str:
    n = len(set(np.asarray(runs).ravel().tolist())) if runs is not None else np.asarray(values).size
    return f"{n} run" + ("" if n == 1 else "s")


def fit_two_step(X: Mapping[str, np.ndarray], task_loss, step2_loss, accuracy, *, runs=None, step2_runs=None,
                 step1_law: Law | str = "chinchilla", accuracy_bounds: tuple[float, float] | None = (0.0, 1.0),
                 step2_fixed: Mapping[str, float] | None = None, n_resamples: int = 200, seed: int = 0,
                 n_jobs: int = 1, step1_kwargs: Mapping | None = None,
                 step2_kwargs: Mapping | None = None, task_name: str = "task loss", compute=None) -> TwoStepFit:
    """Fit both steps and bootstrap each (``n_resamples`` = 0: no intervals).

    X, task_loss: step-1 data, the law's variables (``params``, ``tokens``) and the task loss at
    each run's end; runs: run id per step-1 point. step2_loss, accuracy: step-2 pairs (all
    checkpoints may enter); step2_runs: run id per step-2 pair, so whole runs are resampled.
    accuracy_bounds: box for the sigmoid's floor and ceiling (accuracies lie in [0, 1]);
    step2_fixed: sigmoid parameters held fixed (e.g. ``{"floor": 0.25}`` for 4-way chance);
    task_name: the task loss's metric, for errors. compute: the compute of each step-1 point; with
    it (and ``n_resamples`` > 0) step 1 gets a rollout calibration of its intervals on its own runs
    (``step1.settings['interval_calibration']``), applied to its draws before chaining. Each step's
    fit carries its bootstrap's flags (``not_identified:<p>``). A step that cannot be fitted raises a
    ``FitError`` naming the step, its law and how many runs it had.
    """
    law1 = get_law(step1_law)
    kw1 = dict(step1_kwargs or {})
    kw2 = dict(step2_kwargs or {})
    if accuracy_bounds is not None:
        kw2.setdefault("bounds", {"floor": tuple(accuracy_bounds), "ceiling": tuple(accuracy_bounds)})
    if step2_fixed:
        kw2["fixed"] = {**kw2.get("fixed", {}), **dict(step2_fixed)}
    X2 = {"loss": np.asarray(step2_loss, dtype=float)}
    b1 = b2 = None
    with _step(f"step 1 ({law1.name} -> {task_name!r} on {_count(runs, task_loss)})"):
        f1 = fit_law(law1, X, task_loss, runs=runs, **kw1)
        if n_resamples > 0:
            b1 = bootstrap(law1, X, task_loss, runs, n_resamples=n_resamples, seed=seed, n_jobs=n_jobs, fit=f1,
                           **kw1)
            f1.flags += [f for f in b1.flags if f not in f1.flags]  # parameters the data do not pin down
            if compute is not None:  # as every forecast: calibrated on rollouts inside the fitted runs
                cal = calibrate_intervals(law1, X, task_loss, runs, compute, fit=f1, **kw1)
                if cal is not None:
                    f1.settings["interval_calibration"] = cal.to_dict()
    with _step(f"step 2 ({downstream_sigmoid.name}: {task_name!r} -> accuracy on {_count(step2_runs, accuracy)})"):
        f2 = fit_law(downstream_sigmoid, X2, accuracy, runs=step2_runs, **kw2)
        if n_resamples > 0:
            b2 = bootstrap(downstream_sigmoid, X2, accuracy, step2_runs, n_resamples=n_resamples, seed=seed + 1,
                           n_jobs=n_jobs, fit=f2, **kw2)
            f2.flags += [f for f in b2.flags if f not in f2.flags]
    return TwoStepFit(f1, f2, b1, b2, settings={"step1_law": law1.name, "n_resamples": n_resamples, "seed": seed,
                                                "accuracy_bounds": accuracy_bounds,
                                                "step2_fixed": dict(step2_fixed or {})})


def downstream_forecast(two_step: TwoStepFit, targets: Sequence[Mapping], *, target: str = "accuracy",
                        max_observed_flops: float | None = None, flops_per_token: FlopsPerToken | None = None,
                        level: float = 0.95) -> ForecastResult:
    """Rows of kind ``downstream``: the chained accuracy of each target run (``name``, ``params``,
    ``tokens``, optional ``actual`` accuracy), interval from paired draws. ``settings`` holds the
    step-1 loss predictions and their intervals per target."""
    law1 = two_step.step1.law
    X = {v: np.array([float(t[v]) for t in targets]) for v in law1.variables}
    fpt = flops_per_token or six_n
    compute = np.array([float(np.asarray(fpt(float(t["params"]))) * float(t["tokens"])) for t in targets])
    pr = two_step.predict(X, level, compute=compute)
    rows, losses = [], []
    for i, t in enumerate(targets):
        N, D = float(t["params"]), float(t["tokens"])
        C = float(compute[i])
        actual = None if t.get("actual") is None else float(t["actual"])
        rows.append(forecast_row(
            law=f"{law1.name}+{two_step.step2.law.name}", target=target, kind="downstream",
            name=str(t.get("name", f"target {i}")), flops=C, params=N, tokens=D, tokens_per_param=D / N,
            predicted=pr.accuracy[i], ci_low=pr.accuracy_ci[0][i], ci_high=pr.accuracy_ci[1][i],
            extrapolation=(C / max_observed_flops) if max_observed_flops else None,
            actual=actual, rel_error=relative_error(pr.accuracy[i], actual)))
        losses.append({"name": rows[-1]["name"], "loss": float(pr.loss[i]), "ci_low": float(pr.loss_ci[0][i]),
                       "ci_high": float(pr.loss_ci[1][i])})
    return ForecastResult(rows, settings={"level": level, "n_pairs": pr.n_pairs, "step1_loss": losses,
                                          **two_step.settings})
