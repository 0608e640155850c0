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


def run_studies(root: Path, only: list[str] | None = None, quiet: bool = False) -> int:
    from pipelines.definitions import defs
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
    job = defs.resolve_job_def("all_studies")
    failed = []
    t0 = time.time()
    for i, name in enumerate(names, start=1):
        _say(f"[{i}/{len(names)}] {name}", quiet)
        start = time.time()
        result = job.execute_in_process(
            partition_key=name, instance=instance, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})
        for line in _step_lines(result):
            _say(line, quiet)
        if result.success:
            _say(f"    done in {time.time() - start:.1f}s", quiet)
        else:
            failed.append(name)
            print(f"    error: {_failure(result)}", file=sys.stderr)
    warehouse.refresh_catalog()
    print()
    for line in summary_lines(warehouse, names, time.time() - t0):
        print(line)
    if failed:
        print(f"\n{len(failed)} of {len(names)} studies failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
