"""Sixteen small studies, and one study of many groups, on a local Dask cluster of 1 and of 2 workers.

    python benchmarks/bench_dask.py [--studies 16] [--groups 8] [--repeats 3] [--scenario studies|groups|both]

`studies`: each study is a published-results table of 12 runs drawn from the Chinchilla law (Hoffmann
et al. 2022) with its own noise, fitted with the Chinchilla form and 200 bootstrap refits; partitions
spread over the workers. `groups`: one study of `--groups` such tables, one group each, 1,000 refits
and a 200-refit backtest per group; its group x law fits spread over the workers inside the one `fits`
step. Each measurement is a fresh `scaling run --executor dask --dask-workers W` (a new warehouse,
Dagster instance and cluster), alternating 1 and 2 workers so that load on the machine hits both
alike. Prints the median wall time of each and the ratio (the speed-up from the second worker), and
ends with a `RESULT` line per scenario.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaling.simulate.results_table import write_grouped_results_study, write_results_study


def write_studies(folder: Path, n: int) -> None:
    """`n` small published-results studies (12 runs each, 0.3% seeded scatter), 200 bootstrap refits each."""
    for i in range(n):
        write_results_study(folder, f"bench_{i:02d}", description=f"benchmark study {i}", noise=0.003, seed=i,
                            source_extra='final = "all"\n', n_resamples=200, backtest_resamples=None)


def run_once(studies: Path, workers: int, scratch: Path) -> float:
    env = dict(os.environ, SCALING_STUDIES=str(studies), SCALING_WAREHOUSE=str(scratch / "warehouse"),
               DAGSTER_HOME=str(scratch / "home"))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--executor", "dask", "--dask-workers",
                           str(workers), "--no-summary", "--quiet"], env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"run with {workers} worker(s) failed:\n{done.stdout}\n{done.stderr}")
    return took


def measure(studies: Path, scratch: Path, repeats: int) -> dict[int, list[float]]:
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(repeats):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            took = run_once(studies, workers, scratch / f"r{r}w{workers}")
            times[workers].append(took)
            print(f"  repeat {r + 1}: {workers} worker(s): {took:.1f}s", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=16)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenario", choices=["studies", "groups", "both"], default="both")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in (("studies", "groups") if args.scenario == "both" else (args.scenario,)):
            studies = Path(tmp) / scenario / "studies"
            if scenario == "studies":
                write_studies(studies, args.studies)
                what = f"{args.studies} studies"
            else:
                # one results table per group, its own 0.3% scatter, a Chinchilla fit per group
                write_grouped_results_study(studies, "grouped", {f"g{i:02d}": 0.0 for i in range(args.groups)},
                                            n_resamples=1000, backtest_resamples=200, noise=0.003, seed=100)
                what = f"1 study of {args.groups} groups"
            print(f"{what}:", flush=True)
            times = measure(studies, Path(tmp) / scenario, args.repeats)
            one, two = statistics.median(times[1]), statistics.median(times[2])
            print(f"{what}, median of {args.repeats}: 1 worker {one:.1f}s, 2 workers {two:.1f}s, "
                  f"speed-up {one / two:.2f}x\n", flush=True)
            size = f"studies={args.studies}" if scenario == "studies" else f"groups={args.groups}"
            results.append(f"RESULT bench=dask scenario={scenario} {size} repeats={args.repeats} "
                           f"median_s_1_worker={one:.1f} median_s_2_workers={two:.1f} "
                           f"speedup_2_vs_1={one / two:.2f} cores={os.cpu_count()}")
    print("\n".join(results))


if __name__ == "__main__":
    main()
