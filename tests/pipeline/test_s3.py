"""The warehouse in an S3-compatible object store (moto's S3 server on loopback, started by these tests).

Example studies run with ``SCALING_WAREHOUSE=s3://bucket/prefix`` and every table, read back from the
store through the studies' pointers, must equal a run of the same studies into a local folder; `scaling sql`
reads the store from a working copy that never ran anything. An ingest killed before each of its writes to
the store leaves readers of the store the previous tables or the new ones, never a mix, and never a
partition file they cannot read.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dask.distributed import Client

from helpers import copy_study, query
from test_bad_input import GOOD, HEADER, write_log, write_study
from warehouse.catalog import query as catalog_query
from warehouse.catalog import store_catalog
from pipelines.distributed import LocalDaskCluster
from scaling.errors import StorageError
from warehouse.objectstore import Store, sweep

KILLER = Path(__file__).with_name("kill_publish.py")
BUCKET = "lake-bucket"
EXAMPLES = ("example_checkpoints", "example_mixture")
# Columns that record when a row was produced, not what it says.
VOLATILE = {"_ingested_at"}


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free loopback port with one bucket; yields the AWS_* variables that reach it."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # this process reads the store too
    try:
        Store(f"s3://{BUCKET}/x").fs.mkdir(BUCKET)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _env(s3: dict, tmp_path: Path, warehouse: str, cache: str) -> dict[str, str]:
    """A `scaling` command's environment: the warehouse (a folder or a URL), its own working copy and instance."""
    return dict(os.environ, **s3, SCALING_WAREHOUSE=warehouse, SCALING_WAREHOUSE_CACHE=str(tmp_path / cache),
                SCALING_STUDIES=str(tmp_path / "studies"), DAGSTER_HOME=str(tmp_path / f"{cache}_home"))


def _scaling(env, *args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.drop([c for c in frame.columns if c in VOLATILE])
    return frame.sort(frame.columns, nulls_last=True)


def store_tables(url: str) -> dict[str, pl.DataFrame]:
    """Every table of the warehouse at `url`, as a reader of the store sees it (through the pointers)."""
    con = store_catalog(Store(url))
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main'").fetchall()]
        return {n: _sorted(catalog_query(con, f'SELECT * FROM "{n}"')) for n in names}
    finally:
        con.close()


def local_tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    names = query(warehouse, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    return {n: _sorted(query(warehouse, f'SELECT * FROM "{n}"')) for n in names["table_name"].to_list()}


def test_two_commits_to_one_pointer_at_once_both_survive(s3):
    """The pointer PUT is conditional on the ETag it read: a writer that lost the race re-reads the pointer
    and applies its change again, so neither of two concurrent commits to one study is lost."""
    url = f"s3://{BUCKET}/race"
    mine, theirs = Store(url), Store(url)  # two writers, as on two machines
    attempts = []

    def add_fits(ptr: dict) -> dict:
        attempts.append(ptr["commit"].get("ingest"))
        if len(attempts) == 1:  # between this writer's read and its PUT, the other one commits
            theirs.update("s", lambda p: {**p, "commit": {"ingest": "mixing"},
                                          "files": {**p["files"], "mixing_laws/study=s/data.parquet": {"key": "m"}}})
        ptr["files"]["law_fits/study=s/data.parquet"] = {"key": "f"}
        return ptr

    mine.update("s", add_fits)
    assert attempts == [None, "mixing"]  # the first PUT was refused, the second saw the other commit
    files = mine.read_pointer("s")[0]["files"]
    assert files == {"mixing_laws/study=s/data.parquet": {"key": "m"}, "law_fits/study=s/data.parquet": {"key": "f"}}


@pytest.mark.parametrize("part, name", [("plots", "../../../escaped.png"), ("plots", "../other/x.png"),
                                        ("inputs", "../../../escaped"), ("inputs", "../study=other/x")])
def test_a_pointer_naming_paths_outside_the_study_writes_nothing_there(tmp_path, s3, part, name):
    """A damaged or hostile pointer cannot make a pull write a plot or an input record outside the study's
    folder of them: the pull is a StorageError, and nothing appears elsewhere."""
    from warehouse.lake import atomic_write_json
    from warehouse.objectstore import ORIGIN, pull

    url = f"s3://{BUCKET}/hostile-{part}-{len(name)}"
    store = Store(url)
    (tmp_path / "upload").mkdir()
    (tmp_path / "upload" / "x.png").write_bytes(b"png")
    store.upload(tmp_path / "upload" / "x.png", "plots/toy/x.abc.png")
    entry = {"key": "plots/toy/x.abc.png", "size": 3, "mtime_ns": 10**18}
    value = entry if part == "plots" else {"hash": "h", "tables": {}}
    store.update("toy", lambda ptr: {**ptr, part: {"ok.png" if part == "plots" else "fits": value}})
    root = tmp_path / "copy"
    atomic_write_json({"url": url}, root / ORIGIN)
    assert pull(root / "lake", "toy")
    assert (root / "plots" / "toy" / "ok.png").read_bytes() == b"png" if part == "plots" else \
        (root / "lake" / "_inputs" / "study=toy" / "fits.json").exists()
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())

    store.update("toy", lambda ptr: {**ptr, part: {**ptr[part], name: value}})
    with pytest.raises(StorageError, match="refusing to write outside"):
        pull(root / "lake", "toy")
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, s3) -> dict[str, pl.DataFrame]:
    """The example studies run into a local folder: the tables the object-store runs must equal.
    --quick: fewer bootstrap refits keep the tests short; every run here uses the same (seeded) settings."""
    tmp = tmp_path_factory.mktemp("local")
    for name in EXAMPLES:
        copy_study(name, tmp / "studies")
    local = _scaling(_env(s3, tmp, str(tmp / "warehouse"), "unused"), "run", "--quick", "--no-summary")
    assert local.returncode == 0, local.stdout + local.stderr
    return local_tables(tmp / "warehouse")


@pytest.mark.slow
def test_example_studies_in_an_object_store_equal_a_local_run(tmp_path, s3, local_run):
    for name in EXAMPLES:
        copy_study(name, tmp_path / "studies")
    url = f"s3://{BUCKET}/examples"
    in_store = _scaling(_env(s3, tmp_path, url, "copy1"), "run", "--quick")
    assert in_store.returncode == 0, in_store.stdout + in_store.stderr
    assert "Summary (2 studies" in in_store.stdout  # the summary reads the store's committed state

    got, want = store_tables(url), local_run
    assert sorted(got) == sorted(want)
    for name in want:
        # the example studies ask for no IsoFLOP fit, arms or observational law
        assert want[name].height or name in ("quarantine", "isoflop_optima", "crossovers", "observational_components",
                                             "observational_families", "observational_models"), name
        assert_frame_equal(got[name], want[name])
    assert set(got["runs"]["study"]) == {"example_checkpoints"}
    assert set(got["mixture_points"]["study"]) == {"example_mixture"}

    fs = Store(url)
    plots = fs.listing("plots/example_checkpoints")
    assert plots and all(k.endswith(".png") for k in plots)
    assert "reports/index.html" in fs.listing("reports")
    # every object of the lake is a version some pointer lists (no stray upload of the run)
    listed = {e["key"] for s in fs.studies() for e in fs.read_pointer(s)[0]["files"].values()}
    data = {k for k in fs.listing("lake") if not k.startswith("lake/_state/")}
    assert data == listed

    # a working copy that never ran anything reads the store with `scaling sql`
    reader = _env(s3, tmp_path, url, "reader")
    sql = _scaling(reader, "sql", "SELECT study, count(*) AS n FROM law_fits GROUP BY study ORDER BY study", "--csv")
    assert sql.returncode == 0, sql.stderr
    counts = dict(line.split(",") for line in sql.stdout.splitlines()[1:])
    assert counts == {s: str(n) for s, n in want["law_fits"].group_by("study").len().rows()}
    denied = _scaling(reader, "sql", f"COPY (SELECT 1 AS x) TO '{url}/lake/oops.csv'")
    assert denied.returncode != 0 and "oops.csv" not in str(fs.listing("lake"))

    # a full run from another working copy: the steps a quick run recorded are up to date there too,
    # and its fits replace the quick ones; the previous versions are deleted (no grace period here)
    full = _scaling({**_env(s3, tmp_path, url, "copy2"), "SCALING_WAREHOUSE_GRACE": "0"}, "run", "--study",
                    "example_mixture", "--no-summary", "--no-report")
    assert full.returncode == 0, full.stdout + full.stderr
    assert "running example_mixture (fits, forecasts)" in full.stdout, full.stdout
    again = _scaling(_env(s3, tmp_path, url, "copy1"), "run", "--study", "example_mixture", "--no-summary",
                     "--no-report")
    assert "example_mixture: up to date" in again.stdout, again.stdout
    listed = {e["key"] for s in fs.studies() for e in fs.read_pointer(s)[0]["files"].values()}
    assert {k for k in fs.listing("lake") if not k.startswith("lake/_state/")} == listed


OLD = {"raw": 40, "runs": 2, "points": 40}   # logs a and b
NEW = {"raw": 60, "runs": 3, "points": 60}   # logs a, b and c


def _ingest(env: dict, studies: Path, url: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(KILLER), str(studies), url, "toy", str(kill_at)], env=env,
                          capture_output=True, text=True, timeout=600)


def _counts(url: str) -> dict[str, int]:
    """Rows of each table as a reader of the store sees them (every listed partition file read whole)."""
    con = store_catalog(Store(url))
    try:
        return dict(zip(("raw", "runs", "points"), con.execute(
            "SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM runs), (SELECT count(*) FROM points)"
        ).fetchone()))
    finally:
        con.close()


@pytest.mark.slow
def test_an_ingest_killed_before_any_write_to_the_store_leaves_the_previous_tables(tmp_path, s3):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    write_log(studies, "b.csv", [HEADER, *GOOD])
    env = lambda cache: dict(os.environ, **s3, SCALING_WAREHOUSE_CACHE=str(tmp_path / cache))  # noqa: E731
    template = f"s3://{BUCKET}/template"
    first = _ingest(env("template"), studies, template)
    assert first.returncode == 0, first.stderr[-2000:]
    assert _counts(template) == OLD
    write_log(studies, "c.csv", [HEADER, *GOOD])

    fs = Store(template).fs

    def copy_of(name: str) -> str:
        fs.copy(f"{BUCKET}/template", f"{BUCKET}/{name}", recursive=True)
        return f"s3://{BUCKET}/{name}"

    done = _ingest(env("full"), studies, copy_of("full"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert _counts(f"s3://{BUCKET}/full") == NEW
    writes = done.stderr.strip().splitlines()[-int(done.stdout.strip().rsplit("ops=", 1)[1]):]
    switches = [i + 1 for i, w in enumerate(writes) if w.endswith("/head.json")]
    uploads = [i + 1 for i, w in enumerate(writes) if w.endswith(".parquet")]
    # the new ingest's data goes up before the pointer that switches it in
    assert len(switches) >= 3 and uploads and max(uploads) < switches[-1], writes

    def killed_at(n: int) -> tuple[int, subprocess.CompletedProcess]:
        return n, _ingest(env(f"killed{n}"), studies, copy_of(f"killed{n}"), kill_at=n)

    with ThreadPoolExecutor(2) as pool:
        runs = dict(pool.map(killed_at, range(1, len(writes) + 1)))
    kinds = []
    for n, killed in sorted(runs.items()):
        assert killed.returncode == -9, f"write {n} was not reached: {killed.stderr[-2000:]}"
        seen = _counts(f"s3://{BUCKET}/killed{n}")
        assert seen in (OLD, NEW), f"killed before write {n} ({writes[n - 1]}): readers see {seen}"
        kinds.append("new" if seen == NEW else "old")
    # killed before the last pointer PUT (after every upload): the previous tables; after it: the new ones
    assert kinds == ["old"] * (switches[-1]) + ["new"] * (len(writes) - switches[-1]), list(zip(writes, kinds))

    # the next run over a killed store (its working copy left as the kill left it) lands the new ingest
    url = f"s3://{BUCKET}/killed{switches[-1]}"
    store = Store(url)
    orphans = {k for k in store.listing("lake") if k.endswith(".parquet")}
    again = _ingest(env(f"killed{switches[-1]}"), studies, url)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _counts(url) == NEW
    # the killed run's uploads were never listed; once old enough they are swept, and readers are unaffected
    ptr = store.read_pointer("toy")[0]
    listed = {e["key"] for e in ptr["files"].values()}
    strays = {k for k in store.listing("lake") if k.endswith(".parquet")} - listed - {k for k, _ in ptr["retired"]}
    assert strays and strays <= orphans
    assert set(sweep(store, "toy", ptr, older_than=0)) == strays
    assert _counts(url) == NEW
    shutil.rmtree(tmp_path / "template", ignore_errors=True)


class OwnWorkingCopies(LocalDaskCluster):
    """A local Dask cluster whose processes each get their own environment: here, their own working copy."""

    def __init__(self, workers: int, folder: Path, env_of):
        self.env_of = env_of
        super().__init__(workers, folder, env_of("scheduler"))

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "w") as log:
            return subprocess.Popen([sys.executable, "-m", "dask", *args], env=self.env_of(name), stdout=log,
                                    stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_dask_workers_with_their_own_working_copies_and_a_worker_killed_mid_step(tmp_path, s3, local_run):
    """Two Dask workers, each with its own working copy of the store (as on two machines): a step sees what
    earlier steps committed only through the store. The study is ingested first (a plain run: a quick run
    leaves its fits unrecorded), then its fits and forecasts run on the cluster; the worker running `fits`
    is killed, Dask reruns the step on the other worker, which pulls the committed state, and the tables
    equal a local run."""
    copy_study("example_checkpoints", tmp_path / "studies")
    url = f"s3://{BUCKET}/dask"
    seed = _scaling(_env(s3, tmp_path, url, "seed"), "run", "--quick", "--no-summary", "--no-report")
    assert seed.returncode == 0, seed.stdout + seed.stderr
    before = Store(url).read_pointer("example_checkpoints")[0]["files"]

    (tmp_path / "dask").mkdir()
    home = str(tmp_path / "driver_home")  # the Dagster instance is shared; the working copies are not
    cluster = OwnWorkingCopies(2, tmp_path / "dask", lambda name: {**_env(s3, tmp_path, url, name),
                                                                  "DAGSTER_HOME": home})
    client, run = Client(cluster.address, timeout=60), None
    try:
        run = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--executor", "dask", "--dask-scheduler",
                                cluster.address, "--quick", "--no-summary", "--no-report"],
                               env={**_env(s3, tmp_path, url, "driver"), "DAGSTER_HOME": home},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        victim, deadline = None, time.time() + 600
        while victim is None and run.poll() is None and time.time() < deadline:
            victim = next((address for address, keys in client.processing().items()
                           if any(str(k).startswith("all_studies_dask.fits") for k in keys)), None)
            time.sleep(0.2)
        assert victim is not None, "the fits step never started on a worker"
        pid = client.run(os.getpid, workers=[victim])[victim]
        time.sleep(1.0)  # inside the step: its bootstrap refits take seconds
        os.kill(pid, signal.SIGKILL)
        out, _ = run.communicate(timeout=900)
        assert run.returncode == 0, out
        assert "running example_checkpoints (fits, forecasts)" in out and "FAILED" not in out, out
    finally:
        if run is not None and run.poll() is None:
            run.kill()
        client.close()
        cluster.close()

    # the rerun on the other working copy committed new versions of the fit tables ...
    after = Store(url).read_pointer("example_checkpoints")[0]["files"]
    fits = "law_fits/study=example_checkpoints/data.parquet"
    assert after[fits]["key"] != before[fits]["key"]
    assert {t: e["key"] for t, e in after.items() if t.startswith(("runs/", "points/", "raw/"))} == \
        {t: e["key"] for t, e in before.items() if t.startswith(("runs/", "points/", "raw/"))}
    # ... and every partition the pointer lists is whole and as a local run's
    got = store_tables(url)
    for name, want in local_run.items():
        want = want.filter(pl.col("study") == "example_checkpoints")
        if name == "raw":  # the local raw view also has the other study's source columns (null here)
            want = want.select([c for c in want.columns if c in got[name].columns])
        assert_frame_equal(got[name], want)
