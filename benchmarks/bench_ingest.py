"""Ingest + normalize throughput and peak memory, beside DuckDB's own CSV -> Parquet copy.

    python benchmarks/bench_ingest.py [--rows 10000000] [--repeats 3]

Generates a W&B-style training log CSV (run, _step, tokens, lr, train loss, an eval loss
logged every 10th step) with the project's simulator, then, alternating in fresh processes:
- DuckDB: COPY (SELECT * FROM read_csv(file)) TO 'x.parquet' (the baseline);
- polars' text copy: scan_csv(every column as text) with a row index, streamed to Parquet as `raw` is
  written and nothing else (no hashing, no parsing, no `points`): the least a lossless text copy costs
  on this stack, so how far ours is from what its `raw` layer alone must pay;
- ours, as the `raw_sources` and `normalized` steps do it (without Dagster): land the source
  losslessly into a pending ingest (every column as text + _file/_row/_source/_ingested_at,
  the file hashed for change detection; one pass over the CSV also writes its rows parsed for
  normalization), then normalize it into `points` (typed, mapped, checked, tokens/compute
  derived) and switch both into the lake.
The clock starts after imports and reading the study file (its schema check is a fixed cost of
about a second, not ingest work). Prints rows/s (median of the repeats), the ratio ours/DuckDB and each side's peak RSS, and ends
with one `RESULT` line per path (land, land+normalize).
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
import json, shutil, sys, time, resource
from pathlib import Path
which, folder = sys.argv[1], Path(sys.argv[2])
import duckdb
if which == "ours":
    from scaling.spec import load_study
    from scaling.normalize.points import normalize_source
    from warehouse.ingest import begin_ingest, ingest_part, land_pending
    from warehouse.raw import land_source, read_parsed, read_raw
    from warehouse.tables import POINTS
    spec = load_study(folder / "bench.toml")  # the study file is read and validated before the clock starts
t0 = time.perf_counter()
if which == "text":
    import polars as pl
    pl.scan_csv(folder / "log.csv", infer_schema=False, row_index_name="_row").sink_parquet(
        folder / "text.parquet", compression="zstd", compression_level=1, statistics=True)
elif which == "duckdb":
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"COPY (SELECT * FROM read_csv('{folder / 'log.csv'}')) TO '{folder / 'duck.parquet'}' (FORMAT parquet)")
else:
    src = spec.sources[0]
    lake = folder / "lake"
    staged = begin_ingest(lake, spec.name)
    landed = land_source(spec, src, lake, folder / "dl", force=True, staged=staged)
    land_pending(staged, {src.name: landed.manifest}, expect=("normalized",))
    land = time.perf_counter() - t0
    land_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with ingest_part(lake, spec.name, "normalized") as part:
        result = normalize_source(read_raw(lake, spec.name, src.name, lazy=True), src, spec, spill_dir=folder,
                                  parsed=read_parsed(lake, spec.name, src))
        try:
            part.sink("points", POINTS.conform(result.points))
        finally:
            result.cleanup()
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
out = {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}
if which == "ours":
    out.update(land_seconds=land, land_peak_rss_mb=land_rss)
    shutil.rmtree(folder / "lake")
else:
    (folder / ("duck.parquet" if which == "duckdb" else "text.parquet")).unlink()
print(json.dumps(out))
"""

LABELS = {"duckdb": "DuckDB `COPY (SELECT * FROM read_csv(...)) TO parquet`",
          "text": "polars' text copy alone (`scan_csv`, every column as text, to Parquet): the floor of `raw`",
          "land": "scaling: land raw (lossless, every column as text)",
          "ours": "scaling: land raw + normalize to `points`"}


def measure(which: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(folder)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="folder for the generated file (default: a temporary one)")
    args = ap.parse_args()
    from scaling.simulate import write_large_training_log

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        write_large_training_log(folder / "log.csv", args.rows, seed=0)
        (folder / "bench.toml").write_text(STUDY)
        size = (folder / "log.csv").stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f}s", flush=True)
        runs: dict[str, list[dict]] = {"duckdb": [], "text": [], "ours": []}
        for i in range(args.repeats):
            # alternate which goes first, so neither always runs on a cold or warm page cache
            for which in (("duckdb", "text", "ours") if i % 2 == 0 else ("ours", "text", "duckdb")):
                runs[which].append(measure(which, folder))
                r = runs[which][-1]
                print(f"  repeat {i + 1} {which}: {r['seconds']:.1f}s, peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        med["land"] = statistics.median(r["land_seconds"] for r in runs["ours"])
        peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
        peak["land"] = max(r["land_peak_rss_mb"] for r in runs["ours"])
        # the ratio of medians, and the median of the per-repeat ratios (each pair ran back to back)
        paired = {k: statistics.median(d["seconds"] / o[f"{k}_seconds" if k == "land" else "seconds"]
                                       for d, o in zip(runs["duckdb"], runs["ours"])) for k in ("land", "ours")}
        cpu = {k: statistics.median(r["cpu_seconds"] for r in v) for k, v in runs.items()}
        print(f"\n| {args.rows:,} rows | rows/s (median of {args.repeats}) | vs DuckDB | peak RSS | CPU seconds |")
        print("|---|---|---|---|---|")
        for k in ("duckdb", "text", "land", "ours"):
            print(f"| {LABELS[k]} | {args.rows / med[k]:,.0f} | {med['duckdb'] / med[k]:.2f}x | {peak[k]:,.0f} MB | "
                  f"{cpu[k]:.1f} |" if k in cpu else
                  f"| {LABELS[k]} | {args.rows / med[k]:,.0f} | {med['duckdb'] / med[k]:.2f}x | {peak[k]:,.0f} MB | |")
        print(f"\nmedian of per-repeat ratios: land {paired['land']:.2f}x, land+normalize {paired['ours']:.2f}x")
        for k, path in (("text", "text_copy_floor"), ("land", "land"), ("ours", "land+normalize")):
            print(f"RESULT path={path} rows={args.rows} ratio_vs_duckdb={med['duckdb'] / med[k]:.2f} "
                  f"peak_rss_ratio_vs_duckdb={peak[k] / peak['duckdb']:.2f} rows_per_s={args.rows / med[k]:.0f} "
                  f"duckdb_rows_per_s={args.rows / med['duckdb']:.0f} repeats={args.repeats}")


if __name__ == "__main__":
    main()
