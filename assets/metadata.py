"""Turning frames, tables and fits into metadata a person reads at a glance in the Dagster UI.

- `preview` gives a sortable `MetadataValue.table` with a typed `TableSchema`, the value and
  interval columns right after the columns that name a row (so they are never clipped);
- `catalog_metadata` gives every asset its column schema (from `warehouse.tables`), its catalog
  view as `dagster/table_name`, owners and tags; `with_catalog_metadata` applies it, with code
  references, to the loaded assets;
- `check_metadata` gives a check's observed value and threshold as numbers (the check's plot);
- `image` embeds a PNG plot; `plot` gives it with its path in the warehouse, `report_link` the
  study's HTML report.
"""

from __future__ import annotations

import base64
import math
import warnings
from pathlib import Path
from typing import Sequence

import polars as pl
from dagster import (AssetsDefinition, AssetSpec, BetaWarning, MetadataValue, TableColumn, TableRecord, TableSchema,
                     map_asset_specs, with_source_code_references)

from scaling.report import markdown_table  # noqa: F401  (re-exported: one Markdown table helper)
from warehouse.config import WarehousePaths
from warehouse.report_data import report_dir
from warehouse.tables import TABLES

# columns that say which row it is, then the value with its interval, then the rest
LABELS = ("group_name", "group", "law", "target", "target_domain", "parameter", "kind", "name", "run", "domain",
          "objective", "metric", "source")
INTERVALS = ("estimate", "predicted", "ci_low", "ci_high", "actual", "rel_error", "params", "params_ci_low",
             "params_ci_high", "tokens", "tokens_ci_low", "tokens_ci_high", "predicted_loss", "baseline_predicted_loss",
             "baseline_ci_low", "baseline_ci_high", "backtest_error", "mean_abs_rel_error", "coverage")
OWNERS = ["team:scaling-studies"]
CATALOG = "catalog.main"  # the DuckDB catalog file's database and schema: `catalog.main.<table>`


def _column_type(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    return "string"


def interval_order(columns: Sequence[str]) -> list[str]:
    """Labels first, then value and interval columns, then the rest (each in its given order)."""
    labels = [c for c in columns if c in LABELS]
    values = [c for c in INTERVALS if c in columns]
    return labels + values + [c for c in columns if c not in labels and c not in values]


def _cell(v):
    if isinstance(v, float):
        if not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        return float(f"{v:.5g}")  # 5 significant digits: columns stay narrow, the catalog keeps every digit
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return str(v)


def preview(frame: pl.DataFrame, limit: int = 10) -> MetadataValue:
    """The first `limit` rows as a sortable table with a typed schema (a group column that is empty
    for every row, as in a study without groups, is left out)."""
    empty = [c for c in ("group_name", "group") if c in frame.columns and frame.height
             and (frame[c].cast(pl.Utf8).fill_null("") == "").all()]
    frame = frame.drop(empty)
    frame = frame.select(interval_order(frame.columns)).head(limit)
    docs = {c.name: c.doc for t in TABLES.values() for c in t.columns}
    schema = TableSchema(columns=[TableColumn(c, _column_type(t), description=docs.get(c))
                                  for c, t in frame.schema.items()])
    records = [TableRecord({k: _cell(v) for k, v in row.items()}) for row in frame.iter_rows(named=True)]
    return MetadataValue.table(records, schema=schema)


def table_schema(table: str) -> TableSchema | None:
    """A catalog table's columns, types and meanings, as `warehouse.tables` defines them."""
    t = TABLES.get(table)
    if t is None:
        return None
    return TableSchema(columns=[TableColumn(c.name, c.type.lower(), description=c.doc) for c in t.columns])


def catalog_metadata(spec: AssetSpec) -> AssetSpec:
    """An asset spec with its column schema, catalog view, owners and tags."""
    name = spec.key.to_user_string()
    view = "raw" if name == "raw_sources" else name
    metadata = {**spec.metadata, "dagster/table_name": f"{CATALOG}.{view}"}
    schema = table_schema(view)
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    tags = {**spec.tags, "layer": spec.group_name or "default", "storage": "parquet-duckdb"}
    return spec.replace_attributes(metadata=metadata, owners=list(spec.owners) or OWNERS, tags=tags)


def with_catalog_metadata(assets: Sequence[AssetsDefinition]) -> Sequence[AssetsDefinition]:
    """The assets with `catalog_metadata` on every spec and links to their source code."""
    with warnings.catch_warnings():  # code references are a beta feature of the pinned release; its API is fixed
        warnings.simplefilter("ignore", BetaWarning)
        return with_source_code_references(map_asset_specs(catalog_metadata, assets))


def check_metadata(observed: float | None, threshold: float | None, **extra) -> dict:
    """A check result's numbers, plotted by the UI across runs."""
    out = {k: v for k, v in extra.items() if v is not None}
    if observed is not None and math.isfinite(observed):
        out["observed"] = MetadataValue.float(float(observed))
    if threshold is not None:
        out["threshold"] = MetadataValue.float(float(threshold))
    return out


def image(path: Path, caption: str | None = None) -> MetadataValue:
    """Embed a PNG so the UI shows it inline, with what it shows (study, group) and the file name."""
    data = base64.b64encode(path.read_bytes()).decode()
    text = f"{caption}\n\n" if caption else ""
    return MetadataValue.md(f"{text}![{path.stem}](data:image/png;base64,{data})\n\n`{path.name}`")


def plot(name: str, path: Path, caption: str) -> dict[str, MetadataValue]:
    """A plot's entries: ``plot_<name>``, the PNG embedded with its caption (an image is over the UI's
    inline limit for Markdown, so the UI folds it behind "[Show Markdown]"), and ``plot_<name>_png``,
    the PNG's path in the warehouse, shown as it is."""
    return {f"plot_{name}": image(path, caption), f"plot_{name}_png": MetadataValue.path(str(path))}


def report_link(paths: WarehousePaths, study: str) -> dict[str, MetadataValue]:
    """``report``: the study's HTML report (every table and plot on one page), as a file:// URL. `scaling
    run` writes it after the run, `scaling report` rewrites it."""
    return {"report": MetadataValue.url((report_dir(paths) / f"{study}.html").resolve().as_uri())}
