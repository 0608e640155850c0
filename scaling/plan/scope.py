"""Which runs a study may fit on: the one rule every fit path goes through.

A run a study forecasts (``[forecasts] targets = [{ ..., actual_run = "..." }]``) is the answer
the study is checked against, so it never enters a fit: not the law fits with their bootstrap
and backtests, not either step of a two-step downstream forecast, and not the largest fitted
budget that forecast grids and ``extrapolation`` are measured from. Each fit then narrows the
remaining points with its own ``filter`` (an SQL expression over `points` columns) and
``min_tokens``; a downstream forecast takes the study's ``[[fits]]`` filter unless it sets one.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from scaling.errors import SpecError
from scaling.expressions import parse_column_expression


@dataclass(frozen=True)
class FitScope:
    """The runs no fit may see (``held_out``), and the selection of points a fit may use."""

    held_out: frozenset[str] = frozenset()

    def select(self, points: pl.DataFrame, *, filter: str | None = None, min_tokens: float = 0.0,
               field: str = "fits.filter") -> pl.DataFrame:
        """``points`` without the held-out runs, with ``tokens >= min_tokens`` and ``filter`` applied."""
        pts = points.filter(~pl.col("run").is_in(sorted(self.held_out))) if self.held_out else points
        pts = pts.filter(pl.col("tokens") >= min_tokens)
        if filter:
            try:
                pts = pts.filter(parse_column_expression(filter, field=field, columns=set(pts.columns)).to_polars())
            except SpecError:
                raise
            except Exception as exc:
                raise SpecError(f"fit filter {filter!r} failed: {exc}", field=field) from None
        return pts


def study_scope(forecasts: dict | None) -> FitScope:
    """The scope of a study from its ``[forecasts]`` table: every target's ``actual_run`` is held out."""
    targets = (forecasts or {}).get("targets", [])
    return FitScope(frozenset(str(t["actual_run"]) for t in targets if t.get("actual_run")))
