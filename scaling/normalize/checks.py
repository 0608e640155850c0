"""Ingest checks on normalized points and runs; each returns (passed, summary, offending rows)."""

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


def finite_nonnegative(points: pl.DataFrame) -> CheckOutcome:
    """No NaN/inf values; no negative losses, tokens or compute."""
    loss_like = pl.col("unit").is_in(["nats", "bits", "bits_per_byte", "perplexity"])
    bad = points.filter(~pl.col("value").is_finite() | (loss_like & (pl.col("value") < 0))
                        | (pl.col("tokens") < 0) | (pl.col("flops") < 0))
    return CheckOutcome("finite_nonnegative", bad.height == 0,
                        f"{bad.height} non-finite or negative values", bad.head(20))


def monotone_tokens(points: pl.DataFrame) -> CheckOutcome:
    """Within a run and metric, tokens never decrease as steps increase."""
    ordered = points.filter(pl.col("step").is_not_null()).sort("run", "metric", "step")
    bad = ordered.with_columns(_prev=pl.col("tokens").shift(1).over(["run", "metric"])).filter(
        pl.col("_prev").is_not_null() & (pl.col("tokens") < pl.col("_prev")))
    return CheckOutcome("monotone_tokens", bad.height == 0,
                        f"{bad.height} points where tokens decrease while steps increase", bad.drop("_prev").head(20))


def unique_steps(points: pl.DataFrame) -> CheckOutcome:
    """No run logs the same metric twice at one step."""
    key = ["run", "metric", pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_k")]
    bad = points.with_columns(_n=pl.len().over(key)).filter(pl.col("_n") > 1)
    return CheckOutcome("unique_steps", bad.height == 0, f"{bad.height} points share a run, metric and step",
                        bad.drop("_n").head(20))


def plausible_units(runs: pl.DataFrame, low: float = 0.01, high: float = 1e5) -> CheckOutcome:
    """Tokens per parameter within [0.01, 100000]: outside it a unit is almost surely wrong."""
    tpp = runs.filter(pl.col("tokens_per_param").is_not_null())
    mask = ~pl.Series(tokens_per_param_plausible(tpp["tokens_per_param"].to_numpy(), low, high))
    bad = tpp.filter(mask)
    return CheckOutcome("plausible_units", bad.height == 0,
                        f"{bad.height} runs with tokens per parameter outside [{low:g}, {high:g}]",
                        bad.select("run", "params", "tokens", "tokens_per_param").head(20))


def ingest_checks(points: pl.DataFrame, runs: pl.DataFrame) -> list[CheckOutcome]:
    return [finite_nonnegative(points), monotone_tokens(points), unique_steps(points), plausible_units(runs)]
