"""Mixing-law fit speed with bootstrap intervals, beside the plain linear baseline, in one run.

Data: RegMix's 512 training mixtures of the 1M proxies (17 train-domain weights, 13 target
domains), scored on the 256 test mixtures. Each timed call is the whole study: validate
weights, fit every target domain, refit on ``--resamples`` seeded bootstrap resamples,
score held-out Spearman/MAE. Baseline: the same call with the linear law (closed-form
least squares, batched over resamples). Medians of ``--repeats`` runs; ratio = law / linear.

Interval stability: the 95% interval of the predicted Pile-CC loss on the test mixtures
is recomputed with a second bootstrap seed; the table gives the median and largest shift
of an interval end (over the 256 mixtures) as a share of the interval's width.

Ends with one ``RESULT`` line per law (median seconds, ratio to linear, Spearman).

Usage: python benchmarks/bench_mixing.py [--repeats 5] [--resamples 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from scaling.mixing import fit_mixing_study, read_mixture_runs

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SCALING_SHARED_DATA", REPO.parent / "shared" / "data")) / "regmix" / "data"
PILE_CC = "metric/the_pile_pile_cc_val_loss"


def study(law, train, test, resamples, seed=0):
    return fit_mixing_study(train.weights, train.losses, train.domains, train.targets,
                            test_weights=test.weights, test_losses=test.losses,
                            laws=(law,), n_resamples=resamples, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--resamples", type=int, default=200)
    args = ap.parse_args()
    train = read_mixture_runs(DATA / "train_mixture_1m.csv", DATA / "train_pile_loss_1m.csv")
    test = read_mixture_runs(DATA / "test_mixture_1m.csv", DATA / "test_pile_loss_1m.csv")
    test_w = test.weights / test.weights.sum(axis=1, keepdims=True)
    k = train.targets.index(PILE_CC)

    laws = ("linear", "ye_exp", "ye_exp_log")
    times = {law: [] for law in laws}
    results = {}
    for _ in range(args.repeats):
        for law in laws:  # interleaved, so background load hits every law alike
            t0 = time.perf_counter()
            results[law] = study(law, train, test, args.resamples)
            times[law].append(time.perf_counter() - t0)

    base = statistics.median(times["linear"])
    print(f"RegMix 1M: {len(train.run_ids)} train / {len(test.run_ids)} test mixtures, "
          f"{len(train.domains)} weights, {len(train.targets)} targets, {args.resamples} bootstrap resamples, "
          f"median of {args.repeats} repeats, os.cpu_count()={os.cpu_count()}\n")
    print("| law | time, 13 targets + bootstrap (s) | ratio to linear | failed refits | "
          "Pile-CC held-out Spearman | mean Spearman, 13 targets | 95% interval end shift, 2nd seed (median / max, of width) |")
    print("|---|---|---|---|---|---|---|")
    lines = []
    for law in laws:
        res = results[law]
        other = study(law, train, test, args.resamples, seed=1)
        a = res.predict(test_w, law=law, targets=[PILE_CC])
        b = other.predict(test_w, law=law, targets=[PILE_CC])
        width = a.ci_high - a.ci_low
        shift = np.maximum(np.abs(a.ci_low - b.ci_low), np.abs(a.ci_high - b.ci_high)) / width
        failed = sum(tf.n_failed for tf in res.fits.values())
        rho = res.heldout[(law, PILE_CC)].spearman
        mean_rho = np.mean([res.heldout[(law, t)].spearman for t in res.targets])
        med = statistics.median(times[law])
        print(f"| {law} | {med:.2f} | {med / base:.1f}x | {failed} / {len(res.fits) * args.resamples} | "
              f"{rho:.4f} | {mean_rho:.4f} | {np.median(shift):.2f} / {shift.max():.2f} |")
        lines.append(f"RESULT bench=mixing data=regmix_1m law={law} baseline=linear repeats={args.repeats} "
                     f"resamples={args.resamples} median_s={med:.3f} ratio_vs_linear={med / base:.2f} "
                     f"failed_refits={failed} pile_cc_spearman={rho:.4f} mean_spearman={mean_rho:.4f}")
    print(f"\nPile-CC published (SOURCE.md): LightGBM 0.9892, linear 0.9021; target index {k}.")
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for line in lines:
        print(f"{line} load1={load1:.1f}")


if __name__ == "__main__":
    main()
