"""Fit one law to one group: the full fit, bootstrap intervals, derived quantities and a backtest.

Returns plain rows for the `law_fits`, `backtests` and `law_draws` tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from scaling.fit import backtest, bootstrap, fit_law
from scaling.fit.result import FitResult
from scaling.fit.bootstrap import BootstrapResult
from scaling.laws import base_name, expand_ties
from scaling.plan.data import FitData
from scaling.plan.fits import FitPlan

# Flags that make a fit unusable for forecasting (the others are warnings).
BLOCKING_FLAGS = ("not_converged", "exponent_implausible", "coefficient_implausible")


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
    def usable(self) -> bool:
        return self.fit.converged and not any(f.split(":")[0] in BLOCKING_FLAGS for f in self.fit.flags)

    def fit_rows(self) -> list[dict]:
        settings = json.dumps({**self.plan.settings(), **{k: v for k, v in self.fit.settings.items()
                                                         if k not in ("fixed", "bounds")}}, sort_keys=True,
                              default=str)
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
        ok = self.boot.converged
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
    fit = fit_law(law, data.X, data.y, runs=data.runs, seed=plan.seed, **kwargs)
    boot = None
    if plan.n_resamples > 0 and len(set(data.runs.tolist())) >= 3:
        boot = bootstrap(law, data.X, data.y, data.runs, n_resamples=plan.n_resamples, seed=plan.seed, fit=fit,
                         n_jobs=n_jobs, **kwargs)
    result = GroupFit(plan, data, fit, boot)
    n_runs = len(set(data.runs.tolist()))
    if plan.holdout_fraction > 0 and n_runs >= 5 and not plan.by_run:
        try:
            bt = backtest(law, data.X, data.y, data.runs, data.compute, fraction=plan.holdout_fraction,
                          points="final", n_resamples=plan.backtest_resamples, seed=plan.seed, n_jobs=n_jobs,
                          **kwargs)
            result.backtest_rows = [{"group_name": data.group, "law": law.name, "target": plan.target,
                                     "run": str(r["run"]), "flops": r["compute"], "actual": r["actual"],
                                     "predicted": r["predicted"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                                     "rel_error": r["rel_error"], "covered": r["covered"]} for r in bt.rows]
        except Exception as exc:  # a backtest that cannot fit is reported, not fatal to the fit
            result.backtest_error = f"{type(exc).__name__}: {exc}"
    return result
