"""Normalized layer: `runs` (one row per run) and `points` (run x step x metric), with ingest checks."""


import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetSpec,
                     MaterializeResult, multi_asset)

from assets.metadata import preview
from pipelines.partitions import study_partitions
from pipelines.resources import Warehouse
from scaling.normalize.checks import ingest_checks
from scaling.normalize.study import normalize_study
from warehouse.lake import drop_study, write_table
from warehouse.raw import read_raw
from warehouse.tables import POINTS, QUARANTINE, RUNS

INGEST_CHECKS = ("finite_nonnegative", "monotone_tokens", "unique_steps", "plausible_units")


@multi_asset(
    specs=[
        AssetSpec("runs", deps=["raw_sources"], group_name="normalized", kinds={"parquet"},
                  partitions_def=study_partitions, description=RUNS.doc),
        AssetSpec("points", deps=["raw_sources"], group_name="normalized", kinds={"parquet"},
                  partitions_def=study_partitions, description=POINTS.doc),
        AssetSpec("quarantine", deps=["raw_sources"], group_name="normalized", kinds={"parquet"},
                  partitions_def=study_partitions, description=QUARANTINE.doc),
    ],
    check_specs=[AssetCheckSpec(name, asset="points" if name != "plausible_units" else "runs",
                                partitions_def=study_partitions, description=f"ingest check: {name.replace('_', ' ')}") for name in INGEST_CHECKS],
    partitions_def=study_partitions,
)
def normalized(context: AssetExecutionContext, warehouse: Warehouse):
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    result = normalize_study(spec, lambda source: read_raw(p.lake, spec.name, source), p.downloads)
    if result.points.height == 0:
        for table in ("points", "runs"):
            drop_study(p.lake, table, spec.name)
        points, runs = POINTS.empty(), RUNS.empty()
    else:
        points, runs = POINTS.conform(result.points), RUNS.conform(result.runs)
        write_table(p.lake, "points", spec.name, points)
        write_table(p.lake, "runs", spec.name, runs)
    quarantine = QUARANTINE.conform(result.quarantine)
    if quarantine.height:
        write_table(p.lake, "quarantine", spec.name, quarantine)
    else:
        drop_study(p.lake, "quarantine", spec.name)
    warehouse.refresh_catalog()
    context.log.info(f"{spec.name}: {runs.height} runs, {points.height} points, {quarantine.height} quarantined")
    metrics = points.group_by("metric").agg(points=pl.len(), runs=pl.col("run").n_unique()).sort("metric")
    yield MaterializeResult(asset_key="runs", metadata={
        "dagster/row_count": runs.height, "preview": preview(runs.select(
            "run", "group_name", "params", "tokens", "flops", "tokens_per_param", "n_points"), 15)})
    yield MaterializeResult(asset_key="points", metadata={
        "dagster/row_count": points.height, "metrics": preview(metrics, 30), "preview": preview(points.head(8))})
    yield MaterializeResult(asset_key="quarantine", metadata={
        "dagster/row_count": quarantine.height, "preview": preview(quarantine)})
    if points.height == 0:
        for name in INGEST_CHECKS:
            yield AssetCheckResult(asset_key="points" if name != "plausible_units" else "runs", check_name=name,
                                   passed=True, description="no training-log or results points in this study")
    else:
        for outcome in ingest_checks(points, runs):
            yield AssetCheckResult(
                asset_key="points" if outcome.name != "plausible_units" else "runs", check_name=outcome.name,
                passed=outcome.passed, severity=AssetCheckSeverity.WARN,
                description=outcome.summary, metadata={"offending": preview(outcome.offending)})
