"""A JSON document holding a table, in one of three shapes:

- an array of records: ``[{"a": 1, "b": 2}, ...]`` (``_row`` = 1-based position);
- an object of column arrays: ``{"a": [1, ...], "b": [2, ...]}`` (equal lengths);
- an object of column objects keyed by row label (pandas' ``to_json`` default):
  ``{"a": {"0": 1, ...}, "b": {"0": 2, ...}}``; the row labels go to column ``_index``.

JSON types are kept (see `records`). No options.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from scaling.errors import SourceError
from scaling.sources.options import check_options
from scaling.sources.records import ColumnBuilder, frame_from_records
from scaling.sources.result import ReadResult, with_provenance

OPTIONS: dict = {}


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    check_options("json", options, OPTIONS)
    label = label or Path(path).name
    try:
        document = json.loads(Path(path).read_bytes())
    except UnicodeDecodeError as exc:
        raise SourceError(f"not valid UTF-8: {exc.reason}", file=label) from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=label, line=exc.lineno) from None
    if isinstance(document, list):
        frame, rows = frame_from_records(enumerate(document, start=1), label, "row")
    elif isinstance(document, dict) and document and all(isinstance(v, list) for v in document.values()):
        frame = _from_column_arrays(document, label)
    elif isinstance(document, dict) and document and all(isinstance(v, dict) for v in document.values()):
        frame = _from_column_objects(document, label)
    else:
        raise SourceError(
            "expected an array of records, an object of column arrays or an object of column objects, "
            f"got {_shape(document)}",
            file=label,
        )
    if frame.height == 0:
        raise SourceError("no data rows", file=label)
    return ReadResult(with_provenance(frame, label))


def _from_column_arrays(document: dict, label: str) -> pl.DataFrame:
    first, length = next(iter(document)), len(next(iter(document.values())))
    columns = []
    for name, values in document.items():
        if len(values) != length:
            raise SourceError(
                f"column has {len(values)} values, but column {first!r} has {length}", file=label, column=name
            )
        columns.append(_column(name, values, label))
    return pl.DataFrame(columns)


def _from_column_objects(document: dict, label: str) -> pl.DataFrame:
    if "_index" in document:
        raise SourceError("column name '_index' is reserved for the row labels", file=label, column="_index")
    first = next(iter(document))
    index = list(document[first])
    columns = [pl.Series("_index", index, dtype=pl.Utf8)]
    for name, values in document.items():
        if list(values) != index:
            raise SourceError(f"row labels differ from those of column {first!r}", file=label, column=name)
        columns.append(_column(name, list(values.values()), label))
    return pl.DataFrame(columns)


def _column(name: str, values: list, label: str) -> pl.Series:
    builder = ColumnBuilder(name, label, "row")
    for row, value in enumerate(values, start=1):
        builder.add(value, row)
    return builder.series()


def _shape(document: Any) -> str:
    if isinstance(document, dict):
        return "an empty object" if not document else "an object mixing arrays, objects and single values"
    return f"a single {type(document).__name__}"
