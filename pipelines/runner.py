"""Running the main job for one study, only its stale steps, and recording what succeeded.

`execute_study` runs in the calling process (sequential runs) or in a worker of a process pool
(``--parallel N``): the workers are forked once, after Dagster and the definitions are imported,
so a study costs one in-process Dagster run, not a process start and import per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pipelines.freshness import STEPS, StudyPlan, record_steps

# steps whose results depend on the number of bootstrap refits (`--quick` lowers it)
QUICK_STEPS = ("fits", "forecasts")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class StudyOutcome:
    study: str
    success: bool
    seconds: float
    lines: list[str] = field(default_factory=list)
    failure: str | None = None
    done: list[str] = field(default_factory=list)
    skipped: bool = False


def _job():
    """The main job, reconstructable in other processes (the multiprocess executor's steps)."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("all_studies")


def _dask_job():
    """The main job with its steps on a Dask cluster, reconstructable on the workers."""
    from pipelines.definitions import defs

    return defs.resolve_job_def("all_studies_dask")


def step_asset_keys(steps: list[str]):
    """The asset keys the given ops materialize."""
    from pipelines.definitions import defs

    keys = []
    for a in defs.resolve_asset_graph().assets_defs:
        if a.is_executable and a.op.name in steps:
            keys.extend(a.keys)
    return keys


def _step_lines(result) -> list[str]:
    from dagster import DagsterEventType

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
    from dagster import DagsterEventType

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


def succeeded_steps(result) -> list[str]:
    """Ops that succeeded and whose blocking checks all passed (only these are recorded)."""
    from dagster import DagsterEventType

    ok, blocked = set(), set()
    for ev in result.all_events:
        if ev.event_type == DagsterEventType.STEP_SUCCESS:
            ok.add(ev.step_key)
        elif ev.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = ev.event_specific_data
            if not data.passed and data.blocking:
                blocked.add(ev.step_key)
    return [s for s in STEPS if s in ok and s not in blocked]


def execute_study(plan: StudyPlan, run_id: str | None = None, multiprocess: bool = False,
                  run_config: dict | None = None, tags: dict | None = None, instance=None,
                  dask_address: str | None = None) -> StudyOutcome:
    """Run the stale steps of one study (all of them when the plan says so) and record the ones that
    succeeded. In this process, with the multiprocess executor (steps in subprocesses), or with the
    steps on the Dask cluster at ``dask_address`` (`pipelines.dask_executor`)."""
    from dagster import DagsterInstance

    from pipelines.resources import Warehouse

    start = time.time()
    warehouse = Warehouse()
    spec = warehouse.load(plan.study)
    instance = instance or DagsterInstance.get()
    config = {**QUIET_LOGS, **(run_config or {})}
    selection = None if len(plan.stale) == len(STEPS) else step_asset_keys(plan.stale)
    if not multiprocess and not dask_address:
        result = _job().execute_in_process(partition_key=plan.study, instance=instance, raise_on_error=False,
                                           run_config=config, asset_selection=selection, run_id=run_id,
                                           tags=tags or None)
        outcome = _outcome(plan, result, start)
    else:
        from dagster import execute_job, reconstructable

        job = reconstructable(_dask_job if dask_address else _job)
        if selection is not None:
            job = job.get_subset(asset_selection=set(selection))
        execution = {"cluster": {"existing": {"address": dask_address}}} if dask_address else \
            {"multiprocess": {"max_concurrent": 2}}
        with execute_job(job, instance=instance, tags={**(tags or {}), "dagster/partition": plan.study},
                         run_config={**config, "execution": {"config": execution}}, raise_on_error=False) as result:
            outcome = _outcome(plan, result, start)
    quick = bool(tags and tags.get("scaling/quick"))
    # a quick first look (fewer refits) is never recorded: the next full run computes the fits again
    done = [s for s in outcome.done if not (quick and s in QUICK_STEPS)]
    warehouse.pull(plan.study)  # the steps may have committed from other processes or machines
    record_steps(spec, warehouse.paths, done, plan)
    return outcome


def _outcome(plan: StudyPlan, result, start: float) -> StudyOutcome:
    return StudyOutcome(plan.study, bool(result.success), time.time() - start, _step_lines(result),
                        None if result.success else _failure(result), succeeded_steps(result))


_POOL_STATE: dict = {}


def pool_initializer() -> None:
    """Each pool worker opens its own Dagster instance once (never one inherited across a fork)."""
    _POOL_STATE.clear()


def _pool_instance():
    from dagster import DagsterInstance

    if "instance" not in _POOL_STATE:
        _POOL_STATE["instance"] = DagsterInstance.get()
    return _POOL_STATE["instance"]


def pool_execute(plan: StudyPlan, run_id: str, run_config: dict | None, tags: dict | None,
                 dask_address: str | None = None) -> StudyOutcome:
    try:
        return execute_study(plan, run_id=run_id, run_config=run_config, tags=tags, instance=_pool_instance(),
                             dask_address=dask_address)
    except Exception as exc:  # reported as the study's failure, the other studies go on
        return StudyOutcome(plan.study, False, 0.0, [], f"{type(exc).__name__}: {exc}")
