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


def checkpoint_position(order: pl.Expr, learning_rate: pl.Expr, run: str) -> pl.Expr:
    """`end` / `cooldown` / `mid` for each point, from its position `order` and learning rate, per `run`."""
    peak = learning_rate.max().over(run)
    peak_at = order.filter(learning_rate == learning_rate.max()).min().over(run)
    return (pl.when(order == order.max().over(run)).then(pl.lit("end"))
            .when(learning_rate.is_not_null() & (order > peak_at) & (learning_rate < COOLDOWN_FRACTION * peak))
            .then(pl.lit("cooldown"))
            .otherwise(pl.lit("mid")))
