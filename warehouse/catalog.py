"""The DuckDB catalog: a small database file holding views over the Parquet lake.

Any DuckDB client can open it (read-only is enough) and run ``SELECT ... FROM runs``.
The catalog holds no data, only views, so the pipeline rarely writes it: it is rebuilt
into a temporary file and renamed into place, which means no writer ever holds a lock on
the file readers open, and parallel partitions never contend on a DuckDB writer (they
write Parquet files, each to its own partition).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.tables import TABLES, Table

RAW_VIEW = "raw"
# Written in the storage format of DuckDB 1.4, so clients from 1.4 on (the CLI from PyPI among
# them) open it as well as the 2.x Python package the pipeline uses.
STORAGE_VERSION = "v1.4.0"


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _files(lake: Path, table: str) -> list[Path]:
    return sorted((lake / table).glob("study=*/**/data.parquet"))


def _view_sql(lake: Path, table: Table) -> str:
    cols = ", ".join(f'"{c.name}"' for c in table.columns)
    if _files(lake, table.name):
        glob = _quote(lake / table.name / "study=*" / "data.parquet")
        return (f"CREATE VIEW {table.name} AS SELECT {cols} FROM read_parquet({glob}, "
                f"hive_partitioning = false, union_by_name = true)")
    typed = ", ".join(f'CAST(NULL AS {c.type}) AS "{c.name}"' for c in table.columns)
    return f"CREATE VIEW {table.name} AS SELECT {typed} WHERE false"


def _raw_view_sql(lake: Path) -> str | None:
    if not _files(lake, "raw"):
        return None
    glob = _quote(lake / "raw" / "study=*" / "source=*" / "data.parquet")
    return (f"CREATE VIEW {RAW_VIEW} AS SELECT * FROM read_parquet({glob}, "
            f"hive_partitioning = true, union_by_name = true)")


def view_state(lake: Path) -> dict[str, bool]:
    """Which tables have data: the catalog must be rebuilt when this changes."""
    state = {name: bool(_files(lake, name)) for name in TABLES}
    state[RAW_VIEW] = bool(_files(lake, "raw"))
    return state


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_catalog(catalog: Path, lake: Path) -> Path:
    """Write every view into a fresh database file and rename it over the catalog."""
    with _lock(catalog):
        tmp = catalog.with_name(f".{catalog.name}.{uuid.uuid4().hex}.tmp")
        try:
            con = duckdb.connect()
            try:
                con.execute(f"ATTACH {_quote(tmp)} AS catalog (STORAGE_VERSION '{STORAGE_VERSION}')")
                con.execute("USE catalog")
                for table in TABLES.values():
                    con.execute(_view_sql(lake, table))
                raw = _raw_view_sql(lake)
                if raw:
                    con.execute(raw)
                con.execute("CREATE TABLE _catalog_state AS SELECT ? AS lake, ? AS state",
                            [str(lake), repr(sorted(view_state(lake).items()))])
                con.execute("USE memory")
                con.execute("DETACH catalog")
            finally:
                con.close()
            os.replace(tmp, catalog)
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return catalog


def _current_state(catalog: Path) -> str | None:
    if not catalog.exists():
        return None
    try:
        con = duckdb.connect(str(catalog), read_only=True)
        try:
            return con.execute("SELECT state FROM _catalog_state").fetchall()[0][0]
        finally:
            con.close()
    except duckdb.Error:
        return None


def ensure_catalog(catalog: Path, lake: Path) -> bool:
    """Rebuild the catalog only when a table gained or lost all its data. Returns whether it did."""
    if _current_state(catalog) == repr(sorted(view_state(lake).items())):
        return False
    build_catalog(catalog, lake)
    return True


def connect(catalog: Path, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the catalog; read-only connections never block, and never are blocked by, the pipeline."""
    return duckdb.connect(str(catalog), read_only=read_only)


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """Run a query and return a polars frame (DuckDB 2 results are fetched whole through Arrow)."""
    import polars as pl

    return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
