"""Running real Dagster materializations of study partitions into temporary warehouses."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
from dagster import AssetSelection, DagsterInstance, materialize

from assets import ASSET_MODULES
from dagster import load_assets_from_modules
from pipelines.resources import Warehouse
from warehouse.catalog import connect
from warehouse.catalog import query as catalog_query

REPO = Path(__file__).resolve().parents[2]
ALL_ASSETS = load_assets_from_modules(ASSET_MODULES)


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


def run_study(studies: Path, warehouse: Path, study: str, *, selection=None, instance=None, raise_on_error=True):
    """Materialize every asset (or `selection`) of one study partition."""
    if instance is None:  # a fresh instance per run, disposed afterwards
        with DagsterInstance.ephemeral() as fresh:
            return run_study(studies, warehouse, study, selection=selection, instance=fresh,
                             raise_on_error=raise_on_error)
    if study not in instance.get_dynamic_partitions("study"):
        instance.add_dynamic_partitions("study", [study])
    return materialize(
        ALL_ASSETS, partition_key=study, instance=instance, raise_on_error=raise_on_error,
        selection=selection or AssetSelection.all(),
        resources={"warehouse": Warehouse(root=str(warehouse), studies=str(studies))},
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
    rows = ["model,params,tokens,loss"]
    for n in (1e7, 3e7, 1e8, 3e8):
        for k in (5, 20, 80):
            d = n * k
            rows.append(f"m{int(n)}-{k},{n:g},{d:g},{1.69 + offset + 406.4 / n**0.34 + 410.7 / d**0.28:.5f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path
