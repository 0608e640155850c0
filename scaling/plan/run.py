"""Fit one law to one group: the full fit, bootstrap intervals, derived quantities and a backtest.

Returns plain rows for the `law_fits`, `backtests` and `law_draws` tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from scaling.errors import FitError
from scaling.fit import backtest, bootstrap, fit_law
from scaling.fit.backtest import rollout_holdouts
from scaling.fit.calibration import calibrate_intervals
from scaling.fit.result import FitResult
from scaling.fit.bootstrap import BootstrapResult
from scaling.flags import blocking_flags
from scaling.errors import ScalingError, problem_of
from scaling.laws import base_name, expand_ties, get_law
from scaling.plan.data import FitData, gather
from scaling.plan.fits import FitPlan
from scaling.plan.scope import FitScope



def derived_quantities(law_name: str) -> dict:
    """Quantities worth an interval beside the raw parameters (Hoffmann et al. 2022, eq. 4)."""
    if law_name in ("chinchilla", "data_constrained"):
        return {
            "a_params_exponent": lambda p: p["beta"] / (p["alpha"] + p["beta"]),
            "b_tokens_exponent": lambda p: p["alpha"] / (p["alpha"] + p["beta"]),
        }
    return {}


@dataclass
class GroupFit:
    plan: FitPlan
    data: FitData
    fit: FitResult
    boot: BootstrapResult | None
    backtest_rows: list[dict] = field(default_factory=list)
    backtest_error: str | None = None

    @property
    def primary_backtest_rows(self) -> list[dict]:
        """Backtest rows of the study's own hold-out (the others are rollout cut-offs)."""
        return [r for r in self.backtest_rows if r.get("primary", True)]

    @property
    def usable(self) -> bool:
        return self.fit.converged and not blocking_flags(self.fit.flags)

    def fit_rows(self) -> list[dict]:
        settings = json.dumps({**self.plan.settings(), **{k: v for k, v in self.fit.settings.items()
                                                         if k not in ("fixed", "bounds")},
                               "max_fitted_flops": self.data.max_flops}, sort_keys=True, default=str)
        base = {"group_name": self.data.group, "law": self.fit.law.name, "target": self.plan.target,
                "objective": float(self.fit.objective), "n_points": self.fit.n_points, "n_runs": self.fit.n_runs,
                "converged": bool(self.usable), "flags": ",".join(self.fit.flags), "settings": settings,
                "input_hash": self.data.input_hash}
        rows = []
        law = self.fit.law
        # tied parameters get rows too (their source's estimate and interval), so the table holds the law's
        # full parameter set
        for name, value in expand_ties(law, self.fit.params).items():
            src = law.ties.get(name, name)
            lo, hi = self.boot.interval(src) if self.boot is not None else (np.nan, np.nan)
            rows.append({**base, "parameter": name, "estimate": float(value), "ci_low": float(lo),
                         "ci_high": float(hi)})
        for name, f in derived_quantities(base_name(self.fit.law)).items():
            fn = (lambda p, f=f: f(expand_ties(law, p)))
            est = float(fn(self.fit.params))
            lo, hi = (self.boot.derived(fn)[1:] if self.boot is not None else (np.nan, np.nan))
            rows.append({**base, "parameter": name, "estimate": est, "ci_low": float(lo), "ci_high": float(hi)})
        return rows

    def draw_rows(self) -> list[dict]:
        if self.boot is None:
            return []
        ok = self.boot.valid  # the same draws as the intervals in `law_fits`
        out = []
        names = list(self.boot.param_names) + list(self.fit.law.ties)
        for name in names:
            j = self.boot.param_names.index(self.fit.law.ties.get(name, name))
            for i in np.flatnonzero(ok):
                out.append({"group_name": self.data.group, "law": self.fit.law.name, "target": self.plan.target,
                            "draw": int(i), "parameter": name, "value": float(self.boot.draws[i, j])})
        return out


def fit_group(plan: FitPlan, data: FitData, *, n_jobs: int = 1) -> GroupFit:
    law = plan.law_object()
    kwargs = dict(objective=plan.objective, delta=plan.delta, space=plan.space, fixed=plan.fixed or None,
                  bounds=plan.bounds or None)
    fit = fit_law(law, data.X, data.y, runs=data.runs, **kwargs)
    if "params" in data.X and "tokens" in data.X:  # the D/N the law saw, for sanity checks of forecasts
        tpp = data.X["tokens"] / data.X["params"]
        fit.settings["fitted_tokens_per_param"] = [float(tpp.min()), float(tpp.max())]
    boot = None
    if plan.n_resamples > 0 and len(set(data.runs.tolist())) >= 3:
        boot = bootstrap(law, data.X, data.y, data.runs, n_resamples=plan.n_resamples, seed=plan.seed, fit=fit,
                         n_jobs=n_jobs, **kwargs)
        fit.flags += [f for f in boot.flags if f not in fit.flags]  # parameters the data do not pin down
    if boot is not None and not plan.by_run:
        # prediction intervals of forecasts: calibrated on rollouts inside the fitted runs
        cal = calibrate_intervals(law, data.X, data.y, data.runs, data.compute, fit=fit, **kwargs)
        if cal is not None:
            fit.settings["interval_calibration"] = cal.to_dict()
    result = GroupFit(plan, data, fit, boot)
    n_runs = len(set(data.runs.tolist()))
    explicit = data.holdout is not None
    if (plan.holdout_fraction > 0 or explicit) and n_runs >= 5 and not plan.by_run:
        errors = []
        try:
            if explicit and not data.holdout:
                raise FitError(f"the hold-out {plan.holdout!r} selects no run of this group", field="holdout")
            cuts = rollout_holdouts(data.runs, data.compute, holdout=data.holdout if explicit else "top_fraction",
                                    fraction=plan.holdout_fraction if plan.holdout_fraction > 0 else 0.2)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            cuts = []
        for i, (label, held) in enumerate(cuts):
            if i > 0 and n_runs - len(held) < 5:
                continue
            if i == 0 and isinstance(plan.holdout, str):
                label = f"holdout: {plan.holdout}"
            try:
                bt = backtest(law, data.X, data.y, data.runs, data.compute, holdout=held, points="final",
                              n_resamples=plan.backtest_resamples if i == 0 else plan.rollout_resamples,
                              seed=plan.seed, n_jobs=n_jobs, restarts=boot.restarts if boot else "auto", **kwargs)
            except Exception as exc:  # a backtest that cannot fit is reported, not fatal to the fit
                errors.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            result.backtest_rows += [{
                "group_name": data.group, "law": law.name, "target": plan.target, "holdout": label,
                "primary": i == 0, "run": str(r["run"]), "flops": r["compute"],
                "fitted_max_flops": r["fitted_max_compute"], "extrapolation": r["extrapolation"],
                "actual": r["actual"], "predicted": r["predicted"], "ci_low": r["ci_low"],
                "ci_high": r["ci_high"], "rel_error": r["rel_error"], "covered": r["covered"],
                "boot_ci_low": r["boot_ci_low"], "boot_ci_high": r["boot_ci_high"],
                "boot_covered": r["boot_covered"]} for r in bt.rows]
        result.backtest_error = "; ".join(errors) or None
    return result


@dataclass
class FitFailure:
    """A planned fit that could not run (too few points, a bad bound, a law that fails on the data)."""

    study: str
    index: int
    plan: FitPlan
    group: str | None
    problem: str
    parameter: str | None = None

    @property
    def message(self) -> str:
        parts = [f"study {self.study!r}", f"fits[{self.index}] law {self.plan.law!r} -> {self.plan.target!r}"]
        if self.group is not None:
            parts.append(f"group {self.group!r}" if self.group else "group '' (the whole study)")
        if self.parameter:
            parts.append(f"parameter {self.parameter!r}")
        return ", ".join(parts) + f": {self.problem}"


def _failure(study: str, index: int, plan: FitPlan, group: str | None, exc: Exception) -> FitFailure:
    if isinstance(exc, ScalingError):
        field_ = exc.where.field
        param = field_ if field_ in get_law(plan.law).param_names else None
        problem = exc.problem if param else str(exc)
    else:  # an unexpected failure is still reported against its fit, with its type
        param, problem = None, problem_of(exc)
    return FitFailure(study, index, plan, group, problem, param)


def _fit_item(item: tuple) -> GroupFit | FitFailure:
    """One planned fit of one group, or its named failure (a task of `fit_study`'s map)."""
    study, i, plan, data, n_jobs = item
    try:
        return fit_group(plan, data, n_jobs=n_jobs)
    except Exception as exc:  # noqa: BLE001 - reported against this fit, the others go on
        return _failure(study, i, plan, data.group, exc)


def fit_study(study: str, plans: list[FitPlan], points, runs, scope: FitScope, *, n_jobs: int = 1,
              log=None, map_fits=None) -> tuple[list[GroupFit], list[FitFailure]]:
    """Every planned fit of every group, each on the points ``scope`` allows. A fit that fails
    (its data, its bounds, its law) is returned as a named ``FitFailure``; the others still run.
    ``log`` gets a line before each fit and ``bootstrap refits <done>/<total>`` after it.

    ``map_fits(fn, items)``, when given, runs the group x law fits (each with its bootstrap refits and
    backtests) and yields their outcomes in the order of ``items``, as ``map`` does: e.g. spread over the
    workers of a cluster. The outcomes are the same as one after the other (every fit has its own seed)."""
    results: list[GroupFit] = []
    failures: list[FitFailure] = []
    work = []
    for i, plan in enumerate(plans):
        try:
            work += [(i, plan, data) for data in gather(plan, points, runs, scope)]
        except Exception as exc:  # noqa: BLE001 - reported against this fit, the others go on
            failures.append(_failure(study, i, plan, None, exc))
    total, done = sum(plan.n_resamples for _, plan, _ in work), 0

    def starting(i: int, plan: FitPlan, data: FitData) -> None:
        if log is not None:
            log(f"{study}: fitting {plan.law} -> {plan.target}"
                f"{' [' + data.group + ']' if data.group else ''} on {len(data.y)} points")

    items = [(study, i, plan, data, n_jobs) for i, plan, data in work]

    def one_by_one():
        for w, item in zip(work, items):
            starting(*w)
            yield _fit_item(item)

    if map_fits is None:
        outcomes = one_by_one()
    else:
        for w in work:
            starting(*w)
        outcomes = map_fits(_fit_item, items)
    for (i, plan, data), out in zip(work, outcomes):
        (failures if isinstance(out, FitFailure) else results).append(out)
        done += plan.n_resamples
        if log is not None:
            log(f"{study}: bootstrap refits {done}/{total} ({len(results) + len(failures)}/{len(work)} fits)")
    return results, failures
