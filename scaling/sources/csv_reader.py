"""CSV: every column as text, exactly as written, with the line each record starts on.

Options: ``delimiter`` (one character, default ``,``), ``comment`` (lines starting with it
are skipped), ``encoding`` (default UTF-8; any Python codec name such as ``latin-1`` or
``cp1252``: such a file is first re-encoded to a temporary UTF-8 copy, line for line). Every column is read as Utf8 (``infer_schema=False``), so ``3812622336`` and
``3812622336.0`` stay as written; empty fields become null. ``_row`` is the physical line the
record starts on (the header is line 1 when it is the first line).

Errors: a 0-byte file ("file is empty"); a header with no data rows ("no data rows"); a
record with the wrong number of fields ("expected 97 fields (as in the header), found 95"),
a quote that never closes, or bad UTF-8, each naming the line; duplicate header names; a
column named ``_file`` or ``_row``. Blank lines after the header are skipped (in a
one-column file a blank line is an empty value).

Speed: polars' native reader does the parsing. A few cheap checks (null count of the last
column, and when the file has quotes or comments, its newline count) decide whether each
record is one line; only if not is the file walked again in Python (`csv_lines`) to find
the bad line or the exact line numbers. `iter_csv_batches` streams a file of any size.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from scaling.errors import SourceError, SpecError
from scaling.sources.csv_lines import LineMap, read_header, scan_lines
from scaling.sources.options import check_options, encoding_option
from scaling.sources.result import RESERVED, ReadResult

OPTIONS = {"delimiter": str, "comment": str, "encoding": str}
_CHUNK = 1 << 24


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    """Read a whole CSV file into memory (see the module docstring)."""
    path, label = Path(path), label or Path(path).name
    if _encoding(options):
        with _utf8_copy(path, _encoding(options), label) as copy:
            return read(copy, _utf8_options(options), label)
    delimiter, comment = _options(options)
    header = _check_start(path, delimiter, comment, label)
    try:
        frame = pl.read_csv(path, **_polars_args(delimiter, comment))
    except pl.exceptions.PolarsError as exc:
        raise _locate_failure(path, delimiter, comment, label, exc) from None
    _check_columns(frame, header, label)
    line_map = None
    if _needs_scan(frame, path, comment, header_line=header[1]):
        line_map = _scan_matching(path, delimiter, comment, label, frame.height)
    frame = _finish(frame, line_map, 0, label)
    if frame.height == 0:
        raise SourceError("no data rows: the file has a header but no records", file=label)
    return ReadResult(frame)


def scan_plain(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> pl.LazyFrame | None:
    """A lazy, streaming read of a *plain* CSV file, or None when the file needs the careful reader.

    Plain: no quote characters, no comment option, the header on line 1, at least one record, and
    every line with as many delimiters as the header. Then every record is one line, so ``_row`` is
    the record index + 2, and polars can stream the file to Parquet without holding it. Anything
    else returns None: use `read`, which finds bad lines.

    One pass over the bytes counts newlines and delimiters (and looks for a quote): the file holds
    exactly lines x (header delimiters) delimiters. With that total, no line can have fewer than
    the header unless another has more, and polars refuses a line with more fields than the header
    while it streams (the caller then locates it with `locate_scan_failure`).
    """
    path, label = Path(path), label or Path(path).name
    if _encoding(options):
        return None
    delimiter, comment = _options(options)
    header, line = _check_start(path, delimiter, comment, label)
    if comment or line != 1:
        return None
    layout = _plain_layout(path, delimiter)
    if layout is None:  # a quote character
        return None
    lines, delimiters = layout
    if lines < 2 or delimiters != lines * (len(header) - 1):
        return None
    lazy = pl.scan_csv(path, **_polars_args(delimiter, comment))
    return lazy.select(*[pl.col(c) for c in header], pl.lit(label, dtype=pl.Utf8).alias("_file"),
                       (pl.col("_row").cast(pl.Int64) + 2).alias("_row"))


def iter_csv_batches(
    path: Path, batch_rows: int = 1_000_000, *, options: Mapping[str, Any] | None = None, label: str | None = None
) -> Iterator[pl.DataFrame]:
    """Stream a CSV file as frames of at most `batch_rows` records, in bounded memory.

    Each frame has the same columns as `read` gives. Write them to a temporary file and
    keep it only when the generator finishes: a malformed record late in the file raises
    `SourceError` after earlier batches were yielded. Files containing quote characters
    or comment lines get a line-numbering pass in Python first (slower); plain files do not.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    path, label = Path(path), label or Path(path).name
    if _encoding(options):
        with _utf8_copy(path, _encoding(options), label) as copy:
            yield from iter_csv_batches(copy, batch_rows, options=_utf8_options(options), label=label)
        return
    delimiter, comment = _options(options)
    header = _check_start(path, delimiter, comment, label)
    line_map = None
    if comment or _has_quote(path) or header[1] != 1:
        line_map = scan_lines(path, delimiter=delimiter, comment=comment, label=label)
    lazy = pl.scan_csv(path, **_polars_args(delimiter, comment))
    seen = 0
    try:
        for batch in lazy.collect_batches(chunk_size=batch_rows):
            if seen == 0:
                _check_columns(batch, header, label)
            if line_map is None and batch.width > 2 and batch[batch.columns[-1]].null_count():
                line_map = scan_lines(path, delimiter=delimiter, comment=comment, label=label)
            out = _finish(batch, line_map, seen, label)
            seen += batch.height
            if out.height:
                yield out
    except pl.exceptions.PolarsError as exc:
        raise _locate_failure(path, delimiter, comment, label, exc) from None
    if line_map is not None and line_map.records != seen:
        raise _disagree(label, seen, line_map.records)
    if seen == 0 or (line_map is not None and seen == len(line_map.blank_rows)):
        raise SourceError("no data rows: the file has a header but no records", file=label)


def _options(options: Mapping[str, Any] | None) -> tuple[str, str | None]:
    opts = check_options("csv", options, OPTIONS)
    delimiter = opts.get("delimiter", ",")
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        problem = f"option 'delimiter' for format 'csv': expected one character, got {delimiter!r}"
        raise SpecError(problem, field="delimiter")
    comment = opts.get("comment") or None
    return delimiter, comment


def locate_scan_failure(files: list[tuple[Path, str]], options: Mapping[str, Any] | None,
                        exc: Exception) -> SourceError:
    """A streaming scan (`scan_plain`) of these (path, label) files failed in polars: find the file and
    line with the careful pass (bad UTF-8, a malformed record), else pass polars' first line on."""
    delimiter, comment = _options(options)
    for path, label in files:
        scan_lines(path, delimiter=delimiter, comment=comment, label=label)  # raises a located error
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceError(f"cannot parse as CSV: {first}", file=files[0][1] if len(files) == 1 else None)


def _encoding(options: Mapping[str, Any] | None) -> str | None:
    """The file's encoding when it is not UTF-8 (None for UTF-8, the native encoding)."""
    return encoding_option("csv", check_options("csv", options, OPTIONS).get("encoding"))


def _utf8_options(options: Mapping[str, Any] | None) -> dict:
    return {k: v for k, v in (options or {}).items() if k != "encoding"}


@contextmanager
def _utf8_copy(path: Path, encoding: str, label: str) -> Iterator[Path]:
    """A temporary UTF-8 copy of a file in another encoding, with the same lines."""
    fd, tmp = tempfile.mkstemp(prefix=".utf8-", suffix=".csv")
    try:
        line = 0
        with open(path, encoding=encoding, newline="") as source, os.fdopen(fd, "w", encoding="utf-8",
                                                                           newline="") as out:
            try:
                for line, text in enumerate(source, start=1):
                    out.write(text)
            except UnicodeDecodeError as exc:
                raise SourceError(f"not valid {encoding}: {exc.reason}", file=label, line=line + 1) from None
        yield Path(tmp)
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", file=label) from None
    finally:
        os.unlink(tmp)


def _polars_args(delimiter: str, comment: str | None) -> dict:
    return dict(
        infer_schema=False, separator=delimiter, comment_prefix=comment, row_index_name="_row", raise_if_empty=False
    )


def _check_start(path: Path, delimiter: str, comment: str | None, label: str) -> tuple[list[str], int]:
    """Fail early on an empty file and on header problems; return (header, header line)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}", file=label) from None
    if size == 0:
        raise SourceError("file is empty", file=label)
    header, line = read_header(path, delimiter=delimiter, comment=comment, label=label)
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in RESERVED:
            raise SourceError(f"column name {name!r} is reserved for the reader", file=label, line=line, column=name)
        if name in seen:
            problem = f"duplicate column name {name!r} (columns {seen[name]} and {position})"
            raise SourceError(problem, file=label, line=line, column=name)
        seen[name] = position
    return header, line


def _check_columns(frame: pl.DataFrame, header: tuple[list[str], int], label: str) -> None:
    if frame.columns[1:] != header[0]:
        problem = f"could not read the header line: got columns {frame.columns[1:]}"
        raise SourceError(problem, file=label, line=header[1])


def _needs_scan(frame: pl.DataFrame, path: Path, comment: str | None, header_line: int) -> bool:
    """True unless every record is known to be exactly one line, with no short records."""
    if frame.height == 0 or header_line != 1:
        return True
    plain = comment is None and not _has_quote(path)
    if frame.width > 2 and frame[frame.columns[-1]].null_count():
        # a short record or a blank line, or just empty values: without quotes, counting the
        # delimiters on every line tells them apart; otherwise look closer
        return not (plain and _fields_per_line_equal(path, frame.width - 2))
    if plain:
        return False  # without quotes every newline ends a record
    return _count_lines(path) != frame.height + 1


def _scan_matching(path: Path, delimiter: str, comment: str | None, label: str, rows: int) -> LineMap:
    line_map = scan_lines(path, delimiter=delimiter, comment=comment, label=label)
    if line_map.records != rows:
        raise _disagree(label, rows, line_map.records)
    return line_map


def _finish(frame: pl.DataFrame, line_map: LineMap | None, start: int, label: str) -> pl.DataFrame:
    """Add `_file`, set `_row` to line numbers, drop blank lines; originals first."""
    names = frame.columns[1:]
    if line_map is None:
        rows = (pl.col("_row").cast(pl.Int64) + 2).alias("_row")
        return frame.select(*names, pl.lit(label, dtype=pl.Utf8).alias("_file"), rows)
    stop = start + frame.height
    lines = pl.Series("_row", line_map.lines(start, stop), dtype=pl.Int64)
    out = frame.select(*names, pl.lit(label, dtype=pl.Utf8).alias("_file")).with_columns(lines)
    blanks = np.asarray(line_map.blank_rows, dtype=np.int64)
    blanks = blanks[(blanks >= start) & (blanks < stop)] - start
    if blanks.size:
        keep = np.ones(frame.height, dtype=bool)
        keep[blanks] = False
        out = out.filter(pl.Series(keep))
    return out


def _locate_failure(path: Path, delimiter: str, comment: str | None, label: str, exc: Exception) -> SourceError:
    """Polars refused the file: find the bad line with the careful pass, or pass its message on."""
    scan_lines(path, delimiter=delimiter, comment=comment, label=label)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceError(f"cannot parse as CSV: {first}", file=label)


def _disagree(label: str, fast: int, careful: int) -> SourceError:
    return SourceError(
        f"cannot number the lines: the fast reader found {fast} records, the line scan {careful} "
        "(a quote inside an unquoted field?)",
        file=label,
    )


def _fields_per_line_equal(path: Path, delimiters: int, delimiter: str = ",") -> bool:
    """Every line (of a file without quotes) has exactly `delimiters` delimiters: no short or blank records.

    Vectorized over 16 MiB chunks: delimiter positions counted between consecutive newlines.
    """
    nl, sep = ord("\n"), ord(delimiter)
    carry = 0  # delimiters seen since the last newline of the previous chunk
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            data = np.frombuffer(chunk, dtype=np.uint8)
            ends = np.flatnonzero(data == nl)
            seps = np.flatnonzero(data == sep)
            if ends.size:
                before = np.searchsorted(seps, ends)
                per_line = np.diff(before, prepend=0)
                per_line[0] += carry
                if np.any(per_line != delimiters):
                    return False
                carry = int(seps.size - before[-1])
            else:
                carry += int(seps.size)
    return carry in (0, delimiters)


def _plain_layout(path: Path, delimiter: str) -> tuple[int, int] | None:
    """(lines, delimiters) of a file without quote characters, else None; one pass in 16 MiB chunks
    (a last line without a newline counts as a line)."""
    sep = delimiter.encode()
    lines = delimiters = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if b'"' in chunk:
                return None
            lines += chunk.count(b"\n")
            delimiters += chunk.count(sep)
            last = chunk[-1:]
    return lines + (last != b"\n"), delimiters


def _has_quote(path: Path) -> bool:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            if b'"' in chunk:
                return True
    return False


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
