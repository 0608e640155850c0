"""Running real Dagster materializations of study partitions into temporary warehouses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
from dagster import AssetSelection, DagsterInstance, materialize

from assets import ASSET_MODULES
from dagster import load_assets_from_modules
from pipelines.resources import Warehouse
from scaling.simulate.results_table import write_results_csv
from warehouse.catalog import connect
from warehouse.catalog import query as catalog_query

REPO = Path(__file__).resolve().parents[2]
ALL_ASSETS = load_assets_from_modules(ASSET_MODULES)
# The public data study files read: passed to every run as its one data root.
SHARED_DATA = Path(os.environ.get("SCALING_SHARED_DATA", REPO.parent / "shared" / "data"))


def copy_study(name: str, dest: Path, *, public: bool = False, shared: Path | None = None) -> Path:
    """Copy a shipped study file into `dest`.

    Example studies keep their relative paths, so the simulator writes their data under `dest`;
    public studies get their data paths pointed at `shared`.
    """
    src = REPO / "studies" / ("public" if public else "") / f"{name}.toml"
    text = src.read_text()
    if public:
        text = text.replace("../../../shared/data", str(shared))
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}.toml"
    out.write_text(text)
    return out


def run_study(studies: Path, warehouse: Path, study: str, *, selection=None, instance=None, raise_on_error=True,
              data_roots=(SHARED_DATA,)):
    """Materialize every asset (or `selection`) of one study partition; its files may read `data_roots`."""
    if instance is None:  # a fresh instance per run, disposed afterwards
        with DagsterInstance.ephemeral() as fresh:
            return run_study(studies, warehouse, study, selection=selection, instance=fresh,
                             raise_on_error=raise_on_error, data_roots=data_roots)
    if study not in instance.get_dynamic_partitions("study"):
        instance.add_dynamic_partitions("study", [study])
    return materialize(
        ALL_ASSETS, partition_key=study, instance=instance, raise_on_error=raise_on_error,
        selection=selection or AssetSelection.all(),
        resources={"warehouse": Warehouse(root=str(warehouse), studies=str(studies),
                                          data_roots=[str(r) for r in data_roots])},
    )


def query(warehouse: Path, sql: str, params=None) -> pl.DataFrame:
    con = connect(warehouse / "catalog.duckdb")
    try:
        return catalog_query(con, sql, params)
    finally:
        con.close()


def copy_file(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def results_csv(path: Path, offset: float = 0.0) -> Path:
    """A small results table from the Chinchilla law (Hoffmann et al. 2022), shifted by `offset`."""
    return write_results_csv(path, offset)

