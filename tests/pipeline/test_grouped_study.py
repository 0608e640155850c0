"""A grouped study through a real materialization: every table the UI shows names the group of
each row, so the rows of two arms can be told apart, and every plot says its study and group and
comes with its PNG's path and the study's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import MarkdownMetadataValue, PathMetadataValue, UrlMetadataValue

from helpers import run_study
from scaling.simulate.results_table import write_grouped_results_study

GROUPS = {"arm=a", "arm=b"}


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    root = tmp_path_factory.mktemp("grouped")
    write_grouped_results_study(root / "studies", "arms")
    result = run_study(root / "studies", root / "warehouse", "arms")
    metadata = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    return root / "warehouse", metadata


def _table(value) -> tuple[list[str], list[dict]]:
    columns = [c.name for c in value.schema.columns]
    return columns, [r.data for r in value.records]


@pytest.mark.parametrize("label, keys", [("recommended_compute_optimal", ("law", "target", "flops")),
                                         ("targets_and_downstream", ("law", "target", "kind", "name"))])
def test_forecast_tables_keep_the_group_of_each_row(materialized, label, keys):
    _, metadata = materialized
    columns, rows = _table(metadata["forecasts"][label])
    assert columns[0] == "group_name", columns
    assert {r["group_name"] for r in rows} == GROUPS, rows
    # the same law, target and budget (or target run) in both arms: only the group tells the rows apart
    assert len({tuple(r[k] for k in keys) for r in rows}) == len(rows) // 2
    assert len({(r["group_name"], *(r[k] for k in keys)) for r in rows}) == len(rows)


def test_backtest_preview_names_the_group_of_each_held_out_run(materialized):
    _, metadata = materialized
    columns, rows = _table(metadata["backtests"]["preview"])
    assert columns[0] == "group_name", columns
    assert {r["group_name"] for r in rows} == GROUPS, rows
    assert all(r["group_name"] == f"arm={r['run'].split('-')[0]}" for r in rows), rows


def test_headline_forecasts_show_the_intervals_of_n_and_d_after_the_labels(materialized):
    _, metadata = materialized
    columns, rows = _table(metadata["forecasts"]["recommended_compute_optimal"])
    assert columns[:12] == ["group_name", "law", "target", "predicted", "ci_low", "ci_high", "params",
                            "params_ci_low", "params_ci_high", "tokens", "tokens_ci_low", "tokens_ci_high"], columns
    for r in rows:
        assert r["params_ci_low"] < r["params"] < r["params_ci_high"], json.dumps(r)
        assert r["tokens_ci_low"] < r["tokens"] < r["tokens_ci_high"], json.dumps(r)


def test_every_plot_has_its_png_path_and_the_report_link(materialized):
    warehouse, metadata = materialized
    for asset in ("law_fits", "forecasts", "backtest_summary"):
        meta = metadata[asset]
        plots = sorted(k for k, v in meta.items() if k.startswith("plot_") and isinstance(v, MarkdownMetadataValue))
        assert plots, (asset, sorted(meta))
        for key in plots:
            path = meta[f"{key}_png"]
            assert isinstance(path, PathMetadataValue), (asset, key)
            assert Path(path.path) == warehouse / "plots" / "arms" / f"{key.removeprefix('plot_')}.png"
            assert Path(path.path).read_bytes()[:4] == b"\x89PNG"
            group = key.split("__")[1]
            caption = meta[key].md_str.split("\n")[0]
            assert "study arms, " in caption and caption.endswith(f"group {group}"), caption
        link = meta["report"]
        assert isinstance(link, UrlMetadataValue)
        assert link.url == (warehouse / "reports" / "arms.html").resolve().as_uri()
