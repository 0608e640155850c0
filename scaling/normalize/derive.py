"""Columns a source derives from its files before mapping, and the run metadata a study shares across sources.

- ``extract``: named groups of a regex over a column become columns (``{arch}`` from
  ``Gemstone-1024x28-step_00002385``), usable in ``run`` templates, ``columns``, ``labels`` and filters.
  A value the pattern does not match gives nulls in the new columns.
- ``labels``: group labels read from columns of the files (a family column, an optimizer column).
- Shared metadata: when several sources describe the same runs (loss curves in one file, benchmark
  scores in another, metadata in a third), each source's runs also see what the other sources know
  about them (parameters, batch size, labels), as the lowest-priority layer.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from scaling.errors import ScalingError, SourceError
from scaling.spec import RUN_METADATA, SourceSpec


def with_extracted(base: pl.LazyFrame, src: SourceSpec, columns: list[str], where: dict,
                   first_file: str | None = None) -> tuple[pl.LazyFrame, list[str]]:
    """Add the named groups of each ``extract`` pattern as text columns."""
    added: list[pl.Expr] = []
    names = list(columns)
    for i, (column, pattern) in enumerate(src.extract):
        if column not in names:
            raise SourceError(f"extract[{i}] reads a column the source does not have; it has "
                              f"{[c for c in names if not c.startswith('_')][:12]}", column=column,
                              file=first_file, field=f"extract[{i}].column", **where)
        import re

        for group in re.compile(pattern).groupindex:
            if group in names:
                raise SourceError(f"extract[{i}] group {group!r} would replace an existing column of that name",
                                  file=first_file, field=f"extract[{i}].pattern", **where)
            added.append(pl.col(column).cast(pl.Utf8).str.extract(pattern, group_index=_group_index(pattern, group))
                         .alias(group))
            names.append(group)
    return (base.with_columns(added) if added else base), names


def _group_index(pattern: str, group: str) -> int:
    import re

    return re.compile(pattern).groupindex[group]


def merge_shared_metadata(per_source: dict[str, dict[str, dict[str, Any]]], study: str) -> dict[str, dict[str, Any]]:
    """Run id -> metadata known to any source; two sources giving a run different values is an error."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    for source, runs in per_source.items():
        for run, meta in runs.items():
            into = merged.setdefault(run, {"labels": {}})
            for key, value in meta.items():
                if key == "labels":
                    for label, v in value.items():
                        into["labels"].setdefault(label, v)
                    continue
                if value is None:
                    continue
                if key in into and into[key] != value and not _close(into[key], value):
                    raise ScalingError(f"run {run!r} has {key} = {into[key]!r} in source {origin[(run, key)]!r} "
                                       f"but {value!r} in source {source!r}; the sources describe the same run "
                                       f"differently", study=study, source=source, field=key)
                if key not in into:
                    into[key], origin[(run, key)] = value, source
    return merged


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return False


def metadata_keys() -> tuple[str, ...]:
    return tuple(RUN_METADATA)


def peek_run_metadata(raw: pl.DataFrame | pl.LazyFrame, src: SourceSpec, study: str,
                      table_metadata: dict[str, dict] | None) -> dict[str, dict[str, Any]]:
    """What one source knows about its runs (defaults, file columns, metadata table, ``runs`` entries),
    read in one light pass over the run and metadata columns only. Bad cells are not reported here:
    the full normalization of the source reports them."""
    from scaling.expressions import parse_column_expression
    from scaling.normalize.mapping import columns_of, run_expr
    from scaling.normalize.metadata import resolve_run_metadata

    where = {"study": study, "source": src.name}
    base = raw.lazy()
    columns = list(base.collect_schema())
    base, columns = with_extracted(base, src, columns, where)
    if src.filter:
        base = base.filter(parse_column_expression(src.filter, field="filter", columns=set(columns),
                                                   **where).to_polars())
    aggs = []
    for key in RUN_METADATA:
        if key not in src.columns or columns_of(src.columns[key])[0] not in columns:
            continue
        col = pl.col(columns_of(src.columns[key])[0]).cast(pl.Utf8).str.strip_chars()
        kind = RUN_METADATA[key]
        if kind in (int, float):
            col = col.cast(pl.Float64, strict=False) * src.scale.get(key, 1.0)
        elif kind is bool:
            col = col.str.to_lowercase().is_in(["1", "true", "yes"])
        aggs.append(col.drop_nulls().first().alias(key))
    aggs += [pl.col(c).cast(pl.Utf8).drop_nulls().first().alias(f"_label_{name}")
             for name, c in src.labels.items() if c in columns]
    agg = base.group_by(run_expr(src, columns).alias("_run"), maintain_order=True).agg(aggs) \
        .collect(engine="streaming") if aggs else \
        base.select(run_expr(src, columns).alias("_run")).unique(maintain_order=True).collect(engine="streaming")
    from_files: dict[str, dict[str, Any]] = {}
    for row in agg.iter_rows(named=True):
        run = row.pop("_run")
        if run is None:
            continue
        labels = {k[len("_label_"):]: row.pop(k) for k in list(row) if k.startswith("_label_")}
        meta = {k: (RUN_METADATA[k](v) if v is not None else None) for k, v in row.items()}
        meta["labels"] = {k: v for k, v in labels.items() if v is not None}
        from_files[run] = meta
    return resolve_run_metadata(list(from_files), src, from_files=from_files, from_table=table_metadata)
