"""The DuckDB catalog: a small database file holding views over the Parquet lake.

Any DuckDB client can open it (read-only is enough) and run ``SELECT ... FROM runs``.
The catalog holds no data, only views, so the pipeline rarely writes it: it is rebuilt
into a temporary file and renamed into place, which means no writer ever holds a lock on
the file readers open, and parallel partitions never contend on a DuckDB writer (they
write Parquet files, each to its own partition).

The views name the lake by a path relative to the warehouse folder (``lake/runs/study=*/...``),
so a warehouse folder copied or mounted elsewhere answers SQL unchanged. DuckDB resolves relative
paths against ``file_search_path`` (or the working directory): `connect` sets it to the warehouse
folder, and any other client either runs in the warehouse folder or sets it (see the README).
Each view and column carries its meaning from `warehouse.tables` as a DuckDB comment. The record of
which tables had data when the catalog was built is a file beside it, not a table in it.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb

from scaling.errors import StorageError
from warehouse.lake import _storage_error, _storage_error_text
from warehouse.tables import TABLES, Table

RAW_VIEW = "raw"
# Written in the storage format of DuckDB 1.4, so clients from 1.4 on (the CLI from PyPI among
# them) open it as well as the 2.x Python package the pipeline uses.
STORAGE_VERSION = "v1.4.0"


RAW_DOC = ("every source's rows as landed: the study and source (folder keys), every original column "
           "(one named study or source, or either followed by underscores, gains one underscore), "
           "and _source, _file, _row, _ingested_at")


def _quote(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _files(lake: Path, table: str) -> list[Path]:
    return sorted((lake / table).glob("study=*/**/data.parquet"))


def _rel(lake: Path, root: Path) -> str:
    """The lake as the views name it: relative to the warehouse folder (the catalog's folder)."""
    return Path(os.path.relpath(lake, root)).as_posix()


def _view_sql(lake: Path, root: Path, table: Table) -> str:
    glob = _quote(f"{_rel(lake, root)}/{table.name}/study=*/data.parquet") if _files(lake, table.name) else None
    return _table_view(table, glob)


def _table_view(table: Table, files: str | None) -> str:
    """The view of a table over `files` (a glob or a list, as SQL), or an empty typed view."""
    cols = ", ".join(f'"{c.name}"' for c in table.columns)
    if files:
        return (f"CREATE VIEW {table.name} AS SELECT {cols} FROM read_parquet({files}, "
                f"hive_partitioning = true, hive_types = {{'study': VARCHAR}}, union_by_name = true)")
    typed = ", ".join(f'CAST(NULL AS {c.type}) AS "{c.name}"' for c in table.columns)
    return f"CREATE VIEW {table.name} AS SELECT {typed} WHERE false"


def _raw_view_sql(lake: Path, root: Path) -> str | None:
    if not _files(lake, "raw"):
        return None
    return _raw_view(_quote(f"{_rel(lake, root)}/raw/study=*/source=*/data.parquet"))


def _raw_view(files: str) -> str:
    return (f"CREATE VIEW {RAW_VIEW} AS SELECT * FROM read_parquet({files}, hive_partitioning = true, "
            f"hive_types = {{'study': VARCHAR, 'source': VARCHAR}}, union_by_name = true)")


def _comments(table: Table) -> list[str]:
    out = [f"COMMENT ON VIEW {table.name} IS {_quote(table.doc)}"]
    out += [f'COMMENT ON COLUMN {table.name}."{c.name}" IS {_quote(c.doc)}' for c in table.columns]
    return out


def _state_file(catalog: Path) -> Path:
    return catalog.with_name(f".{catalog.name}.state")


def view_state(lake: Path) -> dict[str, bool]:
    """Which tables have data: the catalog must be rebuilt when this changes."""
    state = {name: bool(_files(lake, name)) for name in TABLES}
    state[RAW_VIEW] = bool(_files(lake, "raw"))
    return state


@contextmanager
def _lock(path: Path):
    lock = path.with_suffix(".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a")  # appending nothing: taking the lock leaves the file unchanged
    except OSError as exc:  # a read-only or full warehouse: one located error, nothing changed
        raise _storage_error(exc, lock) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_catalog(catalog: Path, lake: Path) -> Path:
    """Write every view into a fresh database file and rename it over the catalog. A read-only or full
    warehouse is a `StorageError` naming the file, with the previous catalog left as it was."""
    try:
        return _build_catalog(catalog, lake)
    except OSError as exc:
        raise _storage_error(exc, catalog) from None
    except duckdb.IOException as exc:
        raise _storage_error_text(str(exc), catalog) from None


def _build_catalog(catalog: Path, lake: Path) -> Path:
    with _lock(catalog):
        tmp = catalog.with_name(f".{catalog.name}.{uuid.uuid4().hex}.tmp")
        try:
            con = duckdb.connect()
            try:
                root = catalog.parent.resolve()
                con.execute(f"SET file_search_path = {_quote(root)}")  # views bind relative paths here
                con.execute(f"ATTACH {_quote(tmp)} AS catalog (STORAGE_VERSION '{STORAGE_VERSION}')")
                con.execute("USE catalog")
                state = repr(sorted(view_state(lake).items()))
                for table in TABLES.values():
                    con.execute(_view_sql(lake, root, table))
                    for sql in _comments(table):
                        con.execute(sql)
                raw = _raw_view_sql(lake, root)
                if raw:
                    con.execute(raw)
                    con.execute(f"COMMENT ON VIEW {RAW_VIEW} IS {_quote(RAW_DOC)}")
                con.execute("USE memory")
                con.execute("DETACH catalog")
            finally:
                con.close()
            os.replace(tmp, catalog)
            _write_state(catalog, state)
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return catalog


def _write_state(catalog: Path, state: str) -> None:
    f = _state_file(catalog)
    tmp = f.with_name(f"{f.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps({"state": state}))
    os.replace(tmp, f)


def _current_state(catalog: Path) -> str | None:
    if not catalog.exists():
        return None
    try:
        return json.loads(_state_file(catalog).read_text())["state"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_catalog(catalog: Path, lake: Path) -> bool:
    """Rebuild the catalog only when a table gained or lost all its data. Returns whether it did."""
    if _current_state(catalog) == repr(sorted(view_state(lake).items())):
        return False
    build_catalog(catalog, lake)
    return True


def connect(catalog: Path, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the catalog with its folder as DuckDB's file search path, so the views' relative paths
    resolve wherever the warehouse is; read-only connections never block, and never are blocked by,
    the pipeline."""
    catalog = Path(catalog).resolve()
    return duckdb.connect(str(catalog), read_only=read_only, config={"file_search_path": str(catalog.parent)})


def store_catalog(store) -> duckdb.DuckDBPyConnection:
    """The catalog of an object-store warehouse (`warehouse.objectstore`), read from the store itself: an
    in-memory database whose views list the partition files the studies' pointers name, read through an
    fsspec filesystem registered with DuckDB (read-only: nothing can be written through it). The pointers
    are read once, so the views are one consistent state of every study."""
    from warehouse.objectstore import pointer_files, read_only_filesystem

    files = pointer_files(store)
    # no extension downloads: the store is read through the registered filesystem, not httpfs
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.register_filesystem(read_only_filesystem(store))
    for table in TABLES.values():
        listed = files.get(table.name)
        con.execute(_table_view(table, "[" + ", ".join(map(_quote, listed)) + "]" if listed else None))
        for sql in _comments(table):
            con.execute(sql)
    if files.get("raw"):
        con.execute(_raw_view("[" + ", ".join(map(_quote, files["raw"])) + "]"))
        con.execute(f"COMMENT ON VIEW {RAW_VIEW} IS {_quote(RAW_DOC)}")
    return con


def open_catalog(catalog: Path, lake: Path) -> duckdb.DuckDBPyConnection:
    """What `scaling sql` opens: finish any switch a killed run left half done, bring the views up to
    date when the warehouse is writable, and connect read-only. For an object-store warehouse, the
    catalog read from the store's pointers (`store_catalog`)."""
    from warehouse.ingest import recover_all
    from warehouse.objectstore import store_for

    store = store_for(lake)
    if store is not None:
        return store_catalog(store)
    try:
        recover_all(lake)
        ensure_catalog(catalog, lake)
    except (OSError, StorageError):  # a read-only copy of a warehouse is still readable as it is
        pass
    return connect(catalog)


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """Run a query and return a polars frame (DuckDB 2 results are fetched whole through Arrow)."""
    import polars as pl

    return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
