"""Which laws a study fits: the ``[[fits]]`` tables of a study file, or sensible defaults.

    [[fits]]
    law = "chinchilla"        # a law in the zoo (scaling.laws.LAWS)
    target = "loss"           # metric the law predicts
    points = "final"          # "final": each run's end-of-schedule point; "all": every point of the curves
                              #   (default "final" for final-loss laws, "all" for curve laws: lr_annealing)
    x_metric = "c4_loss"      # loss_transfer / downstream_sigmoid: the metric used as input
    by_run = false            # fit each run separately (e.g. lr_annealing on one curve)
    objective = "huber"       # huber | least_squares | asymmetric
    delta = 1e-3              # Huber delta on log residuals (Hoffmann et al. 2022; Besiroglu et al. 2024)
    space = "log"             # residual space; default per law
    n_resamples = 1000        # bootstrap refits (resampling runs)
    holdout_fraction = 0.2    # backtest: hold out the top 20% of runs by compute
    holdout = "flops >= 1e21" # or an explicit hold-out: a SQL condition over `runs` columns, or a list of run ids
    backtest_resamples = 200  # bootstrap refits of the backtest's restricted fit
    rollout_resamples = 50    # bootstrap refits per extra rollout cut-off (top 50% / 35% / 20% of runs)
    min_tokens = 0            # drop points below this many tokens (e.g. warm-up)
    filter = "..."            # SQL expression over points columns
    fixed = { ... }           # parameters held fixed
    tie = { beta = "alpha" }  # parameters set equal to another (one exponent for both terms)
    scale = { params = 1e6, tokens = 1e9 }   # fit on N/1e6, D/1e9: coefficients in a paper's units
    bounds = { alpha = [0, 2] }
    seed = 0

``law = "isoflop"`` and ``law = "envelope"`` (Chinchilla approaches 2 and 1) take other keys:
see ``scaling/plan/isoflop.py``.

Without ``[[fits]]``, a study whose runs know N and D fits chinchilla, kaplan and a power law
in compute to the final points of its loss metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from scaling.expressions import parse_column_expression
from scaling.errors import SpecError
from scaling.laws import configure, get_law
from scaling.spec import FIT_KEYS as _KEYS
from scaling.spec import LOSS_UNITS, StudySpec

DEFAULT_LAWS = ("chinchilla", "kaplan", "power_law_flops")


@dataclass(frozen=True)
class FitPlan:
    law: str
    target: str
    points: str = "final"
    x_metric: str | None = None
    by_run: bool = False
    objective: str = "huber"
    delta: float = 1e-3
    space: str | None = None
    n_resamples: int = 1000
    backtest_resamples: int = 200
    rollout_resamples: int = 50
    holdout_fraction: float = 0.2
    holdout: str | tuple[str, ...] | None = None
    min_tokens: float = 0.0
    filter: str | None = None
    fixed: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    seed: int = 0
    tie: dict[str, str] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def law_object(self):
        """The law as fitted: the zoo's law with ``scale`` and ``tie`` applied."""
        return configure(get_law(self.law), tie=self.tie, scale=self.scale)

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("law", "target")}


def _plan(raw: dict, study: str, i: int) -> FitPlan:
    where = {"study": study, "field": f"fits[{i}]"}
    for key in raw:
        if key not in _KEYS:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(_KEYS)}", study=study,
                            field=f"fits[{i}].{key}")
    if "law" not in raw or "target" not in raw:
        raise SpecError("a [[fits]] table needs `law` and `target`", **where)
    law = get_law(raw["law"])
    if law.name in ("loss_transfer", "downstream_sigmoid") and "x_metric" not in raw:
        raise SpecError(f"law {law.name!r} needs `x_metric` (the input metric)", **where)
    points = raw.get("points", default_points(law.name))
    if points not in ("final", "all"):
        raise SpecError(f"points must be 'final' or 'all', got {raw['points']!r}", **where)
    if raw.get("filter") is not None:
        parse_column_expression(raw["filter"], study=study, field=f"fits[{i}].filter")
    holdout = check_holdout(raw.get("holdout"), study, f"fits[{i}].holdout")
    bounds = {k: tuple(v) for k, v in (raw.get("bounds") or {}).items()}
    for name in list(bounds) + list(raw.get("fixed") or {}):
        if name not in law.param_names:
            raise SpecError(f"law {law.name!r} has no parameter {name!r}; it has {list(law.param_names)}", **where)
    tie = raw.get("tie") or {}
    scale = raw.get("scale") or {}
    if not isinstance(tie, dict) or not all(isinstance(v, str) for v in tie.values()):
        raise SpecError('tie must be a table of parameter = "parameter", e.g. tie = { beta = "alpha" }', **where)
    if not isinstance(scale, dict):
        raise SpecError("scale must be a table of variable = divisor, e.g. scale = { params = 1e6 }", **where)
    both = set(tie) & set(raw.get("fixed") or {})
    if both:
        raise SpecError(f"parameter {sorted(both)[0]!r} is both tied and fixed", **where)
    try:
        configure(law, tie=tie, scale=scale)
    except SpecError as exc:
        raise SpecError(str(exc.args[0]) if exc.args else str(exc), **where) from None
    return FitPlan(
        law=raw["law"], target=str(raw["target"]), points=points, x_metric=raw.get("x_metric"),
        by_run=bool(raw.get("by_run", False)), objective=raw.get("objective", "huber"),
        delta=float(raw.get("delta", 1e-3)), space=raw.get("space"), n_resamples=int(raw.get("n_resamples", 1000)),
        backtest_resamples=int(raw.get("backtest_resamples", 200)),
        rollout_resamples=int(raw.get("rollout_resamples", 50)), holdout=holdout,
        holdout_fraction=float(raw.get("holdout_fraction", 0.2)), min_tokens=float(raw.get("min_tokens", 0.0)),
        filter=raw.get("filter"), fixed={k: float(v) for k, v in (raw.get("fixed") or {}).items()},
        bounds=bounds, seed=int(raw.get("seed", 0)), tie=dict(tie),
        scale={k: float(v) for k, v in scale.items()},
    )


def check_holdout(value, study: str, field: str):
    """An explicit hold-out: a condition over `runs` columns (parsed here; its columns are checked
    against the runs table when the fit gathers its data) or a non-empty list of run ids."""
    if value is None:
        return None
    if isinstance(value, str):
        expr = parse_column_expression(value, study=study, field=field)
        if not expr.columns:
            raise SpecError(f"expected a condition naming at least one runs column, got {value!r}",
                            study=study, field=field)
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SpecError(f"expected a condition string or a non-empty list of run ids, got {value!r}",
                    study=study, field=field)


def holdout_runs_of(plan: FitPlan, runs: pl.DataFrame, study: str | None = None) -> list[str] | None:
    """The run ids of ``plan``'s explicit hold-out among ``runs`` (None without one). A condition is
    evaluated on the runs table alone (column expressions; no other table is read or written)."""
    if plan.holdout is None:
        return None
    field = "fits.holdout"
    if isinstance(plan.holdout, tuple):
        unknown = sorted(set(plan.holdout) - set(runs["run"].to_list()))
        if unknown:
            raise SpecError(f"held-out runs {unknown[:5]} are not among the study's runs", study=study, field=field)
        return list(plan.holdout)
    expr = parse_column_expression(plan.holdout, study=study, field=field, columns=set(runs.columns))
    try:
        mask = runs.select(expr.to_polars().alias("_held"))["_held"]
    except Exception as exc:
        raise SpecError(f"hold-out {plan.holdout!r} failed on the runs table: {str(exc).splitlines()[0]}",
                        study=study, field=field) from None
    if mask.dtype != pl.Boolean:
        raise SpecError(f"expected hold-out {plan.holdout!r} to be a true/false condition, got {mask.dtype}",
                        study=study, field=field)
    return runs.filter(mask.fill_null(False))["run"].to_list()


# Laws of a whole training curve (loss at every step under a learning-rate schedule) fit every point.
CURVE_LAWS = ("lr_annealing",)


def default_points(law: str) -> str:
    """Final-loss laws fit each run's end-of-schedule point; curve laws fit every point."""
    return "all" if law in CURVE_LAWS else "final"


def default_target(points: pl.DataFrame) -> str | None:
    """'loss' when the study has it, else its first loss-like metric."""
    metrics = points.filter(pl.col("unit").is_in(LOSS_UNITS))["metric"].unique().sort().to_list()
    if not metrics:
        return None
    return "loss" if "loss" in metrics else metrics[0]


def _check_direction(plan: FitPlan, points: pl.DataFrame | None, study: str, i: int) -> FitPlan:
    """Accuracies rise with scale: a loss law (decreasing in N, D or C towards a floor) fitted to an
    accuracy would return a flat, meaningless fit, so it is refused with the laws that fit."""
    law = get_law(plan.law)
    known = points is not None and "unit" in points.columns
    units = set(points.filter(pl.col("metric") == plan.target)["unit"].to_list()) if known else set()
    if "accuracy" in units and law.predicts == "loss" and set(law.variables) <= {"params", "tokens", "flops",
                                                                                 "unique_tokens"}:
        raise SpecError(f"target {plan.target!r} is an accuracy, which rises with scale; law {plan.law!r} "
                        f"decreases to a floor. Fit 'accuracy_sigmoid_flops' (accuracy rising with compute to a "
                        f"ceiling), or 'downstream_sigmoid' with x_metric = a loss", study=study, field=f"fits[{i}]")
    return plan


def plan_fits(study: StudySpec, points: pl.DataFrame, runs: pl.DataFrame) -> list[FitPlan]:
    if study.fits:  # approaches 1 and 2 ("envelope", "isoflop") are planned by scaling.plan.isoflop
        return [_check_direction(_plan(f, study.name, i), points, study.name, i) for i, f in enumerate(study.fits)
                if f.get("law") not in ("envelope", "isoflop")]
    if points.height == 0 or runs.filter(pl.col("params").is_not_null()).height < 4:
        return []
    target = default_target(points)
    return [FitPlan(law=name, target=target) for name in DEFAULT_LAWS] if target else []
