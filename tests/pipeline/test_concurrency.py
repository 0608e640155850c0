"""Scale-out and robustness: parallel study runs, readers during writes, interrupted runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from helpers import copy_study, query

EXAMPLES = ("example_sweep", "example_checkpoints", "example_mixture")
# the DuckDB command-line client installed with the test extras (package duckdb-cli)
DUCKDB_CLI = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))


def env_for(tmp_path):
    env = dict(os.environ, SCALING_WAREHOUSE=str(tmp_path / "warehouse"), SCALING_STUDIES=str(tmp_path / "studies"),
               DAGSTER_HOME=str(tmp_path / "dagster_home"))
    for name in EXAMPLES:
        copy_study(name, tmp_path / "studies")
    return env


def scaling(env, *args, **kw):
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.slow
def test_parallel_studies_with_readers_on_the_catalog(tmp_path):
    env = env_for(tmp_path)
    catalog = tmp_path / "warehouse" / "catalog.duckdb"
    proc = scaling(env, "run", "--parallel", "3")
    reads, cli_reads, errors = 0, 0, []
    deadline = time.time() + 600
    while proc.poll() is None and time.time() < deadline:
        if catalog.exists():
            try:
                # a plain DuckDB client: the views' paths are relative to the warehouse folder
                con = duckdb.connect(str(catalog), read_only=True, config={"file_search_path": str(catalog.parent)})
                try:
                    con.execute("SELECT count(*) FROM points").fetchall()
                    reads += 1
                finally:
                    con.close()
            except duckdb.Error as exc:  # a lock or a half-written file would show here
                errors.append(str(exc))
            cli = subprocess.run([DUCKDB_CLI, "-readonly", catalog.name, "SELECT count(*) FROM runs"],
                                 capture_output=True, text=True, cwd=catalog.parent)
            if cli.returncode != 0:
                errors.append(cli.stderr)
            else:
                cli_reads += 1
        time.sleep(0.1)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert errors == [] and reads > 10 and cli_reads > 10
    w = tmp_path / "warehouse"
    runs = query(w, "SELECT study, count(*) AS n FROM runs GROUP BY study ORDER BY study")
    assert runs.rows() == [("example_checkpoints", 30), ("example_sweep", 30)]
    fits = query(w, "SELECT study, count(DISTINCT law) AS n FROM law_fits GROUP BY study ORDER BY study")
    assert fits.rows() == [("example_checkpoints", 3), ("example_sweep", 3)]
    assert query(w, "SELECT count(DISTINCT run) AS n FROM mixture_points WHERE split = 'train'")["n"][0] == 120
    # every run is in the instance: three studies, six steps each, all succeeded
    assert out.count("done in") == 3


@pytest.mark.slow
def test_an_interrupted_run_leaves_the_previous_tables_readable(tmp_path):
    env = env_for(tmp_path)
    first = scaling(env, "run", "--study", "example_sweep")
    assert first.wait(timeout=600) == 0, first.stdout.read()
    w = tmp_path / "warehouse"
    before = query(w, "SELECT * FROM law_fits ORDER BY law, parameter")
    files_before = sorted(p.name for p in (w / "lake").rglob("*") if p.is_file())
    # change a source so that every layer rewrites, then kill the run while it fits
    log = sorted((tmp_path / "studies" / "_simulated" / "example" / "wandb").glob("*.csv"))[0]
    log.write_text(log.read_text().replace("\n", "\n", 1))
    (tmp_path / "studies" / "example_sweep.toml").write_text(
        (tmp_path / "studies" / "example_sweep.toml").read_text() + "\n# touched\n")
    second = scaling(env, "run", "--study", "example_sweep", start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (w / "lake" / "points").exists():
        time.sleep(0.1)
    time.sleep(2.0)
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=30)
    after = query(w, "SELECT * FROM law_fits ORDER BY law, parameter")
    assert after.equals(before)
    leftovers = [p for p in (w / "lake").rglob("*.tmp")]
    # a killed writer may leave its temporary file, but never in place of a table file
    assert all(p.name.startswith(".") for p in leftovers)
    assert set(files_before) <= {p.name for p in (w / "lake").rglob("*") if p.is_file()}
