"""Where a point sits in its run's learning-rate schedule: `end`, `cooldown` or `mid`.

- ``end``: the run's last logged position (largest tokens, else step): the end of its schedule, where
  final-loss laws (Kaplan, Chinchilla, ...) are defined; a results table's rows (``final = "all"``)
  are all ``end``.
- ``cooldown``: past the learning-rate peak and below ``COOLDOWN_FRACTION`` of it, i.e. inside the
  decay (the cooldown of a warmup-stable-decay schedule, the second half of a cosine). Loss there
  reflects annealing as well as data (Tissue et al. 2024; Hägele et al. 2024), so such points are not
  end-of-schedule losses.
- ``mid``: everything else (warmup, a constant or slowly decaying phase), and every point of a run
  that logs no learning rate but its last.
"""

from __future__ import annotations

import polars as pl

CHECKPOINTS = ("end", "cooldown", "mid")
COOLDOWN_FRACTION = 0.5


def run_schedule(order: pl.Expr, learning_rate: pl.Expr) -> list[pl.Expr]:
    """Per-run aggregates `checkpoint_position` reads, but for `peak_positions` (a group-by whose
    aggregates are running maxima, so large sources stream in bounded memory)."""
    return [order.max().alias("_run_last"), learning_rate.max().alias("_lr_peak")]


def peak_positions(points: pl.LazyFrame, order: pl.Expr, learning_rate: pl.Expr,
                   schedule: pl.DataFrame) -> pl.LazyFrame:
    """Each run's first position at its learning-rate peak (`_lr_peak_at`): the points whose rate equals
    their run's `_lr_peak` (from the `run_schedule` aggregates in `schedule`, keyed by `_run`), then the
    smallest position among them. A join with the small per-run table and a filter, so it streams (the
    same aggregate in one group-by would hold every point of a run in memory)."""
    peaks = schedule.lazy().select("_run", "_lr_peak").filter(pl.col("_lr_peak").is_not_null())
    # a left join keeps the small table as the build side, so the points stream through it
    return points.join(peaks, on="_run", how="left").filter(learning_rate == pl.col("_lr_peak")) \
        .group_by("_run").agg(order.min().alias("_lr_peak_at"))


def checkpoint_position(order: pl.Expr, learning_rate: pl.Expr) -> pl.Expr:
    """`end` / `cooldown` / `mid` for each point, given the `run_schedule` columns of its run."""
    return (pl.when(order == pl.col("_run_last")).then(pl.lit("end"))
            .when(learning_rate.is_not_null() & (order > pl.col("_lr_peak_at"))
                  & (learning_rate < COOLDOWN_FRACTION * pl.col("_lr_peak")))
            .then(pl.lit("cooldown"))
            .otherwise(pl.lit("mid")))
