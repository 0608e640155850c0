"""Running study partitions on a Dask cluster with Dagster's Dask executor (``dagster-dask``).

    scaling run --executor dask --dask-workers 2          # start a local cluster of 2 worker processes
    scaling run --executor dask --dask-scheduler tcp://HOST:8786   # use an existing cluster

Each study partition is one Dagster run of the ``all_studies_dask`` job; its steps (ingest,
normalize, fits, forecasts, mixtures) execute as Dask tasks on the workers. Several studies are
in flight at once (one orchestrating process per study, ``--parallel`` of them, by default as many
as there are workers), so study partitions spread over the workers. Workers write only their own
study's Parquet partitions, each written aside and renamed into place, so a worker that dies mid-step
leaves the previous file; Dask reruns the lost task on another worker (``distributed.scheduler.
allowed-failures``), and the rerun replaces the partition whole.

The workers must see the same warehouse, studies folder and Dagster instance (``SCALING_WAREHOUSE``,
``SCALING_STUDIES``, ``DAGSTER_HOME``): a local cluster inherits them from this process; on a real
cluster they are set in the workers' environment (see the README's scale-out section).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from dagster import DagsterInstance, execute_job, reconstructable

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _dask_job():
    """The main job with the Dask executor, reconstructable on the workers."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("all_studies_dask")


@contextlib.contextmanager
def dask_scheduler(address: str | None = None, workers: int = 2) -> Iterator[str]:
    """Yield a scheduler address: ``address`` as given, or a local cluster of ``workers`` processes
    (one thread each: the numerical core keeps BLAS to one thread and bootstraps in processes)."""
    if address:
        yield address
        return
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:
        yield cluster.scheduler_address


def run_config(address: str) -> dict:
    return {**QUIET_LOGS, "execution": {"config": {"cluster": {"existing": {"address": address}}}}}


def run_study_on_dask(name: str, instance: DagsterInstance, address: str):
    """One study partition as a run of ``all_studies_dask`` on the cluster at ``address``."""
    with execute_job(reconstructable(_dask_job), instance=instance, tags={"dagster/partition": name},
                     run_config=run_config(address), raise_on_error=False) as result:
        result.all_events  # read the events while the result is open
        return result


def worker_command(name: str, address: str) -> list[str]:
    """The command that orchestrates one study's run on the cluster (used for several studies at once)."""
    import sys

    return [sys.executable, "-m", "pipelines.cli", "run", "--study", name, "--executor", "dask",
            "--dask-scheduler", address, "--no-summary"]


def environment_for_workers() -> dict[str, str]:
    """What a worker needs to find the warehouse, the studies and the instance (for documentation/tests)."""
    return {k: os.environ[k] for k in ("SCALING_WAREHOUSE", "SCALING_STUDIES", "DAGSTER_HOME") if k in os.environ}
