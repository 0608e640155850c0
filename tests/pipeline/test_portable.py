"""A warehouse folder is portable and every table folder reads with the common Parquet readers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest

from helpers import run_study
from scaling.simulate.results_table import write_results_study
from warehouse.tables import TABLES



@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """Two studies materialized into a warehouse that is then moved to another folder."""
    tmp = tmp_path_factory.mktemp("portable")
    studies = tmp / "studies"
    for name in ("alpha", "beta"):
        write_results_study(studies, name, law="power_law_flops", n_resamples=20, backtest_resamples=10,
                            source_extra='on_error = "quarantine"\n')
        path = studies / "data" / f"{name}.csv"
        path.write_text(path.read_text() + "bad-row,1e8,2e9,oops\n")  # one row for the quarantine
        run_study(studies, tmp / "built", name)
    shutil.copytree(tmp / "built", tmp / "elsewhere" / "copy")
    shutil.rmtree(tmp / "built")  # nothing may still point at the original folder
    return tmp / "elsewhere" / "copy"


def table_folders(warehouse):
    lake = warehouse / "lake"
    return sorted(d for d in lake.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))


def test_a_moved_warehouse_answers_sql_through_scaling_sql(moved, tmp_path):
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--warehouse", str(moved), "sql", "--csv",
                          "SELECT study, count(*) AS n FROM runs GROUP BY study ORDER BY study"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["study,n", "alpha,12", "beta,12"]


def test_a_moved_warehouse_answers_sql_through_the_duckdb_package(moved, monkeypatch):
    catalog = str(moved / "catalog.duckdb")
    # from anywhere, with the warehouse as the file search path
    con = duckdb.connect(catalog, read_only=True, config={"file_search_path": str(moved)})
    try:
        assert con.execute("SELECT count(*) FROM law_fits WHERE study = 'beta'").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM raw").fetchone()[0] == 26
    finally:
        con.close()
    # or from inside the warehouse folder, with no setting at all
    monkeypatch.chdir(moved)
    con = duckdb.connect("catalog.duckdb", read_only=True)
    try:
        assert con.execute("SELECT count(DISTINCT study) FROM points").fetchone()[0] == 2
    finally:
        con.close()


def test_every_table_folder_reads_with_pandas_pyarrow_and_polars(moved):
    con = duckdb.connect(str(moved / "catalog.duckdb"), read_only=True, config={"file_search_path": str(moved)})
    folders = table_folders(moved)
    assert {d.name for d in folders} >= {"raw", "runs", "points", "quarantine", "law_fits", "backtests",
                                         "law_draws", "forecasts", "backtest_summary"}
    try:
        for folder in folders:
            expected = con.execute(f"SELECT study, count(*) FROM {folder.name} GROUP BY study ORDER BY study").fetchall()
            assert [s for s, _ in expected] == ["alpha", "beta"], folder.name
            frame = pd.read_parquet(folder)
            assert sorted(frame.groupby("study", observed=True).size().items()) == expected, folder.name
            table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
            assert sorted(pl.from_arrow(table).group_by("study").len().rows()) == expected, folder.name
            lazy = pl.scan_parquet(folder / "**" / "*.parquet", hive_partitioning=True)
            assert sorted(lazy.group_by("study").len().collect().rows()) == expected, folder.name
            if folder.name in TABLES:  # the documented columns, study once, as a string
                assert list(frame.columns) == [c.name for c in TABLES[folder.name].columns if c.name != "study"] + [
                    "study"]
    finally:
        con.close()
    for folder in folders:
        assert [p.name for p in folder.rglob("*") if p.is_file() and p.name != "data.parquet"] == []


def test_the_catalog_carries_column_meanings_and_lists_only_user_views(moved):
    con = duckdb.connect(str(moved / "catalog.duckdb"), read_only=True, config={"file_search_path": str(moved)})
    try:
        shown = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        views = dict(con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        cols = {(t, c): doc for t, c, doc in con.execute(
            "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE NOT internal").fetchall()}
    finally:
        con.close()
    assert shown == set(TABLES) | {"raw"} and tables == []
    for table in TABLES.values():
        assert views[table.name] == table.doc
        for c in table.columns:
            assert cols[(table.name, c.name)] == c.doc
    assert cols[("runs", "flops_6nd")].startswith("6·N·D (Kaplan et al. 2020; Hoffmann et al. 2022)")


def test_a_source_with_study_and_source_columns_reads_with_every_reader(tmp_path):
    """A source's own `study`, `source` and `study_` columns land renamed beside the folder keys, losslessly:
    each key-named column gains one underscore, so the raw folder reads as a Hive dataset with each key once."""
    from test_bad_input import GOOD, write_log, write_study

    studies = write_study(tmp_path)
    header = "_step,tokens,train/loss,lr,study,source,study_\n"
    write_log(studies, "a.csv", [header, *[g.rstrip("\n") + f",theirs,src{i % 2},x{i}\n" for i, g in enumerate(GOOD)]])
    toml = studies / "toy.toml"
    toml.write_text(toml.read_text().replace('run = "{file_stem}"', 'run = "{source}"'))  # the original column maps
    warehouse = tmp_path / "warehouse"
    run_study(studies, warehouse, "toy")

    folder = warehouse / "lake" / "raw"
    theirs = {"study_": ["theirs"] * 20, "source_": [f"src{i % 2}" for i in range(20)],
              "study__": [f"x{i}" for i in range(20)]}
    frame = pd.read_parquet(folder).sort_values("_row")
    assert list(frame["study"].astype(str).unique()) == ["toy"] and list(frame["source"].astype(str).unique()) == ["logs"]
    assert {k: list(frame[k]) for k in theirs} == theirs
    table = pl.from_arrow(ds.dataset(folder, format="parquet", partitioning="hive").to_table()).sort("_row")
    assert table["study"].unique().to_list() == ["toy"] and table["source"].unique().to_list() == ["logs"]
    assert {k: table[k].to_list() for k in theirs} == theirs
    lazy = pl.scan_parquet(folder / "**" / "*.parquet", hive_partitioning=True).sort("_row").collect()
    assert lazy["study"].unique().to_list() == ["toy"] and {k: lazy[k].to_list() for k in theirs} == theirs
    con = duckdb.connect(str(warehouse / "catalog.duckdb"), read_only=True, config={"file_search_path": str(warehouse)})
    try:
        assert con.execute("SELECT DISTINCT study, source, study_ FROM raw").fetchall() == [("toy", "logs", "theirs")]
        # normalization read the original `source` column: one run per value
        assert sorted(r[0] for r in con.execute("SELECT run FROM runs").fetchall()) == ["src0", "src1"]
    finally:
        con.close()
