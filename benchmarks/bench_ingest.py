"""Ingest + normalize throughput and peak memory, beside DuckDB's own CSV -> Parquet copy.

    python benchmarks/bench_ingest.py [--rows 10000000] [--repeats 3]

Generates a W&B-style training log CSV (run, _step, tokens, lr, train loss, an eval loss
logged every 10th step) with the project's simulator, then, alternating in fresh processes:
- DuckDB: COPY (SELECT * FROM read_csv(file)) TO 'x.parquet' (the baseline);
- ours, as the `raw_sources` and `normalized` steps do it (without Dagster): land the source
  losslessly into a pending ingest (every column as text + _file/_row/_source/_ingested_at,
  the file hashed for change detection; one pass over the CSV also writes its rows parsed for
  normalization), then normalize it into `points` (typed, mapped, checked, tokens/compute
  derived) and switch both into the lake;
- floors, each the least one part of the output costs on this stack, with nothing else done:
  - text: polars' lossless text copy (scan_csv with every column as text and a row index,
    streamed to Parquet as `raw` is written): no hashing, parsing or `points`;
  - points: the `points` file (its 17 stored columns and their types) streamed from a typed scan of
    the CSV: the two metrics unfolded, tokens and flops taken, constants where ours works out each
    run's schedule, and no raw copy, no checks, no per-run lookups;
  - narrow: the same rows with only the 6 columns that vary per point (run, step, tokens, metric,
    value, row): what a `points` table without its per-run and derived columns would cost;
  - bytes: the file copied as it is while its sha256 is taken: what a `raw` layer that keeps the
    file's own bytes would cost.
  Ours pays the text and points floors at least; the narrow and bytes floors price the two ways
  to a cheaper output (a narrower `points`, a byte-copy `raw`), which would change what the
  tables hold.
The clock starts after imports and reading the study file (its schema check is a fixed cost of
about a second, not ingest work). Prints rows/s (median of the repeats), the ratio to DuckDB and
each path's peak RSS, the sums of floors for each way of writing the output, and ends with one
`RESULT` line per path.
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
if which == "duckdb":
    import duckdb
elif which == "ours":
    from scaling.spec import load_study
    from scaling.normalize.points import normalize_source
    from warehouse.ingest import begin_ingest, ingest_part, land_pending
    from warehouse.raw import land_source, read_parsed, read_raw
    from warehouse.tables import POINTS
    spec = load_study(folder / "bench.toml")  # the study file is read and validated before the clock starts
elif which == "text":
    import polars as pl
elif which == "bytes":
    import hashlib
elif which in ("points", "narrow"):
    import polars as pl
    from warehouse.tables import POINTS
    typed = {"run": pl.Utf8, "_step": pl.Int64, "throughput/total_tokens": pl.Float64, "optim/lr": pl.Float64,
             "train/loss": pl.Float64, "eval/web/loss": pl.Float64}
start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the interpreter and imports
t0 = time.perf_counter()
rows = None
if which == "bytes":
    digest = hashlib.sha256()
    with open(folder / "log.csv", "rb") as f, open(folder / "copy.csv", "wb") as copy:
        while chunk := f.read(16 << 20):
            digest.update(chunk)
            copy.write(chunk)
elif which in ("points", "narrow"):
    scan = pl.scan_csv(folder / "log.csv", schema_overrides=typed, row_index_name="_row")
    per_metric = []
    for metric, column in (("loss", "train/loss"), ("web_loss", "eval/web/loss")):
        value = pl.col(column)
        cols = dict(run=pl.col("run"), step=pl.col("_step"), tokens=pl.col("throughput/total_tokens"),
                    metric=pl.lit(metric), value=value, row=pl.col("_row").cast(pl.Int64) + 2)
        if which == "points":
            cols.update(study=pl.lit("bench"), source=pl.lit("logs"), group_name=pl.lit(""),
                        flops=6.0 * 124e6 * pl.col("throughput/total_tokens"), learning_rate=pl.col("optim/lr"),
                        unit=pl.lit("nats"), loss_nats=value, is_final=pl.lit(False), checkpoint=pl.lit("mid"),
                        file=pl.lit("log.csv"))
        per_metric.append(scan.filter(value.is_not_null()).select(**cols))
    table = pl.concat(per_metric)
    if which == "points":  # the columns and types of ours, without `study` (the file's folder key)
        table = POINTS.conform(table).drop("study")
    table.sink_parquet(folder / "floor.parquet", compression="zstd", compression_level=1, statistics=True)
elif which == "text":
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
if which in ("points", "narrow", "ours"):  # the points written, and (for the points floor) the very table ours writes
    import polars as pl
    from warehouse.lake import partition_dir
    written = folder / "floor.parquet" if which != "ours" else partition_dir(lake, "points", spec.name) / "data.parquet"
    if which != "narrow":
        schema = pl.read_parquet_schema(written)
        assert schema == {k: v for k, v in POINTS.polars_schema.items() if k != "study"}, schema
    rows = pl.scan_parquet(written).select(pl.len()).collect().item()
out = {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime,
       "start_rss_mb": start_rss, "points_rows": rows}
if which == "ours":
    out.update(land_seconds=land, land_peak_rss_mb=land_rss)
    shutil.rmtree(folder / "lake")
else:
    (folder / {"duckdb": "duck.parquet", "text": "text.parquet", "bytes": "copy.csv"}.get(which, "floor.parquet")).unlink()
print(json.dumps(out))
"""

GENERATE = r"""
import sys
from pathlib import Path
from scaling.simulate import write_large_training_log
write_large_training_log(Path(sys.argv[1]), int(sys.argv[2]), seed=0)
"""

LABELS = {"duckdb": "DuckDB `COPY (SELECT * FROM read_csv(...)) TO parquet`",
          "text": "floor: polars' text copy alone (every column as text, to Parquet), the least `raw` costs",
          "points": "floor: `points` alone (its 17 stored columns, straight from a typed scan)",
          "narrow": "floor: a 6-column `points` (run, step, tokens, metric, value, row)",
          "bytes": "floor: the file's bytes copied while hashed (a byte-copy `raw`)",
          "land": "scaling: land raw (lossless, every column as text)",
          "ours": "scaling: land raw + normalize to `points`"}
ORDER = ("duckdb", "text", "points", "narrow", "bytes", "ours")
# each way of writing the output, as the floors of its two layers: (key, raw floor, points floor, label)
OUTPUTS = (("text+points", "text", "points", "text `raw` + 17-column `points` (what the tables hold)"),
           ("text+narrow", "text", "narrow", "text `raw` + 6-column `points`"),
           ("bytes+points", "bytes", "points", "byte-copy `raw` + 17-column `points`"),
           ("bytes+narrow", "bytes", "narrow", "byte-copy `raw` + 6-column `points`"))
RESULT_PATHS = {"text": "text_copy_floor", "points": "points_floor", "narrow": "narrow_points_floor",
                "bytes": "byte_copy_floor", "land": "land", "ours": "land+normalize"}


def measure(which: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(folder)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="folder for the generated file (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        # In a process of its own: Linux carries a process's peak RSS over into the programs it starts, so
        # a parent that had held the generator's arrays would set a floor under every child's peak.
        subprocess.run([sys.executable, "-c", GENERATE, str(folder / "log.csv"), str(args.rows)], check=True)
        (folder / "bench.toml").write_text(STUDY)
        size = (folder / "log.csv").stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f}s", flush=True)
        runs: dict[str, list[dict]] = {k: [] for k in ORDER}
        for i in range(args.repeats):
            # alternate the order, so that none always runs on a cold or warm page cache
            for which in (ORDER if i % 2 == 0 else ORDER[::-1]):
                runs[which].append(measure(which, folder))
                r = runs[which][-1]
                print(f"  repeat {i + 1} {which}: {r['seconds']:.1f}s, peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        med["land"] = statistics.median(r["land_seconds"] for r in runs["ours"])
        peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
        peak["land"] = max(r["land_peak_rss_mb"] for r in runs["ours"])
        cpu = {k: statistics.median(r["cpu_seconds"] for r in v) for k, v in runs.items()}
        start = {k: max(r["start_rss_mb"] for r in v) for k, v in runs.items()}
        start["land"] = start["ours"]
        # the ratio of medians, and the median of the per-repeat ratios (each pair ran in the same repeat)
        paired = {k: statistics.median(d["seconds"] / o[f"{k}_seconds" if k == "land" else "seconds"]
                                       for d, o in zip(runs["duckdb"], runs["ours"])) for k in ("land", "ours")}
        points_rows = {k: runs[k][0]["points_rows"] for k in ("points", "narrow", "ours")}
        print(f"\n| {args.rows:,} rows | rows/s (median of {args.repeats}) | vs DuckDB | peak RSS | "
              "of which before the clock (interpreter, imports) | CPU seconds |")
        print("|---|---|---|---|---|---|")
        for k in ("duckdb", "text", "points", "narrow", "bytes", "land", "ours"):
            print(f"| {LABELS[k]} | {args.rows / med[k]:,.0f} | {med['duckdb'] / med[k]:.2f}x | {peak[k]:,.0f} MB | "
                  f"{start[k]:,.0f} MB | " + (f"{cpu[k]:.1f} |" if k in cpu else "|"))
        print(f"\nmedian of per-repeat ratios: land {paired['land']:.2f}x, land+normalize {paired['ours']:.2f}x")
        print(f"points rows written: ours {points_rows['ours']:,}, the points floor {points_rows['points']:,}, "
              f"the 6-column floor {points_rows['narrow']:,}")
        print("\nThe least each way of writing the output costs (its two floors one after the other; parsing, "
              "checks and per-run lookups not counted):\n")
        print("| output | seconds (sum of floors) | vs DuckDB |")
        print("|---|---|---|")
        for key, raw, pts, label in OUTPUTS:
            print(f"| {label} | {med[raw] + med[pts]:.2f} | {med['duckdb'] / (med[raw] + med[pts]):.2f}x |")
        print()
        for k, path in RESULT_PATHS.items():
            extra = f" points_rows={points_rows[k]}" if k in points_rows else ""
            print(f"RESULT path={path} rows={args.rows} ratio_vs_duckdb={med['duckdb'] / med[k]:.2f} "
                  f"peak_rss_ratio_vs_duckdb={peak[k] / peak['duckdb']:.2f} rows_per_s={args.rows / med[k]:.0f} "
                  f"duckdb_rows_per_s={args.rows / med['duckdb']:.0f} repeats={args.repeats}{extra}")
        for key, raw, pts, _ in OUTPUTS:
            print(f"RESULT path=floor_sum output={key} rows={args.rows} "
                  f"ratio_vs_duckdb={med['duckdb'] / (med[raw] + med[pts]):.2f} repeats={args.repeats}")


if __name__ == "__main__":
    main()
