"""Chinchilla approaches 1 and 2 as study-level methods: ``[[fits]]`` tables with
``law = "envelope"`` or ``law = "isoflop"``.

    [[fits]]
    law = "isoflop"          # approach 2: a parabola in log N per budget (Hoffmann et al. 2022, Fig. 3)
    target = "loss"
    budgets = "auto"         # "auto" | "data" | [6e18, 1e19, ...] (FLOPs) | "grid"
    n_budgets = 8            # grid: budgets log-spaced over the runs' final compute
    tolerance = 0.1          # a single-point run counts at a budget within 10% of it
    min_runs = 3             # fewest runs at a budget (or envelope bucket)
    n_buckets = 40           # envelope (approach 1): log-spaced compute values
    n_resamples = 1000       # bootstrap over runs
    level = 0.95
    filter = "value < 3.44"  # SQL over points columns
    min_tokens = 0
    seed = 0
    seed_noise = 0.003       # optional: relative seed noise added to each resample, or "replicates"

Both fit N_opt = k_N·C^a and D_opt = k_D·C^b to the per-budget optima (approach 2) or the
training-curve envelope (approach 1), per group. Rows go to `law_fits` (``a_params_exponent``,
``b_tokens_exponent``, ``params_coefficient`` k_N, ``tokens_coefficient`` k_D, with bootstrap
intervals over runs), the per-budget optima to `isoflop_optima`, the draws to `law_draws`, and
compute-optimal allocations to `forecasts` (law "isoflop" or "envelope"), so approaches 1, 2 and 3
sit side by side.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from scaling.plan.scope import FitScope
from scaling.errors import FitError, SpecError
from scaling.spec import ISOFLOP_KEYS as _KEYS
from scaling.spec import StudySpec

if TYPE_CHECKING:
    from scaling.fit.isoflop import ApproachResult

# The fitting and forecast code is imported where it runs: the loader checks a study's [[fits]] with `_plan`
# without importing it.

METHODS = {"envelope": 1, "isoflop": 2}
# law_draws parameter names, in the order of ApproachResult.draws' columns
DRAW_PARAMS = ("a_params_exponent", "params_log_coefficient", "b_tokens_exponent", "tokens_log_coefficient")
FEW_BUDGETS = 3  # fewer compute values than this: the exponents rest on too little


@dataclass(frozen=True)
class IsoflopPlan:
    law: str  # "isoflop" (approach 2) or "envelope" (approach 1)
    target: str
    budgets: Any = "auto"
    n_budgets: int = 8
    tolerance: float = 0.1
    min_runs: int = 3
    n_buckets: int = 40
    n_resamples: int = 1000
    level: float = 0.95
    filter: str | None = None
    min_tokens: float = 0.0
    seed: int = 0
    seed_noise: Any = None  # relative seed noise sigma, "replicates", or None (run resamples only)

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("law", "target")}


def is_isoflop(raw: dict) -> bool:
    return raw.get("law") in METHODS


def _plan(raw: dict, study: str, i: int) -> IsoflopPlan:
    where = {"study": study, "field": f"fits[{i}]"}
    unknown = set(raw) - _KEYS
    if unknown:
        raise SpecError(f"unknown key {sorted(unknown)[0]!r} for law {raw['law']!r}; expected one of {sorted(_KEYS)}",
                        study=study, field=f"fits[{i}].{sorted(unknown)[0]}")
    if "target" not in raw:
        raise SpecError("a [[fits]] table needs `law` and `target`", **where)
    budgets = raw.get("budgets", "auto")
    if budgets == "grid":
        budgets = None
    elif isinstance(budgets, list):
        if not budgets or not all(isinstance(b, (int, float)) and b > 0 for b in budgets):
            raise SpecError(f"budgets must be positive FLOPs, got {budgets!r}", **where)
        budgets = tuple(float(b) for b in budgets)
    elif budgets not in ("auto", "data"):
        raise SpecError(f"budgets must be 'auto', 'data', 'grid' or a list of FLOPs, got {budgets!r}", **where)
    level = float(raw.get("level", 0.95))
    if not 0 < level < 1:
        raise SpecError(f"level must be in (0, 1), got {level}", **where)
    noise = raw.get("seed_noise")
    if noise is not None and noise != "replicates" and (
            isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1):
        raise SpecError(f'seed_noise must be a relative standard deviation in [0, 1) (e.g. 0.003) or "replicates", '
                        f"got {noise!r}", study=study, field=f"fits[{i}].seed_noise")
    return IsoflopPlan(
        law=raw["law"], target=str(raw["target"]), budgets=budgets, n_budgets=int(raw.get("n_budgets", 8)),
        tolerance=float(raw.get("tolerance", 0.1)), min_runs=int(raw.get("min_runs", 3)),
        n_buckets=int(raw.get("n_buckets", 40)), n_resamples=int(raw.get("n_resamples", 1000)), level=level,
        filter=raw.get("filter"), min_tokens=float(raw.get("min_tokens", 0.0)), seed=int(raw.get("seed", 0)),
        seed_noise=noise)


def plan_isoflops(study: StudySpec) -> list[IsoflopPlan]:
    """The study's approach-1 and approach-2 fits (``[[fits]]`` with law "envelope" or "isoflop")."""
    return [_plan(f, study.name, i) for i, f in enumerate(study.fits) if is_isoflop(f)]


@dataclass
class IsoflopFit:
    """One approach fitted to one group: the result and its rows for the tables."""

    plan: IsoflopPlan
    group: str
    result: ApproachResult | None
    n_runs: int
    n_points: int
    input_hash: str
    settings: dict = field(default_factory=dict)
    message: str = ""
    profiles: dict = field(default_factory=dict)  # for the plot: arrays of params, tokens, loss, run, flops

    @property
    def flags(self) -> list[str]:
        if self.result is None:
            return ["not_converged"]
        out = []
        if len(self.result.points) < FEW_BUDGETS:
            out.append("few_budgets")
        if self.result.skipped:
            out.append(f"budgets_skipped:{len(self.result.skipped)}")
        return out

    def _base(self) -> dict:
        return {"group_name": self.group, "law": self.plan.law, "target": self.plan.target}

    def fit_rows(self) -> list[dict]:
        r = self.result
        base = {**self._base(), "n_points": self.n_points, "n_runs": self.n_runs,
                "converged": r is not None and "few_budgets" not in self.flags, "flags": ",".join(self.flags),
                "settings": json.dumps({**self.plan.settings(), **self.settings,
                                        "skipped": r.skipped if r is not None else [], "message": self.message},
                                       sort_keys=True, default=str),
                "input_hash": self.input_hash}
        if r is None:
            return [{**base, "parameter": "a_params_exponent", "estimate": None, "ci_low": None, "ci_high": None,
                     "objective": None}]
        keys = ("params", "tokens") if self.plan.law == "envelope" else ("params_opt", "tokens_opt")
        lc = np.log([p["flops"] for p in r.points])
        sse = float(sum(np.sum((np.log([p[k] for p in r.points]) - (f.log_coef + f.exponent * lc)) ** 2)
                        for k, f in zip(keys, (r.params_opt, r.tokens_opt))))
        base["objective"] = sse  # squared log residuals of the two power-law fits
        out = []
        for name, fit in (("a_params_exponent", r.params_opt), ("b_tokens_exponent", r.tokens_opt)):
            out.append({**base, "parameter": name, "estimate": fit.exponent, "ci_low": fit.interval[0],
                        "ci_high": fit.interval[1]})
        for name, fit in (("params_coefficient", r.params_opt), ("tokens_coefficient", r.tokens_opt)):
            lo, hi = fit.log_coef_interval
            out.append({**base, "parameter": name, "estimate": float(np.exp(fit.log_coef)),
                        "ci_low": float(np.exp(lo)), "ci_high": float(np.exp(hi))})
        return out

    def optima_rows(self) -> list[dict]:
        if self.result is None:
            return []
        env = self.plan.law == "envelope"
        n, d, l = ("params", "tokens", "loss") if env else ("params_opt", "tokens_opt", "loss_opt")
        out = []
        for p in self.result.points:
            out.append({**self._base(), "flops": p["flops"], "params": p[n], "params_ci_low": p.get(f"{n}_ci_low"),
                        "params_ci_high": p.get(f"{n}_ci_high"), "tokens": p[d],
                        "tokens_ci_low": p.get(f"{d}_ci_low"), "tokens_ci_high": p.get(f"{d}_ci_high"),
                        "tokens_per_param": p[d] / p[n], "loss": p[l], "loss_ci_low": p.get(f"{l}_ci_low"),
                        "loss_ci_high": p.get(f"{l}_ci_high"), "n_runs": p["n_runs"],
                        "reached": p.get("reached"), "run": p.get("run")})
        return out

    def draw_rows(self) -> list[dict]:
        if self.result is None or self.result.draws is None:
            return []
        return [{**self._base(), "draw": i, "parameter": name, "value": float(v)}
                for i, row in enumerate(self.result.draws) for name, v in zip(DRAW_PARAMS, row)]


def _frame(plan: IsoflopPlan, points: pl.DataFrame, runs: pl.DataFrame, scope: FitScope) -> pl.DataFrame:
    pts = points.filter(pl.col("metric") == plan.target)
    if pts.height == 0:
        raise FitError(f"no points for target metric {plan.target!r}; the study has "
                       f"{sorted(points['metric'].unique().to_list())[:12]}")
    pts = scope.select(pts, filter=plan.filter, min_tokens=plan.min_tokens)
    y = pl.when(pl.col("unit").is_in(["nats", "bits", "perplexity"])).then(pl.col("loss_nats")).otherwise(pl.col("value"))
    return pts.join(runs.select("run", "params"), on="run", how="left").with_columns(y=y) \
        .with_columns(flops=pl.coalesce(pl.col("flops"), 6.0 * pl.col("params") * pl.col("tokens"))) \
        .drop_nulls(["params", "tokens", "flops", "y"]) \
        .filter((pl.col("params") > 0) & (pl.col("tokens") > 0) & (pl.col("flops") > 0) & pl.col("y").is_finite())


def _hash(sub: pl.DataFrame) -> str:
    h = hashlib.sha256()
    for c in ("params", "tokens", "flops", "y"):
        h.update(np.ascontiguousarray(sub[c].to_numpy(), dtype=np.float64).tobytes())
    h.update("\x00".join(map(str, sub["run"].to_list())).encode())
    return h.hexdigest()


def fit_isoflop(plan: IsoflopPlan, points: pl.DataFrame, runs: pl.DataFrame,
                scope: FitScope = FitScope()) -> list[IsoflopFit]:
    """Approach 1 or 2 on the study's ``plan.target`` points, per group: the points ``scope`` allows
    under the plan's ``filter`` and ``min_tokens`` (a target run never enters). Each fit records the
    largest compute it used (``max_fitted_flops``), which its forecasts' budget grid and
    ``extrapolation`` start from."""
    from scaling.fit.isoflop import isoflop

    frame = _frame(plan, points, runs, scope)
    out = []
    for (group,), sub in frame.sort("run", "flops").group_by("group_name", maintain_order=True):
        arrays = {c: sub[c].to_numpy() for c in ("params", "tokens", "y", "run", "flops")}
        n_runs = sub["run"].n_unique()
        fit = IsoflopFit(plan, group, None, n_runs, sub.height, _hash(sub), profiles=arrays)
        try:
            res = isoflop(arrays["params"], arrays["tokens"], arrays["y"], arrays["run"], flops=arrays["flops"],
                          n_buckets=plan.n_buckets, n_budgets=plan.n_budgets, budgets=plan.budgets,
                          tolerance=plan.tolerance, min_runs=plan.min_runs, n_resamples=plan.n_resamples,
                          level=plan.level, seed=plan.seed, approaches=(METHODS[plan.law],),
                          seed_noise=plan.seed_noise)
        except FitError as exc:
            fit.message = str(exc)
            out.append(fit)
            continue
        fit.result = res.approach1 if plan.law == "envelope" else res.approach2
        fit.settings = {"max_fitted_flops": float(sub["flops"].max()),
                        "budget_source": res.settings["budgets"], "budget_values": res.settings["budget_values"],
                        "n_failed": res.n_failed[METHODS[plan.law]], "seed_noise_sigma": res.settings["seed_noise"],
                        "seed_noise_dof": res.settings["seed_noise_dof"]}
        if fit.result is None:
            fit.message = "fewer than two compute values with a usable optimum"
        out.append(fit)
    return out


def isoflop_forecast_rows(law_fits: pl.DataFrame, law_draws: pl.DataFrame | None, spec: dict) -> list[dict]:
    """Compute-optimal N_opt and D_opt (with percentile intervals over the run resamples) at the
    study's forecast budgets, from the stored approach-1/2 fits; no predicted loss (neither
    approach gives a law for it beyond the observed budgets). The budget grid and ``extrapolation``
    start from the largest compute each fit used (``max_fitted_flops`` in its settings: the points
    of its fit scope under its filter, never a target run); a fit stored without it gets no rows."""
    from scaling.forecast.budgets import budget_grid, budget_label
    from scaling.forecast.draws import percentile_interval
    from scaling.forecast.rows import forecast_row

    out = []
    level = float(spec.get("level", 0.95))
    rows = law_fits.filter(pl.col("law").is_in(list(METHODS)) & pl.col("converged"))
    for (group, law, target), sub in rows.group_by("group_name", "law", "target", maintain_order=True):
        est = dict(zip(sub["parameter"], sub["estimate"]))
        if any(est.get(k) is None for k in ("a_params_exponent", "params_coefficient", "b_tokens_exponent",
                                             "tokens_coefficient")):
            continue
        max_c = float(json.loads(sub["settings"][0] or "{}").get("max_fitted_flops") or 0.0)
        if not max_c > 0:
            continue
        C = np.asarray(spec["budgets"], dtype=float) if "budgets" in spec else budget_grid(
            max_c, factor=float(spec.get("factor", 1000.0)), n=int(spec.get("n_budgets", 7)))
        lc = np.log(C)
        n_opt = est["params_coefficient"] * C ** est["a_params_exponent"]
        d_opt = est["tokens_coefficient"] * C ** est["b_tokens_exponent"]
        nlo = nhi = dlo = dhi = np.full(C.size, np.nan)
        if law_draws is not None and law_draws.height:
            d = law_draws.filter((pl.col("group_name") == group) & (pl.col("law") == law)
                                 & (pl.col("target") == target))
            if d.height:
                wide = d.pivot(on="parameter", index="draw", values="value").sort("draw")
                a, ka, b, kb = (wide[p].to_numpy()[:, None] for p in DRAW_PARAMS)
                nlo, nhi = percentile_interval(np.exp(ka + a * lc), level)
                dlo, dhi = percentile_interval(np.exp(kb + b * lc), level)
        for j, c in enumerate(C):
            row = forecast_row(law=law, target=target, kind="compute_optimal", name=budget_label(c), flops=c,
                               params=n_opt[j], tokens=d_opt[j], tokens_per_param=d_opt[j] / n_opt[j],
                               params_ci_low=nlo[j], params_ci_high=nhi[j], tokens_ci_low=dlo[j],
                               tokens_ci_high=dhi[j], extrapolation=c / max_c)
            out.append({**row, "group_name": group})
    return out
