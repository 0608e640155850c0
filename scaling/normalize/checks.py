"""Ingest checks on normalized points and runs; each returns (passed, summary, offending rows).

`points` may be lazy (a scan of the written table): each check is an aggregate query that
materializes only the offending rows it reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from scaling.normalize.units import tokens_per_param_plausible


@dataclass
class CheckOutcome:
    name: str
    passed: bool
    summary: str
    offending: pl.DataFrame
    n_offending: int | None = None  # all offending rows (`offending` holds the first 20)


def _outcome(name: str, bad: pl.LazyFrame, summary: str) -> CheckOutcome:
    n = bad.select(pl.len()).collect(engine="streaming").item()
    return CheckOutcome(name, n == 0, summary.format(n=n), bad.head(20).collect(), n)


def finite_nonnegative(points: pl.DataFrame | pl.LazyFrame) -> CheckOutcome:
    """No NaN/inf values; no negative losses, tokens or compute."""
    loss_like = pl.col("unit").is_in(["nats", "bits", "bits_per_byte", "perplexity"])
    bad = points.lazy().filter(~pl.col("value").is_finite() | (loss_like & (pl.col("value") < 0))
                               | (pl.col("tokens") < 0) | (pl.col("flops") < 0))
    return _outcome("finite_nonnegative", bad, "{n} non-finite or negative values")


def monotone_tokens(points: pl.DataFrame | pl.LazyFrame) -> CheckOutcome:
    """Within a run and metric, tokens never decrease as steps increase."""
    ordered = points.lazy().select("run", "metric", "step", "tokens").filter(pl.col("step").is_not_null()) \
        .sort("run", "metric", "step")
    bad = ordered.with_columns(_prev=pl.col("tokens").shift(1).over(["run", "metric"])).filter(
        pl.col("_prev").is_not_null() & (pl.col("tokens") < pl.col("_prev"))).drop("_prev")
    return _outcome("monotone_tokens", bad, "{n} points where tokens decrease while steps increase")


def unique_steps(points: pl.DataFrame | pl.LazyFrame) -> CheckOutcome:
    """No run logs the same metric twice at one step."""
    key = ["run", "metric", pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_k")]
    bad = points.lazy().group_by(key).agg(n=pl.len()).filter(pl.col("n") > 1)
    return _outcome("unique_steps", bad, "{n} run/metric/step keys appear more than once")


def plausible_units(runs: pl.DataFrame, low: float = 0.01, high: float = 1e5) -> CheckOutcome:
    """Tokens per parameter within [0.01, 100000]: outside it a unit is almost surely wrong."""
    tpp = runs.filter(pl.col("tokens_per_param").is_not_null())
    mask = ~pl.Series(tokens_per_param_plausible(tpp["tokens_per_param"].to_numpy(), low, high))
    bad = tpp.filter(mask)
    return CheckOutcome("plausible_units", bad.height == 0,
                        f"{bad.height} runs with tokens per parameter outside [{low:g}, {high:g}]",
                        bad.select("run", "params", "tokens", "tokens_per_param").head(20), bad.height)


def ingest_checks(points: pl.DataFrame, runs: pl.DataFrame) -> list[CheckOutcome]:
    return [finite_nonnegative(points), monotone_tokens(points), unique_steps(points), plausible_units(runs)]
