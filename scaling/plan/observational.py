"""Observational scaling laws (Ruan et al. 2024) as a study-level method: ``[observational]``.

    [observational]
    benchmarks = ["mmlu", "arc_c", "hellaswag", "winogrande", "truthfulqa", "xwinograd", "humaneval"]
    target = "gsm8k"          # the benchmark predicted (an accuracy rising with capability)
    cutoff = 2e22             # FLOPs: models above are held out
    n_components = 3
    family = "family"         # the group label naming each model's family

(all keys: `scaling.spec.check_observational`). Each model (run) of the study contributes its final
value of every benchmark metric (missing ones are imputed) and its training compute (`runs.flops`);
its family is its ``family`` label. `scaling.fit.observational` fits the capability space, the
per-family compute maps and the sigmoid link on the models at or below the cut-off (models a
study forecasts, ``[forecasts] targets = [{ actual_run = ... }]``, never enter it). Rows go to:

- `observational_components`: explained variance and loadings per component, with intervals;
- `observational_families`: each family's map (own, shared slope or typical family), PC1 slope and
  compute efficiency against the reference family, with intervals;
- `observational_models`: every model's capability and predictions (from its scores, and from its
  compute and family), and the named ``models`` forecast from compute and family;
- `backtests`: the held-out models (above the cut-off), group '' (all families), law
  ``observational`` (predicted from their observed benchmark scores) and ``observational_compute``
  (from compute and family alone), beside compute-only baselines fitted by the law zoo to the same
  models below the cut-off (``accuracy_sigmoid_flops`` pooled over families; ``power_law_flops`` on
  ``ceiling - target``, the error, which falls with compute as a loss does), all on one hold-out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scaling.errors import FitError, ScalingError, SpecError
from scaling.fit.backtest import backtest
from scaling.fit.observational import ObservationalResult, observational_scaling
from scaling.plan.scope import FitScope

LAW, LAW_COMPUTE = "observational", "observational_compute"
NO_FAMILY = "(no family)"


@dataclass
class ObservationalStudy:
    """One observational law fitted to a study: the result and its rows for the tables."""

    spec: dict
    result: ObservationalResult | None = None
    runs: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    flops: np.ndarray | None = None
    actual: np.ndarray | None = None
    component_rows: list[dict] = field(default_factory=list)
    family_rows: list[dict] = field(default_factory=list)
    model_rows: list[dict] = field(default_factory=list)
    backtest_rows: list[dict] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def holdout_label(self) -> str:
        return f"observational: flops > {self.spec['cutoff']:.3g}"


def _located(exc: ScalingError, study: str) -> ScalingError:
    field_ = exc.where.field
    return SpecError(exc.problem, study=study, field=f"observational.{field_}" if field_ else "observational",
                     row=exc.where.row)


def model_table(obs: dict, points: pl.DataFrame, runs: pl.DataFrame, scope: FitScope, study: str) -> pl.DataFrame:
    """One row per model (run): run, group_name, family, flops and a column per benchmark and the target
    (null where the model has no value). A benchmark or target without any value is a `SpecError`."""
    metrics = obs["benchmarks"] + [obs["target"]]
    pts = points.filter(pl.col("metric").is_in(metrics))
    if scope.held_out:
        pts = pts.filter(~pl.col("run").is_in(sorted(scope.held_out)))
    known = set(points["metric"].unique().to_list())
    for i, m in enumerate(metrics):
        if m not in known:
            where = f"benchmarks[{i}]" if i < len(obs["benchmarks"]) else "target"
            raise SpecError(f"no points for metric {m!r}; the study has {sorted(known)[:20]}", study=study,
                            field=f"observational.{where}")
    # each run's final value of each metric (its end-of-schedule point)
    final = pts.filter(pl.col("is_final")).sort("run", "metric", "step", nulls_last=False) \
        .group_by("run", "metric", maintain_order=True).agg(pl.col("value").last())
    wide = final.pivot(on="metric", index="run", values="value")
    for m in metrics:
        if m not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(m))
    label = obs["family"]
    meta = runs.select("run", "group_name", "labels", "flops")
    fam = [NO_FAMILY if label is None else (json.loads(lab or "{}").get(label) or NO_FAMILY)
           for lab in meta["labels"].to_list()]
    meta = meta.with_columns(family=pl.Series(fam, dtype=pl.Utf8) if label is not None
                             else pl.lit("", dtype=pl.Utf8)).drop("labels")
    return meta.join(wide, on="run", how="inner").sort("run").select(
        "run", "group_name", "family", "flops", *[pl.col(m).cast(pl.Float64) for m in metrics])


def _interval(res: ObservationalResult, key: str, i=None):
    lo, hi = res.intervals.get(key, (None, None))
    if lo is None:
        return None, None
    lo, hi = (lo, hi) if i is None else (lo[i], hi[i])
    return lo, hi


def _f(x) -> float | None:
    x = None if x is None else float(x)
    return x if x is not None and np.isfinite(x) else None


def _rel(pred, actual) -> float | None:
    return _f((pred - actual) / actual) if actual != 0 else None


def observational_study(study: str, obs: dict, points: pl.DataFrame, runs: pl.DataFrame,
                        scope: FitScope = FitScope()) -> ObservationalStudy:
    """Fit the study's ``[observational]`` law and build its table rows (see the module docstring)."""
    out = ObservationalStudy(obs)
    table = model_table(obs, points, runs, scope, study)
    if table.height == 0:
        raise SpecError("no model has a value of any benchmark", study=study, field="observational.benchmarks")
    metrics = obs["benchmarks"] + [obs["target"]]
    S = table.select(metrics).to_numpy().astype(float)
    C = table["flops"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    fam = table["family"].to_list()
    try:
        res = observational_scaling(S, metrics, C, fam, target=obs["target"], n_components=obs["n_components"],
                                    cutoff=obs["cutoff"], floor=obs["floor"], ceiling=obs["ceiling"],
                                    reference_family=obs["reference_family"],
                                    min_family_models=obs["min_family_models"], n_resamples=obs["n_resamples"],
                                    level=obs["level"], seed=obs["seed"])
    except FitError as exc:
        raise _located(exc, study) from None
    for i, m in enumerate(obs["models"]):
        if m["family"] not in res.families:
            raise SpecError(f"family {m['family']!r} is not among the study's families {list(res.families)}",
                            study=study, field=f"observational.models[{i}].family")
    out.result, out.messages = res, list(res.messages)
    out.runs, out.groups, out.families, out.flops = table["run"].to_list(), table["group_name"].to_list(), fam, C
    y = S[:, -1]
    out.actual = y
    target = obs["target"]
    base = {"study": study, "target": target}
    ev_lo, ev_hi = _interval(res, "explained_variance")
    ld_lo, ld_hi = _interval(res, "loadings")
    for k in range(res.n_components):
        for j, b in enumerate(res.benchmarks):
            out.component_rows.append({
                **base, "component": k + 1, "benchmark": b, "loading": float(res.loadings[j, k]),
                "loading_ci_low": _f(ld_lo[j, k]) if ld_lo is not None else None,
                "loading_ci_high": _f(ld_hi[j, k]) if ld_hi is not None else None,
                "explained_variance": float(res.explained_variance[k]),
                "explained_variance_ci_low": _f(ev_lo[k]) if ev_lo is not None else None,
                "explained_variance_ci_high": _f(ev_hi[k]) if ev_hi is not None else None,
                "n_models": len(out.runs)})
    sl_lo, sl_hi = _interval(res, "slopes")
    ef_lo, ef_hi = _interval(res, "efficiency")
    label = obs["family"]
    for i, f in enumerate(res.families):
        out.family_rows.append({
            **base, "family": f, "group_name": f"{label}={f}" if label and f != NO_FAMILY else "",
            "n_models": int(sum(1 for x in fam if x == f)), "n_fitted": int(res.n_map_models[i]),
            "map": res.family_map[i], "slope": _f(res.slopes[i, 0]),
            "slope_ci_low": _f(sl_lo[i, 0]) if sl_lo is not None else None,
            "slope_ci_high": _f(sl_hi[i, 0]) if sl_hi is not None else None,
            "efficiency": _f(res.efficiency[f]),
            "efficiency_ci_low": _f(ef_lo[i]) if ef_lo is not None else None,
            "efficiency_ci_high": _f(ef_hi[i]) if ef_hi is not None else None,
            "reference": f == res.reference_family, "reference_flops": _f(res.reference_flops),
            "flags": ",".join(res.family_flags(f))})
    p_lo, p_hi = _interval(res, "prediction")
    c_lo, c_hi = _interval(res, "prediction_from_compute")
    for i, run in enumerate(out.runs):
        split = "held_out" if res.held_out[i] else "fitted" if res.train[i] else \
            "no_target" if not np.isfinite(y[i]) else "no_compute"
        out.model_rows.append({
            **base, "run": run, "group_name": out.groups[i], "family": fam[i], "flops": _f(C[i]), "split": split,
            "actual": _f(y[i]), "capability": float(res.capabilities[i, 0]), "imputed": int(res.imputed[i]),
            "predicted": _f(res.predicted[i]), "ci_low": _f(p_lo[i]) if p_lo is not None else None,
            "ci_high": _f(p_hi[i]) if p_hi is not None else None,
            "predicted_from_compute": _f(res.predicted_from_compute[i]),
            "compute_ci_low": _f(c_lo[i]) if c_lo is not None else None,
            "compute_ci_high": _f(c_hi[i]) if c_hi is not None else None})
    for m in obs["models"]:
        lo, hi = res.forecast_interval(m["flops"], m["family"], obs["level"], prediction=True)
        out.model_rows.append({
            **base, "run": m["name"], "group_name": f"{label}={m['family']}" if label else "", "family": m["family"],
            "flops": m["flops"], "split": "named", "predicted_from_compute": _f(res.forecast(m["flops"], m["family"])),
            "compute_ci_low": _f(lo), "compute_ci_high": _f(hi)})
    if obs["cutoff"] is not None and res.held_out.any():
        out.backtest_rows = _observational_backtests(out) + _baseline_backtests(out, study)
    return out


def _observational_backtests(out: ObservationalStudy) -> list[dict]:
    res, y, C = out.result, out.actual, out.flops
    fitted_max = float(np.nanmax(np.where(res.train & np.isfinite(C), C, np.nan)))
    rows = []
    for law, pred_key, boot_key, pi_key in ((LAW, "predicted", "predicted", "prediction"),
                                            (LAW_COMPUTE, "predicted_from_compute", "predicted_from_compute",
                                             "prediction_from_compute")):
        pred = getattr(res, pred_key)
        lo, hi = _interval(res, pi_key)
        blo, bhi = _interval(res, boot_key)
        for i in np.flatnonzero(res.held_out):
            a, p = float(y[i]), float(pred[i])
            row = {"group_name": "", "law": law, "target": res.target, "holdout": out.holdout_label,
                   "primary": True, "run": out.runs[i], "flops": float(C[i]), "fitted_max_flops": fitted_max,
                   "extrapolation": float(C[i]) / fitted_max, "actual": a, "predicted": _f(p),
                   "rel_error": _rel(p, a)}
            if lo is not None:
                row.update(ci_low=_f(lo[i]), ci_high=_f(hi[i]), covered=bool(lo[i] <= a <= hi[i]),
                           boot_ci_low=_f(blo[i]), boot_ci_high=_f(bhi[i]), boot_covered=bool(blo[i] <= a <= bhi[i]))
            rows.append(row)
    return rows


def _baseline_backtests(out: ObservationalStudy, study: str) -> list[dict]:
    """Compute-only laws of the zoo, pooled over families, fitted to the same models below the cut-off
    and scored on the same held-out models."""
    obs, res = out.spec, out.result
    ok = np.isfinite(out.flops) & np.isfinite(out.actual)
    runs = np.array(out.runs, dtype=object)[ok]
    C, y = out.flops[ok], out.actual[ok]
    held = [r for r, h in zip(out.runs, res.held_out) if h]
    floor, ceiling = obs["floor"], obs["ceiling"]
    rows = []
    for law in obs["baselines"]:
        # accuracy rising to a ceiling: the sigmoid in compute with the link's floor and ceiling; or the
        # error to the ceiling falling as a power law in compute (a loss-like law on ceiling - target)
        rising = law == "accuracy_sigmoid_flops"
        yy = y if rising else ceiling - y
        kwargs = {"fixed": {"floor": floor, "ceiling": ceiling}} if rising else {}
        try:
            bt = backtest(law, {"flops": C}, yy, runs, C, holdout=held, n_resamples=obs["backtest_resamples"],
                          level=obs["level"], seed=obs["seed"], **kwargs)
        except ScalingError as exc:
            out.messages.append(f"baseline {law}: not fitted ({exc.problem})")
            continue
        except (ValueError, np.linalg.LinAlgError) as exc:
            out.messages.append(f"baseline {law}: not fitted ({type(exc).__name__}: {exc})")
            continue
        for r in bt.rows:
            conv = (lambda v: v) if rising else (lambda v: ceiling - v)  # noqa: E731 - back to the target's scale
            a, p = conv(r["actual"]), conv(r["predicted"])
            lo, hi = sorted((conv(r["ci_low"]), conv(r["ci_high"])))
            blo, bhi = sorted((conv(r["boot_ci_low"]), conv(r["boot_ci_high"])))
            rows.append({"group_name": "", "law": law, "target": res.target, "holdout": out.holdout_label,
                         "primary": True, "run": str(r["run"]), "flops": r["compute"],
                         "fitted_max_flops": r["fitted_max_compute"], "extrapolation": r["extrapolation"],
                         "actual": a, "predicted": p, "ci_low": _f(lo), "ci_high": _f(hi), "rel_error": _rel(p, a),
                         "covered": r["covered"], "boot_ci_low": _f(blo), "boot_ci_high": _f(bhi),
                         "boot_covered": r["boot_covered"]})
        if not bt.fit.converged or bt.fit.flags:
            out.messages.append(f"baseline {law}: {'not converged' if not bt.fit.converged else ''}"
                                f"{','.join(bt.fit.flags)}")
    return rows


def held_out_errors(rows: list[dict]) -> dict[str, float]:
    """Mean absolute error on the held-out models per law (the numbers docs/results.md states)."""
    by: dict[str, list] = {}
    for r in rows:
        if r.get("predicted") is not None:
            by.setdefault(r["law"], []).append(abs(r["predicted"] - r["actual"]))
    return {law: float(np.mean(v)) for law, v in by.items()}


def observational_figure(path, out: ObservationalStudy, study: str):
    """The figure of an observational law (`scaling.plots.observational`), or None without a result."""
    from scaling.plots.observational import plot_observational

    res = out.result
    if res is None:
        return None
    split = np.where(res.held_out, "held_out", np.where(res.train, "fitted", "other"))
    index = res.capabilities @ res.link[:-1] + res.link[-1]
    fams = list(res.families)
    return plot_observational(
        path, flops=out.flops, capability=res.capabilities[:, 0], families=out.families, split=split, index=index, actual=out.actual, floor=res.floor, ceiling=res.ceiling,
        maps={f: (float(res.slopes[i, 0]), float(res.intercepts[i, 0])) for i, f in enumerate(fams)
              if res.family_map[i] == "family"},
        title=f"{study}: observational scaling law -> {res.target}", target_label=res.target,
        explained=float(res.explained_variance[0]))
