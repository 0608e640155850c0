"""Raw rows of one training-log or checkpoint-results source -> canonical points.

One output row per run x step x metric. Columns are mapped by the study file; text is
parsed to numbers with errors that name the file, line and column; tokens come from the
log, or step x batch tokens, or (published results) C / 6N; compute is counted 6·N·D and,
when the architecture is known, attention-inclusive too. Bad values (unparsable, NaN/inf,
negative losses, duplicated steps) fail the source, or go to quarantine when the source
says ``on_error = "quarantine"``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from scaling.expressions import parse_column_expression
from scaling.errors import SourceError, SpecError
from scaling.normalize.mapping import (Problems, columns_of, metric_columns, needed_columns, parse_number, run_columns,
                                       run_expr)
from scaling.normalize.derive import with_extracted
from scaling.normalize.metadata import metadata_frame, resolve_run_metadata
from scaling.normalize.schedule import (SCHEDULE_END, SCHEDULE_KEYS, beyond_schedule, checkpoint_position,
                                       peak_positions, run_schedule, stated_position)
from scaling.normalize.units import bits_per_byte_expr, flops_accelerator, flops_params, to_nats_expr
from scaling.spec import LOSS_UNITS, RUN_METADATA, SourceSpec, StudySpec, unit_of

_NUMERIC_POINT = ("step", "tokens", "flops", "learning_rate", "stderr")


@dataclass
class NormalizedSource:
    points: pl.LazyFrame  # reads intermediate files in `spill`: write it out, then call cleanup()
    run_metadata: pl.DataFrame
    quarantine: pl.DataFrame
    spill: Path | None = None

    def cleanup(self) -> None:
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)


# A scan that several branches of one query read (the per-metric branches of a wide source's points) is
# buffered whole by the streaming engine when common subplans are merged; each branch scans on its own.
STREAMING = pl.QueryOptFlags(comm_subplan_elim=False)


def _collect(lazy: pl.LazyFrame) -> pl.DataFrame:
    return lazy.collect(engine="streaming", optimizations=STREAMING)


SPILL_OPTIONS = {"compression": "lz4", "statistics": False}  # temporary files: fast to write and read


def _spill(lazy: pl.LazyFrame, path: Path) -> pl.LazyFrame:
    """Stream a query to a temporary Parquet file and scan it: later passes read typed columns."""
    lazy.sink_parquet(path, **SPILL_OPTIONS)
    return pl.scan_parquet(path)


ROWS_PER_BUCKET = 20_000_000


def _duplicates(points: pl.LazyFrame, key: list) -> pl.DataFrame:
    """Keys seen more than once, with the first row of each. The hash table of a group-by over every
    point would grow with the source, so large sources are checked in buckets of runs (one pass each)."""
    n = _collect(points.select(pl.len())).item()
    buckets = max(1, -(-n // ROWS_PER_BUCKET))
    found = []
    for b in range(buckets):
        part = points if buckets == 1 else points.filter(pl.col("_run").to_physical().hash() % buckets == b)
        found.append(_collect(part.group_by(key).agg(_n=pl.len(), _first=pl.col("_row").min())
                              .filter(pl.col("_n") > 1)))
    return pl.concat(found)


def _add_by_column(problems: Problems, rows: pl.DataFrame, reason: pl.Expr) -> None:
    """Offending points, each named with its own metric's column; in file order, so that a failing source
    reports its first bad line."""
    rows = rows.sort("_file", "_row", "metric")
    for column in rows["_column"].unique(maintain_order=True).to_list():
        problems.add(rows.filter(pl.col("_column") == column), column, reason)


def _with_peaks(schedule: pl.DataFrame, peaks: pl.DataFrame) -> pl.DataFrame:
    return schedule.join(peaks, on="_run", how="left")


def _flags(lazy: pl.LazyFrame, masks: list[pl.Expr]) -> list[bool]:
    """Which masks match any row: one streaming pass, nothing materialized."""
    if not masks:
        return []
    return list(_collect(lazy.select([m.any().alias(f"_f{i}") for i, m in enumerate(masks)])).row(0))


def normalize_source(raw: pl.DataFrame | pl.LazyFrame, src: SourceSpec, study: StudySpec,
                     table_metadata: dict[str, dict] | None = None, *,
                     spill_dir: Path | None = None, shared_metadata: dict[str, dict] | None = None,
                     parsed: pl.LazyFrame | None = None) -> NormalizedSource:
    """Map, parse and check one source's raw rows (see `_normalize_source`); intermediate files go to a
    fresh folder in `spill_dir`, removed here on failure and by `NormalizedSource.cleanup()` after use.
    `shared_metadata` (run -> metadata other sources of the study know) is the lowest-priority layer.
    `parsed` is a scan of `parse_source(raw, ...).typed` written earlier (while landing, in the same pass
    over the file): given, the raw text is not parsed again."""
    spill = Path(tempfile.mkdtemp(prefix="normalize-", dir=spill_dir))
    try:
        return _normalize_source(raw, src, study, table_metadata, spill, shared_metadata, parsed)
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise


@dataclass
class ParsedSource:
    """One source's rows mapped and parsed, lazily. `frame`: the raw rows plus a parsed value and a bad-cell
    flag per mapped numeric column; `typed`: the columns the later passes read, which is what is written
    to a temporary Parquet file (or while landing, beside the raw rows)."""
    frame: pl.LazyFrame
    typed: pl.LazyFrame
    checks: list[tuple[str, str, pl.Expr, bool]]  # (flag column, source column, reason, drops the whole row)
    numeric: list[str]
    metrics: list[tuple[str, str, str]]  # wide layout: (metric name, column, unit)
    first_file: str


def parse_source(raw: pl.DataFrame | pl.LazyFrame, src: SourceSpec, study: StudySpec) -> ParsedSource:
    """The per-row part of normalization: extract, filter, map, the run id, and every mapped number parsed
    with a flag for cells that do not parse. Native polars expressions only, so it streams; the same plan
    runs over the landed raw rows, or over the CSV scan that lands them."""
    where = {"study": study.name, "source": src.name}
    base = raw.lazy()
    columns = list(base.collect_schema())
    first = _collect(base.select("_file").head(1))
    if first.height == 0:
        raise SourceError("the source has no rows", **where)
    first_file = str(first["_file"][0])
    base, columns = with_extracted(base, src, columns, where, first_file)
    needed = needed_columns(src, columns)
    if needed is not None:
        base = base.select(needed)
    if src.filter:
        try:
            base = base.filter(parse_column_expression(src.filter, field="filter", columns=set(columns),
                                                       **where).to_polars())
            base.collect_schema()
        except SpecError:
            raise
        except Exception as exc:  # polars raises several types for bad SQL
            raise SpecError(f"filter {src.filter!r} failed: {exc}", field="filter", **where) from None
    for canon, spec_value in src.columns.items():
        for col in columns_of(spec_value):
            if col not in columns:
                raise SourceError(f"mapped column for {canon!r} not found; the source has columns "
                                  f"{[c for c in columns if not c.startswith('_')][:12]}",
                                  file=first_file, column=col, **where)
    schema = dict(base.collect_schema())
    frame = base.with_columns(_run=run_expr(src, columns))

    # Parse every mapped numeric column: a value column and a bad-cell flag each.
    numeric = [k for k in (*_NUMERIC_POINT, *[k for k in RUN_METADATA if RUN_METADATA[k] in (int, float)])
               if k in src.columns and k not in ("metric", "value")]
    stages: list[list[pl.Expr]] = [[], [], [], []]  # stripped text; values; flags; scaled values
    checks = []

    def number(col: str, dtype: pl.DataType, name: str) -> str:
        for stage, exprs in zip(stages, parse_number(col, dtype, schema, name, f"_bad{name}")):
            stage += exprs
        return f"_bad{name}"

    for canon in numeric:
        col = columns_of(src.columns[canon])[0]
        flag = number(col, pl.Int64 if canon == "step" else pl.Float64, f"_{canon}")
        if canon in src.scale:  # a column in billions, trillions, 1e21 FLOPs, ...
            stages[3].append(pl.col(f"_{canon}") * src.scale[canon])
        kind = "whole number" if canon == "step" else "number"
        checks.append((flag, col, pl.format(f"expected a {kind} for {{}}, got '{{}}'", pl.lit(canon),
                                            pl.col(col).cast(pl.Utf8)), True))
    run_cols = run_columns(src, columns)
    if run_cols:  # a run id built from an empty cell names no run: a bad row, located like the others
        what = f"column {run_cols[0]!r}" if src.run in columns else f"template {src.run!r} (columns {run_cols})"
        stages[2].append((pl.col("_run").is_null() | (pl.col("_run").str.strip_chars() == "")).alias("_bad_run"))
        checks.append(("_bad_run", run_cols[0], pl.lit(f"empty run id: the run {what} needs a value here"), True))
    metrics: list[tuple[str, str, str]] = []
    if src.layout == "wide":
        metrics = metric_columns(src, columns, first_file, study.name)
        for i, (name, col, unit) in enumerate(metrics):
            checks.append((number(col, pl.Float64, f"_m{i}"), col,
                           pl.format("expected a number, got '{}'", pl.col(col).cast(pl.Utf8)), False))
    else:
        vcol = columns_of(src.columns["value"])[0]
        checks.append((number(vcol, pl.Float64, "_value"), vcol,
                       pl.format("expected a number, got '{}'", pl.col(vcol).cast(pl.Utf8)), True))
    for stage in stages:
        if stage:
            frame = frame.with_columns(stage)
    text_meta = [columns_of(src.columns[k])[0] for k in RUN_METADATA if k in src.columns and k not in numeric]
    text_meta += [c for c in src.labels.values() if c not in text_meta]
    typed_cols = ["_file", "_row", "_run", *[f"_{k}" for k in numeric], *[f for f, *_ in checks], *text_meta]
    typed_cols += [f"_m{i}" for i in range(len(metrics))] if src.layout == "wide" \
        else [*columns_of(src.columns["metric"]), "_value"]
    return ParsedSource(frame, frame.select(list(dict.fromkeys(typed_cols))), checks, numeric, metrics, first_file)


def _value_checks() -> tuple[tuple[pl.Expr, str], ...]:
    """Values: finite, and non-negative for losses."""
    return ((~pl.col("value").is_finite(), "expected a finite value for {}, got {}"),
            (pl.col("unit").is_in(LOSS_UNITS) & (pl.col("value") < 0), "expected a non-negative loss for {}, got {}"))


def _first_seen(groups: pl.DataFrame, column: str) -> list[str]:
    """`column`'s values in the order they first appear (by `_first`, the position of a group's first row)."""
    return groups.group_by(column).agg(pl.col("_first").min()).sort("_first")[column].to_list()


def _keys_increase(key: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(block starts, out-of-order rows) of a stream of points. A block is a run of consecutive rows of one run
    and metric. When every (run, metric) forms one block and its key strictly increases along it, no key
    repeats: proven in one streaming pass, without a hash table over every point. Null or NaN keys count
    as out of order (adding 0.0 makes -0.0 and 0.0 one key, as grouping does)."""
    same = ((pl.col("_run") == pl.col("_run").shift(1)) & (pl.col("metric") == pl.col("metric").shift(1))).fill_null(False)
    k = key + 0.0
    prev = k.shift(1)
    increasing = ((k > prev) & k.is_not_nan() & prev.is_not_nan()).fill_null(False)
    return (~same).sum().alias("_blocks"), (same & ~increasing).sum().alias("_unordered")


def _normalize_source(raw: pl.DataFrame | pl.LazyFrame, src: SourceSpec, study: StudySpec,
                      table_metadata: dict[str, dict] | None, spill: Path,
                      shared_metadata: dict[str, dict] | None = None,
                      parsed: pl.LazyFrame | None = None) -> NormalizedSource:
    """Map, parse and check one source's raw rows; return points, per-run metadata and quarantined rows.

    The text is parsed once, in a streaming pass that writes the typed values to a temporary Parquet
    file (in `spill_dir`), unless `parsed` already holds them. The checks and per-run figures are then a
    few aggregate passes over the typed file (bad cells; value checks, the runs and metrics in order of
    first appearance and whether steps can repeat; schedules, last points and missing tokens) that
    materialize only offending rows, so memory stays bounded whatever the size of the source. A source
    whose points arrive one run and metric at a time in increasing steps (training logs as written) is
    shown free of duplicated steps by that pass; only otherwise is every key hashed. `points` is lazy.
    """
    where = {"study": study.name, "source": src.name}
    p = parse_source(raw, src, study)
    numeric, metrics, first_file = p.numeric, p.metrics, p.first_file
    problems = Problems(study, src)
    if parsed is not None and parsed.collect_schema() != p.typed.collect_schema():
        parsed = None  # written by another version of the mapping: parse again
    typed = parsed if parsed is not None else _spill(p.typed, spill / "typed.parquet")
    for (flag, col, reason, drop_row), hit in zip(p.checks, _flags(typed, [pl.col(f) for f, *_ in p.checks])):
        if hit:  # rare: read the offending rows again, with their text
            problems.add(_collect(p.frame.filter(pl.col(flag))), col, reason)
            if drop_row:
                typed = typed.filter(~pl.col(flag))
    frame = typed

    parsed_cols = {k: pl.col(f"_{k}") for k in numeric}
    index = ["_file", "_row", "_run", *[f"_{k}" for k in numeric]]
    seq = frame.with_row_index("_seq")  # the order of first appearance: position in the file, per metric
    if src.layout == "wide":
        def long_of(f: pl.LazyFrame, ordered: bool) -> pl.LazyFrame:
            return pl.concat([
                f.select(*index, pl.lit(name).alias("metric"), pl.lit(unit).alias("unit"),
                         pl.col(f"_m{i}").alias("value"), pl.lit(None, dtype=pl.Float64).alias("_stderr_v"),
                         pl.lit(col).alias("_column"),
                         *([(pl.col("_seq").cast(pl.Int64) + i * 2**40).alias("_ord")] if ordered else []))
                .filter(pl.col("value").is_not_null())
                for i, (name, col, unit) in enumerate(metrics)])
    else:
        vcol = columns_of(src.columns["value"])[0]
        metric_cols = columns_of(src.columns["metric"])
        metric_expr = pl.concat_str([pl.col(c).cast(pl.Utf8) for c in metric_cols], separator="/")
        metric_names = _collect(frame.select(metric_expr.unique().alias("m")))["m"].drop_nulls().to_list()
        unit_map = pl.col("metric").replace_strict({n: unit_of(n, src) for n in metric_names}, default=src.unit,
                                                   return_dtype=pl.Utf8)

        def long_of(f: pl.LazyFrame, ordered: bool) -> pl.LazyFrame:
            return f.with_columns(metric=metric_expr).filter(pl.col("_value").is_not_null()).select(
                *index, "metric", unit_map.alias("unit"), pl.col("_value").alias("value"),
                (pl.col("_stderr") if "stderr" in parsed_cols else pl.lit(None, dtype=pl.Float64)).alias("_stderr_v"),
                pl.lit(vcol).alias("_column"), *([pl.col("_seq").cast(pl.Int64).alias("_ord")] if ordered else []))
    long = long_of(frame, False)

    # One pass over the points: value checks, each run x metric's first row, and whether keys can repeat.
    # (The key here is the step, else logged tokens; tokens derived from run metadata come later.)
    value_checks = _value_checks()
    # the first row of each run x metric among the rows each combination of value filters keeps
    kept = [(f"_first{''.join(str(i) for i in applied)}", [~value_checks[i][0] for i in applied])
            for applied in ((), (0,), (1,), (0, 1))]
    pre_key = pl.coalesce(pl.col("_step").cast(pl.Float64) if "step" in parsed_cols else pl.lit(None, dtype=pl.Float64),
                          parsed_cols.get("tokens", pl.lit(None, dtype=pl.Float64)))
    ordered = long_of(seq, True)
    lr_col = parsed_cols.get("learning_rate", pl.lit(None, dtype=pl.Float64))
    # When every point logs its tokens, they are the tokens (nothing is derived from run metadata): each
    # run's schedule and each run x metric's last point come from this pass too.
    logged = pl.col("_tokens") if "tokens" in parsed_cols else None
    # (Two queries, not one `collect_all`: the streaming engine buffers a scan it shares between consumers.)
    groups = _collect(ordered.group_by("_run", "metric").agg(
        *[(pl.when(*keep).then(pl.col("_ord")) if keep else pl.col("_ord")).min().alias(name) for name, keep in kept],
        *[mask.any().alias(f"_v{i}") for i, (mask, _) in enumerate(value_checks)],
        *([logged.max().alias("_last"), lr_col.max().alias("_lr_max"), logged.is_null().any().alias("_unlogged")]
          if logged is not None else [])))
    unlogged = logged is None or groups["_unlogged"].any()
    # Only running comparisons in this query: with an aggregate beside them (e.g. whether any token is
    # missing) the streaming engine holds every point of the source in memory.
    order = _collect(ordered.select(*_keys_increase(pre_key)))
    keys_unique = order["_unordered"][0] == 0 and order["_blocks"][0] == groups.height
    applied = ""
    for i, (mask, reason) in enumerate(value_checks):
        if groups[f"_v{i}"].any():
            _add_by_column(problems, _collect(long.filter(mask)),
                           pl.format(reason, pl.col("metric"), pl.col("value").cast(pl.Utf8)))
            long, applied = long.filter(~mask), applied + str(i)
    groups = groups.with_columns(_first=pl.col(f"_first{applied}")).filter(pl.col("_first").is_not_null())

    # Per-run metadata: defaults < file columns < metadata table < per-run entries.
    runs, metric_list = _first_seen(groups, "_run"), _first_seen(groups, "metric")
    if not runs:
        raise SourceError("no metric values found after mapping", file=first_file, **where)
    from_files: dict[str, dict] = {}
    file_meta = [k for k in RUN_METADATA if k in src.columns]
    if file_meta or src.labels:
        agg = _collect(frame.group_by("_run", maintain_order=True).agg(
            [(pl.col(f"_{k}") if k in numeric else pl.col(columns_of(src.columns[k])[0]))
             .drop_nulls().first().alias(k) for k in file_meta]
            + [pl.col(c).cast(pl.Utf8).drop_nulls().first().alias(f"_label_{name}")
               for name, c in src.labels.items()]))
        for row in agg.iter_rows(named=True):
            run = row.pop("_run")
            labels = {k[len("_label_"):]: row.pop(k) for k in list(row) if k.startswith("_label_")}
            from_files[run] = {k: (RUN_METADATA[k](v) if v is not None else None) for k, v in row.items()}
            from_files[run]["labels"] = {k: v for k, v in labels.items() if v is not None}
    meta = resolve_run_metadata(runs, src, from_files=from_files, from_table=table_metadata, shared=shared_metadata)
    meta_df = metadata_frame(meta, study.group_by)

    # Run ids and metric names as enums: the joins and per-run aggregations hash small integers.
    run_enum, metric_enum = pl.Enum(runs), pl.Enum(metric_list)
    long = long.with_columns(pl.col("_run").cast(run_enum), pl.col("metric").cast(metric_enum))
    points = long.join(meta_df.lazy().with_columns(pl.col("run").cast(run_enum)), left_on="_run", right_on="run",
                       how="left")
    step = pl.col("_step").cast(pl.Int64) if "step" in parsed_cols else pl.lit(None, dtype=pl.Int64)
    tok_col = parsed_cols.get("tokens", pl.lit(None, dtype=pl.Float64))
    flops_col = parsed_cols.get("flops", pl.lit(None, dtype=pl.Float64))
    n_flops = flops_params(pl.col("params"), pl.col("active_params"))
    tokens = pl.coalesce(tok_col, step.cast(pl.Float64) * pl.col("batch_tokens"), flops_col / (6.0 * n_flops))
    points = points.with_columns(step=step, tokens=tokens)

    # Else one more pass: missing tokens, and each run's schedule and each run x metric's last point.
    order_by = pl.coalesce(pl.col("tokens"), pl.col("step").cast(pl.Float64))

    def per_run(pts: pl.LazyFrame) -> list[pl.LazyFrame]:
        return [pts.group_by("_run").agg(*run_schedule(order_by, lr_col), _tokens_last=pl.col("tokens").max()),
                pts.group_by("_run", "metric").agg(_last=order_by.max())]

    no_tokens = pl.col("tokens").is_null()
    if not applied and not unlogged:
        # the `run_schedule` maxima over a run's points are the maxima over its metrics' maxima
        early = groups.group_by("_run").agg(pl.col("_last").max().alias("_run_last"),
                                            pl.col("_lr_max").max().alias("_lr_peak"),
                                            pl.col("_last").max().alias("_tokens_last"))
        schedule = _with_peaks(early, _collect(peak_positions(ordered, logged, lr_col, early)))
        schedule = schedule.with_columns(pl.col("_run").cast(run_enum))
        last = groups.select(pl.col("_run").cast(run_enum), pl.col("metric").cast(metric_enum), "_last")
        missing = False
    else:
        schedule, last, missing = pl.collect_all([*per_run(points), points.select(no_tokens.any())],
                                                 engine="streaming", optimizations=STREAMING)
        schedule = _with_peaks(schedule, _collect(peak_positions(points, order_by, lr_col, schedule)))
        missing = missing.item()
    changed = False
    if missing:
        problems.add(_collect(points.filter(no_tokens)), "tokens",
                     "cannot derive tokens: map a `tokens` column, or `step` plus `batch_tokens` (column or run "
                     "metadata), or `flops` plus `params`")
        points, changed = points.filter(~no_tokens), True
    # A schedule the study states (run metadata) places the points; a point past its run's end is an error.
    stated = meta_df.select(pl.any_horizontal(pl.col(k).is_not_null() for k in SCHEDULE_KEYS).any()).item() \
        and src.final != "all"
    at = stated_position(pl.col("step"), pl.col("tokens")) if stated else None
    if stated and meta_df.select(pl.any_horizontal(pl.col(k).is_not_null() for k, _ in SCHEDULE_END).any()).item():
        past = beyond_schedule(at)
        if _flags(points, [past])[0]:
            stated_end = pl.coalesce(pl.format("schedule_steps = {}", pl.col("schedule_steps")),
                                     pl.format("schedule_tokens = {}", pl.col("schedule_tokens")))
            _add_by_column(problems, _collect(points.filter(past)), pl.format(
                "run '{}' logs step {} ({} tokens), past the end of its schedule as the study states it ({}); "
                "correct the run's schedule_steps or schedule_tokens",
                pl.col("_run").cast(pl.Utf8), pl.col("step").cast(pl.Utf8).fill_null("-"),
                pl.col("tokens").cast(pl.Utf8).fill_null("-"), stated_end))
            points, changed = points.filter(~past), True

    key = ["_run", "metric", pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_key")]
    dups = _duplicates(points, key) if not keys_unique else None
    if dups is not None and dups.height:
        dup = _collect(points.with_columns(key[2]).join(dups.lazy(), on=["_run", "metric", "_key"], how="left")
                       .filter(pl.col("_first").is_not_null() & (pl.col("_row") != pl.col("_first"))))
        _add_by_column(problems, dup, pl.format(
            "duplicated step {} for run '{}', metric '{}' (first seen at line/row {})",
            pl.coalesce(pl.col("step").cast(pl.Utf8), pl.col("tokens").cast(pl.Utf8)), pl.col("_run").cast(pl.Utf8),
            pl.col("metric").cast(pl.Utf8), pl.col("_first")))
        points, changed = points.join(dup.lazy().select("_file", "_row", "metric"), on=["_file", "_row", "metric"],
                                      how="anti"), True
    if changed:  # rows were set aside: the schedules and last points of what is left
        schedule, last = pl.collect_all(per_run(points), engine="streaming", optimizations=STREAMING)
        schedule = _with_peaks(schedule, _collect(peak_positions(points, order_by, lr_col, schedule)))

    # Compute under the study's convention from N and D; a logged FLOPs count is taken as it is
    # (never plus the attention term, which a logged total already holds) when N or D is missing.
    attn = 6.0 * pl.col("n_layer") * pl.col("seq_len") * pl.col("d_model") * pl.col("tokens")
    flops_6nd = 6.0 * n_flops * pl.col("tokens")
    derived = flops_6nd + attn if study.flops_convention == "6ND+attention" else flops_6nd
    flops = pl.coalesce(derived, flops_col)
    if study.flops_convention == "accelerator":  # the run's budget, spent in proportion to tokens
        flops = flops_accelerator(pl.col("gpu_hours"), pl.col("peak_flops"), pl.col("mfu")) \
            * pl.col("tokens") / pl.col("_tokens_last")
    points = points.join(schedule.lazy(), on="_run", how="left")
    if src.final == "all":
        points = points.with_columns(is_final=pl.lit(True))
    else:
        points = points.join(last.lazy(), on=["_run", "metric"], how="left").with_columns(
            is_final=order_by == pl.col("_last"))
    points = points.with_columns(
        checkpoint=pl.lit("end") if src.final == "all" else checkpoint_position(order_by, lr_col, at, pl.col("_last")),
        flops=flops, learning_rate=lr_col,
        loss_nats=to_nats_expr(pl.col("value"), pl.col("unit"), pl.col("bytes_per_token")),
    ).with_columns(
        bits_per_byte=bits_per_byte_expr(pl.col("value"), pl.col("unit"), pl.col("loss_nats"), pl.col("bytes_per_token")),
    ).select(
        pl.lit(study.name).alias("study"), pl.lit(src.name).alias("source"), pl.col("_run").cast(pl.Utf8).alias("run"),
        "group_name", "step", "tokens", "flops", "learning_rate", pl.col("metric").cast(pl.Utf8), "unit", "value",
        "loss_nats", "bits_per_byte", pl.col("_stderr_v").alias("stderr"), "is_final", "checkpoint",
        pl.col("_file").alias("file"), pl.col("_row").cast(pl.Int64).alias("row"),
    )
    return NormalizedSource(points=points, run_metadata=meta_df, quarantine=problems.frame(), spill=spill)
