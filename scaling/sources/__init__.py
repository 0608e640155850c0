"""Sources: resolve a location to files, and read a file into raw rows.

`resolve_location` (in `locate`) turns a path, glob or http(s) URL into `ResolvedFile`s.
`read_file` reads one file in a given format into a polars frame of raw rows, losslessly:
the original columns under their original names, plus ``_file`` (Utf8, the label) and
``_row`` (Int64: the 1-based line number for line-based formats — CSV, JSON lines, text
logs — else the 1-based record number). `read_file_with_stats` also says what was read but
is not a row. Each format lives in its own module; `FORMATS` maps names to them.
For CSV files too large for memory, `iter_csv_batches` streams them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl

from scaling.errors import SpecError
from scaling.sources import (
    csv_reader,
    json_reader,
    jsonl_reader,
    lm_eval_reader,
    parquet_reader,
    tensorboard_reader,
    text_reader,
)
from scaling.sources.csv_reader import iter_csv_batches
from scaling.sources.locate import ResolvedFile, resolve_location
from scaling.sources.result import ReadResult


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[..., ReadResult]
    options: Mapping[str, type]
    line_based: bool


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", csv_reader.read, csv_reader.OPTIONS, True),
        Format("jsonl", jsonl_reader.read, jsonl_reader.OPTIONS, True),
        Format("json", json_reader.read, json_reader.OPTIONS, False),
        Format("lm_eval", lm_eval_reader.read, lm_eval_reader.OPTIONS, False),
        Format("text", text_reader.read, text_reader.OPTIONS, True),
        Format("parquet", parquet_reader.read, parquet_reader.OPTIONS, False),
        Format("tensorboard", tensorboard_reader.read, tensorboard_reader.OPTIONS, False),
    )
}


def read_file_with_stats(
    path: Path, fmt: str, *, options: Mapping[str, Any] | None = None, label: str | None = None
) -> ReadResult:
    """Read `path` as `fmt`; the result also counts skipped lines and records."""
    if fmt not in FORMATS:
        raise SpecError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})", field="format")
    return FORMATS[fmt].read(Path(path), options, label or Path(path).name)


def read_file(
    path: Path, fmt: str, *, options: Mapping[str, Any] | None = None, label: str | None = None
) -> pl.DataFrame:
    """Read `path` as `fmt` into raw rows plus ``_file`` and ``_row``."""
    return read_file_with_stats(path, fmt, options=options, label=label).frame


__all__ = [
    "FORMATS",
    "Format",
    "ReadResult",
    "ResolvedFile",
    "iter_csv_batches",
    "read_file",
    "read_file_with_stats",
    "resolve_location",
]
