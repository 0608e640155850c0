"""What a study report holds: named tables and named plots."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass
class StudyReport:
    study: str
    description: str = ""
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)  # stem -> PNG bytes
    generated: str = ""

    def table(self, key: str) -> pl.DataFrame:
        return self.tables.get(key, pl.DataFrame())

    def plots_for(self, *prefixes: str) -> dict[str, bytes]:
        """The plots whose names start with one of `prefixes`, in name order."""
        return {k: v for k, v in sorted(self.plots.items()) if k.startswith(prefixes)}
