"""Normalized layer: `runs` (one row per run) and `points` (run x step x metric), with ingest checks."""


import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetSpec,
                     MaterializeResult, multi_asset)

from assets.metadata import check_metadata, preview
from pipelines.partitions import study_partitions
from pipelines.resources import Warehouse
from scaling.normalize.checks import ingest_checks
from scaling.normalize.study import normalize_study
from warehouse.lake import atomic_sink_parquet, drop_study, partition_dir, write_table
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
    spill = p.root / "tmp"
    spill.mkdir(parents=True, exist_ok=True)
    result = normalize_study(spec, lambda source: read_raw(p.lake, spec.name, source, lazy=True), p.downloads,
                             spill_dir=spill)
    if result.points is None:
        for table in ("points", "runs"):
            drop_study(p.lake, table, spec.name)
        points, runs = POINTS.empty().lazy(), RUNS.empty()
    else:
        runs = RUNS.conform(result.runs)
        # streamed to Parquet: the points of a large source are never all in memory
        try:
            target = atomic_sink_parquet(POINTS.conform(result.points), partition_dir(p.lake, "points", spec.name)
                                         / "data.parquet")
        finally:
            result.cleanup()
        write_table(p.lake, "runs", spec.name, runs)
        points = pl.scan_parquet(target)
    quarantine = QUARANTINE.conform(result.quarantine)
    if quarantine.height:
        write_table(p.lake, "quarantine", spec.name, quarantine)
    else:
        drop_study(p.lake, "quarantine", spec.name)
    warehouse.refresh_catalog()
    metrics = points.group_by("metric").agg(points=pl.len(), runs=pl.col("run").n_unique()).sort("metric") \
        .collect(engine="streaming")
    n_points = int(metrics["points"].sum())
    context.log.info(f"{spec.name}: {runs.height} runs, {n_points} points, {quarantine.height} quarantined")
    yield MaterializeResult(asset_key="runs", metadata={
        "dagster/row_count": runs.height, "preview": preview(runs.select(
            "run", "group_name", "params", "tokens", "flops", "tokens_per_param", "n_points"), 15)})
    yield MaterializeResult(asset_key="points", metadata={
        "dagster/row_count": n_points, "metrics": preview(metrics, 30), "preview": preview(points.head(8).collect())})
    yield MaterializeResult(asset_key="quarantine", metadata={
        "dagster/row_count": quarantine.height, "preview": preview(quarantine)})
    if n_points == 0:
        for name in INGEST_CHECKS:
            yield AssetCheckResult(asset_key="points" if name != "plausible_units" else "runs", check_name=name,
                                   passed=True, description="no training-log or results points in this study",
                                   metadata=check_metadata(0, 0))
    else:
        for outcome in ingest_checks(points, runs):
            yield AssetCheckResult(
                asset_key="points" if outcome.name != "plausible_units" else "runs", check_name=outcome.name,
                passed=outcome.passed, severity=AssetCheckSeverity.WARN,
                description=outcome.summary,
                metadata=check_metadata(outcome.n_offending, 0, offending=preview(outcome.offending)))
