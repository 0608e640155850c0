"""JSON lines: one JSON object per line, JSON types kept (see `records`).

``_row`` is the line number. Blank lines are skipped. A line that is not valid JSON, or not
an object, raises `SourceError` naming the line and the JSON error. No options.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from scaling.errors import SourceError
from scaling.sources.options import check_options
from scaling.sources.records import frame_from_records
from scaling.sources.result import ReadResult, with_provenance

OPTIONS: dict = {}


def read(path: Path, options: Mapping[str, Any] | None = None, label: str | None = None) -> ReadResult:
    check_options("jsonl", options, OPTIONS)
    label = label or Path(path).name
    frame, lines = frame_from_records(_objects(Path(path), label), label, "line")
    if not lines:
        raise SourceError("no data rows: the file has no JSON lines", file=label)
    return ReadResult(with_provenance(frame, label, lines))


def _objects(path: Path, label: str) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except UnicodeDecodeError as exc:
                raise SourceError(f"not valid UTF-8: {exc.reason}", file=label, line=number) from None
            except json.JSONDecodeError as exc:
                raise SourceError(f"invalid JSON: {exc.msg} (character {exc.colno})", file=label, line=number) from None
