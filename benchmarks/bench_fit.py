"""Fit and bootstrap speed against the plain multi-start L-BFGS baseline and the pip toolkits
users would otherwise pick, in one run, on the same data and objective.

Data: Epoch's Chinchilla replication set (240 runs after dropping the 5 highest losses,
D = C / 6N), Chinchilla form, Huber delta 1e-3 on log residuals, summed. Every tool's result is
scored on that one objective (computed here from its parameters).

Baseline: the replication procedure of Besiroglu et al. 2024 -- L-BFGS-B with numerical
gradients from every point of the 4,500-start grid a, b in {0, 5, .., 25}, e in {-1, -.5, .., 1},
alpha, beta in {0, .5, .., 2}, over (a, b, e, alpha, beta) with L = exp(LSE(a - alpha log N,
b - beta log D, e)). To keep the run short the baseline is timed on a seeded random subset of
grid starts and its per-start cost extrapolated to 4,500 starts (the output says so).

Peers (each skipped, with how to install it, when it is not importable; neither is a dependency):
- ``chinchilla`` (PyPI, ``pip install chinchilla``): ``Chinchilla(...).fit()`` with the grid its
  README suggests (E in linspace(1, 2, 5), log A and log B in linspace(1, 10, 5), alpha and beta in
  linspace(0.1, 0.7, 5): 3,125 starts, BFGS with numerical gradients in long double) and
  ``loss_fn`` the log-Huber with delta 1e-3 (its mean is our sum / 240).
- OLMo-core's ladder fit, ``olmo_core.model_ladder.analysis.scaling_laws.ChinchillaParametricFit.fit``
  (defaults: 4^5 = 1,024 starts, L-BFGS-B with numerical gradients, summed log-Huber delta 1e-3).
  No release of ``ai2-olmo-core`` on PyPI ships that module; install OLMo-core from its source
  repository, or pass ``--olmo-core-src DIR`` (a folder holding
  ``olmo_core/model_ladder/analysis/scaling_laws.py``) to load the module from there.
Both run their own ``fit`` on a seeded random subset of their starts (their module's
``itertools.product`` narrowed to the subset, so the subset runs their code path), one process,
in ``--peer-batches`` batches; the median per-start time is extrapolated to their whole grid
(the output says so). ``--peer-full`` also runs each peer's whole grid once, as its defaults do
(a process per core), for the objective its full search reaches.

Usage: python benchmarks/bench_fit.py [--baseline-starts 100] [--repeats 7] [--resamples 4000] [--jobs 2]
       [--peer-starts 60] [--peer-batches 3] [--peer-full] [--olmo-core-src DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from scaling.fit import bootstrap, fit_law
from scaling.fit.fitter import forget_fits
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


def objective(params, X, y, delta=1e-3) -> float:
    """The one objective every tool is scored on: summed Huber(delta) of log residuals."""
    pred = params["E"] + params["A"] * X["params"] ** -params["alpha"] + params["B"] * X["tokens"] ** -params["beta"]
    return float(np.sum(huber(delta, np.log(np.maximum(pred, 1e-300)) - np.log(y))))


class _Starts:
    """Stands in for ``itertools`` in a peer's module: ``product`` yields only the chosen starts."""

    def __init__(self, starts):
        self.starts = starts

    def product(self, *axes):
        return iter(self.starts)

    def __getattr__(self, name):
        return getattr(itertools, name)


def _batches(grid, n_starts, n_batches, seed):
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(grid), size=min(n_starts, len(grid)), replace=False)
    return [[grid[i] for i in part] for part in np.array_split(pick, n_batches) if len(part)]


def _log_huber_1e3(y_true, y_pred):
    from chinchilla._metrics import log_huber

    return log_huber(y_true, y_pred, delta=1e-3)


CHINCHILLA_GRID = dict(E=np.linspace(1, 2, 5), a=np.linspace(1, 10, 5), b=np.linspace(1, 10, 5),
                       alpha=np.linspace(0.1, 0.7, 5), beta=np.linspace(0.1, 0.7, 5))


def peer_chinchilla(X, y, args):
    """The `chinchilla` package's fit with its README's grid: per-start times on subsets, and optionally the whole grid."""
    try:
        import chinchilla.core as core
        from chinchilla import Chinchilla
    except ImportError:
        return {"tool": "chinchilla", "skipped": "not installed (pip install chinchilla)"}
    import logging

    import pandas as pd

    logging.getLogger("chinchilla").setLevel(logging.ERROR)
    grid = list(itertools.product(*CHINCHILLA_GRID.values()))
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame({"C": 6 * X["params"] * X["tokens"], "N": X["params"], "D": X["tokens"], "loss": y}) \
            .to_csv(Path(tmp) / "df.csv", index=False)

        def run(starts, parallel):
            cc = Chinchilla(tmp, param_grid=CHINCHILLA_GRID, loss_fn=_log_huber_1e3, log_level=50)
            saved = core.itertools
            core.itertools = _Starts(starts) if starts is not None else itertools
            try:
                t = time.perf_counter()
                cc.fit(parallel=parallel)
                took = time.perf_counter() - t
            finally:
                core.itertools = saved
            p = {k: float(v) for k, v in cc.params.items()}
            return took, objective(p, X, y)

        return _peer_runs("chinchilla", run, grid, X, y, args)


def _olmo_module(src):
    try:
        from olmo_core.model_ladder.analysis import scaling_laws
        return scaling_laws, "olmo_core.model_ladder.analysis (installed)"
    except ImportError:
        pass
    if src:
        path = Path(src) / "olmo_core" / "model_ladder" / "analysis" / "scaling_laws.py"
        if path.exists():
            spec = importlib.util.spec_from_file_location("olmo_ladder_scaling_laws", path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = mod
            spec.loader.exec_module(mod)
            return mod, "scaling_laws.py loaded from --olmo-core-src"
    return None, None


def peer_olmo(X, y, args):
    mod, origin = _olmo_module(args.olmo_core_src)
    if mod is None:
        return {"tool": "olmo_core", "skipped": "OLMo-core's ladder fit (olmo_core.model_ladder.analysis) is not "
                "importable: no ai2-olmo-core release on PyPI ships it; install OLMo-core from its source repository "
                "(with a CPU torch: pip install torch==<cpu build>) or pass --olmo-core-src DIR"}
    N, D = X["params"], X["tokens"]
    s = np.linspace(0.0, float(y.min()), 4), np.linspace(1, 20, 4), np.linspace(0.2, 0.8, 4)
    grid = list(itertools.product(s[0], s[1], s[2], s[1], s[2]))  # its default 4^5 grid of (E, A, alpha, B, beta)

    def run(starts, parallel):
        saved = mod.product
        mod.product = _Starts(starts).product if starts is not None else itertools.product
        try:
            t = time.perf_counter()
            fit = mod.ChinchillaParametricFit.fit(N, D, y, parallel=parallel)
            took = time.perf_counter() - t
        finally:
            mod.product = saved
        p = fit.fitted_params
        return took, objective({"E": p.E, "A": p.A, "B": p.B, "alpha": p.alpha, "beta": p.beta}, X, y)

    out = _peer_runs("olmo_core", run, grid, X, y, args)
    out["origin"] = origin
    return out


def _peer_runs(name, run, grid, X, y, args):
    per_start, best = [], np.inf
    for starts in _batches(grid, args.peer_starts, args.peer_batches, seed=0):
        took, obj = run(starts, parallel=False)
        per_start.append(took / len(starts))
        best = min(best, obj)
    out = {"tool": name, "grid": len(grid), "timed_starts": args.peer_starts, "batches": len(per_start),
           "per_start_s": statistics.median(per_start), "subset_objective": best}
    out["extrapolated_s"] = out["per_start_s"] * len(grid)
    if args.peer_full:
        out["full_s"], out["full_objective"] = run(None, parallel=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-starts", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--boot-repeats", type=int, default=3)
    ap.add_argument("--resamples", type=int, default=4000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--peer-starts", type=int, default=60)
    ap.add_argument("--peer-batches", type=int, default=3)
    ap.add_argument("--peer-full", action="store_true")
    ap.add_argument("--olmo-core-src", default=None)
    args = ap.parse_args(argv)
    X, y = load()

    fit_law("chinchilla", X, y)  # warm-up (imports, caches)
    fit_times, fit = [], None
    for _ in range(args.repeats):
        forget_fits()  # time the fit, not the copy of a kept one
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

    peers = [peer_chinchilla(X, y, args), peer_olmo(X, y, args)]
    print()
    print("| tool (same data, same objective) | time | objective (Huber 1e-3, sum) | time / ours |")
    print("|---|---|---|---|")
    print(f"| scaling (`fit_law`) | {fit_s:.3f} s (median of {args.repeats}) | {fit.objective:.7e} | 1x |")
    for pr in peers:
        if "skipped" in pr:
            print(f"| {pr['tool']} | skipped: {pr['skipped']} | - | - |")
            continue
        print(f"| {pr['tool']}, {pr['grid']:,} starts | {pr['extrapolated_s']:.0f} s (one process, extrapolated from "
              f"{pr['timed_starts']} seeded starts: median per start of {pr['batches']} batches "
              f"{pr['per_start_s'] * 1e3:.0f} ms) | {pr['subset_objective']:.7e} (best of the timed starts) | "
              f"{pr['extrapolated_s'] / fit_s:.0f}x |")
        if "full_s" in pr:
            print(f"| {pr['tool']}, {pr['grid']:,} starts, its default (a process per core), one run | "
                  f"{pr['full_s']:.0f} s | {pr['full_objective']:.7e} | {pr['full_s'] / fit_s:.0f}x |")
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print()
    print(f"RESULT bench=fit data=chinchilla_epoch tool=scaling repeats={args.repeats} median_s={fit_s:.4f} "
          f"objective={fit.objective:.7e} baseline=plain_lbfgs_4500 baseline_extrapolated_s={base_total:.1f} "
          f"ratio_vs_baseline={base_total / fit_s:.0f} load1={load1:.1f}")
    print(f"RESULT bench=bootstrap data=chinchilla_epoch resamples={args.resamples} jobs={args.jobs} "
          f"repeats={args.boot_repeats} median_s={boot_s:.3f} failed={boot.n_failed} "
          f"ratio_vs_baseline={base_mean * args.resamples / boot_s:.0f}")
    for pr in peers:
        if "skipped" in pr:
            print(f"RESULT bench=fit data=chinchilla_epoch tool={pr['tool']} skipped=1")
            continue
        full = (f" full_s={pr['full_s']:.1f} full_objective={pr['full_objective']:.7e} "
                f"full_ratio_vs_ours={pr['full_s'] / fit_s:.0f}") if "full_s" in pr else ""
        print(f"RESULT bench=fit data=chinchilla_epoch tool={pr['tool']} starts={pr['grid']} "
              f"timed_starts={pr['timed_starts']} extrapolated_s={pr['extrapolated_s']:.1f} "
              f"subset_objective={pr['subset_objective']:.7e} ratio_vs_ours={pr['extrapolated_s'] / fit_s:.0f} "
              f"ours_objective_at_most={int(fit.objective <= min(pr['subset_objective'], pr.get('full_objective', np.inf)) * (1 + 1e-9))}"
              f"{full}")


if __name__ == "__main__":
    main()
