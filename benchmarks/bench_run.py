"""Where `scaling run` spends its time, on many small studies: fixed cost, seconds per study,
the parallel speed-up, and what a second run with nothing changed costs.

Studies: ``--studies`` (default 16) small results tables (20 runs of a Chinchilla law with 0.4%
scatter, a different offset each), each fitting the Chinchilla form with 100 bootstrap refits and
a backtest (50 refits). Every measurement runs the real command (`python -m pipelines.cli run`) in
a fresh process on a fresh warehouse and Dagster instance, so it includes process start and imports.

Measured, each the median of ``--repeats`` runs:
- ``start``: a process that imports the Dagster definitions and exits (the process-start floor);
- ``one``: `scaling run` on 1 study; ``seq``: on all studies, sequentially (the baseline);
- ``par``: `scaling run --parallel N` on all studies;
- ``again``: `scaling run` on all studies right after ``seq``, with nothing changed.
Fixed cost and seconds per study come from the line through ``one`` and ``seq``:
per_study = (seq - one) / (n - 1), fixed = one - per_study. The per-step split of a study's time
(Dagster run start, step overhead, work) is read from the run's own step durations.

Usage: python benchmarks/bench_run.py [--studies 16] [--repeats 3] [--parallel 2]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scaling.simulate.results_table import write_results_study

REPO = Path(__file__).resolve().parents[1]



def write_studies(folder: Path, n: int) -> None:
    """`n` small results-table studies (20 runs each, 0.4% seeded scatter, each shifted by 0.01 in loss)."""
    for i in range(n):
        write_results_study(folder, f"bench_{i:02d}", 0.01 * i, description=f"benchmark study {i}",
                            n_resamples=100, backtest_resamples=50, tokens_per_param=(5, 10, 20, 40, 80),
                            noise=0.004, seed=i)


def run(env: dict, *args: str) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"scaling {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took, proc.stdout


def fresh_env(base: Path, studies: Path, tag: str) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=base))
    (root / "home").mkdir()
    return dict(os.environ, PYTHONPATH=str(REPO), SCALING_STUDIES=str(studies), SCALING_WAREHOUSE=str(root / "w"),
                DAGSTER_HOME=str(root / "home"))


def step_split(out: str) -> tuple[float, float]:
    """(sum of step durations, sum of 'done in' per study) from a sequential run's report."""
    steps = sum(float(x) for x in re.findall(r"^\s+\w+\s+ok\s+([\d.]+)s", out, re.M))
    studies = sum(float(x) for x in re.findall(r"done in ([\d.]+)s", out))
    return steps, studies


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=2)
    args = ap.parse_args(argv)
    n = args.studies
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        base = Path(tmp)
        many, one = base / "many", base / "one"
        write_studies(many, n)
        write_studies(one, 1)
        times = {k: [] for k in ("start", "one", "seq", "par", "again")}
        split = []
        for r in range(args.repeats):
            env = fresh_env(base, many, "start")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import pipelines.definitions"], env=env, check=True)
            times["start"].append(time.perf_counter() - t)
            times["one"].append(run(fresh_env(base, one, "one"), "run", "--quiet")[0])
            env = fresh_env(base, many, "seq")
            took, out = run(env, "run")
            times["seq"].append(took)
            split.append(step_split(out))
            times["again"].append(run(env, "run")[0])
            times["par"].append(run(fresh_env(base, many, "par"), "run", "--quiet", "--parallel", str(args.parallel))[0])
            print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()),
                  flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    per = (med["seq"] - med["one"]) / (n - 1)
    fixed = med["one"] - per
    steps = statistics.median(s for s, _ in split) / n
    in_run = statistics.median(d for _, d in split) / n
    speedup = med["seq"] / med["par"]
    again = med["again"] / med["seq"]
    print()
    print(f"{n} small studies (20 runs, Chinchilla form, 100 bootstrap refits + 50-refit backtest each), "
          f"{os.cpu_count()} cores, median of {args.repeats}")
    print("| measure | seconds | ratio |")
    print("|---|---|---|")
    print(f"| process start + imports (`import pipelines.definitions`) | {med['start']:.1f} | - |")
    print(f"| `scaling run`, 1 study | {med['one']:.1f} | - |")
    print(f"| `scaling run`, {n} studies, sequential (baseline) | {med['seq']:.1f} | 1.00x |")
    print(f"| `scaling run --parallel {args.parallel}`, {n} studies | {med['par']:.1f} | {speedup:.2f}x faster |")
    print(f"| second `scaling run`, nothing changed | {med['again']:.1f} | {again:.1%} of the first |")
    print(f"| fixed cost per command (intercept) | {fixed:.1f} | - |")
    print(f"| seconds per study (slope) | {per:.2f} | - |")
    print(f"| of which inside the study's Dagster run | {in_run:.2f} | - |")
    print(f"| of which in its steps (asset code) | {steps:.2f} | - |")
    print(f"RESULT bench=run studies={n} repeats={args.repeats} start_s={med['start']:.2f} fixed_s={fixed:.2f} "
          f"per_study_s={per:.2f} run_overhead_per_study_s={in_run - steps:.2f} steps_per_study_s={steps:.2f}")
    print(f"RESULT bench=run path=parallel parallel={args.parallel} seq_s={med['seq']:.2f} par_s={med['par']:.2f} "
          f"speedup_vs_sequential={speedup:.2f}")
    print(f"RESULT bench=run path=second_run first_s={med['seq']:.2f} second_s={med['again']:.2f} "
          f"ratio_vs_first={again:.3f}")


if __name__ == "__main__":
    main()
