"""The main job on a real Dask cluster (a scheduler and two worker processes on loopback).

The example studies run through `scaling run --executor dask --dask-scheduler ...` and every table
must equal a run of the same studies on one machine; a worker killed while it executes a step must
leave no partial partition, the step being rerun on the other worker. Every run is `--quick` (fewer
bootstrap refits, the same on both sides): what is tested is the engine, not the intervals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dask.distributed import Client, get_task_stream

from helpers import copy_study, query
from pipelines.distributed import LocalDaskCluster

pytestmark = pytest.mark.slow

EXAMPLES = ("example_sweep", "example_checkpoints", "example_mixture")
# Columns that record when or where a row was produced, not what it says.
VOLATILE = {"_ingested_at"}


def _env(tmp_path: Path, warehouse: str) -> dict[str, str]:
    return dict(os.environ, SCALING_WAREHOUSE=str(tmp_path / warehouse), SCALING_STUDIES=str(tmp_path / "studies"),
                DAGSTER_HOME=str(tmp_path / f"{warehouse}_home"))


def _dask_env(tmp_path: Path, studies: Path) -> dict[str, str]:
    """A warehouse of the test's own over the module's studies folder."""
    return dict(_env(tmp_path, "dask_warehouse"), SCALING_STUDIES=str(studies / "studies"))


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    """The example studies, and one local run of them (`local_warehouse`) both tests compare against."""
    root = tmp_path_factory.mktemp("dask")
    for name in EXAMPLES:
        copy_study(name, root / "studies")
    local = _scaling(_env(root, "local_warehouse"), "run", "--quick", "--no-summary")
    assert local.returncode == 0, local.stdout + local.stderr
    return root


@pytest.fixture
def cluster(tmp_path, studies):
    """A scheduler and two worker processes on loopback (a fresh cluster per test: one test kills a worker)."""
    (tmp_path / "dask").mkdir()
    cluster = LocalDaskCluster(2, tmp_path / "dask", _dask_env(tmp_path, studies))
    cluster.client = Client(cluster.address, timeout=60)
    try:
        yield cluster
    finally:
        cluster.client.close()
        cluster.close()


def _scaling(env, *args, timeout=1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    names = query(warehouse, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    out = {}
    for name in names["table_name"].to_list():
        if name.startswith("_"):  # the catalog's own bookkeeping, not a user table
            continue
        frame = query(warehouse, f'SELECT * FROM "{name}"')
        frame = frame.drop([c for c in frame.columns if c in VOLATILE])
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


def test_example_studies_on_a_dask_cluster_equal_a_local_run(tmp_path, studies, cluster):
    with get_task_stream(cluster.client) as stream:  # every task the scheduler runs meanwhile
        distributed = _scaling(_dask_env(tmp_path, studies), "run", "--quick", "--executor", "dask",
                               "--dask-scheduler", cluster.address, "--no-summary")
    assert distributed.returncode == 0, distributed.stdout + distributed.stderr
    assert f"running on the Dask cluster at {cluster.address}" in distributed.stdout

    got, want = _tables(tmp_path / "dask_warehouse"), _tables(studies / "local_warehouse")
    # the group x law fits of each study's fits step ran as tasks of their own, on both workers
    fits = [t for t in stream.data if str(t["key"]).startswith("_fit_item")]
    planned = want["law_fits"].filter(~pl.col("law").is_in(["isoflop", "envelope"])) \
        .select("study", "group_name", "law", "target").unique()
    assert len(fits) == planned.height > 2
    assert {t["worker"] for t in fits} == set(cluster.client.scheduler_info()["workers"])
    assert sorted(got) == sorted(want)
    for name in want:  # the same rows; numbers equal to the last few bits (BLAS threads differ per process)
        assert_frame_equal(got[name], want[name], rel_tol=1e-9, abs_tol=1e-12)
    seen = set(got["runs"]["study"].to_list()) | set(got["mixture_points"]["study"].to_list())
    assert seen == set(EXAMPLES)

    sql = _scaling(_dask_env(tmp_path, studies), "sql",
                   "SELECT study, count(*) AS n FROM law_fits GROUP BY study ORDER BY study", "--csv")
    assert sql.returncode == 0, sql.stderr
    assert sql.stdout.splitlines()[0] == "study,n"
    counts = dict(line.split(",") for line in sql.stdout.splitlines()[1:])
    assert counts == {s: str(n) for s, n in
                      want["law_fits"].group_by("study").len().rows()}


def _worker_running(client, prefix: str) -> tuple[str, str] | None:
    """(worker address, task key) of a worker currently executing a task whose key starts with `prefix`."""
    for address, keys in client.processing().items():
        for key in keys:
            if str(key).startswith(prefix):
                return address, str(key)
    return None


def test_a_worker_killed_mid_step_leaves_no_partial_partition(tmp_path, studies, cluster):
    env = _dask_env(tmp_path, studies)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--quick", "--study", "example_checkpoints",
                             "--executor", "dask", "--dask-scheduler", cluster.address, "--no-summary"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = None
    deadline = time.time() + 900
    while victim is None and proc.poll() is None and time.time() < deadline:
        victim = _worker_running(cluster.client, "all_studies_dask.fits")
        time.sleep(0.2)
    assert victim is not None, "the fits step never started on a worker"
    address, key = victim
    pids = cluster.client.run(os.getpid, workers=[address])
    os.kill(pids[address], signal.SIGKILL)  # the worker was executing the step a moment ago
    out, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, out
    assert "fits" in out and "FAILED" not in out

    assert key.endswith(".fits." + key.split(".")[-1])

    lake = tmp_path / "dask_warehouse" / "lake"
    for f in lake.rglob("*.parquet"):
        pl.read_parquet(f)  # every partition file is whole
    # and its tables are exactly those of an uninterrupted run on one machine
    got = _tables(tmp_path / "dask_warehouse")
    want = {name: frame.filter(pl.col("study") == "example_checkpoints") if "study" in frame.columns else frame
            for name, frame in _tables(studies / "local_warehouse").items()}
    assert sorted(got) == sorted(want)
    for name in want:
        # `raw` has the union of every study's columns: the other studies' are empty for this one
        extra = [c for c in want[name].columns if c not in got[name].columns]
        assert all(want[name][c].null_count() == want[name].height for c in extra), (name, extra)
        assert_frame_equal(got[name], want[name].drop(extra), rel_tol=1e-9, abs_tol=1e-12)
