"""Parquet: read as stored (types kept); ``_row`` is the 1-based record number. No options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from scaling.errors import SourceError
from scaling.sources.options import check_options
from scaling.sources.result import ReadResult, with_provenance

OPTIONS: dict = {}


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    check_options("parquet", options, OPTIONS)
    label = label or Path(path).name
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"cannot read as Parquet: {first}", file=label) from None
    if frame.height == 0:
        raise SourceError("no data rows", file=label)
    return ReadResult(with_provenance(frame, label))
