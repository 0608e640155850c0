"""Normalized layer: `runs` (one row per run) and `points` (run x step x metric), with ingest checks."""


import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetSpec,
                     MaterializeResult, multi_asset)

from assets.metadata import check_metadata, preview
from assets._shared import Warehouse, study_partitions
from scaling.normalize.checks import ingest_checks
from scaling.normalize.study import normalize_study
from warehouse.ingest import ingest_part
from warehouse.raw import read_parsed, read_raw
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
    with ingest_part(p.lake, spec.name, "normalized") as staged:
        result = normalize_study(spec, lambda source: read_raw(p.lake, spec.name, source, lazy=True), p.downloads,
                                 spill_dir=spill, parsed_of=lambda src: read_parsed(p.lake, spec.name, src))
        if result.points is None:
            for table in ("points", "runs"):
                staged.drop(table)
            runs, points = RUNS.empty(), POINTS.empty().lazy()
        else:
            runs = RUNS.conform(result.runs)
            # streamed to Parquet: the points of a large source are never all in memory
            try:
                points = pl.scan_parquet(staged.sink("points", POINTS.conform(result.points)))
            finally:
                result.cleanup()
            staged.write("runs", runs)
        quarantine = QUARANTINE.conform(result.quarantine)
        staged.write("quarantine", quarantine)
        # summaries and checks read the staged files, before the ingest switches them into the lake
        metrics = points.group_by("metric").agg(points=pl.len(), runs=pl.col("run").n_unique()).sort("metric") \
            .collect(engine="streaming")
        head = points.head(8).collect()
        outcomes = list(ingest_checks(points, runs)) if metrics.height else []
    if not staged.committed:
        context.log.info(f"{spec.name}: runs, points and quarantine staged; the ingest switches into the lake "
                         "once mixture_points is staged too")
    warehouse.refresh_catalog()
    n_points = int(metrics["points"].sum())
    context.log.info(f"{spec.name}: {runs.height} runs, {n_points} points, {quarantine.height} quarantined")
    yield MaterializeResult(asset_key="runs", metadata={
        "dagster/row_count": runs.height, "preview": preview(runs.select(
            "run", "group_name", "params", "tokens", "flops", "tokens_per_param", "n_points"), 15)})
    yield MaterializeResult(asset_key="points", metadata={
        "dagster/row_count": n_points, "metrics": preview(metrics, 30), "preview": preview(head)})
    yield MaterializeResult(asset_key="quarantine", metadata={
        "dagster/row_count": quarantine.height, "preview": preview(quarantine)})
    if n_points == 0:
        for name in INGEST_CHECKS:
            yield AssetCheckResult(asset_key="points" if name != "plausible_units" else "runs", check_name=name,
                                   passed=True, description="no training-log or results points in this study",
                                   metadata=check_metadata(0, 0))
    else:
        for outcome in outcomes:
            yield AssetCheckResult(
                asset_key="points" if outcome.name != "plausible_units" else "runs", check_name=outcome.name,
                passed=outcome.passed, severity=AssetCheckSeverity.WARN,
                description=outcome.summary,
                metadata=check_metadata(outcome.n_offending, 0, offending=preview(outcome.offending)))
