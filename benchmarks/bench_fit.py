"""Fit and bootstrap speed against the plain multi-start L-BFGS baseline, in one run.

Data: Epoch's Chinchilla replication set (240 runs after dropping the 5 highest losses,
D = C / 6N), Chinchilla form, Huber delta 1e-3 on log residuals, summed.

Baseline: the replication procedure of Besiroglu et al. 2024 -- L-BFGS-B with numerical
gradients from every point of the 4,500-start grid a, b in {0, 5, .., 25}, e in {-1, -.5, .., 1},
alpha, beta in {0, .5, .., 2}, over (a, b, e, alpha, beta) with L = exp(LSE(a - alpha log N,
b - beta log D, e)). To keep the run short the baseline is timed on a seeded random subset of
grid starts and its per-start cost extrapolated to 4,500 starts (the output says so).

Usage: python benchmarks/bench_fit.py [--baseline-starts 100] [--repeats 7] [--resamples 4000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from scaling.fit import bootstrap, fit_law
from scaling.fit.threads import single_thread_blas

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SCALING_SHARED_DATA", REPO.parent / "shared" / "data"))
PUBLISHED_OBJECTIVE = 1.018274e-3


def load():
    df = pl.read_csv(DATA / "chinchilla_epoch" / "svg_extracted_data.csv").sort("loss").head(240)
    N = df["Model Size"].to_numpy().astype(float)
    C = df["Training FLOP"].to_numpy().astype(float)
    return {"params": N, "tokens": C / (6 * N)}, df["loss"].to_numpy().astype(float)


def baseline_objective(x, lN, lD, lL, delta=1e-3):
    a, b, e, alpha, beta = x
    pred = logsumexp([a - alpha * lN, b - beta * lD, np.full_like(lN, e)], axis=0)
    return float(np.sum(huber(delta, pred - lL)))


def baseline_grid():
    return list(itertools.product(np.arange(0, 30, 5), np.arange(0, 30, 5), np.arange(-1, 1.5, 0.5),
                                  np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5)))


def time_baseline(X, y, n_starts, seed):
    lN, lD, lL = np.log(X["params"]), np.log(X["tokens"]), np.log(y)
    grid = baseline_grid()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(grid), size=min(n_starts, len(grid)), replace=False)
    per_start, best = [], np.inf
    for i in pick:
        t = time.perf_counter()
        res = minimize(baseline_objective, np.array(grid[i], dtype=float), args=(lN, lD, lL), method="L-BFGS-B")
        per_start.append(time.perf_counter() - t)
        best = min(best, float(res.fun))
    return len(grid), per_start, best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-starts", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--boot-repeats", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=4000)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    X, y = load()

    fit_law("chinchilla", X, y)  # warm-up (imports, caches)
    fit_times, fit = [], None
    for _ in range(args.repeats):
        t = time.perf_counter()
        fit = fit_law("chinchilla", X, y)
        fit_times.append(time.perf_counter() - t)
    fit_s = statistics.median(fit_times)

    boot_times, boot = [], None
    for _ in range(args.boot_repeats):
        t = time.perf_counter()
        boot = bootstrap("chinchilla", X, y, n_resamples=args.resamples, seed=0, n_jobs=args.jobs, fit=fit)
        boot_times.append(time.perf_counter() - t)
    boot_s = statistics.median(boot_times)

    with single_thread_blas():
        n_grid, per_start, base_best = time_baseline(X, y, args.baseline_starts, seed=0)
    per_start_s = statistics.median(per_start)
    base_mean = float(np.mean(per_start))
    base_total = base_mean * n_grid

    print(f"data: chinchilla_epoch, {y.size} points; Chinchilla form, Huber delta=1e-3 on log residuals (sum)")
    print(f"ours: fit_law median of {args.repeats}: {fit_s:.3f} s (min {min(fit_times):.3f}, max {max(fit_times):.3f}); "
          f"{fit.n_starts} starts after a variable-projection grid; objective {fit.objective:.7e}")
    print(f"ours: bootstrap {args.resamples} resamples on {args.jobs} processes, median of {args.boot_repeats}: "
          f"{boot_s:.2f} s ({boot_s / args.resamples * 1e3:.2f} ms per refit); failed to converge: {boot.n_failed}")
    print(f"baseline: plain L-BFGS-B (numerical gradient) per grid start, timed on {len(per_start)} of {n_grid} "
          f"starts (seeded random subset), single BLAS thread: median {per_start_s * 1e3:.1f} ms, "
          f"mean {base_mean * 1e3:.1f} ms per start")
    print(f"baseline: extrapolated to all {n_grid} starts: {base_total:.1f} s (mean per-start cost x {n_grid})")
    print(f"objective: ours {fit.objective:.7e} | baseline best of the {len(per_start)} timed starts {base_best:.7e} | "
          f"published (Epoch, full grid) {PUBLISHED_OBJECTIVE:.7e}")
    print(f"ratio: baseline full grid / ours = {base_total / fit_s:.0f}x")
    print()
    print("| measure | ours | baseline (plain per-start L-BFGS) | ratio |")
    print("|---|---|---|---|")
    print(f"| global fit, chinchilla_epoch (240 pts) | {fit_s:.3f} s (median of {args.repeats}) | "
          f"{base_total:.0f} s (4,500 starts, extrapolated from {len(per_start)}) | {base_total / fit_s:.0f}x |")
    print(f"| objective (Huber 1e-3, sum) | {fit.objective:.6e} | {PUBLISHED_OBJECTIVE:.6e} (published full grid); "
          f"{base_best:.6e} (best of timed subset) | - |")
    print(f"| bootstrap, {args.resamples} refits, {args.jobs} processes | {boot_s:.1f} s (median of {args.boot_repeats}) | "
          f"{base_mean * args.resamples:.0f} s (one plain L-BFGS start per refit, extrapolated) | "
          f"{base_mean * args.resamples / boot_s:.0f}x |")


if __name__ == "__main__":
    main()
