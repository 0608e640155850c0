"""Metrics computed from other metrics (``[computed.<name>]`` in a study file), added to `points`.

- ``mean``: the mean, or weighted mean, of several metrics at each run x step (or tokens): the
  MMLU average over its subsets, a validation-set-composition weighted loss
  L = Σ_i w_i L_i / Σ_i w_i. Every input must be present at that step; inputs share one unit,
  and `loss_nats` / `bits_per_byte` are the same weighted mean of the inputs' (the map is linear).
- ``expr``: a row-wise expression over metric names (``1 - "arc_easy/acc"``), checked by
  `scaling.expressions` at load; names with '/' or '-' are written in double quotes.
- ``last_mean``: a run's observed value as the mean of its last k evaluations of a metric
  (Bhagia et al. 2024 use k = 5), placed at the run's last point of that metric; a run with
  fewer than k evaluations averages those it has.

Inputs may come from different sources of the same run (several files per run). A computed
point's `file` reads ``computed:<name>`` and its `row` is null.
"""

from __future__ import annotations

import fnmatch

import polars as pl

from scaling.errors import SpecError
from scaling.normalize.units import bits_per_byte_expr, to_nats_expr
from scaling.spec import ComputedMetric, StudySpec

_KEY = pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_key")
_POSITION = ["source", "group_name", "step", "tokens", "flops", "learning_rate", "checkpoint"]


def _expand(c: ComputedMetric, metrics: list[str], study: str) -> list[str]:
    out: list[str] = []
    for pattern in c.inputs:
        hits = [pattern] if pattern in metrics else sorted(m for m in metrics if fnmatch.fnmatchcase(m, pattern))
        if not hits:
            raise SpecError(f"computed metric {c.name!r} reads {pattern!r}, which matches no metric of the study; "
                            f"metrics: {sorted(metrics)[:12]}{' ...' if len(metrics) > 12 else ''}",
                            study=study, field=f"computed.{c.name}")
        out += [h for h in hits if h not in out]
    return out


def _unit(c: ComputedMetric, frame: pl.DataFrame, study: str) -> str:
    units = sorted(set(frame["unit"].to_list()))
    if c.unit is not None:
        return c.unit
    if c.kind == "expr":
        return "other"
    if len(units) != 1:
        raise SpecError(f"computed metric {c.name!r} mixes units {units}; give `unit`", study=study,
                        field=f"computed.{c.name}.unit")
    return units[0]


def _wide(inputs: pl.DataFrame, names: list[str], column: str) -> pl.DataFrame:
    return inputs.pivot(on="metric", index=["run", "_key"], values=column, aggregate_function="first") \
        .select("run", "_key", *[pl.col(n) if n in inputs["metric"].unique() else pl.lit(None, dtype=pl.Float64)
                                .alias(n) for n in names])


def _one(c: ComputedMetric, points: pl.LazyFrame, metrics: list[str], study: StudySpec) -> pl.DataFrame:
    names = _expand(c, metrics, study.name)
    inputs = points.filter(pl.col("metric").is_in(names)).with_columns(_KEY).collect(engine="streaming") \
        .with_columns(pl.col("metric").cast(pl.Utf8))
    unit = _unit(c, inputs, study.name)
    position = inputs.sort("run", "_key", "source").group_by("run", "_key", maintain_order=True) \
        .agg([pl.col(k).drop_nulls().first() for k in _POSITION])
    if c.kind == "last_mean":
        ordered = inputs.sort("run", "_key")
        out = ordered.group_by("run", maintain_order=True).agg(
            pl.col("_key").last(), *[pl.col(v).tail(c.k).mean() for v in ("value", "loss_nats", "bits_per_byte")])
        out = out.join(position, on=["run", "_key"], how="left")
    else:
        if c.kind == "mean":
            w = list(c.weights) if c.weights else [1.0] * len(names)
            parts = {}
            for column in ("value", "loss_nats", "bits_per_byte"):
                wide = _wide(inputs, names, column)
                total = pl.sum_horizontal([pl.col(n) * wi for n, wi in zip(names, w)]) / sum(w)
                ok = pl.all_horizontal([pl.col(n).is_not_null() for n in names])
                parts[column] = wide.select("run", "_key", pl.when(ok).then(total).alias(column))
            out = parts["value"].join(parts["loss_nats"], on=["run", "_key"]).join(parts["bits_per_byte"],
                                                                                  on=["run", "_key"])
        else:
            wide = _wide(inputs, names, "value")
            try:
                out = wide.select("run", "_key", c.expr.to_polars().cast(pl.Float64).alias("value"))
            except Exception as exc:  # polars raises several types for bad SQL
                raise SpecError(f"expression {c.expr.text!r} failed: {exc}", study=study.name,
                                field=f"computed.{c.name}.expr") from None
            out = out.with_columns(loss_nats=to_nats_expr(pl.col("value"), pl.lit(unit), pl.lit(None, pl.Float64)))
            out = out.with_columns(bits_per_byte=bits_per_byte_expr(pl.col("value"), pl.lit(unit),
                                                                    pl.col("loss_nats"), pl.lit(None, pl.Float64)))
        out = out.filter(pl.col("value").is_not_null() & pl.col("value").is_finite()) \
            .join(position, on=["run", "_key"], how="left")
    last = out.group_by("run").agg(_last=pl.col("_key").max())
    out = out.join(last, on="run").with_columns(is_final=pl.col("_key") == pl.col("_last"))
    return out.select(
        pl.lit(study.name).alias("study"), "source", "run", "group_name", pl.col("step").cast(pl.Int64), "tokens",
        "flops", "learning_rate", pl.lit(c.name).alias("metric"), pl.lit(unit).alias("unit"), "value", "loss_nats",
        "bits_per_byte", pl.lit(None, dtype=pl.Float64).alias("stderr"), "is_final", "checkpoint",
        pl.lit(f"computed:{c.name}").alias("file"), pl.lit(None, dtype=pl.Int64).alias("row"))


def computed_points(points: pl.LazyFrame, study: StudySpec) -> pl.LazyFrame:
    """The points of every computed metric of the study, in the `points` schema."""
    metrics = points.select(pl.col("metric").cast(pl.Utf8).unique()).collect(engine="streaming")["metric"].to_list()
    existing = set(metrics)
    frames = []
    for c in study.computed:
        if c.name in existing:
            raise SpecError(f"computed metric {c.name!r} has the name of a metric the sources already map",
                            study=study.name, field=f"computed.{c.name}")
        frame = _one(c, points, metrics, study)
        frames.append(frame)
        metrics.append(c.name)
        points = pl.concat([points, frame.lazy()], how="diagonal_relaxed")  # later ones may read earlier ones
    return pl.concat(frames, how="diagonal_relaxed").lazy()
