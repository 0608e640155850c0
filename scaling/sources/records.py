"""Columns from JSON values, keeping JSON types.

A column's type is that of its values: booleans -> Boolean, integers -> Int64, numbers with
a fraction (or a mix of integers and fractions) -> Float64, strings -> Utf8, all null ->
Null. Nested objects and arrays become their compact JSON text (Utf8). A column mixing
kinds that do not fit one type (a string among numbers) raises `SourceError` naming the
line or row, the column and the kind expected.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from scaling.errors import SourceError

_INT64 = (-(2**63), 2**63 - 1)
_DTYPES = {"bool": pl.Boolean, "int": pl.Int64, "float": pl.Float64, "str": pl.Utf8, None: pl.Null}
_NAMES = {"bool": "true/false", "int": "a number", "float": "a number", "str": "a string"}


def kind_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


class ColumnBuilder:
    """Collects one column's values, checking each fits the kind seen so far."""

    def __init__(self, name: str, label: str, where: str, leading_nulls: int = 0):
        self.name, self.label, self.where = name, label, where
        self.values: list[Any] = [None] * leading_nulls
        self.kind: str | None = None
        self.first_at: int | None = None

    def add(self, value: Any, at: int) -> None:
        kind = kind_of(value)
        if kind == "json":
            value, kind = json.dumps(value, separators=(",", ":"), ensure_ascii=False), "str"
        if kind == "int" and not _INT64[0] <= value <= _INT64[1]:
            self._fail(at, f"integer {value} does not fit in 64 bits")
        if kind is not None and kind != self.kind:
            if self.kind is None:
                self.kind, self.first_at = kind, at
            elif {kind, self.kind} == {"int", "float"}:
                self.kind = "float"
            else:
                self._fail(at, f"expected {_NAMES[self.kind]} (as at {self.where} {self.first_at}), got {value!r}")
        self.values.append(value)

    def series(self) -> pl.Series:
        values = self.values
        if self.kind == "float":
            values = [None if v is None else float(v) for v in values]
        return pl.Series(self.name, values, dtype=_DTYPES[self.kind])

    def _fail(self, at: int, problem: str) -> None:
        raise SourceError(problem, file=self.label, column=self.name, **{self.where: at})


def frame_from_records(records, label: str, where: str) -> tuple[pl.DataFrame, list[int]]:
    """Build a frame from (position, dict) pairs; `where` is "line" or "row" for errors.

    Keys missing from a record are null. Columns appear in order of first appearance.
    Returns the frame and the positions (for `_row`).
    """
    columns: dict[str, ColumnBuilder] = {}
    positions: list[int] = []
    for at, record in records:
        if not isinstance(record, dict):
            raise SourceError(f"expected a JSON object, got {type(record).__name__}", file=label, **{where: at})
        for name, value in record.items():
            builder = columns.get(name)
            if builder is None:
                builder = columns[name] = ColumnBuilder(name, label, where, leading_nulls=len(positions))
            builder.add(value, at)
        positions.append(at)
        for builder in columns.values():
            if len(builder.values) < len(positions):
                builder.values.append(None)
    if positions and not columns:
        raise SourceError("no columns: every record is an empty object", file=label, **{where: positions[0]})
    return pl.DataFrame([b.series() for b in columns.values()]), positions
