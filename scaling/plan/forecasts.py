"""A study's forecasts from its stored fits: the ``[forecasts]`` table of a study file.

    [forecasts]
    budgets = [1e21, 1e22]   # FLOPs; default: n_budgets log-spaced from the largest fitted to factor x it
    n_budgets = 7
    factor = 1000
    unique_tokens = 1e11     # data-constrained allocation with this many unique tokens (data_constrained law)
    fixed_size = [1e9]       # loss as tokens grow for these model sizes
    targets = [ { name = "7B-4T", params = 6.9e9, tokens = 4e12, actual_run = "peteish7_eval_anneal" } ]
    # or indexed by size and tokens per parameter M = D/N (over-training, Gadre et al. 2024):
    # targets = [ { name = "1.4B x M=640", params = 1.4e9, tokens_per_param = 640 } ]
    downstream = [ { task_loss = "bpb_taskA", accuracy = "acc_taskA", floor = 0.25 } ]
                             # optional `filter` (SQL over points); default: the study's [[fits]] filter

A target's ``actual_run`` never enters any fit (``scaling.plan.scope``); budgets and
``extrapolation`` start from the largest compute a fit actually used.

Every usable fit (converged, no blocking flag) of a law in N and D gets compute-optimal rows;
laws in compute alone get the predicted value at each budget. Intervals come from the fit's
bootstrap draws. The law that backtests best for a target is marked ``recommended``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scaling.errors import SpecError, problem_of
from scaling.fit.bootstrap import BootstrapResult
from scaling.fit.result import FitResult
from scaling.forecast import (compute_optimal_forecast, data_constrained_forecast, downstream_forecast,
                              fit_two_step, fixed_size_forecast, mark_recommended, summarize_backtests,
                              target_run_forecast, transformer_flops_per_token)
from scaling.forecast.budgets import FlopsPerToken, budget_grid, budget_label, family_flops_per_token
from scaling.forecast.draws import calibrated
from scaling.forecast.rollouts import is_primary, summarize_rollouts, with_interval_stats
from scaling.forecast.sanity import annotate, demoted
from scaling.forecast.rows import forecast_row
from scaling.plan.restore import Key
from scaling.plan.scope import FitScope, study_scope
from scaling.spec import check_forecast_spec

DOWNSTREAM_STEP1 = "chinchilla"  # the law of step 1 of a two-step downstream forecast: (N, D) -> task loss


@dataclass
class StudyForecasts:
    rows: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    fitted_runs: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # downstream fits -> runs per step
    failures: list[str] = field(default_factory=list)  # forecasts that could not be made, each named


def _failure(study: str, where: str, law: str, target: str, group: str, exc: Exception, note: str = "") -> str:
    """``study 's', <where><law> -> 'target'<note>, group 'g': <problem>`` for a forecast that failed."""
    grp = f"group {group!r}" if group else "group '' (the whole study)"
    return f"study {study!r}, {where}{law} -> {target!r}{note}, {grp}: {problem_of(exc)}"


def downstream_filter(study) -> str | None:
    """The filter a study's downstream fits default to: the one its ``[[fits]]`` tables share.

    When the ``[[fits]]`` tables use different filters, every downstream forecast must set its own."""
    filters = {f.get("filter") for f in (study.fits or [])}
    if len(filters) <= 1:
        return next(iter(filters), None)
    for i, d in enumerate(study.forecasts.get("downstream", [])):
        if "filter" not in d:
            raise SpecError(f"the [[fits]] tables use different filters ({sorted(map(str, filters))}), so a "
                            "downstream forecast must say which runs it fits: set its `filter`", study=study.name,
                            field=f"forecasts.downstream[{i}].filter")
    return None


def _targets(spec: dict, points: pl.DataFrame, metric: str, convention: str,
             family: FlopsPerToken | None = None) -> list[dict]:
    """The named targets with their observed value of ``metric`` and, under 6ND+attention, their
    FLOPs per token (``_fpt``): the target's own shape when given, else the study family's."""
    out = []
    for t in spec.get("targets", []):
        row = {k: t[k] for k in ("name", "params", "tokens", "unique_tokens") if k in t}
        if "tokens_per_param" in t:  # a target indexed by (N, M): D = M·N
            row["tokens"] = float(t["tokens_per_param"]) * float(t["params"])
        actual = t.get("actual")
        if actual is None and t.get("actual_run"):
            # the run's point at the target's tokens when it has one (a checkpoint before the end), else its last
            run_pts = points.filter((pl.col("run") == t["actual_run"]) & (pl.col("metric") == metric))
            hit = run_pts.filter(((pl.col("tokens") - float(t["tokens"])).abs() <= 1e-9 * float(t["tokens"])))
            if hit.height == 0:
                hit = run_pts.filter(pl.col("is_final"))
            if hit.height:
                v = hit.row(0, named=True)
                actual = v["loss_nats"] if v["unit"] in ("nats", "bits", "perplexity") else v["value"]
        row["actual"] = actual
        if convention == "6ND+attention":
            if all(k in t for k in ("n_layer", "seq_len", "d_model")):
                row["_fpt"] = transformer_flops_per_token(t["n_layer"], t["seq_len"], t["d_model"])
            else:
                row["_fpt"] = family
        out.append(row)
    return out


def _family(convention: str, runs: pl.DataFrame | None, scope: FitScope) -> FlopsPerToken | None:
    """Under 6ND+attention, FLOPs per token as a function of N from the fitted runs' shapes."""
    if convention != "6ND+attention" or runs is None:
        return None
    need = ("params", "n_layer", "seq_len", "d_model")
    if any(c not in runs.columns for c in need):
        return None
    fam = runs.filter(~pl.col("run").is_in(sorted(scope.held_out))).drop_nulls(list(need))
    if fam.height == 0:
        return None
    attn = 6.0 * fam["n_layer"].cast(pl.Float64) * fam["seq_len"].cast(pl.Float64) * fam["d_model"].cast(pl.Float64)
    return family_flops_per_token(fam["params"].to_numpy(), attn.to_numpy())


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


def forecast_study(study: str, spec: dict, convention: str, fits: dict[Key, tuple], backtests: list[dict],
                   points: pl.DataFrame, runs: pl.DataFrame, *, fit_filter: str | None = None) -> StudyForecasts:
    """Forecast rows and the backtest ranking of one study.

    Budgets and ``extrapolation`` are measured from each fit's largest fitted compute
    (``max_fitted_flops`` in its settings), never from a held-out target run. ``fit_filter``: the
    study's ``[[fits]]`` filter, the default filter of its two-step downstream fits. Under the
    6ND+attention convention every allocation uses FLOPs per token with the attention term.
    """
    spec = check_forecast_spec(spec, study)
    scope = study_scope(spec)
    out = StudyForecasts()
    level = float(spec.get("level", 0.95))
    family = _family(convention, runs, scope)
    if convention == "6ND+attention" and family is None:
        out.messages.append("6ND+attention: no fitted run has n_layer, seq_len and d_model, so no allocation "
                            "can count the attention term; compute-optimal forecasts are skipped")
    for (group, law_name, target), (fit, boot) in fits.items():
        label = f"{law_name} -> {target}" + (f" [{group}]" if group else "")
        if not fit.converged:
            out.messages.append(f"{label}: not used, the fit is not usable ({fit.flags})")
            continue
        max_c = fit.settings.get("max_fitted_flops")
        if max_c is None or not max_c > 0:
            out.messages.append(f"{label}: no forecasts, the fit records no fitted compute (refit the study)")
            continue
        try:  # a forecast that fails is named; the others still go to the table
            rows, msgs = _law_rows(spec, fit, boot, float(max_c), target, points, convention, family, level)
        except Exception as exc:  # noqa: BLE001
            out.failures.append(_failure(study, "", law_name, target, group, exc))
            continue
        for r in rows:
            r["group_name"] = group
        out.messages += msgs + _sanity(rows, fit, boot, points, target)
        out.rows += rows
    for i, d in enumerate(spec.get("downstream", [])):
        try:
            rows, msg, used = _downstream(d, spec, points, runs, convention, level, scope,
                                          d.get("filter", fit_filter), family)
        except Exception as exc:  # noqa: BLE001
            out.failures.append(_failure(study, f"forecasts.downstream[{i}] ", f"{DOWNSTREAM_STEP1}+downstream_sigmoid",
                                         d["accuracy"], "", exc, note=f" (task loss {d['task_loss']!r})"))
            continue
        out.rows += rows
        out.messages += msg
        if used:
            out.fitted_runs[f"downstream:{d['accuracy']}"] = used
    flags = {(g, law, t): f.flags for (g, law, t), (f, _) in fits.items()}
    primary = [r for r in backtests if is_primary(r)]
    out.summary = summarize_backtests(primary, flags) if primary else []
    out.summary = with_interval_stats(out.summary, primary) + summarize_rollouts(backtests)
    for r in out.rows:
        r["study"] = study
    out.rows = mark_recommended(out.rows, out.summary)
    for r in out.rows:  # a forecast the metric cannot take, or from a law not meant for it, is never recommended
        if demoted(r):
            r["recommended"] = False
    return out


def _law_rows(spec: dict, fit: FitResult, boot: BootstrapResult | None, max_c: float, target: str,
              points: pl.DataFrame, convention: str, family: FlopsPerToken | None, level: float):
    """The forecast rows of one usable fit (without ``group_name``) and its messages."""
    C = np.asarray(spec["budgets"], dtype=float) if "budgets" in spec else budget_grid(
        max_c, factor=float(spec.get("factor", 1000.0)), n=int(spec.get("n_budgets", 7)))
    rows: list[dict] = []
    messages: list[str] = []
    variables = set(fit.law.variables)
    if variables == {"flops"}:
        rows += _budget_rows(fit, boot, C, max_c, target)
    elif {"params", "tokens"} <= variables:
        attention_missing = convention == "6ND+attention" and family is None
        if "unique_tokens" not in variables and not attention_missing:
            res = compute_optimal_forecast(fit, boot, max_observed_flops=max_c, budgets=C, target=target,
                                           level=level, flops_per_token=family)
            rows += res.rows
            messages += res.messages
        elif "unique_tokens" in spec and not attention_missing:
            res = data_constrained_forecast(fit, boot, C, spec["unique_tokens"], max_observed_flops=max_c,
                                            target=target, level=level, flops_per_token=family)
            rows += res.rows
        for t in _targets(spec, points, target, convention, family):
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
                                        level=level, flops_per_token=family, **kw).rows
    return rows, messages


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
        _add_warnings(rows, unknown)
        msgs.append(f"{fit.law.name} -> {target}: forecasts rest on parameters the data do not identify: "
                    f"{', '.join(unknown)}")
    if "sigmoid_inverted" in fit.flags and rows:  # an accuracy sigmoid upside down or outside [0, 1]
        _add_warnings(rows, ["sigmoid_inverted"])
        msgs.append(f"{fit.law.name} -> {target}: sigmoid_inverted: the accuracy sigmoid has floor "
                    f"{fit.params['floor']:.3g} and ceiling {fit.params['ceiling']:.3g}")
    return msgs


def _add_warnings(rows: list[dict], flags: list[str]) -> None:
    """Append ``flags`` to each row's comma-separated ``warnings`` (each flag once)."""
    for r in rows:
        old = [f for f in (r.get("warnings") or "").split(",") if f]
        r["warnings"] = ",".join(old + [f for f in flags if f not in old])


def _downstream(d: dict, spec: dict, points: pl.DataFrame, runs: pl.DataFrame, convention: str, level: float,
                scope: FitScope, filter: str | None, family: FlopsPerToken | None):
    """Two-step forecast (Bhagia et al. 2024): (N, D) -> task loss (final points) -> accuracy (all points).

    Both steps fit only the points ``scope`` allows under ``filter``: the targets' runs never enter.
    Step 1's draws are calibrated on rollouts of its own runs before chaining
    (``scaling.forecast.downstream``); either step's ``not_identified`` parameters go to the rows'
    warnings. Returns the rows, messages and the runs each step fitted."""
    field = "forecasts.downstream.filter"
    loss = points.filter(pl.col("metric") == d["task_loss"])
    acc = points.filter(pl.col("metric") == d["accuracy"])
    if loss.height == 0 or acc.height == 0:
        return [], [f"downstream {d['task_loss']} -> {d['accuracy']}: metric not found"], {}
    targets = _targets(spec, points, d["accuracy"], convention, family)
    if not targets:
        return [], [f"downstream {d['accuracy']}: no [[forecasts.targets]] to forecast"], {}
    fitted = scope.select(loss, filter=filter, field=field)
    step1 = fitted.filter(pl.col("is_final")).join(
        runs.select("run", "params"), on="run").drop_nulls(["params", "tokens", "value"]).with_columns(
        flops=pl.coalesce(pl.col("flops"), 6.0 * pl.col("params") * pl.col("tokens"))).sort("run", "tokens")
    frac = float(d.get("min_tokens_fraction", 0.1))
    key = pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_k")
    pairs = fitted.with_columns(key).join(
        scope.select(acc, filter=filter, field=field).select("run", key, pl.col("value").alias("acc")),
        on=["run", "_k"]).filter(pl.col("tokens") >= frac * pl.col("tokens").max().over("run")).sort("run", "_k")
    # (sorted: a join's order varies from run to run, and with it the last bits of every sum of the fits)
    fixed = {k: float(d[k]) for k in ("floor", "ceiling") if k in d}
    two = fit_two_step({"params": step1["params"].to_numpy(), "tokens": step1["tokens"].to_numpy()},
                       step1["value"].to_numpy(), pairs["value"].to_numpy(), pairs["acc"].to_numpy(),
                       runs=step1["run"].to_numpy(), step2_runs=pairs["run"].to_numpy(), step2_fixed=fixed or None,
                       step1_law=DOWNSTREAM_STEP1, compute=step1["flops"].to_numpy(),
                       n_resamples=int(d.get("n_resamples", spec.get("n_resamples", 200))), task_name=d["task_loss"])
    max_c = float(step1["flops"].max())
    rows, losses = [], []
    for t in targets:
        fpt = t.pop("_fpt", None)
        res = downstream_forecast(two, [t], target=d["accuracy"], level=level, max_observed_flops=max_c,
                                  flops_per_token=fpt)
        rows += res.rows
        losses += res.settings["step1_loss"]
    for r in rows:
        r["group_name"] = ""
    used = {"step1": sorted(set(step1["run"].to_list())), "step2": sorted(set(pairs["run"].to_list()))}
    sanity = annotate(rows, unit=_unit(points, d["accuracy"]))
    unknown = [f for f in two.step1.flags + two.step2.flags if f.startswith("not_identified:")]
    if unknown and rows:  # the forecast rests on parameters of either step the data do not pin down
        _add_warnings(rows, unknown)
        sanity.append(f"downstream {d['accuracy']}: forecasts rest on parameters the data do not identify: "
                      f"{', '.join(unknown)}")
    if "sigmoid_inverted" in two.step2.flags:
        _add_warnings(rows, ["sigmoid_inverted"])
        sanity.append(f"downstream {d['accuracy']}: sigmoid_inverted: the accuracy sigmoid has floor "
                      f"{two.step2.params['floor']:.3g} and ceiling {two.step2.params['ceiling']:.3g}")
    msgs = [f"downstream {d['accuracy']}: step 1 fitted {len(used['step1'])} runs, step 2 {pairs.height} "
            f"checkpoints of {len(used['step2'])} runs"] + sanity
    msgs += [f"downstream {d['accuracy']}: step-1 {d['task_loss']} for {s['name']} = {s['loss']:.4f} "
             f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]" for s in losses]
    return rows, msgs, used
