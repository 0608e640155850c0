"""What a reader returns, and the two columns every reader adds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import polars as pl

from scaling.errors import SourceError

RESERVED = ("_file", "_row")


@dataclass(frozen=True)
class ReadResult:
    """The raw rows, plus what was read but is not a row.

    `lines_skipped`: text-log lines matching no pattern. `records_skipped`: TensorBoard
    values that are not scalars (histograms, images, text).
    """

    frame: pl.DataFrame
    lines_skipped: int = 0
    records_skipped: int = 0


def with_provenance(frame: pl.DataFrame, label: str, rows: Sequence[int] | None = None) -> pl.DataFrame:
    """Append `_file` (the label) and `_row` (given, or the 1-based record number)."""
    for name in RESERVED:
        if name in frame.columns:
            raise SourceError(f"column name {name!r} is reserved for the reader", file=label, column=name)
    if rows is None:
        row = pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row")
    else:
        row = pl.Series("_row", rows, dtype=pl.Int64)
    return frame.with_columns(pl.lit(label, dtype=pl.Utf8).alias("_file"), row)
