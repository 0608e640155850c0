"""A study's forecasts from its stored fits: the ``[forecasts]`` table of a study file.

    [forecasts]
    budgets = [1e21, 1e22]   # FLOPs; default: n_budgets log-spaced from the largest observed to factor x it
    n_budgets = 7
    factor = 1000
    unique_tokens = 1e11     # data-constrained allocation with this many unique tokens (data_constrained law)
    fixed_size = [1e9]       # loss as tokens grow for these model sizes
    targets = [ { name = "7B-4T", params = 6.9e9, tokens = 4e12, actual_run = "peteish7_eval_anneal" } ]
    downstream = [ { task_loss = "bpb_taskA", accuracy = "acc_taskA", floor = 0.25 } ]

Every usable fit (converged, no blocking flag) of a law in N and D gets compute-optimal rows;
laws in compute alone get the predicted value at each budget. Intervals come from the fit's
bootstrap draws. The law that backtests best for a target is marked ``recommended``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scaling.errors import SpecError
from scaling.fit.bootstrap import BootstrapResult
from scaling.fit.result import FitResult
from scaling.forecast import (compute_optimal_forecast, data_constrained_forecast, downstream_forecast,
                              fit_two_step, fixed_size_forecast, mark_recommended, summarize_backtests,
                              target_run_forecast, transformer_flops_per_token)
from scaling.forecast.budgets import budget_grid, budget_label
from scaling.forecast.draws import calibrated
from scaling.forecast.rollouts import is_primary, summarize_rollouts, with_interval_stats
from scaling.forecast.sanity import annotate, demoted
from scaling.forecast.rows import forecast_row
from scaling.plan.restore import Key

_KEYS = {"budgets", "n_budgets", "factor", "unique_tokens", "fixed_size", "targets", "downstream", "level",
         "n_resamples"}
_TARGET_KEYS = {"name", "params", "tokens", "unique_tokens", "actual_run", "actual", "n_layer", "seq_len", "d_model"}
_DOWNSTREAM_KEYS = {"task_loss", "accuracy", "floor", "ceiling", "min_tokens_fraction", "n_resamples"}


@dataclass
class StudyForecasts:
    rows: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def check_forecast_spec(spec: dict, study: str) -> dict:
    for key in spec:
        if key not in _KEYS:
            raise SpecError(f"unknown key {key!r}; expected one of {sorted(_KEYS)}", study=study,
                            field=f"forecasts.{key}")
    for i, t in enumerate(spec.get("targets", [])):
        bad = set(t) - _TARGET_KEYS
        if bad or "name" not in t or "params" not in t or "tokens" not in t:
            raise SpecError(f"a target needs name, params and tokens (known keys {sorted(_TARGET_KEYS)}; "
                            f"unknown {sorted(bad)})", study=study, field=f"forecasts.targets[{i}]")
    for i, d in enumerate(spec.get("downstream", [])):
        bad = set(d) - _DOWNSTREAM_KEYS
        if bad or "task_loss" not in d or "accuracy" not in d:
            raise SpecError(f"a downstream forecast needs task_loss and accuracy metrics (known keys "
                            f"{sorted(_DOWNSTREAM_KEYS)}; unknown {sorted(bad)})", study=study,
                            field=f"forecasts.downstream[{i}]")
    return spec


def _targets(spec: dict, points: pl.DataFrame, metric: str, convention: str) -> list[dict]:
    out = []
    for t in spec.get("targets", []):
        row = {k: t[k] for k in ("name", "params", "tokens", "unique_tokens") if k in t}
        actual = t.get("actual")
        if actual is None and t.get("actual_run"):
            hit = points.filter((pl.col("run") == t["actual_run"]) & (pl.col("metric") == metric) & pl.col("is_final"))
            if hit.height:
                v = hit.row(0, named=True)
                actual = v["loss_nats"] if v["unit"] in ("nats", "bits", "perplexity") else v["value"]
        row["actual"] = actual
        if convention == "6ND+attention" and all(k in t for k in ("n_layer", "seq_len", "d_model")):
            row["_fpt"] = transformer_flops_per_token(t["n_layer"], t["seq_len"], t["d_model"])
        out.append(row)
    return out


def _budget_rows(fit: FitResult, boot: BootstrapResult | None, C: np.ndarray, max_c: float, target: str) -> list[dict]:
    """A law in compute alone: the predicted value at each budget (no allocation)."""
    X = {"flops": C}
    pred = fit.predict(X)
    lo = hi = np.full(C.size, np.nan)
    if boot is not None:
        _, lo, hi = boot.predict_interval(X)
    lo, hi = calibrated(fit, pred, lo, hi, X, C)
    return [forecast_row(law=fit.law.name, target=target, kind="compute_optimal", name=budget_label(c), flops=c,
                         predicted=pred[j], ci_low=lo[j], ci_high=hi[j], extrapolation=c / max_c)
            for j, c in enumerate(C)]


def _observed(points: pl.DataFrame, group: str) -> float:
    sub = points.filter(pl.col("group_name") == group) if group else points
    return float(sub["flops"].max() or 0.0)


def forecast_study(study: str, spec: dict, convention: str, fits: dict[Key, tuple], backtests: list[dict],
                   points: pl.DataFrame, runs: pl.DataFrame) -> StudyForecasts:
    spec = check_forecast_spec(spec, study)
    out = StudyForecasts()
    level = float(spec.get("level", 0.95))
    for (group, law_name, target), (fit, boot) in fits.items():
        if not fit.converged:
            out.messages.append(f"{law_name} -> {target} [{group}]: not used, the fit is not usable ({fit.flags})")
            continue
        max_c = _observed(points, group)
        if not max_c > 0:
            continue
        C = np.asarray(spec["budgets"], dtype=float) if "budgets" in spec else budget_grid(
            max_c, factor=float(spec.get("factor", 1000.0)), n=int(spec.get("n_budgets", 7)))
        rows: list[dict] = []
        variables = set(fit.law.variables)
        if variables == {"flops"}:
            rows += _budget_rows(fit, boot, C, max_c, target)
        elif {"params", "tokens"} <= variables:
            if "unique_tokens" not in variables:
                res = compute_optimal_forecast(fit, boot, max_observed_flops=max_c, budgets=C, target=target,
                                               level=level)
                rows += res.rows
                out.messages += res.messages
            elif "unique_tokens" in spec:
                res = data_constrained_forecast(fit, boot, C, spec["unique_tokens"], max_observed_flops=max_c,
                                                target=target, level=level)
                rows += res.rows
            for t in _targets(spec, points, target, convention):
                fpt = t.pop("_fpt", None)
                if "unique_tokens" in variables:
                    t.setdefault("unique_tokens", t["tokens"])
                rows += target_run_forecast(fit, boot, [t], max_observed_flops=max_c, flops_per_token=fpt,
                                            target=target, level=level).rows
            for n in spec.get("fixed_size", []):
                kw = {"unique_tokens": spec["unique_tokens"]} if "unique_tokens" in variables and \
                    "unique_tokens" in spec else {}
                if "unique_tokens" in variables and not kw:
                    continue
                rows += fixed_size_forecast(fit, boot, float(n), max_observed_flops=max_c, target=target,
                                            level=level, **kw).rows
        for r in rows:
            r["group_name"] = group
        out.messages += _sanity(rows, fit, boot, points, target)
        out.rows += rows
    for d in spec.get("downstream", []):
        rows, msg = _downstream(d, spec, points, runs, convention, level)
        out.rows += rows
        out.messages += msg
    flags = {(g, law, t): f.flags for (g, law, t), (f, _) in fits.items()}
    primary = [r for r in backtests if is_primary(r)]
    out.summary = summarize_backtests(primary, {(law, t): fl for (g, law, t), fl in flags.items()}) \
        if primary else []
    out.summary = with_interval_stats(out.summary, primary) + summarize_rollouts(backtests)
    for r in out.rows:
        r["study"] = study
    out.rows = mark_recommended(out.rows, out.summary)
    for r in out.rows:  # a forecast the metric cannot take, or from a law not meant for it, is never recommended
        if demoted(r):
            r["recommended"] = False
    return out


def _unit(points: pl.DataFrame, metric: str) -> str | None:
    units = points.filter(pl.col("metric") == metric)["unit"].unique().to_list()
    return units[0] if len(units) == 1 else None


def _sanity(rows: list[dict], fit: FitResult, boot: BootstrapResult | None, points: pl.DataFrame,
            target: str) -> list[str]:
    """Flag forecasts outside what the fit can vouch for (``scaling.forecast.sanity``); messages say why."""
    tpp = fit.settings.get("fitted_tokens_per_param")
    irreducible = None
    if "E" in fit.params and boot is not None:
        irreducible = (fit.params["E"], boot.interval("E")[0])
    msgs = annotate(rows, unit=_unit(points, target), fitted_tokens_per_param=tuple(tpp) if tpp else None,
                    irreducible=irreducible)
    unknown = [f for f in fit.flags if f.startswith("not_identified:")]
    if unknown and rows:  # a forecast inherits the parameters its fit could not pin down
        for r in rows:
            r["warnings"] = ",".join([f for f in (r.get("warnings") or "").split(",") if f] + unknown)
        msgs.append(f"{fit.law.name} -> {target}: forecasts rest on parameters the data do not identify: "
                    f"{', '.join(unknown)}")
    return msgs


def _downstream(d: dict, spec: dict, points: pl.DataFrame, runs: pl.DataFrame, convention: str, level: float):
    """Two-step forecast (Bhagia et al. 2024): (N, D) -> task loss (final points) -> accuracy (all points)."""
    loss = points.filter(pl.col("metric") == d["task_loss"])
    acc = points.filter(pl.col("metric") == d["accuracy"])
    if loss.height == 0 or acc.height == 0:
        return [], [f"downstream {d['task_loss']} -> {d['accuracy']}: metric not found"]
    targets = _targets(spec, points, d["accuracy"], convention)
    if not targets:
        return [], [f"downstream {d['accuracy']}: no [[forecasts.targets]] to forecast"]
    held = [t.get("actual_run") for t in spec.get("targets", []) if t.get("actual_run")]
    step1 = loss.filter(pl.col("is_final") & ~pl.col("run").is_in(held)).join(
        runs.select("run", "params"), on="run").drop_nulls(["params", "tokens", "value"])
    frac = float(d.get("min_tokens_fraction", 0.1))
    key = pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_k")
    pairs = loss.with_columns(key).join(acc.select("run", key, pl.col("value").alias("acc")), on=["run", "_k"]) \
        .filter(~pl.col("run").is_in(held)) \
        .filter(pl.col("tokens") >= frac * pl.col("tokens").max().over("run"))
    fixed = {k: float(d[k]) for k in ("floor", "ceiling") if k in d}
    two = fit_two_step({"params": step1["params"].to_numpy(), "tokens": step1["tokens"].to_numpy()},
                       step1["value"].to_numpy(), pairs["value"].to_numpy(), pairs["acc"].to_numpy(),
                       runs=step1["run"].to_numpy(), step2_runs=pairs["run"].to_numpy(), step2_fixed=fixed or None,
                       n_resamples=int(d.get("n_resamples", spec.get("n_resamples", 200))))
    for t in targets:
        t.pop("_fpt", None)
    res = downstream_forecast(two, targets, target=d["accuracy"], level=level,
                              max_observed_flops=float(step1["flops"].max()))
    for r in res.rows:
        r["group_name"] = ""
    sanity = annotate(res.rows, unit=_unit(points, d["accuracy"]))
    if "sigmoid_inverted" in two.step2.flags:
        for r in res.rows:
            r["warnings"] = ",".join([f for f in (r.get("warnings") or "").split(",") if f] + ["sigmoid_inverted"])
        sanity.append(f"downstream {d['accuracy']}: sigmoid_inverted: the accuracy sigmoid has floor "
                      f"{two.step2.params['floor']:.3g} and ceiling {two.step2.params['ceiling']:.3g}")
    msgs = sanity + [f"downstream {d['accuracy']}: step-1 {d['task_loss']} for {s['name']} = {s['loss']:.4f} "
            f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]" for s in res.settings["step1_loss"]]
    return res.rows, msgs
