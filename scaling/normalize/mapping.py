"""Mapping a source's columns: parsing text to numbers, run ids, metric columns, and bad-row handling.

Helpers of `scaling.normalize.points`: each cell that should be a number but is not is flagged (not
dropped silently), and `Problems` turns flagged rows into an error naming the file, line and column,
or into quarantine rows with the reason.
"""

from __future__ import annotations

import fnmatch
import json
import re

import polars as pl

from scaling.errors import SourceError, SpecError
from scaling.spec import SourceSpec, StudySpec, unit_of

QUARANTINE_SCHEMA = {"source": pl.Utf8, "file": pl.Utf8, "row": pl.Int64, "column": pl.Utf8,
                     "reason": pl.Utf8, "record": pl.Utf8}


def parse_number(col: str, dtype: pl.DataType, frame_schema: dict, name: str,
                 bad_name: str) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr]]:
    """Three stages of columns (each stage reads the ones before): the parsed value as `name` and an
    is-bad flag as `bad_name`. A non-empty cell that does not parse as a number is bad; for a step
    (`dtype` Int64) so is a value that is not a whole number fitting in 64 bits. In stages, so that
    the stripped text and the parsed value are computed once per cell."""
    src = pl.col(col)
    value = pl.col(name)
    text_stage: list[pl.Expr] = []
    if frame_schema[col] == pl.Utf8:
        text = pl.col(f"_text_{name}")
        text_stage = [src.str.strip_chars().alias(f"_text_{name}")]
        parsed = text.cast(pl.Float64, strict=False)
        bad = text.is_not_null() & (text != "") & value.is_null()
    elif frame_schema[col] == pl.Boolean:
        parsed = src.cast(pl.Float64, strict=False)
        bad = src.is_not_null()
    else:
        parsed = src.cast(pl.Float64, strict=False)
        bad = src.is_not_null() & value.is_null()
    if dtype == pl.Int64:  # a whole number that fits in 64 bits (a step)
        bad = bad | (value.is_not_null() & (~value.is_finite() | (value != value.floor()) | (value.abs() >= 2.0**63)))
    return text_stage, [parsed.alias(name)], [bad.alias(bad_name)]


def _record(frame: pl.DataFrame) -> list[str]:
    cols = [c for c in frame.columns if not c.startswith("_")]
    return [json.dumps(r, default=str) for r in frame.select(cols).iter_rows(named=True)]


class Problems:
    """Collects bad rows; raises the first one unless the source quarantines."""

    def __init__(self, study: StudySpec, src: SourceSpec):
        self.study, self.src = study, src
        self.frames: list[pl.DataFrame] = []

    def add(self, bad: pl.DataFrame, column: str, reason: pl.Expr | str) -> None:
        if bad.height == 0:
            return
        reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
        bad = bad.with_columns(_reason=reason_expr)
        if self.src.on_error == "fail":
            first = bad.row(0, named=True)
            raise SourceError(first["_reason"], study=self.study.name, source=self.src.name,
                              file=first["_file"], line=first["_row"] if self._line_based else None,
                              row=None if self._line_based else first["_row"], column=column)
        self.frames.append(pl.DataFrame({
            "source": [self.src.name] * bad.height, "file": bad["_file"].cast(pl.Utf8),
            "row": bad["_row"].cast(pl.Int64), "column": [column] * bad.height,
            "reason": bad["_reason"], "record": _record(bad)}, schema=QUARANTINE_SCHEMA))

    @property
    def _line_based(self) -> bool:
        return self.src.format in ("csv", "jsonl", "text")

    def frame(self) -> pl.DataFrame:
        return pl.concat(self.frames) if self.frames else pl.DataFrame(schema=QUARANTINE_SCHEMA)


def columns_of(spec_value: str | list[str]) -> list[str]:
    return [spec_value] if isinstance(spec_value, str) else list(spec_value)


def run_expr(src: SourceSpec, columns: list[str]) -> pl.Expr:
    """Run id: a column, or a template over {file_stem}, {file}, {row} and {<column>}."""
    if src.run in columns:
        return pl.col(src.run).cast(pl.Utf8)
    parts: list[pl.Expr] = []
    text = src.run
    pos = 0
    for m in re.finditer(r"\{([^{}]+)\}", text):
        if m.start() > pos:
            parts.append(pl.lit(text[pos:m.start()]))
        key = m.group(1)
        if key == "file_stem":
            parts.append(pl.col("_file").str.replace(r"^.*/", "").str.replace(r"\.[^.]*$", ""))
        elif key == "file":
            parts.append(pl.col("_file"))
        elif key == "row":
            parts.append(pl.col("_row").cast(pl.Utf8))
        elif key in columns:
            parts.append(pl.col(key).cast(pl.Utf8))
        else:
            raise SpecError(f"run template names {{{key}}}, which is neither a column nor file_stem/file/row",
                            source=src.name, field="run")
        pos = m.end()
    if pos < len(text):
        parts.append(pl.lit(text[pos:]))
    if not parts:
        raise SpecError(f"run must be a column name or a template, got {src.run!r}", source=src.name, field="run")
    return pl.concat_str(parts)


def run_columns(src: SourceSpec, columns: list[str]) -> list[str]:
    """The data columns a run id is built from (the `run` column, or the columns its template names)."""
    if src.run in columns:
        return [src.run]
    return [k for k in re.findall(r"\{([^{}]+)\}", src.run) if k in columns]


def metric_columns(src: SourceSpec, columns: list[str], first_file: str, study: str) -> list[tuple[str, str, str]]:
    """(metric name, column, unit) for a wide source."""
    found = []
    for m in src.metrics:
        if m.column not in columns:
            raise SourceError(f"mapped metric column not found (metric {m.name!r}); the source has "
                              f"{len(columns)} columns, e.g. {[c for c in columns if not c.startswith('_')][:8]}",
                              study=study, source=src.name, file=first_file, column=m.column)
        found.append((m.name, m.column, m.unit))
    for pattern in src.metric_columns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern) and not c.startswith("_")]
        if not hits:
            raise SourceError(f"metric_columns pattern {pattern!r} matches no column", study=study,
                              source=src.name, file=first_file, field="metric_columns")
        found += [(c, c, unit_of(c, src)) for c in hits if c not in {f[1] for f in found}]
    return found


def needed_columns(src: SourceSpec, columns: list[str]) -> list[str] | None:
    """The raw columns normalization reads (None: all of them, as a filter may use any)."""
    if src.filter:
        return None

    names = {"_file", "_row"}
    for spec_value in src.columns.values():
        names.update(columns_of(spec_value))
    names.update(m.column for m in src.metrics)
    names.update(c for c in columns for p in src.metric_columns if fnmatch.fnmatchcase(c, p))
    names.update([src.run] if src.run in columns else re.findall(r"\{([^{}]+)\}", src.run))
    names.update(src.labels.values())
    return [c for c in columns if c in names]
