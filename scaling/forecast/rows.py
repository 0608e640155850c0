"""Forecast rows in the ``forecasts`` table's shape, and the result object that carries them.

A row is a plain dict with every column of the table except ``study`` and ``group_name``
(the caller adds those). Missing values are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FORECAST_COLUMNS = (
    "law", "target", "kind", "name", "flops", "params", "tokens", "tokens_per_param", "epochs",
    "params_ci_low", "params_ci_high", "tokens_ci_low", "tokens_ci_high",
    "predicted", "ci_low", "ci_high", "extrapolation", "actual", "rel_error", "recommended", "warnings",
)
KINDS = ("compute_optimal", "target_run", "data_constrained", "fixed_size", "downstream")


def _num(v):
    if v is None:
        return None
    v = float(v)
    return None if v != v else v  # nan -> None


def forecast_row(**values) -> dict:
    """A dict with every forecast column (``None`` where not given); numbers as floats, nan as None."""
    unknown = set(values) - set(FORECAST_COLUMNS)
    if unknown:
        raise KeyError(f"unknown forecast columns {sorted(unknown)}; expected some of {FORECAST_COLUMNS}")
    if values.get("kind") not in KINDS:
        raise ValueError(f"expected kind in {KINDS}, got {values.get('kind')!r}")
    row = {}
    for c in FORECAST_COLUMNS:
        v = values.get(c)
        row[c] = v if c in ("law", "target", "kind", "name", "recommended", "warnings") else _num(v)
    if row["recommended"] is None:
        row["recommended"] = False
    return row


def relative_error(predicted, actual):
    """(predicted - actual) / actual, or None without an actual value."""
    if actual is None or predicted is None:
        return None
    return (float(predicted) - float(actual)) / float(actual)


@dataclass
class ForecastResult:
    """Rows of forecasts (``rows``: dicts in ``FORECAST_COLUMNS``), with the settings used and
    any ``messages`` (e.g. an optimum found on the edge of the searched range)."""

    rows: list[dict]
    settings: dict = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def column(self, name: str) -> list:
        return [r[name] for r in self.rows]

    def to_frame(self):
        """The rows as a polars DataFrame, columns in table order."""
        import polars as pl

        schema = {c: (pl.Utf8 if c in _TEXT else pl.Boolean if c == "recommended" else pl.Float64)
                  for c in FORECAST_COLUMNS}
        return pl.DataFrame([[r[c] for c in FORECAST_COLUMNS] for r in self.rows], schema=schema, orient="row")


_TEXT = ("law", "target", "kind", "name", "warnings")
