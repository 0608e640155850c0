"""Normalized mixture experiments: `mixture_points` (run x domain weight or loss)."""


import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, asset

from assets.metadata import preview
from pipelines.partitions import study_partitions
from pipelines.resources import Warehouse
from scaling.normalize.mixtures import normalize_mixtures
from warehouse.lake import drop_study, write_table
from warehouse.raw import read_raw
from warehouse.tables import MIXTURE_POINTS


@asset(partitions_def=study_partitions, group_name="normalized", kinds={"parquet"}, deps=["raw_sources"],
       description=MIXTURE_POINTS.doc)
def mixture_points(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    spec = warehouse.load(context.partition_key)
    p = warehouse.paths
    frames = [normalize_mixtures(read_raw(p.lake, spec.name, s.name), s, spec)
              for s in spec.sources if s.kind == "mixture_runs"]
    if not frames:
        drop_study(p.lake, "mixture_points", spec.name)
        return MaterializeResult(metadata={"dagster/row_count": 0, "note": "study has no mixture_runs sources"})
    table = MIXTURE_POINTS.conform(pl.concat(frames, how="diagonal_relaxed"))
    write_table(p.lake, "mixture_points", spec.name, table)
    warehouse.refresh_catalog()
    runs = table.group_by("split").agg(runs=pl.col("run").n_unique(),
                                       renormalized=pl.col("run").filter(pl.col("renormalized")).n_unique())
    context.log.info(f"{spec.name}: {table['run'].n_unique()} mixture runs")
    return MaterializeResult(metadata={"dagster/row_count": table.height, "runs": preview(runs),
                                       "preview": preview(table.head(10))})
