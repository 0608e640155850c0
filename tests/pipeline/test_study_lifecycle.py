"""Studies come and go cleanly through `scaling run`: duplicate names and invalid files are reported
while the other studies run, and a study whose file is gone leaves every table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import DagsterInstance

from helpers import query, results_csv
from scaling.simulate.results_table import results_study


def scaling(tmp_path, *args):
    env = dict(os.environ, SCALING_WAREHOUSE=str(tmp_path / "warehouse"), SCALING_STUDIES=str(tmp_path / "studies"),
               DAGSTER_HOME=str(tmp_path / "home"))
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900)


def write(studies, file, name, study_keys=""):
    results_csv(studies / "data" / f"{name}.csv")
    (studies / file).write_text(results_study(name, law="power_law_flops", n_resamples=20, backtest_resamples=10,
                                              source_extra='on_error = "quarantine"\n', study_keys=study_keys))


@pytest.mark.slow
def test_scaling_run_reports_bad_study_files_runs_the_others_and_removes_gone_studies(tmp_path):
    studies = tmp_path / "studies"
    write(studies, "good.toml", "good")
    write(studies, "old.toml", "old")
    first = scaling(tmp_path, "run")  # with its summary and reports
    assert first.returncode == 0, first.stderr
    warehouse = tmp_path / "warehouse"
    lake = warehouse / "lake"
    assert (lake / "law_fits" / "study=old").is_dir()
    old_files = [warehouse / "plots" / "old", warehouse / "reports" / "old.html", warehouse / "reports" / "old.md",
                 warehouse / "reports" / "plots" / "old"]
    assert all(f.exists() for f in old_files)

    (studies / "old.toml").unlink()
    (studies / "broken.toml").write_text("[[sources]\nname = 'x'\n")
    write(studies, "twin_a.toml", "twin", study_keys='name = "twin"\n')
    write(studies, "twin_b.toml", "twin", study_keys='name = "twin"\n')
    second = scaling(tmp_path, "run", "--force")  # --force: run "good" again, though unchanged
    assert second.returncode == 1
    errors = second.stderr.splitlines()
    assert any("broken.toml" in line and "invalid TOML" in line for line in errors), second.stderr
    assert any("twin_a.toml" in line and "twin_b.toml" in line and "'twin'" in line for line in errors)
    assert "study 'old': its file old.toml is gone; removed its partition and its rows from" in second.stdout
    assert "[1/1] good" in second.stdout and "done in" in second.stdout
    # the gone study is in no table, no lake folder and no Dagster partition; the good one is intact
    for table in ("raw", "runs", "points", "law_fits", "backtests", "law_draws", "forecasts"):
        assert query(tmp_path / "warehouse", f"SELECT count(*) AS n FROM {table} WHERE study = 'old'")["n"][0] == 0
    assert [p for p in lake.rglob("study=old")] == []
    # nor its plots or reports; the other studies' are kept
    assert [f for f in old_files if f.exists()] == []
    assert (warehouse / "plots" / "good").is_dir() and (warehouse / "reports" / "good.html").is_file()
    index = (warehouse / "reports" / "index.html").read_text()
    assert "good.html" in index and "old.html" not in index
    assert query(tmp_path / "warehouse", "SELECT count(*) AS n FROM runs WHERE study = 'good'")["n"][0] == 12
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert instance.get_dynamic_partitions("study") == ["good"]
