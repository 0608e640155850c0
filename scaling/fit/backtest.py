"""Hold-out backtests and rollouts: fit without the largest-compute runs, predict them, check the
intervals. Intervals are prediction intervals: the bootstrap's parameter draws plus the scatter of
runs, widened by an ``IntervalCalibration`` fitted on rollouts inside the training runs only
(``scaling.fit.calibration``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import FitError
from ..laws.base import Law
from ..laws.registry import get_law
from .bootstrap import BootstrapResult, bootstrap
from .calibration import ROLLOUT_FRACTIONS, IntervalCalibration, calibrate_intervals, top_runs
from .fitter import fit_law
from .result import FitResult


@dataclass
class BacktestResult:
    """One row per held-out point: run, compute, actual, predicted, ci_low, ci_high (the calibrated
    prediction interval), boot_ci_low, boot_ci_high (bootstrap draws plus run scatter, before
    calibration), rel_error ((predicted - actual) / actual), covered (actual inside [ci_low, ci_high]),
    boot_covered, fitted_max_compute (largest compute fitted) and extrapolation (compute / that)."""

    rows: list[dict]
    fit: FitResult
    bootstrap: BootstrapResult | None
    train_runs: list
    holdout_runs: list
    settings: dict = field(default_factory=dict)
    calibration: IntervalCalibration | None = None

    @property
    def mean_rel_width(self) -> float:
        """Mean (ci_high - ci_low) / actual over held-out points."""
        return float(np.mean([(r["ci_high"] - r["ci_low"]) / abs(r["actual"]) for r in self.rows]))

    @property
    def mean_abs_rel_error(self) -> float:
        return float(np.mean([abs(r["rel_error"]) for r in self.rows]))

    @property
    def coverage(self) -> float:
        """Fraction of held-out points inside their interval (nan without a bootstrap)."""
        cov = [r["covered"] for r in self.rows if r["covered"] is not None]
        return float(np.mean(cov)) if cov else float("nan")

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def holdout_runs(runs, compute, *, holdout: str | Sequence = "top_fraction", fraction: float = 0.2) -> list:
    """Run ids to hold out: the top ``fraction`` of runs by their largest compute (at least one),
    or the explicit run ids given as ``holdout``."""
    runs = np.asarray(runs).ravel()
    uniq = np.unique(runs)
    if not isinstance(holdout, str) and not np.isscalar(holdout):
        held = list(holdout)
        unknown = [r for r in held if r not in set(uniq.tolist())]
        if unknown:
            raise FitError(f"held-out runs {unknown[:5]} are not among the data's runs", field="holdout")
        return held
    if holdout != "top_fraction":
        raise ValueError(f"expected holdout='top_fraction' or a list of run ids, got {holdout!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"expected a fraction in (0, 1), got {fraction}")
    compute = np.asarray(compute, dtype=float).ravel()
    run_max = np.array([compute[runs == r].max() for r in uniq])
    k = max(1, int(np.ceil(fraction * uniq.size)))
    order = np.argsort(-run_max, kind="stable")
    return uniq[order[:k]].tolist()


def rollout_holdouts(runs, compute, *, holdout: str | Sequence = "top_fraction", fraction: float = 0.2,
                     fractions: Sequence[float] = ROLLOUT_FRACTIONS) -> list[tuple[str, list]]:
    """The hold-outs of a rollout: ``[(label, held run ids), ...]``, the study's own hold-out first
    (``holdout``/``fraction``), then the top ``fractions`` of runs by compute (duplicates dropped)."""
    out = [(_label(holdout, fraction), holdout_runs(runs, compute, holdout=holdout, fraction=fraction))]
    seen = {frozenset(out[0][1])}
    for f in fractions:
        held = top_runs(runs, compute, f)
        if frozenset(held) not in seen:
            seen.add(frozenset(held))
            out.append((f"top {f:.0%} of runs by compute", held))
    return out


def _label(holdout, fraction) -> str:
    if isinstance(holdout, str) and holdout == "top_fraction":
        return f"top {fraction:.0%} of runs by compute"
    return f"{len(list(holdout))} named runs"


def backtest(law: Law | str, X: Mapping[str, np.ndarray], y, runs, compute, *,
             holdout: str | Sequence = "top_fraction", fraction: float = 0.2, points: str = "final",
             n_resamples: int = 200, level: float = 0.95, seed: int = 0, n_jobs: int = 1,
             calibrate: bool = True, calibration_fractions: Sequence[float] = ROLLOUT_FRACTIONS,
             restarts: str = "auto", **fit_kwargs) -> BacktestResult:
    """Fit ``law`` without the held-out runs and predict them.

    runs: run id per point (``None``: each point its own run). compute: per-point compute used
    to rank runs (their maximum) and to pick each held-out run's final point. points:
    ``"final"`` (each held-out run's largest-compute point) or ``"all"``. Intervals are prediction
    intervals: ``bootstrap`` draws (``n_resamples``, over the training runs) of the restricted fit,
    each with a resampled residual of that fit added (a new run scatters around the law); with
    ``n_resamples=0`` they are omitted (nan, covered None). calibrate: widen them by an
    ``IntervalCalibration`` from rollouts (``calibration_fractions``) on the training runs alone, so
    the held-out runs are never seen; without enough training runs to roll out, they stay as they are.
    restarts: passed to ``bootstrap`` (a pipeline passes the mode its full-data bootstrap chose).
    """
    law = get_law(law)
    y = np.asarray(y, dtype=float).ravel()
    n = y.size
    runs = np.arange(n) if runs is None else np.asarray(runs).ravel()
    compute = np.asarray(compute, dtype=float).ravel()
    if runs.size != n or compute.size != n:
        raise FitError(f"expected {n} run ids and {n} compute values (one per point)", field="runs")
    if points not in ("final", "all"):
        raise ValueError(f"expected points='final' or 'all', got {points!r}")
    held = holdout_runs(runs, compute, holdout=holdout, fraction=fraction)
    is_held = np.isin(runs, held)
    train = ~is_held
    if not train.any():
        raise FitError("no training runs left after the hold-out", field="holdout")
    Xtr = {v: np.asarray(X[v])[train] for v in law.variables}
    fit = fit_law(law, Xtr, y[train], runs=runs[train], **fit_kwargs)
    boot = None
    if n_resamples > 0:
        boot = bootstrap(law, Xtr, y[train], runs[train], n_resamples=n_resamples, seed=seed, level=level,
                         n_jobs=n_jobs, fit=fit, restarts=restarts, **fit_kwargs)
    targets = []
    for r in held:
        idx = np.flatnonzero(runs == r)
        targets.extend([idx[np.argmax(compute[idx])]] if points == "final" else idx.tolist())
    targets = np.array(targets, dtype=int)
    Xt = {v: np.asarray(X[v], dtype=float)[targets] for v in law.variables}
    pred = fit.predict(Xt)
    if boot is not None:
        # a held-out run is one new observation: parameter uncertainty plus the scatter of runs
        blo, bhi = boot.prediction_interval(Xt, Xtr, y[train], level, seed=seed)
    else:
        blo = bhi = np.full(targets.size, np.nan)
    cal = None
    if calibrate and boot is not None:
        cal = calibrate_intervals(law, Xtr, y[train], runs[train], compute[train], level=level,
                                  fractions=calibration_fractions, fit=fit, **fit_kwargs)
    lo, hi = (blo, bhi) if cal is None else cal.widen(pred, blo, bhi, Xt, compute[targets])
    c_fit = float(compute[train].max())
    rows = []
    for i, t in enumerate(targets):
        actual = float(y[t])
        covered = None if boot is None else bool(lo[i] <= actual <= hi[i])
        rows.append({"run": runs[t].item() if hasattr(runs[t], "item") else runs[t], "compute": float(compute[t]),
                     "actual": actual, "predicted": float(pred[i]), "ci_low": float(lo[i]),
                     "ci_high": float(hi[i]), "rel_error": float((pred[i] - actual) / actual),
                     "covered": covered, "boot_ci_low": float(blo[i]), "boot_ci_high": float(bhi[i]),
                     "boot_covered": None if boot is None else bool(blo[i] <= actual <= bhi[i]),
                     "fitted_max_compute": c_fit, "extrapolation": float(compute[t]) / c_fit})
    train_runs = np.unique(runs[train]).tolist()
    return BacktestResult(rows=rows, fit=fit, bootstrap=boot, train_runs=train_runs, holdout_runs=list(held),
                          settings={"holdout": holdout if isinstance(holdout, str) else list(holdout),
                                    "fraction": fraction, "points": points, "n_resamples": n_resamples,
                                    "level": level, "seed": seed, **fit.settings},
                          calibration=cal)
