"""Fits layer: every law the study names, per group, with bootstrap intervals and backtests."""

from dataclasses import replace

import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetSpec,
                     MaterializeResult, MetadataValue, multi_asset)

from assets.metadata import check_metadata, plot, preview, report_link
from assets._shared import INGESTED, Warehouse, cluster_map, study_partitions
from scaling.errors import problem_of
from scaling.plan.checks import fit_checks
from scaling.plan.figures import fitted_frontier, frontier_figure
from scaling.plan.study_figures import figure_name
from scaling.plan.fits import plan_fits
from scaling.plan.isoflop import fit_isoflop, plan_isoflops
from scaling.plan.observational import held_out_errors, observational_figure, observational_study
from scaling.plan.run import FitFailure, fit_study
from scaling.plan.scope import study_scope
from warehouse.ingest import study_write
from warehouse.lake import metric_units, read_table, scan_table
from warehouse.tables import (BACKTESTS, FORECASTS, ISOFLOP_OPTIMA, LAW_DRAWS, LAW_FITS, OBSERVATIONAL_COMPONENTS,
                              OBSERVATIONAL_FAMILIES, OBSERVATIONAL_MODELS)

# `scaling run --quick`: a first look with fewer refits (the run carries this tag)
QUICK_TAG, QUICK_RESAMPLES, QUICK_BACKTEST_RESAMPLES = "scaling/quick", 100, 50
FIT_CHECKS = ("fit_converged", "fits_completed", "params_within_bounds", "residuals_small",
              "intervals_reasonable", "backtest_error_small")


@multi_asset(
    specs=[
        AssetSpec("law_fits", deps=INGESTED, group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=LAW_FITS.doc),
        AssetSpec("backtests", deps=INGESTED, group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=BACKTESTS.doc),
        AssetSpec("law_draws", deps=INGESTED, group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=LAW_DRAWS.doc),
        AssetSpec("isoflop_optima", deps=INGESTED, group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=ISOFLOP_OPTIMA.doc),
        *[AssetSpec(t.name, deps=INGESTED, group_name="fits", kinds={"parquet"},
                    partitions_def=study_partitions, description=t.doc)
          for t in (OBSERVATIONAL_COMPONENTS, OBSERVATIONAL_FAMILIES, OBSERVATIONAL_MODELS)],
    ],
    check_specs=[AssetCheckSpec(name, asset="law_fits", blocking=(name == "fit_converged"),
                                partitions_def=study_partitions,
                                description=f"fit check: {name.replace('_', ' ')}") for name in FIT_CHECKS],
    partitions_def=study_partitions,
)
def fits(context: AssetExecutionContext, warehouse: Warehouse):
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    runs = read_table(p.lake, "runs", spec.name)
    metrics = metric_units(p.lake, spec.name)
    plans = plan_fits(spec, metrics, runs) if metrics is not None and runs is not None else []
    iso_plans = plan_isoflops(spec)
    # only the metrics the fits use are read: a study's points can be far larger than memory needs
    if context.run.tags.get(QUICK_TAG):
        plans = [replace(f, n_resamples=min(f.n_resamples, QUICK_RESAMPLES),
                         backtest_resamples=min(f.backtest_resamples, QUICK_BACKTEST_RESAMPLES)) for f in plans]
        iso_plans = [replace(f, n_resamples=min(f.n_resamples, QUICK_RESAMPLES)) for f in iso_plans]
    obs_spec = spec.observational
    points = scan_table(p.lake, "points", spec.name, {m for f in plans for m in (f.target, f.x_metric) if m}
                        | {f.target for f in iso_plans}
                        | (set(obs_spec["benchmarks"]) | {obs_spec["target"]} if obs_spec else set()))
    scope = study_scope(spec.forecasts)
    results, failures = [], []
    if points is not None and runs is not None:
        results, failures = fit_study(spec.name, plans, points, runs, scope, log=context.log.info,
                                      map_fits=cluster_map())
    iso = []
    if points is not None and runs is not None:
        for i, plan in enumerate(iso_plans):
            context.log.info(f"{spec.name}: {plan.law} (Chinchilla approach {'2' if plan.law == 'isoflop' else '1'})"
                             f" -> {plan.target}")
            try:  # target runs never enter a fit (the study's fit scope)
                iso += fit_isoflop(plan, points, runs, scope)
            except Exception as exc:  # noqa: BLE001 - reported against this fit, the others go on
                failures.append(FitFailure(spec.name, len(plans) + i, plan, None, problem_of(exc)))
    obs = None
    if obs_spec and points is not None and runs is not None:  # Ruan et al. 2024, `[observational]`
        context.log.info(f"{spec.name}: observational scaling law -> {obs_spec['target']}")
        obs = observational_study(spec.name, obs_spec, points, runs, scope)
        for msg in obs.messages:
            context.log.info(f"{spec.name}: observational: {msg}")
    for failure in failures:
        context.log.error(f"fit failed: {failure.message}")
    fit_rows = [r for g in results for r in g.fit_rows()] + [r for g in iso for r in g.fit_rows()]
    with study_write(p.lake, spec.name) as staged:  # the tables of one fit switch together
        law_fits = staged.rows(LAW_FITS, fit_rows)
        backtests = staged.rows(BACKTESTS, [r for g in results for r in g.backtest_rows]
                                + (obs.backtest_rows if obs else []))
        draws = staged.rows(LAW_DRAWS, [r for g in results for r in g.draw_rows()]
                            + [r for g in iso for r in g.draw_rows()])
        optima = staged.rows(ISOFLOP_OPTIMA, [r for g in iso for r in g.optima_rows()])
        components = staged.rows(OBSERVATIONAL_COMPONENTS, obs.component_rows if obs else [])
        families = staged.rows(OBSERVATIONAL_FAMILIES, obs.family_rows if obs else [])
        models = staged.rows(OBSERVATIONAL_MODELS, obs.model_rows if obs else [])
    warehouse.refresh_catalog()
    table = law_fits.select("group_name", "law", "target", "parameter", "estimate", "ci_low", "ci_high",
                            "converged", "flags")
    summary = pl.DataFrame([{
        "law": g.fit.law.name, "target": g.plan.target, "group": g.data.group, "objective": g.fit.objective,
        "points": g.fit.n_points, "runs": g.fit.n_runs, "usable": g.usable, "flags": ",".join(g.fit.flags),
        "backtest_error": (sum(abs(r["rel_error"]) for r in g.primary_backtest_rows) / len(g.primary_backtest_rows))
        if g.primary_backtest_rows else None} for g in results]) if results else pl.DataFrame()
    plots = {}
    folder = p.plots / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("fit_*.png"), *folder.glob("observational_*.png")]:  # targets or groups may have gone
        old.unlink(missing_ok=True)
    for target, group in sorted({(g.plan.target, g.data.group) for g in results if not g.plan.by_run}):
        first = next(g for g in results if (g.plan.target, g.data.group) == (target, group) and not g.plan.by_run)
        curve = fitted_frontier(first.fit, first.boot, points.filter(pl.col("metric") == target), group)
        name = figure_name("fit", target, group)
        f = frontier_figure(folder / f"{name}.png", f"{spec.name} [{group}]" if group else spec.name, target,
                            first.fit.law.name, points.filter(pl.col("group_name") == group),
                            curve.with_columns(target=pl.lit(target)) if curve.height else FORECASTS.empty(),
                            backtests.filter(pl.col("group_name") == group))
        if f:
            plots |= plot(name, f, f"{first.fit.law.name} fitted to {target}, with its 95% band over the observed "
                                   f"compute range: study {spec.name}, "
                                   + (f"group {group}" if group else "all runs (no groups)"))
    obs_meta = {}
    if obs is not None:
        name = figure_name("observational", obs_spec["target"])
        f = observational_figure(folder / f"{name}.png", obs, spec.name)
        obs_meta = plot(name, f, f"Observational scaling law: capability vs compute per family and the sigmoid "
                                 f"link to {obs_spec['target']}: study {spec.name}")
    warehouse.publish_plots(spec.name)
    failed = {"failed_fits": MetadataValue.md("\n".join(f"- {f.message}" for f in failures))} if failures else {}
    yield MaterializeResult(asset_key="law_fits", metadata={
        "dagster/row_count": law_fits.height, "fits": preview(summary, 40), "parameters": preview(table, 60),
        **failed, **report_link(p, spec.name), **plots})
    yield MaterializeResult(asset_key="backtests", metadata={
        "dagster/row_count": backtests.height,
        "preview": preview(backtests.select("group_name", "law", "target", "run", "actual", "predicted", "ci_low", "ci_high",
                                            "rel_error", "covered"), 30)})
    yield MaterializeResult(asset_key="law_draws", metadata={"dagster/row_count": draws.height})
    errors = held_out_errors(obs.backtest_rows) if obs is not None else {}
    yield MaterializeResult(asset_key="observational_components", metadata={
        "dagster/row_count": components.height,
        "components": preview(components.filter(pl.col("component") == 1).select(
            "target", "benchmark", "loading", "loading_ci_low", "loading_ci_high", "explained_variance"), 40),
        **({"heldout_mean_abs_error": MetadataValue.json(errors)} if errors else {}), **obs_meta})
    yield MaterializeResult(asset_key="observational_families", metadata={
        "dagster/row_count": families.height,
        "families": preview(families.select("family", "n_models", "n_fitted", "map", "slope", "efficiency",
                                            "efficiency_ci_low", "efficiency_ci_high", "flags"), 40)})
    yield MaterializeResult(asset_key="observational_models", metadata={
        "dagster/row_count": models.height,
        "held_out_and_named": preview(models.filter(pl.col("split").is_in(["held_out", "named"])).select(
            "run", "family", "flops", "actual", "predicted", "ci_low", "ci_high", "predicted_from_compute"), 40)})
    yield MaterializeResult(asset_key="isoflop_optima", metadata={
        "dagster/row_count": optima.height,
        "exponents": preview(law_fits.filter(pl.col("law").is_in(["isoflop", "envelope"])).select(
            "group_name", "law", "target", "parameter", "estimate", "ci_low", "ci_high", "flags"), 40),
        "optima": preview(optima.select("group_name", "law", "target", "flops", "params", "params_ci_low",
                                        "params_ci_high", "tokens", "loss", "n_runs"), 40)})
    if not results and not failures:
        for name in FIT_CHECKS:
            yield AssetCheckResult(asset_key="law_fits", check_name=name, passed=True,
                                   description="no scaling-law fits in this study")
        return
    for check in fit_checks(results, spec.checks, failures):
        yield AssetCheckResult(
            asset_key="law_fits", check_name=check.name, passed=check.passed, description=check.summary,
            metadata=check_metadata(check.observed, check.threshold),
            severity=AssetCheckSeverity.ERROR if check.blocking else AssetCheckSeverity.WARN)
