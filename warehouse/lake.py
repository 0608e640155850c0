"""The Parquet lake: one folder per table, one Hive partition per study.

Layout: ``lake/<table>/study=<study>/data.parquet`` (raw rows add a ``source=<name>`` level). The
files hold no ``study`` column (the folder key is the study), and nothing but data files lives in a
table folder, so pandas, pyarrow and polars read a table folder directly as a Hive dataset.
Every write goes to a temporary file beside the target and is then renamed over it
(``os.replace`` is atomic on POSIX), so a failed or interrupted run leaves the previous
good file readable and never a half-written one.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from scaling.errors import StorageError
from scaling.spec import check_name


def inside_folder(folder: Path, path: Path, what: str) -> Path:
    """`path` if it lies below `folder` once ``..`` and symlinks are resolved, else a `StorageError`
    saying it would leave `what`."""
    root, real = Path(os.path.realpath(folder)), Path(os.path.realpath(path))
    if real == root or not real.is_relative_to(root):
        raise StorageError(f"refusing to write outside {what}: {path} is not inside {folder}")
    return path


def inside_lake(lake: Path, path: Path) -> Path:
    """`path` if it stays inside `lake` once ``..`` and symlinks are resolved, else `StorageError`.

    Every partition path goes through here (via `partition_dir`), so no name can make a writer
    touch a file outside the lake.
    """
    return inside_folder(lake, path, "the lake")


def partition_dir(lake: Path, table: str, study: str, source: str | None = None) -> Path:
    check_name(table, "table name")
    check_name(study, "study name", study=study if isinstance(study, str) and len(study) < 100 else None)
    d = lake / table / f"study={study}"
    if source is not None:
        check_name(source, "source name", study=study)
        d = d / f"source={source}"
    return inside_lake(lake, d)


def _storage_error(exc: OSError, target: Path) -> StorageError:
    """A failed write as one line: which file, and what the system said (read-only, disk full, ...)."""
    code = exc.errno
    if code is None:  # polars raises OSError("Read-only file system (os error 30): <path>")
        found = re.search(r"\(os error (\d+)\)", str(exc))
        code = int(found.group(1)) if found else None
    what = exc.strerror or (os.strerror(code) if code else str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    hint = {28: "; free space on the warehouse's file system",  # ENOSPC
            30: "; the warehouse is on a read-only file system",  # EROFS
            13: "; the warehouse folder is not writable by this user",  # EACCES
            122: "; the disk quota is exceeded"}.get(code or 0, "")  # EDQUOT
    return StorageError(f"cannot write {target}: {what}{hint}")


def _storage_error_text(message: str, target: Path) -> StorageError:
    """A failed write reported only as text (DuckDB's "IO Error: ... Read-only file system") as one line."""
    for code in (28, 30, 13, 122):
        if os.strerror(code) in message:
            return _storage_error(OSError(code, os.strerror(code)), target)
    return StorageError(f"cannot write {target}: {message.strip().splitlines()[0] if message.strip() else 'failed'}")


def _atomic(target: Path, write) -> Path:
    """Write to a temporary file beside `target` with `write(tmp)`, then rename it into place."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise _storage_error(exc, target) from None
    except pl.exceptions.PolarsError as exc:
        # polars reports a failed file write (disk full) as its own error, "... (os error 28)"
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        errno = int(code.group(1))
        raise _storage_error(OSError(errno, os.strerror(errno)), target) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return target


def atomic_write_parquet(frame: pl.DataFrame, target: Path) -> Path:
    return _atomic(target, lambda tmp: frame.write_parquet(tmp, compression="zstd", statistics=True))


def atomic_sink_parquet(lazy: pl.LazyFrame, target: Path) -> Path:
    """Stream a lazy query to Parquet with bounded memory, then rename it into place."""
    return _atomic(target, lambda tmp: lazy.sink_parquet(tmp, compression="zstd", compression_level=1,
                                                         statistics=True))


def atomic_write_json(obj: Any, target: Path) -> None:
    _atomic(target, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str)))


def write_table(lake: Path, table: str, study: str, frame: pl.DataFrame) -> Path:
    """Replace one study's partition of a table on its own (the assets switch tables together through
    `warehouse.ingest`). The file holds no `study` column: the ``study=`` folder key is the study."""
    frame = frame.drop("study") if "study" in frame.columns else frame
    return atomic_write_parquet(frame, partition_dir(lake, table, study) / "data.parquet")


def _with_study(lazy: pl.LazyFrame, study: str) -> pl.LazyFrame:
    """A partition read back with its study as the first column, as the catalog shows it."""
    return lazy.select(pl.lit(study, dtype=pl.Utf8).alias("study"), pl.all().exclude("study"))


def replace_study_rows(lake: Path, table, study: str, rows: list[dict]) -> pl.DataFrame:
    """Write `rows` as a study's partition of `table` (a `warehouse.tables.Table`), conformed to its
    schema; with no rows, remove the partition so the table holds nothing stale for the study."""
    if rows:
        frame = table.conform(pl.DataFrame(rows, infer_schema_length=None).with_columns(study=pl.lit(study)))
        write_table(lake, table.name, study, frame)
        return frame
    drop_study(lake, table.name, study)
    return table.empty()


def read_table(lake: Path, table: str, study: str) -> pl.DataFrame | None:
    f = partition_dir(lake, table, study) / "data.parquet"
    return _with_study(pl.scan_parquet(f), study).collect() if f.exists() else None


def metric_units(lake: Path, study: str) -> pl.DataFrame | None:
    """The distinct (metric, unit) pairs of a study's points, read in one streaming pass."""
    f = partition_dir(lake, "points", study) / "data.parquet"
    if not f.exists():
        return None
    return pl.scan_parquet(f).select("metric", "unit").unique().collect(engine="streaming")


def scan_table(lake: Path, table: str, study: str, metrics=None) -> pl.DataFrame | None:
    """A study's partition read lazily, keeping only `metrics` (a `points`-style table) when given."""
    f = partition_dir(lake, table, study) / "data.parquet"
    if not f.exists():
        return None
    lazy = _with_study(pl.scan_parquet(f), study)
    if metrics is not None:
        lazy = lazy.filter(pl.col("metric").is_in(sorted(metrics)))
    return lazy.collect()


def remove_partition(lake: Path, target: str) -> None:
    """Remove the partition file `target` (a path relative to the lake) and its emptied ``study=`` and
    ``source=`` folders."""
    dest = inside_lake(lake, lake / target)
    dest.unlink(missing_ok=True)
    for d in (dest.parent, dest.parent.parent):
        if d.name.startswith(("study=", "source=")):
            try:
                d.rmdir()
            except OSError:
                pass


def drop_study(lake: Path, table: str, study: str) -> None:
    """Remove a study's partition (used when a study no longer has data for that table)."""
    f = partition_dir(lake, table, study) / "data.parquet"
    f.unlink(missing_ok=True)
    try:
        f.parent.rmdir()
    except OSError:
        pass


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
