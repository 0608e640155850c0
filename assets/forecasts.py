"""Forecasts layer: compute-optimal allocations, target runs and downstream accuracy, ranked by backtests."""

import polars as pl
from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, MetadataValue, multi_asset

from assets.metadata import plot, preview, report_link
from assets._shared import Warehouse, study_partitions
from scaling.plan.crossovers import crossover_rows
from scaling.plan.forecasts import downstream_filter, forecast_study
from scaling.plan.isoflop import isoflop_forecast_rows
from scaling.plan.study_figures import study_figures
from scaling.plan.restore import restore_fits
from warehouse.ingest import study_write
from warehouse.lake import read_table, scan_table
from warehouse.tables import BACKTEST_SUMMARY, BACKTESTS, CROSSOVERS, FORECASTS

DEPS = ["law_fits", "backtests", "law_draws", "points", "runs"]




@multi_asset(
    specs=[
        AssetSpec("forecasts", deps=DEPS, group_name="forecasts", kinds={"parquet"},
                  partitions_def=study_partitions, description=FORECASTS.doc),
        AssetSpec("backtest_summary", deps=DEPS, group_name="forecasts", kinds={"parquet"},
                  partitions_def=study_partitions, description=BACKTEST_SUMMARY.doc),
        AssetSpec("crossovers", deps=DEPS, group_name="forecasts", kinds={"parquet"},
                  partitions_def=study_partitions, description=CROSSOVERS.doc),
    ],
    partitions_def=study_partitions,
)
def forecasts(context: AssetExecutionContext, warehouse: Warehouse):
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    law_fits = read_table(p.lake, "law_fits", spec.name)
    needed = set(law_fits["target"].unique()) if law_fits is not None else set()
    needed |= {m for d in spec.forecasts.get("downstream", []) for m in (d.get("task_loss"), d.get("accuracy")) if m}
    points = scan_table(p.lake, "points", spec.name, needed) if needed else None
    runs = read_table(p.lake, "runs", spec.name)
    if law_fits is None or points is None:
        with study_write(p.lake, spec.name) as staged:
            for table in (FORECASTS, BACKTEST_SUMMARY, CROSSOVERS):
                staged.drop(table.name)
        yield MaterializeResult(asset_key="forecasts", metadata={"dagster/row_count": 0, "note": "no fits"})
        yield MaterializeResult(asset_key="backtest_summary", metadata={"dagster/row_count": 0})
        yield MaterializeResult(asset_key="crossovers", metadata={"dagster/row_count": 0})
        return
    backtests = read_table(p.lake, "backtests", spec.name)
    backtests = backtests if backtests is not None else BACKTESTS.empty()
    law_draws = read_table(p.lake, "law_draws", spec.name)
    fits = restore_fits(law_fits, law_draws)
    result = forecast_study(spec.name, spec.forecasts, spec.flops_convention, fits, backtests.to_dicts(),
                            points, runs, fit_filter=downstream_filter(spec))
    # Chinchilla approaches 1 and 2: compute-optimal N and D beside approach 3's rows
    result.rows += [{**r, "study": spec.name} for r in isoflop_forecast_rows(law_fits, law_draws, spec.forecasts)]
    for msg in result.messages:
        context.log.info(f"{spec.name}: {msg}")
    for failure in result.failures:
        context.log.error(f"forecast failed: {failure}")
    failed = {"failed_forecasts": MetadataValue.md("\n".join(f"- {f}" for f in result.failures))} \
        if result.failures else {}
    with study_write(p.lake, spec.name) as staged:  # the tables switch together
        table = staged.rows(FORECASTS, result.rows)
        summary = staged.rows(BACKTEST_SUMMARY, result.summary)
        cross = staged.rows(CROSSOVERS, crossover_rows(spec.name, spec.raw.get("crossovers", {}), fits, points))
    warehouse.refresh_catalog()

    figures = study_figures(p.plots / spec.name, spec.name, points, runs, table, backtests, summary)
    plots = {k: v for f in figures for k, v in plot(f.name, f.path, f.caption).items()}
    warehouse.publish_plots(spec.name)
    # the group column names each row of a grouped study (`preview` drops it when every row has none)
    headline = table.filter(pl.col("recommended") & (pl.col("kind") == "compute_optimal")).select(
        "group_name", "law", "target", "flops", "params", "params_ci_low", "params_ci_high", "tokens",
        "tokens_ci_low", "tokens_ci_high", "tokens_per_param", "predicted", "ci_low", "ci_high", "extrapolation")
    others = table.filter(pl.col("kind") != "compute_optimal").select(
        "group_name", "law", "target", "kind", "name", "params", "tokens", "predicted", "ci_low", "ci_high", "actual",
        "rel_error")
    yield MaterializeResult(asset_key="forecasts", metadata={
        "dagster/row_count": table.height, "recommended_compute_optimal": preview(headline, 20),
        "targets_and_downstream": preview(others, 30), **failed, "plots": MetadataValue.path(str(p.plots / spec.name)),
        **report_link(p, spec.name), **plots})
    yield MaterializeResult(asset_key="crossovers", metadata={
        "dagster/row_count": cross.height,
        "crossovers": preview(cross.select("law", "target", "group_a", "group_b", "kind", "flops", "flops_ci_low",
                                           "flops_ci_high", "p_cross", "p_a_better", "note"), 40)})
    yield MaterializeResult(asset_key="backtest_summary", metadata={
        "dagster/row_count": summary.height, "ranking": preview(summary.select(
            "group_name", "law", "target", "n_heldout", "mean_abs_rel_error", "max_abs_rel_error", "coverage",
            "rank", "verdict"), 30), **report_link(p, spec.name),
        **{k: v for k, v in plots.items() if k.startswith("plot_backtests")}})
