"""Sixteen small studies on a local Dask cluster of 1 and of 2 worker processes.

    python benchmarks/bench_dask.py [--studies 16] [--repeats 3]

Each study is a published-results table of 12 runs drawn from the Chinchilla law (Hoffmann et al.
2022) with its own noise, fitted with the Chinchilla form and 200 bootstrap refits. Each measurement
is a fresh `scaling run --executor dask --dask-workers W` (a new warehouse, Dagster instance and
cluster), alternating 1 and 2 workers so that load on the machine hits both alike. Prints the
median wall time of each and the ratio (the speed-up from the second worker), and ends with a
`RESULT` line.
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

import numpy as np

STUDY = """
[study]
description = "benchmark study {i}"
[[sources]]
name = "published"
kind = "checkpoint_results"
location = "data/results_{i}.csv"
format = "csv"
run = "model"
final = "all"
[sources.columns]
params = "params"
tokens = "tokens"
[sources.metrics]
loss = "loss"
[[fits]]
law = "chinchilla"
target = "loss"
n_resamples = 200
"""


def write_studies(folder: Path, n: int) -> None:
    (folder / "data").mkdir(parents=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        rows = ["model,params,tokens,loss"]
        for size in (1e7, 3e7, 1e8, 3e8):
            for ratio in (5, 20, 80):
                tokens = size * ratio
                loss = (1.69 + 406.4 / size**0.34 + 410.7 / tokens**0.28) * np.exp(rng.normal(0, 0.003))
                rows.append(f"m{int(size)}-{ratio},{size:g},{tokens:g},{loss:.6f}")
        (folder / "data" / f"results_{i}.csv").write_text("\n".join(rows) + "\n")
        (folder / f"bench_{i:02d}.toml").write_text(STUDY.format(i=i))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        studies = Path(tmp) / "studies"
        write_studies(studies, args.studies)
        for r in range(args.repeats):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                took = run_once(studies, workers, Path(tmp) / f"r{r}w{workers}")
                times[workers].append(took)
                print(f"repeat {r + 1}: {workers} worker(s): {took:.1f}s", flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"\n{args.studies} studies, median of {args.repeats}: 1 worker {one:.1f}s, 2 workers {two:.1f}s, "
          f"speed-up {one / two:.2f}x")
    print(f"RESULT bench=dask studies={args.studies} repeats={args.repeats} median_s_1_worker={one:.1f} "
          f"median_s_2_workers={two:.1f} speedup_2_vs_1={one / two:.2f} cores={os.cpu_count()}")


if __name__ == "__main__":
    main()
