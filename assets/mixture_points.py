"""Normalized mixture experiments: `mixture_points` (run x domain weight or loss)."""


import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.metadata import preview
from assets._shared import Warehouse, study_partitions
from scaling.normalize.mixtures import normalize_mixtures
from warehouse.ingest import ingest_part
from warehouse.raw import read_raw
from warehouse.tables import MIXTURE_POINTS


@asset(partitions_def=study_partitions, group_name="normalized", kinds={"parquet"}, deps=["raw_sources"],
       description=MIXTURE_POINTS.doc)
def mixture_points(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    with ingest_part(p.lake, spec.name, "mixture_points") as staged:
        frames = [normalize_mixtures(read_raw(p.lake, spec.name, s.name), s, spec)
                  for s in spec.sources if s.kind == "mixture_runs"]
        table = MIXTURE_POINTS.conform(pl.concat(frames, how="diagonal_relaxed")) if frames else None
        staged.write("mixture_points", table)
    if not staged.committed:
        context.log.info(f"{spec.name}: mixture_points staged; the ingest switches into the lake once runs, "
                         "points and quarantine are staged too")
    warehouse.refresh_catalog()
    if table is None:
        return MaterializeResult(metadata={"dagster/row_count": 0, "note": "study has no mixture_runs sources"})
    runs = table.group_by("split").agg(runs=pl.col("run").n_unique(),
                                       renormalized=pl.col("run").filter(pl.col("renormalized")).n_unique())
    context.log.info(f"{spec.name}: {table['run'].n_unique()} mixture runs")
    return MaterializeResult(metadata={"dagster/row_count": table.height, "runs": preview(runs),
                                       "preview": preview(table.head(10))})
