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
from scaling.normalize.schedule import checkpoint_position, run_schedule
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


def _collect(lazy: pl.LazyFrame) -> pl.DataFrame:
    return lazy.collect(engine="streaming")


def _spill(lazy: pl.LazyFrame, path: Path) -> pl.LazyFrame:
    """Stream a query to a temporary Parquet file and scan it: later passes read typed columns."""
    lazy.sink_parquet(path, compression="lz4", statistics=False)
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


def _flags(lazy: pl.LazyFrame, masks: list[pl.Expr]) -> list[bool]:
    """Which masks match any row: one streaming pass, nothing materialized."""
    if not masks:
        return []
    return list(_collect(lazy.select([m.any().alias(f"_f{i}") for i, m in enumerate(masks)])).row(0))


def normalize_source(raw: pl.DataFrame | pl.LazyFrame, src: SourceSpec, study: StudySpec,
                     table_metadata: dict[str, dict] | None = None, *,
                     spill_dir: Path | None = None, shared_metadata: dict[str, dict] | None = None) -> NormalizedSource:
    """Map, parse and check one source's raw rows (see `_normalize_source`); intermediate files go to a
    fresh folder in `spill_dir`, removed here on failure and by `NormalizedSource.cleanup()` after use.
    `shared_metadata` (run -> metadata other sources of the study know) is the lowest-priority layer."""
    spill = Path(tempfile.mkdtemp(prefix="normalize-", dir=spill_dir))
    try:
        return _normalize_source(raw, src, study, table_metadata, spill, shared_metadata)
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise


def _normalize_source(raw: pl.DataFrame | pl.LazyFrame, src: SourceSpec, study: StudySpec,
                      table_metadata: dict[str, dict] | None, spill: Path,
                      shared_metadata: dict[str, dict] | None = None) -> NormalizedSource:
    """Map, parse and check one source's raw rows; return points, per-run metadata and quarantined rows.

    The text is parsed once, in a streaming pass that writes the typed values to a temporary Parquet
    file (in `spill_dir`); the checks are aggregate queries over typed files that materialize only
    offending rows, so memory stays bounded whatever the size of the source. `points` is lazy.
    """
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
    problems = Problems(study, src)
    schema = dict(base.collect_schema())
    frame = base.with_columns(_run=run_expr(src, columns))

    # Parse every mapped numeric column: a value column and a bad-cell flag each.
    numeric = [k for k in (*_NUMERIC_POINT, *[k for k in RUN_METADATA if RUN_METADATA[k] in (int, float)])
               if k in src.columns and k not in ("metric", "value")]
    exprs, checks = [], []  # checks: (flag column, source column, reason, drops the whole row)
    for canon in numeric:
        col = columns_of(src.columns[canon])[0]
        value, bad = parse_number(col, pl.Int64 if canon == "step" else pl.Float64, schema)
        if canon in src.scale:  # a column in billions, trillions, 1e21 FLOPs, ...
            value = value * src.scale[canon]
        exprs += [value.alias(f"_{canon}"), bad.alias(f"_bad_{canon}")]
        kind = "whole number" if canon == "step" else "number"
        checks.append((f"_bad_{canon}", col, pl.format(f"expected a {kind} for {{}}, got '{{}}'", pl.lit(canon),
                                                        pl.col(col).cast(pl.Utf8)), True))
    run_cols = run_columns(src, columns)
    if run_cols:  # a run id built from an empty cell names no run: a bad row, located like the others
        what = f"column {run_cols[0]!r}" if src.run in columns else f"template {src.run!r} (columns {run_cols})"
        exprs.append((pl.col("_run").is_null() | (pl.col("_run").str.strip_chars() == "")).alias("_bad_run"))
        checks.append(("_bad_run", run_cols[0], pl.lit(f"empty run id: the run {what} needs a value here"), True))
    metrics: list[tuple[str, str, str]] = []
    if src.layout == "wide":
        metrics = metric_columns(src, columns, first_file, study.name)
        for i, (name, col, unit) in enumerate(metrics):
            value, bad = parse_number(col, pl.Float64, schema)
            exprs += [value.alias(f"_m{i}"), bad.alias(f"_bad_m{i}")]
            checks.append((f"_bad_m{i}", col, pl.format("expected a number, got '{}'", pl.col(col).cast(pl.Utf8)),
                           False))
    else:
        vcol = columns_of(src.columns["value"])[0]
        value, bad = parse_number(vcol, pl.Float64, schema)
        exprs += [value.alias("_value"), bad.alias("_bad_value")]
        checks.append(("_bad_value", vcol, pl.format("expected a number, got '{}'", pl.col(vcol).cast(pl.Utf8)), True))
    frame = frame.with_columns(exprs)
    text_meta = [columns_of(src.columns[k])[0] for k in RUN_METADATA if k in src.columns and k not in numeric]
    text_meta += [c for c in src.labels.values() if c not in text_meta]
    typed_cols = ["_file", "_row", "_run", *[f"_{k}" for k in numeric], *[f for f, *_ in checks], *text_meta]
    typed_cols += [f"_m{i}" for i in range(len(metrics))] if src.layout == "wide" \
        else [*columns_of(src.columns["metric"]), "_value"]
    typed = _spill(frame.select(list(dict.fromkeys(typed_cols))), spill / "typed.parquet")
    for (flag, col, reason, drop_row), hit in zip(checks, _flags(typed, [pl.col(f) for f, *_ in checks])):
        if hit:  # rare: read the offending rows again, with their text
            problems.add(_collect(frame.filter(pl.col(flag))), col, reason)
            if drop_row:
                typed = typed.filter(~pl.col(flag))
    frame = typed

    parsed = {k: pl.col(f"_{k}") for k in numeric}
    index = ["_file", "_row", "_run", *[f"_{k}" for k in numeric]]
    if src.layout == "wide":
        long = pl.concat([
            frame.select(*index, pl.lit(name).alias("metric"), pl.lit(unit).alias("unit"),
                         pl.col(f"_m{i}").alias("value"), pl.lit(None, dtype=pl.Float64).alias("_stderr_v"),
                         pl.lit(col).alias("_column")).filter(pl.col("value").is_not_null())
            for i, (name, col, unit) in enumerate(metrics)])
    else:
        metric_cols = columns_of(src.columns["metric"])
        metric_expr = pl.concat_str([pl.col(c).cast(pl.Utf8) for c in metric_cols], separator="/")
        metric_names = _collect(frame.select(metric_expr.unique().alias("m")))["m"].drop_nulls().to_list()
        unit_map = pl.col("metric").replace_strict({n: unit_of(n, src) for n in metric_names}, default=src.unit,
                                                   return_dtype=pl.Utf8)
        long = frame.with_columns(metric=metric_expr).filter(pl.col("_value").is_not_null()).select(
            *index, "metric", unit_map.alias("unit"), pl.col("_value").alias("value"),
            (pl.col("_stderr") if "stderr" in parsed else pl.lit(None, dtype=pl.Float64)).alias("_stderr_v"),
            pl.lit(vcol).alias("_column"))


    # Values: finite, and non-negative for losses.
    nonfinite = ~pl.col("value").is_finite()
    negative = pl.col("unit").is_in(LOSS_UNITS) & (pl.col("value") < 0)
    reasons = ("expected a finite value for {}, got {}", "expected a non-negative loss for {}, got {}")
    for mask, reason, hit in zip((nonfinite, negative), reasons, _flags(long, [nonfinite, negative])):
        if hit:
            bad_rows = _collect(long.filter(mask))
            problems.add(bad_rows, bad_rows["_column"][0],
                         pl.format(reason, pl.col("metric"), pl.col("value").cast(pl.Utf8)))
            long = long.filter(~mask)

    # Per-run metadata: defaults < file columns < metadata table < per-run entries.
    runs = _collect(long.select(pl.col("_run").unique(maintain_order=True)))["_run"].to_list()
    metric_list = _collect(long.select(pl.col("metric").unique(maintain_order=True)))["metric"].to_list()
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
    step = pl.col("_step").cast(pl.Int64) if "step" in parsed else pl.lit(None, dtype=pl.Int64)
    tok_col = pl.col("_tokens") if "tokens" in parsed else pl.lit(None, dtype=pl.Float64)
    flops_col = pl.col("_flops") if "flops" in parsed else pl.lit(None, dtype=pl.Float64)
    n_flops = flops_params(pl.col("params"), pl.col("active_params"))
    tokens = pl.coalesce(tok_col, step.cast(pl.Float64) * pl.col("batch_tokens"), flops_col / (6.0 * n_flops))
    points = points.with_columns(step=step, tokens=tokens)
    no_tokens = pl.col("tokens").is_null()
    if _flags(points, [no_tokens])[0]:
        problems.add(_collect(points.filter(no_tokens)), "tokens",
                     "cannot derive tokens: map a `tokens` column, or `step` plus `batch_tokens` (column or run "
                     "metadata), or `flops` plus `params`")
        points = points.filter(~no_tokens)

    key = ["_run", "metric", pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_key")]
    dups = _duplicates(points, key)
    if dups.height:
        dup = _collect(points.with_columns(key[2]).join(dups.lazy(), on=["_run", "metric", "_key"])
                       .filter(pl.col("_row") != pl.col("_first")))
        problems.add(dup, dup["_column"][0], pl.format(
            "duplicated step {} for run '{}', metric '{}' (first seen at line/row {})",
            pl.coalesce(pl.col("step").cast(pl.Utf8), pl.col("tokens").cast(pl.Utf8)), pl.col("_run").cast(pl.Utf8),
            pl.col("metric").cast(pl.Utf8), pl.col("_first")))
        points = points.join(dup.lazy().select("_file", "_row", "metric"), on=["_file", "_row", "metric"], how="anti")

    # Compute under the study's convention from N and D; a logged FLOPs count is taken as it is
    # (never plus the attention term, which a logged total already holds) when N or D is missing.
    attn = 6.0 * pl.col("n_layer") * pl.col("seq_len") * pl.col("d_model") * pl.col("tokens")
    flops_6nd = 6.0 * n_flops * pl.col("tokens")
    derived = flops_6nd + attn if study.flops_convention == "6ND+attention" else flops_6nd
    flops = pl.coalesce(derived, flops_col)
    if study.flops_convention == "accelerator":  # the run's budget, spent in proportion to tokens
        flops = flops_accelerator(pl.col("gpu_hours"), pl.col("peak_flops"), pl.col("mfu")) \
            * pl.col("tokens") / pl.col("_tokens_last")
    order = pl.coalesce(pl.col("tokens"), pl.col("step").cast(pl.Float64))
    lr_col = parsed.get("learning_rate", pl.lit(None, dtype=pl.Float64))
    schedule = _collect(points.group_by("_run").agg(*run_schedule(order, lr_col),
                                                    _tokens_last=pl.col("tokens").max()))
    points = points.join(schedule.lazy(), on="_run", how="left")
    if src.final == "all":
        points = points.with_columns(is_final=pl.lit(True))
    else:
        last = _collect(points.group_by("_run", "metric").agg(_last=order.max()))
        points = points.join(last.lazy(), on=["_run", "metric"], how="left").with_columns(
            is_final=order == pl.col("_last"))
    points = points.with_columns(
        checkpoint=pl.lit("end") if src.final == "all" else checkpoint_position(order, lr_col),
        flops=flops, learning_rate=parsed.get("learning_rate", pl.lit(None, dtype=pl.Float64)),
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
