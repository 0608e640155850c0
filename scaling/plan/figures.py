"""A study's figures, from its tables: loss vs compute with the frontier, isoFLOP profiles, backtests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from scaling.errors import ScalingError
from scaling.fit import isoflop
from scaling.plots import isoflop_profiles, plot_isoflop, plot_loss_vs_compute, plot_predicted_vs_actual


def frontier_figure(path: Path, study: str, target: str, law: str, points: pl.DataFrame,
                    forecasts: pl.DataFrame, backtests: pl.DataFrame) -> Path | None:
    pts = points.filter(pl.col("metric") == target).drop_nulls(["flops"])
    final = pts.filter(pl.col("is_final"))
    if final.height == 0:
        return None
    y = pl.when(pl.col("unit").is_in(["nats", "bits", "perplexity"])).then(pl.col("loss_nats")).otherwise(pl.col("value"))
    final = final.with_columns(y=y)
    held = set(_primary(backtests).filter((pl.col("law") == law) & (pl.col("target") == target))["run"].to_list())
    curves = []
    if pts.height > final.height:
        for _, run in pts.with_columns(y=y).sort("flops").group_by("run", maintain_order=True):
            if run.height > 1:
                curves.append((run["flops"].to_numpy(), run["y"].to_numpy()))
    frontier = forecasts.filter((pl.col("law") == law) & (pl.col("target") == target)
                                & (pl.col("kind") == "compute_optimal")).sort("flops")
    return plot_loss_vs_compute(
        path, flops=final["flops"].to_numpy(), loss=final["y"].to_numpy(),
        heldout=np.array([r in held for r in final["run"].to_list()]), curves=curves[:60] or None,
        frontier={c: frontier[c].to_numpy() for c in ("flops", "predicted", "ci_low", "ci_high")} if frontier.height
        else None, title=f"{study}: {target} vs compute", target_label=f"{target}", law_label=law)


def fitted_frontier(fit, boot, points: pl.DataFrame, group: str = "") -> pl.DataFrame:
    """The fitted law along the observed compute range, as `forecasts`-like rows for `frontier_figure`:
    the compute-optimal loss for laws in N and D, the law itself for laws in compute alone."""
    from scaling.forecast import compute_optimal_forecast

    sub = points.filter(pl.col("group_name") == group) if group else points
    flops = sub.filter(pl.col("is_final"))["flops"].drop_nulls()
    if flops.len() == 0 or not fit.converged:
        return pl.DataFrame()
    grid = np.geomspace(float(flops.min()), float(flops.max()), 40)
    variables = set(fit.law.variables)
    if variables == {"flops"}:
        pred = fit.predict({"flops": grid})
        lo, hi = boot.predict_interval({"flops": grid})[1:] if boot is not None else (pred * np.nan, pred * np.nan)
        rows = {"flops": grid, "predicted": pred, "ci_low": lo, "ci_high": hi}
    elif variables == {"params", "tokens"}:
        res = compute_optimal_forecast(fit, boot, max_observed_flops=float(flops.max()), budgets=grid)
        rows = {k: [r[k] for r in res.rows] for k in ("flops", "predicted", "ci_low", "ci_high")}
    else:
        return pl.DataFrame()
    return pl.DataFrame(rows).with_columns(law=pl.lit(fit.law.name), kind=pl.lit("compute_optimal"))


def isoflop_figure(path: Path, study: str, target: str, points: pl.DataFrame, runs: pl.DataFrame) -> Path | None:
    pts = points.filter(pl.col("metric") == target).join(runs.select("run", "params"), on="run") \
        .drop_nulls(["params", "tokens"]).filter(pl.col("tokens") > 0)
    if pts["run"].n_unique() < 6 or pts.height < 20:
        return None
    y = pts["loss_nats"].fill_null(pts["value"]).to_numpy()
    try:
        res = isoflop(pts["params"].to_numpy(), pts["tokens"].to_numpy(), y, pts["run"].to_numpy(),
                      flops=pts["flops"].to_numpy(), n_resamples=0)
    except (ScalingError, ValueError):  # too few runs per budget: the figure is optional
        return None
    minima = res.approach2.points if res.approach2 is not None else []
    if not minima:
        return None
    profiles = isoflop_profiles(pts["params"].to_numpy(), pts["tokens"].to_numpy(), y, pts["run"].to_numpy(),
                                budgets=[m["flops"] for m in minima], flops=pts["flops"].to_numpy())
    profiles = [p for p in profiles if len(p["params"]) >= 3]
    return plot_isoflop(path, profiles, minima=minima, title=f"{study}: isoFLOP profiles ({target})") \
        if profiles else None


def _primary(backtests: pl.DataFrame) -> pl.DataFrame:
    """The rows of the study's own hold-out (rollout cut-offs would repeat runs)."""
    return backtests.filter(pl.col("primary").fill_null(True)) if "primary" in backtests.columns else backtests


def isoflop_group_figure(path: Path, study: str, fit) -> Path | None:
    """The isoFLOP profiles of one group (an approach-2 ``IsoflopFit``), with each budget's
    minimum and its interval over run resamples."""
    if fit.result is None or fit.plan.law != "isoflop" or not fit.result.points:
        return None
    a = fit.profiles
    minima = fit.result.points
    profiles = isoflop_profiles(a["params"], a["tokens"], a["y"], a["run"], budgets=[m["flops"] for m in minima],
                                flops=a["flops"], tolerance=fit.plan.tolerance)
    profiles = [p for p in profiles if len(p["params"]) >= 3]
    group = f" [{fit.group}]" if fit.group else ""
    return plot_isoflop(path, profiles, minima=minima,
                        title=f"{study}{group}: isoFLOP profiles ({fit.plan.target}), "
                              f"a = {fit.result.a:.3f}, b = {fit.result.b:.3f}") if profiles else None


def backtest_figure(path: Path, study: str, backtests: pl.DataFrame) -> Path | None:
    backtests = _primary(backtests)
    if backtests.height == 0:
        return None
    return plot_predicted_vs_actual(
        path, actual=backtests["actual"].to_numpy(), predicted=backtests["predicted"].to_numpy(),
        ci_low=backtests["ci_low"].to_numpy(), ci_high=backtests["ci_high"].to_numpy(),
        laws=backtests["law"].to_list(), title=f"{study}: held-out runs, predicted vs actual")
