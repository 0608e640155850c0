"""Raw layer: land every source of a study in the Parquet lake, losslessly."""


import polars as pl
from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from assets.metadata import preview
from assets._shared import Warehouse, study_partitions
from warehouse.ingest import INGEST_PARTS, begin_ingest, land_pending
from warehouse.inputs import digest
from warehouse.raw import land_source, read_raw


def _ingest_parts(context: AssetExecutionContext) -> tuple[str, ...]:
    """The ingest parts (ops after `raw_sources`, `warehouse.ingest.INGEST_PARTS`) this run executes: all
    of them, unless the run materializes a partial selection of assets (e.g. one asset from the UI)."""
    ops = {node.name for node in context.job_def.graph.nodes}
    steps = context.run.step_keys_to_execute
    return tuple(part for part in INGEST_PARTS if part in ops and (steps is None or part in steps))


def _simulate(spec) -> None:
    """Write a study's simulated example files first (idempotent; locked, as studies may share them)."""
    if spec.simulate:
        import fcntl

        from scaling.simulate import write_example_data

        out = spec.base_dir / spec.simulate["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out.parent / f".{out.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            write_example_data(out, seed=int(spec.simulate.get("seed", 0)))


@asset(partitions_def=study_partitions, group_name="raw", kinds={"parquet"},
       description="Every source of the study as landed: original columns plus _source, _file, _row, _ingested_at.")
def raw_sources(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    spec = warehouse.load(context.partition_key)
    _simulate(spec)
    p = warehouse.paths
    # the sources land in a pending ingest: `normalized` and `mixture_points` stage theirs into it,
    # and the raw rows switch into the lake together with them (see `warehouse.ingest`)
    staged = begin_ingest(p.lake, spec.name)
    landed = []
    for src in spec.sources:
        result = land_source(spec, src, p.lake, p.downloads, staged=staged)
        context.log.info(f"{spec.name}/{src.name}: {result.rows} rows from {result.files} files"
                         f" ({'staged' if result.changed else 'unchanged, kept'})")
        landed.append(result)
    land_pending(staged, {r.source: r.manifest for r in landed}, spec.path.name, expect=_ingest_parts(context))
    summary = pl.DataFrame({
        "source": [r.source for r in landed], "files": [r.files for r in landed], "rows": [r.rows for r in landed],
        "changed": [r.changed for r in landed], "columns": [len(r.columns) for r in landed]})
    first = read_raw(p.lake, spec.name, landed[0].source, lazy=True).head(5).collect()
    # the data version is the landed files' digests and source specs: the UI marks everything below
    # a study whose sources changed as stale until it runs again
    version = digest([[(r.manifest or {}).get("spec"), (r.manifest or {}).get("files")] for r in landed])
    return MaterializeResult(data_version=DataVersion(version), metadata={
        "dagster/row_count": int(summary["rows"].sum()),
        "sources": preview(summary, 50),
        "changed_sources": int(summary["changed"].sum()),
        "preview": preview(first.select(first.columns[:12]), 5),
        "lake": MetadataValue.path(str(p.lake / "raw" / f"study={spec.name}")),
    })
