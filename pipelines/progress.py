"""`scaling run`: register the studies, run the main job per study, report progress and a summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

from scaling.errors import ScalingError


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, flush=True)


def register_studies(instance: DagsterInstance, names: list[str]) -> list[str]:
    """Add study partitions the instance does not know yet; return the ones added."""
    known = set(instance.get_dynamic_partitions("study"))
    new = [n for n in names if n not in known]
    if new:
        instance.add_dynamic_partitions("study", new)
    return new


def _step_lines(result) -> list[str]:
    lines = []
    for ev in result.all_events:
        if ev.event_type == DagsterEventType.STEP_SUCCESS:
            took = ev.event_specific_data.duration_ms / 1000.0
            lines.append(f"    {ev.step_key:<28} ok     {took:6.1f}s")
        elif ev.event_type == DagsterEventType.STEP_FAILURE:
            lines.append(f"    {ev.step_key:<28} FAILED")
        elif ev.event_type == DagsterEventType.STEP_SKIPPED:
            lines.append(f"    {ev.step_key:<28} skipped (an upstream step or blocking check failed)")
        elif ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = ev.event_specific_data
            if not data.passed:
                why = data.description or ""
                lines.append(f"    check {data.asset_key.to_user_string()}:{data.check_name} did not pass: {why}")
    return lines


def _failure(result) -> str:
    for ev in result.all_events:
        if ev.event_type == DagsterEventType.STEP_FAILURE:
            err = ev.event_specific_data.error
            cause = err
            while cause.cause is not None:
                cause = cause.cause
            message = cause.message.strip()
            if "DagsterAssetCheckFailedError" in (err.cls_name or "") or "blocking asset check" in message:
                return f"{ev.step_key}: a blocking check failed, so nothing downstream was materialized (see above)"
            return f"{ev.step_key}: {message}"
    return "run failed"


def _job():
    """The main job, reconstructable in other processes (the multiprocess executor's steps)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("all_studies")


QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _run_one(name: str, instance: DagsterInstance, multiprocess: bool):
    """One study partition: in this process, or with the multiprocess executor (steps in subprocesses)."""
    if not multiprocess:
        return _job().execute_in_process(partition_key=name, instance=instance, raise_on_error=False,
                                         run_config=QUIET_LOGS)
    from dagster import execute_job, reconstructable

    with execute_job(reconstructable(_job), instance=instance, tags={"dagster/partition": name},
                     run_config={**QUIET_LOGS, "execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
                     raise_on_error=False) as result:
        result.all_events  # read the events while the result is open
        return result


def _multiprocess_command(name: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run", "--study", name, "--multiprocess", "--no-summary"]


def _run_parallel(names: list[str], parallel: int, quiet: bool, command=_multiprocess_command,
                  how: str = "the multiprocess executor") -> list[str]:
    """Several studies at once, each in its own `scaling run` process (`command(name)`); runs share the
    Dagster instance, and each writes only its own study's Parquet partitions."""
    import subprocess

    _say(f"running {len(names)} studies, {parallel} at a time, each with {how} ...", quiet)
    pending, running, failed = list(names), {}, []
    while pending or running:
        while pending and len(running) < parallel:
            name = pending.pop(0)
            running[name] = subprocess.Popen(command(name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                out = proc.stdout.read()
                _say(out.rstrip(), quiet)
                if proc.returncode != 0:
                    failed.append(name)
                del running[name]
        time.sleep(0.2)
    return failed


def run_studies(root: Path, only: list[str] | None = None, quiet: bool = False, parallel: int = 1,
                multiprocess: bool = False, summary: bool = True, executor: str = "in_process",
                dask_scheduler: str | None = None, dask_workers: int = 2) -> int:
    from pipelines.resources import Warehouse
    from pipelines.summary import summary_lines

    warehouse = Warehouse()
    try:
        studies = warehouse.study_files()
    except ScalingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = sorted(studies) if not only else only
    missing = [n for n in names if n not in studies]
    if missing:
        print(f"error: no study named {missing} in {warehouse.studies_dir}", file=sys.stderr)
        return 2
    instance = DagsterInstance.get()
    register_studies(instance, names)
    failed = []
    t0 = time.time()

    def report(i: int, name: str, result, start: float) -> None:
        _say(f"[{i}/{len(names)}] {name}", quiet)
        for line in _step_lines(result):
            _say(line, quiet)
        if result.success:
            _say(f"    done in {time.time() - start:.1f}s", quiet)
        else:
            failed.append(name)
            print(f"    error: {_failure(result)}", file=sys.stderr)

    if executor == "dask":
        from pipelines.distributed import dask_scheduler as scheduler, run_study_on_dask, worker_command

        with scheduler(dask_scheduler, dask_workers) as address:
            at_once = parallel if parallel > 1 else (dask_workers if not dask_scheduler else 2)
            if len(names) > 1 and at_once > 1:
                failed += _run_parallel(names, at_once, quiet, command=lambda n: worker_command(n, address),
                                        how=f"its steps on the Dask cluster at {address}")
            else:
                for i, name in enumerate(names, start=1):
                    _say(f"running {name} on the Dask cluster at {address} ...", quiet)
                    start = time.time()
                    report(i, name, run_study_on_dask(name, instance, address), start)
    elif parallel <= 1:
        for i, name in enumerate(names, start=1):
            _say(f"running {name} ...", quiet)
            start = time.time()
            report(i, name, _run_one(name, instance, multiprocess), start)
    else:
        failed += _run_parallel(names, parallel, quiet)
    warehouse.refresh_catalog()
    if summary:
        print()
        for line in summary_lines(warehouse, names, time.time() - t0):
            print(line)
    if failed:
        print(f"\n{len(failed)} of {len(names)} studies failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
