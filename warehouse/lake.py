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
import uuid
from pathlib import Path
from typing import Any

import polars as pl


def partition_dir(lake: Path, table: str, study: str, source: str | None = None) -> Path:
    d = lake / table / f"study={study}"
    return d / f"source={source}" if source is not None else d


def atomic_write_parquet(frame: pl.DataFrame, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target




def atomic_sink_parquet(lazy: pl.LazyFrame, target: Path) -> Path:
    """Stream a lazy query to Parquet with bounded memory, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        lazy.sink_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def atomic_write_json(obj: Any, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, target)


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
