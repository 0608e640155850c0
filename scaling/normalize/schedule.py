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

A study can state the schedule instead, as run metadata (`SCHEDULE_KEYS`): where it ends
(``schedule_steps`` or ``schedule_tokens``) and where its cooldown starts (``cooldown_start_step`` or
``cooldown_start_tokens``). What the study states wins over the learning-rate column and over the last
logged point: a run whose log stops short of its schedule's end (a truncated run, a segment of a longer
run, a stable-phase checkpoint of a warmup-stable-decay run) has no ``end`` point, so final-loss fits
leave it out. A metric's last point within ``END_TOLERANCE`` of the stated end is ``end`` (the points
before it are ``cooldown`` or ``mid``); a point past the end by more is an error of the input
(`beyond_schedule`).
"""

from __future__ import annotations

import polars as pl

CHECKPOINTS = ("end", "cooldown", "mid")
COOLDOWN_FRACTION = 0.5
# Run metadata that states a schedule: (run metadata key, position it is measured in).
SCHEDULE_END = (("schedule_steps", "step"), ("schedule_tokens", "tokens"))
COOLDOWN_START = (("cooldown_start_step", "step"), ("cooldown_start_tokens", "tokens"))
SCHEDULE_KEYS = tuple(k for k, _ in SCHEDULE_END + COOLDOWN_START)
# Relative slack at a stated end: a schedule of 10,000 steps logged last at step 9,999 has ended.
END_TOLERANCE = 0.01


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


def _stated(keys: tuple[tuple[str, str], ...], at: dict[str, pl.Expr], slack: float) -> pl.Expr:
    """Whether a point is at or past the run's stated position (null where the run states none): the
    first of `keys` the run has, compared with the point's position in that key's unit."""
    out = pl.lit(None, dtype=pl.Boolean)
    for key, unit in reversed(keys):
        out = pl.when(pl.col(key).is_not_null()).then(at[unit] >= pl.col(key) * (1.0 - slack)).otherwise(out)
    return out


def stated_position(step: pl.Expr, tokens: pl.Expr) -> dict[str, pl.Expr]:
    """A point's position in each unit a schedule can be stated in: its step, else its tokens over the
    run's batch tokens; its tokens."""
    return {"step": pl.coalesce(step.cast(pl.Float64), tokens / pl.col("batch_tokens")), "tokens": tokens}


def beyond_schedule(at: dict[str, pl.Expr]) -> pl.Expr:
    """Points past their run's stated end by more than `END_TOLERANCE`, or with no position in the unit
    the end is stated in (true = a problem of the input)."""
    out = pl.lit(False)
    for key, unit in SCHEDULE_END:
        out = out | (pl.col(key).is_not_null() & (at[unit].is_null() | (at[unit] > pl.col(key) * (1.0 + END_TOLERANCE))))
    return out


def checkpoint_position(order: pl.Expr, learning_rate: pl.Expr, at: dict[str, pl.Expr] | None = None,
                        metric_last: pl.Expr | None = None) -> pl.Expr:
    """`end` / `cooldown` / `mid` for each point, given the `run_schedule` columns of its run and, where
    the run states its schedule (`SCHEDULE_KEYS`, positions `at` from `stated_position`), that: then a
    metric's last point (`metric_last`, its position) is `end` when it reaches the stated end."""
    by_lr = learning_rate.is_not_null() & (order > pl.col("_lr_peak_at")) \
        & (learning_rate < COOLDOWN_FRACTION * pl.col("_lr_peak"))
    if at is None:
        ended, cooling = order == pl.col("_run_last"), by_lr
    else:
        stated_end, stated_cool = _stated(SCHEDULE_END, at, END_TOLERANCE), _stated(COOLDOWN_START, at, 0.0)
        last = order == (metric_last if metric_last is not None else pl.col("_run_last"))
        ended = (stated_end & last).fill_null(order == pl.col("_run_last"))
        cooling = stated_cool.fill_null(by_lr)
    return pl.when(ended).then(pl.lit("end")).when(cooling).then(pl.lit("cooldown")).otherwise(pl.lit("mid"))
