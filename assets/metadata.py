"""Turning frames and fits into metadata a person reads at a glance in the Dagster UI."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
from dagster import MetadataValue


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4g}" if (abs(v) >= 1e5 or (0 < abs(v) < 1e-3)) else f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v).replace("|", "\\|")


def markdown_table(frame: pl.DataFrame, limit: int = 20) -> str:
    if frame.height == 0:
        return "_no rows_"
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in head.iter_rows()]
    if frame.height > limit:
        lines.append(f"\n_{frame.height - limit} more rows_")
    return "\n".join(lines)


def preview(frame: pl.DataFrame, limit: int = 10) -> MetadataValue:
    return MetadataValue.md(markdown_table(frame, limit))


def image(path: Path) -> MetadataValue:
    """Embed a PNG so the UI shows it inline (and link the file)."""
    import base64

    data = base64.b64encode(path.read_bytes()).decode()
    return MetadataValue.md(f"![{path.stem}](data:image/png;base64,{data})\n\n`{path.name}`")
