"""Plain-text logs through line patterns (regexes with named groups).

Options: ``pattern`` (one regex) or ``patterns`` (a list, tried in order on each line).
A line is a row when a pattern matches somewhere in it (``re.search``; anchor with ``^``
to match from the start). Columns: every named group, in order of first appearance across
the patterns (Utf8; null when the group did not take part), ``_pattern`` (Int64, the
0-based index of the pattern that matched), then ``_file`` and ``_row`` (the line number).
Lines matching no pattern are not rows; their count is `ReadResult.lines_skipped`. ``encoding``
(default UTF-8): a Python codec name that writes a newline as one byte, such as ``latin-1``.

For example, llm.c logs (``s:0 trl:10.96`` / ``s:0 tel:10.97``) read with
``patterns = ['^s:(?P<step>\\d+) trl:(?P<train_loss>\\S+)', '^s:(?P<step>\\d+) tel:(?P<val_loss>\\S+)']``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from scaling.errors import SourceError, SpecError
from scaling.sources.options import ENCODING_HINT, check_options, encoding_option
from scaling.sources.result import RESERVED, ReadResult, with_provenance

OPTIONS = {"pattern": str, "patterns": list, "encoding": str}


def compile_patterns(options: Mapping[str, Any] | None) -> list[re.Pattern]:
    """Check the options and compile the patterns; every problem is a `SpecError`."""
    opts = check_options("text", options, OPTIONS)
    if ("pattern" in opts) == ("patterns" in opts):
        raise SpecError("format 'text' needs exactly one of the options 'pattern' or 'patterns'", field="pattern")
    key = "pattern" if "pattern" in opts else "patterns"
    sources = [opts["pattern"]] if key == "pattern" else opts["patterns"]
    if not sources:
        raise SpecError("option 'patterns' is an empty list", field=key)
    compiled = []
    for i, source in enumerate(sources):
        where = key if key == "pattern" else f"patterns[{i}]"
        if not isinstance(source, str):
            raise SpecError(f"option {where!r}: expected a regex string, got {source!r}", field=key)
        try:
            pattern = re.compile(source)
        except re.error as exc:
            raise SpecError(f"option {where!r} is not a valid regex: {exc}", field=key) from None
        if not pattern.groupindex:
            raise SpecError(
                f"option {where!r} has no named groups: name what to capture, as in (?P<loss>\\S+)", field=key
            )
        taken = [g for g in pattern.groupindex if g in RESERVED or g == "_pattern"]
        if taken:
            raise SpecError(f"option {where!r}: group name {taken[0]!r} is reserved for the reader", field=key)
        compiled.append(pattern)
    return compiled


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    patterns = compile_patterns(options)
    encoding = encoding_option("text", (options or {}).get("encoding"), by_lines=True) or "utf-8"
    label = label or Path(path).name
    names = list(dict.fromkeys(g for p in patterns for g in p.groupindex))
    columns: dict[str, list] = {name: [] for name in names}
    which, lines = [], []
    skipped = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problem = (f"not valid UTF-8 (byte {exc.start + 1} of the line); {ENCODING_HINT}" if encoding == "utf-8"
                           else f"not valid {encoding} (byte {exc.start + 1} of the line)")
                raise SourceError(problem, file=label, line=number) from None
            for index, pattern in enumerate(patterns):
                match = pattern.search(line)
                if match:
                    found = match.groupdict()
                    for name in names:
                        columns[name].append(found.get(name))
                    which.append(index)
                    lines.append(number)
                    break
            else:
                skipped += 1
    if not lines:
        plural = "s" if len(patterns) > 1 else ""
        raise SourceError(f"no line matches the pattern{plural} ({skipped} lines read)", file=label)
    frame = pl.DataFrame(
        [pl.Series(name, values, dtype=pl.Utf8) for name, values in columns.items()]
        + [pl.Series("_pattern", which, dtype=pl.Int64)]
    )
    return ReadResult(with_provenance(frame, label, lines), lines_skipped=skipped)
