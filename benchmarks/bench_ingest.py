"""Ingest + normalize throughput and peak memory, beside DuckDB's own CSV -> Parquet copy.

    python benchmarks/bench_ingest.py [--rows 10000000] [--repeats 3]

Generates a W&B-style training log CSV (run, _step, tokens, lr, train loss, an eval loss
logged every 10th step) with the project's simulator, then, alternating in fresh processes:
- DuckDB: COPY (SELECT * FROM read_csv(file)) TO 'x.parquet' (the raw baseline);
- ours: land the source losslessly (every column as text + _file/_row/_ingested_at) and
  normalize it into `points` (typed, mapped, checked, tokens/compute derived), both to Parquet.
Prints rows/s (median of the repeats), the ratio ours/DuckDB, and each side's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY = """
[study]
name = "bench"
[[sources]]
name = "logs"
kind = "training_logs"
location = "log.csv"
format = "csv"
run = "run"
[sources.columns]
step = "_step"
tokens = "throughput/total_tokens"
learning_rate = "optim/lr"
[sources.metrics]
loss = "train/loss"
web_loss = "eval/web/loss"
[sources.defaults]
params = 124000000
"""

CHILD = r"""
import json, sys, time, resource
from pathlib import Path
which, folder = sys.argv[1], Path(sys.argv[2])
import duckdb
if which != "duckdb":
    from scaling.spec import load_study
    from scaling.normalize.points import normalize_source
    from warehouse.raw import land_source, read_raw
    from warehouse.lake import atomic_sink_parquet
    from warehouse.tables import POINTS
t0 = time.perf_counter()
if which == "duckdb":
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{folder / 'log.csv'}')) TO '{folder / 'duck.parquet'}' (FORMAT parquet)")
else:
    spec = load_study(folder / "bench.toml")
    lake = folder / "lake"
    land_source(spec, spec.sources[0], lake, folder / "dl", force=True)
    landed = time.perf_counter() - t0
    land_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = normalize_source(read_raw(lake, "bench", "logs", lazy=True), spec.sources[0], spec, spill_dir=folder)
    atomic_sink_parquet(POINTS.conform(result.points), lake / "points" / "data.parquet")
    result.cleanup()
seconds = time.perf_counter() - t0
out = {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if which != "duckdb":
    out.update(land_seconds=landed, land_peak_rss_mb=land_rss)
print(json.dumps(out))
"""


def measure(which: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(folder)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from scaling.simulate import write_large_training_log

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        write_large_training_log(folder / "log.csv", args.rows, seed=0)
        (folder / "bench.toml").write_text(STUDY)
        size = (folder / "log.csv").stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f}s")
        runs = {"duckdb": [], "ours": []}
        for _ in range(args.repeats):
            for which in ("duckdb", "ours"):
                runs[which].append(measure(which, folder))
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        med["land"] = statistics.median(r["land_seconds"] for r in runs["ours"])
        peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
        peak["land"] = max(r["land_peak_rss_mb"] for r in runs["ours"])
        print(f"\n| {args.rows:,} rows | rows/s (median of {args.repeats}) | vs DuckDB | peak RSS |")
        print("|---|---|---|---|")
        for k, label in (("duckdb", "DuckDB `COPY (SELECT * FROM read_csv(...)) TO parquet`"),
                         ("land", "scaling: land raw (lossless, all columns as text)"),
                         ("ours", "scaling: land raw + normalize to `points`")):
            print(f"| {label} | {args.rows / med[k]:,.0f} | {med['duckdb'] / med[k]:.2f}x | {peak[k]:,.0f} MB |")


if __name__ == "__main__":
    main()
