"""From normalized points and runs to the arrays a law is fitted on, per group."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from scaling.errors import FitError
from scaling.laws import get_law, lr_areas
from scaling.plan.fits import FitPlan, holdout_runs_of
from scaling.plan.scope import FitScope


@dataclass
class FitData:
    group: str
    X: dict[str, np.ndarray]
    y: np.ndarray
    runs: np.ndarray
    compute: np.ndarray
    frame: pl.DataFrame
    holdout: list | None = None  # the plan's explicit hold-out runs in this group (None: top fraction)

    @property
    def max_flops(self) -> float | None:
        """The largest compute among the points fitted (what forecasts extrapolate from)."""
        if "flops" not in self.frame.columns:
            return None
        v = self.frame["flops"].max()
        return float(v) if v is not None else None

    @property
    def input_hash(self) -> str:
        h = hashlib.sha256()
        for key in sorted(self.X):
            h.update(key.encode())
            h.update(np.ascontiguousarray(self.X[key], dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(self.y, dtype=np.float64).tobytes())
        h.update("\x00".join(map(str, self.runs)).encode())
        return h.hexdigest()


def _with_lr_areas(frame: pl.DataFrame, all_points: pl.DataFrame) -> pl.DataFrame:
    """S1 (sum of learning rates) and S2 (annealing area) at each point, from each run's LR series."""
    lr = all_points.filter(pl.col("learning_rate").is_not_null() & pl.col("step").is_not_null()) \
        .group_by("run", "step").agg(pl.col("learning_rate").first()).sort("run", "step")
    parts = []
    for (run,), sub in frame.group_by("run", maintain_order=True):
        series = lr.filter(pl.col("run") == run)
        if series.height < 2:
            raise FitError("lr_annealing needs a learning-rate series (map `learning_rate`)", field=str(run))
        s1, s2 = lr_areas(series["step"].to_numpy(), series["learning_rate"].to_numpy(), at=sub["step"].to_numpy())
        parts.append(sub.with_columns(lr_sum=pl.Series(s1), lr_anneal_area=pl.Series(s2)))
    return pl.concat(parts)


def gather(plan: FitPlan, points: pl.DataFrame, runs: pl.DataFrame, scope: FitScope) -> list[FitData]:
    """One FitData per group (and per run when ``by_run``), from the points ``scope`` lets a fit use."""
    law = get_law(plan.law)
    pts = points.filter(pl.col("metric") == plan.target)
    if pts.height == 0:
        raise FitError(f"no points for target metric {plan.target!r}; the study has "
                       f"{sorted(points['metric'].unique().to_list())[:12]}")
    if plan.points == "final":  # end-of-schedule points only (a metric's last point inside a cooldown is not)
        pts = pts.filter(pl.col("is_final") & (pl.col("checkpoint").fill_null("end") == "end"))
    pts = scope.select(pts, filter=plan.filter, min_tokens=plan.min_tokens)
    meta = runs.select("run", "params", "unique_tokens")
    # Losses are fitted in nats per token whatever unit they were logged in (perplexity -> ln ppl);
    # bits per byte, accuracies and other units are fitted as logged.
    as_nats = pl.col("unit").is_in(["nats", "bits", "perplexity"])
    frame = pts.join(meta, on="run", how="left").with_columns(
        y=pl.when(as_nats).then(pl.col("loss_nats")).otherwise(pl.col("value")))
    if plan.x_metric:
        x = points.filter(pl.col("metric") == plan.x_metric).select(
            "run", pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_k"),
            pl.col("value").alias("_x"))
        frame = frame.with_columns(_k=pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens"))) \
            .join(x, on=["run", "_k"], how="inner")
        frame = frame.with_columns(loss_x=pl.col("_x"), loss=pl.col("_x"))
    if "lr_sum" in law.variables:
        frame = _with_lr_areas(frame, points)
    needed = [v for v in law.variables]
    missing = [v for v in needed if v not in frame.columns]
    if missing:
        raise FitError(f"law {law.name!r} needs {missing}, which the study's runs do not have")
    frame = frame.drop_nulls(needed + ["y"]).filter(pl.all_horizontal([pl.col(v).is_finite() for v in needed]))
    held = holdout_runs_of(plan, runs)
    keys = ["group_name", "run"] if plan.by_run else ["group_name"]
    out = []
    for key, sub in frame.sort("run", "tokens").group_by(keys, maintain_order=True):
        group = key[0] if not plan.by_run else (f"{key[0]},run={key[1]}" if key[0] else f"run={key[1]}")
        out.append(FitData(
            group=group, X={v: sub[v].cast(pl.Float64).to_numpy() for v in needed},
            y=sub["y"].to_numpy(), runs=sub["run"].to_numpy(),
            compute=sub["flops"].fill_null(sub["tokens"]).to_numpy(), frame=sub,
            holdout=None if held is None else sorted(set(held) & set(sub["run"].to_list()))))
    return out
