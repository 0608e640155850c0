"""Running study partitions on a Dask cluster with Dagster's Dask executor (``dagster-dask``).

    scaling run --executor dask --dask-workers 2                    # a local cluster of 2 worker processes
    scaling run --executor dask --dask-scheduler tcp://HOST:8786    # an existing cluster

Each study partition is one Dagster run of the ``all_studies_dask`` job (its stale steps only, as for
any `scaling run`); its steps (ingest, normalize, fits, forecasts, mixtures) execute as Dask tasks on
the workers (`pipelines.dask_executor`). Several studies are in flight at once (``--parallel``, by
default one per worker), so study partitions spread over the workers. Workers write only their own
study's Parquet partitions, staged and switched into place (`warehouse.ingest`), so a worker that dies
mid-step leaves the previous tables; Dask reruns the lost task on another worker
(``distributed.scheduler.allowed-failures``), and the rerun stages and switches its tables whole.

The workers must see the same warehouse, studies folder and Dagster instance (``SCALING_WAREHOUSE``,
``SCALING_STUDIES``, ``SCALING_DATA_ROOTS``, ``DAGSTER_HOME``): a local cluster inherits them from this
process; on a real cluster they are set in the workers' environment (see the README's scale-out section).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


class LocalDaskCluster:
    """A Dask scheduler and ``workers`` worker processes (one thread each), started as ``dask`` commands
    bound to loopback on free ports. They are processes of their own, not threads of this one, so the
    command may still fork its per-study workers."""

    def __init__(self, workers: int, folder: Path, env: dict[str, str] | None = None, timeout: float = 120):
        self.folder = Path(folder)
        self.file = self.folder / "scheduler.json"
        self.env = dict(env if env is not None else os.environ)
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        try:
            self.procs.append(self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                                        "--no-dashboard", "--scheduler-file", str(self.file)]))
            deadline = time.time() + timeout
            while not self.file.exists():
                if time.time() > deadline or self.procs[0].poll() is not None:
                    raise RuntimeError(f"the Dask scheduler did not start: {self.log('scheduler')}")
                time.sleep(0.1)
            for i in range(workers):
                proc = self._start(f"worker{i}", ["worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                                                  "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"])
                self.workers.append(proc)
                self.procs.append(proc)
            waited = subprocess.run(
                [sys.executable, "-c", "import sys; from distributed import Client; "
                 "c = Client(scheduler_file=sys.argv[1], timeout=60); c.wait_for_workers(int(sys.argv[2]), "
                 "timeout=float(sys.argv[3])); c.close()", str(self.file), str(workers), str(timeout)],
                env=self.env, capture_output=True, text=True)
            if waited.returncode != 0:
                raise RuntimeError(f"the Dask workers did not start: {waited.stderr.strip()[-500:]}")
        except BaseException:
            self.close()
            raise
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "w") as log:
            return subprocess.Popen([sys.executable, "-m", "dask", *args], env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        f = self.folder / f"{name}.log"
        return f.read_text()[-2000:] if f.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def dask_scheduler(address: str | None = None, workers: int = 2) -> Iterator[str]:
    """Yield a scheduler address: ``address`` as given, or that of a local cluster of ``workers`` processes
    started for the duration of the block."""
    if address:
        yield address
        return
    with tempfile.TemporaryDirectory(prefix="scaling-dask-") as folder:
        cluster = LocalDaskCluster(workers, Path(folder))
        try:
            yield cluster.address
        finally:
            cluster.close()
