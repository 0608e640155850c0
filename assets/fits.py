"""Fits layer: every law the study names, per group, with bootstrap intervals and backtests."""


import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetSpec,
                     MaterializeResult, multi_asset)

from assets.metadata import check_metadata, image, preview
from pipelines.partitions import study_partitions
from pipelines.resources import Warehouse
from scaling.errors import ScalingError
from scaling.plan.checks import fit_checks
from scaling.plan.figures import fitted_frontier, frontier_figure
from scaling.plan.study_figures import figure_name
from scaling.plan.data import gather
from scaling.plan.fits import plan_fits
from scaling.plan.run import fit_group
from warehouse.lake import metric_units, read_table, replace_study_rows, scan_table
from warehouse.tables import BACKTESTS, FORECASTS, LAW_DRAWS, LAW_FITS

FIT_CHECKS = ("fit_converged", "params_within_bounds", "residuals_small", "intervals_reasonable",
              "backtest_error_small")




@multi_asset(
    specs=[
        AssetSpec("law_fits", deps=["runs", "points"], group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=LAW_FITS.doc),
        AssetSpec("backtests", deps=["runs", "points"], group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=BACKTESTS.doc),
        AssetSpec("law_draws", deps=["runs", "points"], group_name="fits", kinds={"parquet"},
                  partitions_def=study_partitions, description=LAW_DRAWS.doc),
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
    # only the metrics the fits use are read: a study's points can be far larger than memory needs
    points = scan_table(p.lake, "points", spec.name, {m for f in plans for m in (f.target, f.x_metric) if m})
    results = []
    if points is not None and runs is not None:
        for plan in plans:
            try:
                groups = gather(plan, points, runs)
            except ScalingError as exc:
                raise exc.at(study=spec.name) from None
            for data in groups:
                context.log.info(f"{spec.name}: fitting {plan.law} -> {plan.target}"
                                 f"{' [' + data.group + ']' if data.group else ''} on {len(data.y)} points")
                results.append(fit_group(plan, data))
    fit_rows = [r for g in results for r in g.fit_rows()]
    law_fits = replace_study_rows(p.lake, LAW_FITS, spec.name, fit_rows)
    backtests = replace_study_rows(p.lake, BACKTESTS, spec.name, [r for g in results for r in g.backtest_rows])
    draws = replace_study_rows(p.lake, LAW_DRAWS, spec.name, [r for g in results for r in g.draw_rows()])
    warehouse.refresh_catalog()
    table = law_fits.select("group_name", "law", "target", "parameter", "estimate", "ci_low", "ci_high",
                            "converged", "flags")
    summary = pl.DataFrame([{
        "law": g.fit.law.name, "target": g.plan.target, "group": g.data.group, "objective": g.fit.objective,
        "points": g.fit.n_points, "runs": g.fit.n_runs, "usable": g.usable, "flags": ",".join(g.fit.flags),
        "backtest_error": (sum(abs(r["rel_error"]) for r in g.backtest_rows) / len(g.backtest_rows))
        if g.backtest_rows else None} for g in results]) if results else pl.DataFrame()
    plots = {}
    folder = p.plots / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("fit_*.png"):  # targets or groups of an earlier run may have gone
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
            plots[f"plot_{name}"] = image(f, f"{first.fit.law.name} fitted to {target}, with its 95% band over the "
                                             f"observed compute range: study {spec.name}, "
                                             + (f"group {group}" if group else "all runs (no groups)"))
    yield MaterializeResult(asset_key="law_fits", metadata={
        "dagster/row_count": law_fits.height, "fits": preview(summary, 40), "parameters": preview(table, 60),
        **plots})
    yield MaterializeResult(asset_key="backtests", metadata={
        "dagster/row_count": backtests.height,
        "preview": preview(backtests.select("law", "target", "run", "actual", "predicted", "ci_low", "ci_high",
                                            "rel_error", "covered"), 30)})
    yield MaterializeResult(asset_key="law_draws", metadata={"dagster/row_count": draws.height})
    if not results:
        for name in FIT_CHECKS:
            yield AssetCheckResult(asset_key="law_fits", check_name=name, passed=True,
                                   description="no scaling-law fits in this study")
        return
    for check in fit_checks(results, spec.checks):
        yield AssetCheckResult(
            asset_key="law_fits", check_name=check.name, passed=check.passed, description=check.summary,
            metadata=check_metadata(check.observed, check.threshold),
            severity=AssetCheckSeverity.ERROR if check.blocking else AssetCheckSeverity.WARN)
