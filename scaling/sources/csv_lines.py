"""The careful CSV pass: where each record starts, and what is wrong where.

Polars reads CSV fast but cannot say on which physical line a record began (quoted fields
may span lines, comment lines are skipped) and pads short records with nulls. This pass
walks the file once with the standard library's strict CSV parser and returns a
`LineMap` from record index to starting line, or raises `SourceError` naming the line
and what was expected. It is only run when the fast checks in `csv_reader` call for it.

Records are counted the way polars counts them: blank lines before the header and comment
lines are not records; a blank line after the header is a record (marked `blank`, and
dropped by the reader when the file has more than one column).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scaling.errors import SourceError
from scaling.sources.options import ENCODING_HINT

# Fields as long as polars reads (the default limit is 128 KiB).
csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))


@dataclass
class LineMap:
    header: list[str]
    header_line: int
    records: int = 0
    change_rows: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    blank_rows: list[int] = field(default_factory=list)

    def lines(self, start: int, stop: int) -> np.ndarray:
        """Starting line (1-based) of records start..stop-1: line = index + offset(index)."""
        index = np.arange(start, stop, dtype=np.int64)
        if not self.change_rows:
            return index + (self.header_line + 1)
        which = np.searchsorted(np.asarray(self.change_rows), index, side="right") - 1
        return index + np.asarray(self.offsets, dtype=np.int64)[which]


class _Lines:
    """Physical lines of a file, decoded, skipping comment lines between records."""

    def __init__(self, handle, comment: str | None, label: str):
        self.handle, self.comment, self.label = handle, comment, label
        self.line = 0
        self.start = 0
        self.at_start = True

    def __iter__(self):
        for raw in self.handle:
            self.line += 1
            try:
                text = raw.decode("utf-8-sig" if self.line == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                problem = f"not valid UTF-8 (byte {exc.start + 1} of the line); {ENCODING_HINT}"
                raise SourceError(problem, file=self.label, line=self.line) from None
            if self.at_start:
                if self.comment and text.startswith(self.comment):
                    continue
                self.start = self.line
                self.at_start = False
            yield text


def read_header(path: Path, *, delimiter: str, comment: str | None, label: str) -> tuple[list[str], int]:
    """The header record and its line number (the first non-blank, non-comment record)."""
    with open(path, "rb") as handle:
        lines = _Lines(handle, comment, label)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        for record in _records(reader, lines, label):
            if record:
                return record, lines.start
    raise SourceError("no header line: the file has only blank or comment lines", file=label)


def scan_lines(path: Path, *, delimiter: str, comment: str | None, label: str) -> LineMap:
    """Walk every record; raise at the first malformed one, else return the line map."""
    with open(path, "rb") as handle:
        lines = _Lines(handle, comment, label)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        found: LineMap | None = None
        width = 0
        offset = None
        for record in _records(reader, lines, label):
            if found is None:
                if record:
                    found = LineMap(header=record, header_line=lines.start)
                    width = len(record)
                continue
            index = found.records
            found.records += 1
            if not record:
                if width > 1:
                    found.blank_rows.append(index)
            elif len(record) != width:
                raise SourceError(
                    f"expected {width} fields (as in the header), found {len(record)}", file=label, line=lines.start
                )
            if lines.start - index != offset:
                offset = lines.start - index
                found.change_rows.append(index)
                found.offsets.append(offset)
    if found is None:
        raise SourceError("no header line: the file has only blank or comment lines", file=label)
    return found


def _records(reader, lines: _Lines, label: str):
    while True:
        lines.at_start = True
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(_quote_problem(exc), file=label, line=lines.start or 1) from None
        yield record


def _quote_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "unterminated quoted field: the quote opened in the record starting here is never closed"
    return f"malformed quoting: {text}"
