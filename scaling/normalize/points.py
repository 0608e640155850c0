"""Raw rows of one training-log or checkpoint-results source -> canonical points.

One output row per run x step x metric. Columns are mapped by the study file; text is
parsed to numbers with errors that name the file, line and column; tokens come from the
log, or step x batch tokens, or (published results) C / 6N; compute is counted 6·N·D and,
when the architecture is known, attention-inclusive too. Bad values (unparsable, NaN/inf,
negative losses, duplicated steps) fail the source, or go to quarantine when the source
says ``on_error = "quarantine"``.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from scaling.errors import SourceError, SpecError
from scaling.normalize.metadata import metadata_frame, resolve_run_metadata
from scaling.normalize.units import bits_per_byte_expr, to_nats_expr
from scaling.spec import RUN_METADATA, SourceSpec, StudySpec, unit_of

LOSS_UNITS = ("nats", "bits", "bits_per_byte", "perplexity")
_NUMERIC_POINT = ("step", "tokens", "flops", "learning_rate", "stderr")
QUARANTINE_SCHEMA = {"source": pl.Utf8, "file": pl.Utf8, "row": pl.Int64, "column": pl.Utf8,
                     "reason": pl.Utf8, "record": pl.Utf8}


@dataclass
class NormalizedSource:
    points: pl.DataFrame
    run_metadata: pl.DataFrame
    quarantine: pl.DataFrame


def _parse(col: str, dtype: pl.DataType, frame_schema: dict) -> tuple[pl.Expr, pl.Expr]:
    """(parsed value, is-bad flag): a non-empty cell that does not parse as a number is bad."""
    src = pl.col(col)
    if frame_schema[col] == pl.Utf8:
        text = src.str.strip_chars()
        parsed = text.cast(pl.Float64, strict=False)
        bad = text.is_not_null() & (text != "") & parsed.is_null()
    elif frame_schema[col] == pl.Boolean:
        parsed = src.cast(pl.Float64, strict=False)
        bad = src.is_not_null()
    else:
        parsed = src.cast(pl.Float64, strict=False)
        bad = src.is_not_null() & parsed.is_null()
    if dtype == pl.Int64:
        bad = bad | (parsed.is_not_null() & parsed.is_finite() & (parsed != parsed.floor()))
    return parsed, bad


def _record(frame: pl.DataFrame) -> list[str]:
    cols = [c for c in frame.columns if not c.startswith("_")]
    return [json.dumps(r, default=str) for r in frame.select(cols).iter_rows(named=True)]


class _Problems:
    """Collects bad rows; raises the first one unless the source quarantines."""

    def __init__(self, study: StudySpec, src: SourceSpec):
        self.study, self.src = study, src
        self.frames: list[pl.DataFrame] = []

    def add(self, bad: pl.DataFrame, column: str, reason: pl.Expr | str) -> None:
        if bad.height == 0:
            return
        reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
        bad = bad.with_columns(_reason=reason_expr)
        if self.src.on_error == "fail":
            first = bad.row(0, named=True)
            raise SourceError(first["_reason"], study=self.study.name, source=self.src.name,
                              file=first["_file"], line=first["_row"] if self._line_based else None,
                              row=None if self._line_based else first["_row"], column=column)
        self.frames.append(pl.DataFrame({
            "source": [self.src.name] * bad.height, "file": bad["_file"].cast(pl.Utf8),
            "row": bad["_row"].cast(pl.Int64), "column": [column] * bad.height,
            "reason": bad["_reason"], "record": _record(bad)}, schema=QUARANTINE_SCHEMA))

    @property
    def _line_based(self) -> bool:
        return self.src.format in ("csv", "jsonl", "text")

    def frame(self) -> pl.DataFrame:
        return pl.concat(self.frames) if self.frames else pl.DataFrame(schema=QUARANTINE_SCHEMA)


def _any(frame: pl.DataFrame, mask: pl.Expr) -> bool:
    """Whether any row matches, without materializing the matching rows (the common case is none)."""
    return bool(frame.select(mask.any()).item())


def _columns_of(spec_value: str | list[str]) -> list[str]:
    return [spec_value] if isinstance(spec_value, str) else list(spec_value)


def _run_expr(src: SourceSpec, columns: list[str]) -> pl.Expr:
    """Run id: a column, or a template over {file_stem}, {file}, {row} and {<column>}."""
    if src.run in columns:
        return pl.col(src.run).cast(pl.Utf8)
    parts: list[pl.Expr] = []
    text = src.run
    import re
    pos = 0
    for m in re.finditer(r"\{([^{}]+)\}", text):
        if m.start() > pos:
            parts.append(pl.lit(text[pos:m.start()]))
        key = m.group(1)
        if key == "file_stem":
            parts.append(pl.col("_file").str.replace(r"^.*/", "").str.replace(r"\.[^.]*$", ""))
        elif key == "file":
            parts.append(pl.col("_file"))
        elif key == "row":
            parts.append(pl.col("_row").cast(pl.Utf8))
        elif key in columns:
            parts.append(pl.col(key).cast(pl.Utf8))
        else:
            raise SpecError(f"run template names {{{key}}}, which is neither a column nor file_stem/file/row",
                            source=src.name, field="run")
        pos = m.end()
    if pos < len(text):
        parts.append(pl.lit(text[pos:]))
    if not parts:
        raise SpecError(f"run must be a column name or a template, got {src.run!r}", source=src.name, field="run")
    return pl.concat_str(parts)


def _metric_columns(src: SourceSpec, columns: list[str], first_file: str, study: str) -> list[tuple[str, str, str]]:
    """(metric name, column, unit) for a wide source."""
    found = []
    for m in src.metrics:
        if m.column not in columns:
            raise SourceError(f"mapped metric column not found (metric {m.name!r}); the source has "
                              f"{len(columns)} columns, e.g. {[c for c in columns if not c.startswith('_')][:8]}",
                              study=study, source=src.name, file=first_file, column=m.column)
        found.append((m.name, m.column, m.unit))
    for pattern in src.metric_columns:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern) and not c.startswith("_")]
        if not hits:
            raise SourceError(f"metric_columns pattern {pattern!r} matches no column", study=study,
                              source=src.name, file=first_file, field="metric_columns")
        found += [(c, c, unit_of(c, src)) for c in hits if c not in {f[1] for f in found}]
    return found


def normalize_source(raw: pl.DataFrame, src: SourceSpec, study: StudySpec,
                     table_metadata: dict[str, dict] | None = None) -> NormalizedSource:
    """Map, parse and check one source's raw rows; return points, per-run metadata and quarantined rows."""
    where = {"study": study.name, "source": src.name}
    if raw.height == 0:
        raise SourceError("the source has no rows", **where)
    first_file = str(raw["_file"][0])
    if src.filter:
        try:
            raw = raw.filter(pl.sql_expr(src.filter))
        except Exception as exc:  # polars raises several types for bad SQL
            raise SpecError(f"filter {src.filter!r} failed: {exc}", field="filter", **where) from None
    columns = raw.columns
    for canon, spec_value in src.columns.items():
        for col in _columns_of(spec_value):
            if col not in columns:
                raise SourceError(f"mapped column for {canon!r} not found; the source has columns "
                                  f"{[c for c in columns if not c.startswith('_')][:12]}",
                                  file=first_file, column=col, **where)
    problems = _Problems(study, src)
    schema = dict(raw.schema)
    frame = raw.with_columns(_run=_run_expr(src, columns))

    # Parse every mapped numeric column in one pass: a value column and a bad-cell flag each.
    numeric = [k for k in (*_NUMERIC_POINT, *[k for k in RUN_METADATA if RUN_METADATA[k] in (int, float)])
               if k in src.columns and k not in ("metric", "value")]
    exprs, checks = [], []  # checks: (flag column, source column, reason, drops the whole row)
    for canon in numeric:
        col = _columns_of(src.columns[canon])[0]
        value, bad = _parse(col, pl.Int64 if canon == "step" else pl.Float64, schema)
        exprs += [value.alias(f"_{canon}"), bad.alias(f"_bad_{canon}")]
        checks.append((f"_bad_{canon}", col, pl.format("expected a number for {}, got '{}'", pl.lit(canon),
                                                        pl.col(col).cast(pl.Utf8)), True))
    if src.layout == "wide":
        metrics = _metric_columns(src, columns, first_file, study.name)
        for i, (name, col, unit) in enumerate(metrics):
            value, bad = _parse(col, pl.Float64, schema)
            exprs += [value.alias(f"_m{i}"), bad.alias(f"_bad_m{i}")]
            checks.append((f"_bad_m{i}", col, pl.format("expected a number, got '{}'", pl.col(col).cast(pl.Utf8)),
                           False))
    else:
        vcol = _columns_of(src.columns["value"])[0]
        value, bad = _parse(vcol, pl.Float64, schema)
        exprs += [value.alias("_value"), bad.alias("_bad_value")]
        checks.append(("_bad_value", vcol, pl.format("expected a number, got '{}'", pl.col(vcol).cast(pl.Utf8)), True))
    frame = frame.with_columns(exprs)
    flagged = frame.select([pl.col(f).any() for f, *_ in checks]).row(0) if checks else ()
    for (flag, col, reason, drop_row), hit in zip(checks, flagged):
        if hit:
            problems.add(frame.filter(pl.col(flag)), col, reason)
            if drop_row:
                frame = frame.filter(~pl.col(flag))

    parsed = {k: pl.col(f"_{k}") for k in numeric}
    index = ["_file", "_row", "_run", *[f"_{k}" for k in numeric]]
    if src.layout == "wide":
        names = {f"_m{i}": (name, unit, col) for i, (name, col, unit) in enumerate(metrics)}
        long = frame.lazy().select(*index, *names).unpivot(on=list(names), index=index, variable_name="_mcol",
                                                          value_name="value") \
            .filter(pl.col("value").is_not_null()).with_columns(
                metric=pl.col("_mcol").replace_strict({k: v[0] for k, v in names.items()}, return_dtype=pl.Utf8),
                unit=pl.col("_mcol").replace_strict({k: v[1] for k, v in names.items()}, return_dtype=pl.Utf8),
                _column=pl.col("_mcol").replace_strict({k: v[2] for k, v in names.items()}, return_dtype=pl.Utf8),
                _stderr_v=pl.lit(None, dtype=pl.Float64)).drop("_mcol").collect()
    else:
        metric_cols = _columns_of(src.columns["metric"])
        metric_expr = pl.concat_str([pl.col(c).cast(pl.Utf8) for c in metric_cols], separator="/")
        names = frame.select(metric_expr.unique()).to_series().drop_nulls().to_list()
        unit_map = pl.col("metric").replace_strict({n: unit_of(n, src) for n in names}, default=src.unit,
                                                   return_dtype=pl.Utf8)
        long = frame.with_columns(metric=metric_expr).filter(pl.col("_value").is_not_null()).select(
            *index, "metric", unit_map.alias("unit"), pl.col("_value").alias("value"),
            (pl.col("_stderr") if "stderr" in parsed else pl.lit(None, dtype=pl.Float64)).alias("_stderr_v"),
            pl.lit(vcol).alias("_column"))
    if long is None or long.height == 0:
        raise SourceError("no metric values found after mapping", file=first_file, **where)

    # Values: finite, and non-negative for losses.
    nonfinite = ~pl.col("value").is_finite()
    negative = pl.col("unit").is_in(LOSS_UNITS) & (pl.col("value") < 0)
    for mask, reason in ((nonfinite, "expected a finite value for {}, got {}"),
                         (negative, "expected a non-negative loss for {}, got {}")):
        if _any(long, mask):
            bad_rows = long.filter(mask)
            col = bad_rows["_column"][0]
            problems.add(bad_rows, col, pl.format(reason, pl.col("metric"), pl.col("value").cast(pl.Utf8)))
            long = long.filter(~mask)

    # Per-run metadata: defaults < file columns < metadata table < per-run entries.
    runs = long["_run"].unique(maintain_order=True).to_list()
    from_files: dict[str, dict] = {}
    file_meta = [k for k in RUN_METADATA if k in src.columns]
    if file_meta:
        agg = frame.group_by("_run", maintain_order=True).agg(
            [(pl.col(f"_{k}") if f"_{k}" in frame.columns else pl.col(_columns_of(src.columns[k])[0]))
             .drop_nulls().first().alias(k) for k in file_meta])
        for row in agg.iter_rows(named=True):
            run = row.pop("_run")
            from_files[run] = {k: (RUN_METADATA[k](v) if v is not None else None) for k, v in row.items()}
    meta = resolve_run_metadata(runs, src, from_files=from_files, from_table=table_metadata)
    meta_df = metadata_frame(meta, study.group_by)

    # Run ids and metric names as enums: the joins and per-run windows below then hash small integers.
    run_enum, metric_enum = pl.Enum(runs), pl.Enum(long["metric"].unique(maintain_order=True).to_list())
    long = long.with_columns(pl.col("_run").cast(run_enum), pl.col("metric").cast(metric_enum))
    points = long.join(meta_df.with_columns(pl.col("run").cast(run_enum)), left_on="_run", right_on="run",
                       how="left")
    step = pl.col("_step").cast(pl.Int64) if "_step" in points.columns else pl.lit(None, dtype=pl.Int64)
    tok_col = pl.col("_tokens") if "_tokens" in points.columns else pl.lit(None, dtype=pl.Float64)
    flops_col = pl.col("_flops") if "_flops" in points.columns else pl.lit(None, dtype=pl.Float64)
    tokens = pl.coalesce(tok_col, step.cast(pl.Float64) * pl.col("batch_tokens"), flops_col / (6.0 * pl.col("params")))
    points = points.with_columns(step=step, tokens=tokens)
    if _any(points, pl.col("tokens").is_null()):
        problems.add(points.filter(pl.col("tokens").is_null()), "tokens",
                     "cannot derive tokens: map a `tokens` column, or `step` plus `batch_tokens` (column or run "
                     "metadata), or `flops` plus `params`")
        points = points.filter(pl.col("tokens").is_not_null())

    key = ["_run", "metric", pl.coalesce(pl.col("step").cast(pl.Float64), pl.col("tokens")).alias("_key")]
    if points.select(pl.struct(key).n_unique()).item() < points.height:
        dup = points.with_columns(_n=pl.len().over(key), _first=pl.col("_row").min().over(key)).filter(
            (pl.col("_n") > 1) & (pl.col("_row") != pl.col("_first")))
        problems.add(dup, dup["_column"][0], pl.format(
            "duplicated step {} for run '{}', metric '{}' (first seen at line/row {})",
            pl.coalesce(pl.col("step").cast(pl.Utf8), pl.col("tokens").cast(pl.Utf8)), pl.col("_run"),
            pl.col("metric"), pl.col("_first")))
        points = points.join(dup.select("_file", "_row", "metric"), on=["_file", "_row", "metric"], how="anti")

    attn = 6.0 * pl.col("n_layer") * pl.col("seq_len") * pl.col("d_model") * pl.col("tokens")
    flops_6nd = pl.coalesce(6.0 * pl.col("params") * pl.col("tokens"), flops_col)
    flops_attention = flops_6nd + attn
    flops = flops_attention if study.flops_convention == "6ND+attention" else flops_6nd
    loss_nats = to_nats_expr(pl.col("value"), pl.col("unit"), pl.col("bytes_per_token"))
    order = pl.coalesce(pl.col("tokens"), pl.col("step").cast(pl.Float64))
    is_final = pl.lit(True) if src.final == "all" else (order == order.max().over(["_run", "metric"]))
    points = points.lazy().with_columns(flops=flops, learning_rate=pl.col("_learning_rate") if "_learning_rate"
                                        in points.columns else pl.lit(None, dtype=pl.Float64), loss_nats=loss_nats)
    points = points.with_columns(
        bits_per_byte=bits_per_byte_expr(pl.col("value"), pl.col("unit"), pl.col("loss_nats"), pl.col("bytes_per_token")),
        is_final=is_final,
    ).select(
        pl.lit(study.name).alias("study"), pl.lit(src.name).alias("source"), pl.col("_run").cast(pl.Utf8).alias("run"),
        "group_name", "step", "tokens", "flops", "learning_rate", pl.col("metric").cast(pl.Utf8), "unit", "value", "loss_nats",
        "bits_per_byte", pl.col("_stderr_v").alias("stderr"), "is_final", pl.col("_file").alias("file"),
        pl.col("_row").cast(pl.Int64).alias("row"),
    ).collect()
    return NormalizedSource(points=points, run_metadata=meta_df.filter(pl.col("run").is_in(points["run"].unique().implode())),
                            quarantine=problems.frame())
