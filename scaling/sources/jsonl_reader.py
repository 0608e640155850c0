"""JSON lines: one JSON object per line, JSON types kept (see `records`).

``_row`` is the line number. Blank lines are skipped. A line that is not valid JSON, or not
an object, raises `SourceError` naming the line and the JSON error. Option: ``encoding`` (default
UTF-8; a Python codec name that writes a newline as one byte, such as ``latin-1`` or ``cp1252``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from scaling.errors import SourceError
from scaling.sources.options import ENCODING_HINT, check_options, encoding_option
from scaling.sources.records import frame_from_records
from scaling.sources.result import ReadResult, with_provenance

OPTIONS = {"encoding": str}


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    opts = check_options("jsonl", options, OPTIONS)
    encoding = encoding_option("jsonl", opts.get("encoding"), by_lines=True)
    label = label or Path(path).name
    frame, lines = frame_from_records(_objects(Path(path), label, encoding), label, "line")
    if not lines:
        raise SourceError("no data rows: the file has no JSON lines", file=label)
    return ReadResult(with_provenance(frame, label, lines))


def _objects(path: Path, label: str, encoding: str | None = None) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw if encoding is None else raw.decode(encoding))
            except UnicodeDecodeError as exc:
                problem = (f"not valid UTF-8: {exc.reason}; {ENCODING_HINT}" if encoding is None
                           else f"not valid {encoding}: {exc.reason}")
                raise SourceError(problem, file=label, line=number) from None
            except json.JSONDecodeError as exc:
                raise SourceError(f"invalid JSON: {exc.msg} (character {exc.colno})", file=label, line=number) from None
