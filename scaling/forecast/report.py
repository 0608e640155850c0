"""Plain-text tables of forecasts (Markdown), for READMEs and reports."""

from __future__ import annotations

from typing import Mapping, Sequence


def _fmt(v, spec: str | None) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v != v:
        return "–"
    if spec and isinstance(v, (int, float)) and not isinstance(v, bool):
        return format(v, spec)
    return str(v)


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str], *, headers: Sequence[str] | None = None,
                   formats: Mapping[str, str] | None = None) -> str:
    """A GitHub Markdown table of ``rows`` (dicts) in ``columns``; ``formats`` maps a column to a
    format spec (e.g. ``"+.1%"``); missing values print as an en dash."""
    headers = list(headers or columns)
    if len(headers) != len(columns):
        raise ValueError(f"expected {len(columns)} headers, got {len(headers)}")
    formats = formats or {}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c), formats.get(c)) for c in columns) + " |")
    return "\n".join(lines)
