"""Per-run metadata: parameters, architecture, batch size, tokenizer, data set and group labels.

Sources of metadata, lowest priority first: the source's ``defaults``, values mapped from
columns of the files themselves, a metadata table (``metadata = "runs.csv"`` with a ``run``
column), and ``[sources.runs."<pattern>"]`` entries whose glob pattern matches the run id.
Columns of a metadata table that are not known metadata keys become group labels.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import polars as pl

from scaling.errors import SourceError
from scaling.spec import RUN_METADATA, SourceSpec, check_metadata


def metadata_from_table(table: pl.DataFrame, *, file: str, source: str,
                        columns: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Rows of a metadata table keyed by run; unknown columns become labels.

    ``columns`` maps canonical names to the table's own (``run = "model"``, ``params = "params_total"``).
    """
    if columns:
        missing = [c for c in columns.values() if c not in table.columns]
        if missing:
            raise SourceError(f"metadata_columns names columns the table lacks; it has {table.columns}",
                              file=file, source=source, column=missing[0])
        table = table.rename({v: k for k, v in columns.items()})
    if "run" not in table.columns:
        raise SourceError("a metadata table needs a 'run' column", file=file, source=source, column="run")
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(table.iter_rows(named=True), start=2):
        run = str(row.pop("run"))
        meta: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for key, value in row.items():
            if value is None or value == "":
                continue
            if key in RUN_METADATA:
                kind = RUN_METADATA[key]
                try:
                    meta[key] = (str(value).lower() in ("1", "true", "yes")) if kind is bool else kind(
                        float(value) if kind is int else value)
                except (TypeError, ValueError):
                    raise SourceError(f"expected {kind.__name__}, got {value!r}", file=file, source=source,
                                      line=i, column=key) from None
            else:
                labels[key] = str(value)
        if labels:
            meta["labels"] = labels
        out[run] = check_metadata(meta, "metadata", source=source, file=file, line=i)
    return out


def resolve_run_metadata(
    runs: list[str],
    src: SourceSpec,
    *,
    from_files: dict[str, dict[str, Any]] | None = None,
    from_table: dict[str, dict[str, Any]] | None = None,
    shared: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Merge the metadata layers for each run id (`shared`: what other sources of the study know, lowest)."""
    out = {}
    for run in runs:
        layers = [(shared or {}).get(run, {}), src.defaults, (from_files or {}).get(run, {}), (from_table or {}).get(run, {})]
        layers += [meta for pattern, meta in src.runs.items() if fnmatch.fnmatchcase(run, pattern)]
        merged: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for layer in layers:
            for key, value in layer.items():
                if key == "labels":
                    labels.update(value)
                elif value is not None:
                    merged[key] = value
        merged["labels"] = labels
        out[run] = merged
    return out


def group_name(labels: dict[str, str], group_by: tuple[str, ...]) -> str:
    """'label=value,...' over the study's grouping labels; '' when the study is not grouped."""
    return ",".join(f"{k}={labels.get(k, '')}" for k in group_by)


def metadata_frame(meta: dict[str, dict[str, Any]], group_by: tuple[str, ...]) -> pl.DataFrame:
    """One row per run with every metadata column (nulls where unknown)."""
    rows = []
    for run, m in meta.items():
        row = {"run": run, **{k: m.get(k) for k in RUN_METADATA}}
        row["labels"] = json.dumps(m.get("labels", {}), sort_keys=True)
        row["group_name"] = group_name(m.get("labels", {}), group_by)
        rows.append(row)
    schema = {"run": pl.Utf8, **{k: {float: pl.Float64, int: pl.Int64, str: pl.Utf8, bool: pl.Boolean}[t]
                                  for k, t in RUN_METADATA.items()},
              "labels": pl.Utf8, "group_name": pl.Utf8}
    return pl.DataFrame(rows, schema=schema)
