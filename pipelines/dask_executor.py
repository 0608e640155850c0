"""Dagster's Dask executor (``dagster-dask``), with two defects of the pinned release fixed.

The pinned ``dagster-dask`` 0.29.27 submits each step as a Dask task keyed ``<job>.<step>``, and
passes the run record and the plan's known state as plain task arguments. Two things follow:

- Concurrent runs of one job (one run per study partition, which is how studies spread over a
  cluster) submit tasks with the same keys; Dask treats a key it already holds as the same task, so
  the second study's steps would silently reuse the first study's results (dagster issue 21418).
  Here every task key carries the run id.
- Dask 2026 walks tuple arguments to find task references, and Dagster's records forbid iteration,
  so every submission fails with ``Iteration is not allowed on @record``. Here the arguments travel
  inside one opaque holder.

Everything else (the per-step worker function, the executor's config schema, one Dask task per step
in plan order) is the integration's own.
"""

from __future__ import annotations

import logging

import dask.distributed
from dagster import _check as check
from dagster import multiple_process_executor_requirements
from dagster._core.definitions.executor_definition import executor
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._utils import iterate_with_context
from dagster_dask.executor import DaskExecutor, dask_executor, get_dask_resource_requirements, query_on_dask_worker


# Dask cannot size Dagster's event records (their iteration guard) and says so three times a step;
# the fallback size it uses is harmless, so those warnings are silenced (dagster issue 33771).
logging.getLogger("distributed.sizeof").setLevel(logging.ERROR)


class _StepArguments:
    """Holds a step's arguments so Dask ships them as one pickled object and does not walk them."""

    def __init__(self, *args):
        self.args = args


def _execute_step(dependencies, packed: _StepArguments):
    return query_on_dask_worker(dependencies, *packed.args)


class StudyDaskExecutor(DaskExecutor):
    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan):
        check.invariant(plan_context.instance.is_persistent, "Dask execution requires a persistent DagsterInstance")
        job_name = plan_context.job_name
        run_id = plan_context.dagster_run.run_id
        if self.cluster_type == "existing":
            cluster = self.cluster_configuration["address"]
        elif self.cluster_type == "local":
            from dask.distributed import LocalCluster

            cluster = LocalCluster(**self.build_dict(job_name))
        else:
            raise check.CheckError(f"cluster type {self.cluster_type!r} is not supported here: start the cluster "
                                   f"with its own tools and pass its scheduler address as cluster.existing.address")
        instance_ref = plan_context.instance.get_ref()
        with dask.distributed.Client(cluster) as client:
            futures_by_step = {}
            for step_level in execution_plan.get_steps_to_execute_by_level():
                for step in step_level:
                    dependencies = [futures_by_step[key] for step_input in step.step_inputs
                                    for key in step_input.dependency_keys]
                    packed = _StepArguments(plan_context.reconstructable_job, plan_context.dagster_run,
                                            plan_context.run_config, [step.key], instance_ref,
                                            execution_plan.known_state)
                    futures_by_step[step.key] = client.submit(
                        _execute_step, dependencies, packed, key=f"{job_name}.{step.key}.{run_id}",
                        resources=get_dask_resource_requirements(step.tags), pure=False)
            completed = dask.distributed.as_completed(list(futures_by_step.values()), with_results=True)
            for _future, result in iterate_with_context(raise_execution_interrupts, completed):
                for step_event in result:
                    yield check.inst(step_event, DagsterEvent)


@executor(name="dask", requirements=multiple_process_executor_requirements(),
          config_schema=dask_executor.config_schema)
def study_dask_executor(init_context):
    """``dagster_dask.dask_executor`` with run-unique task keys and opaque task arguments (see module doc)."""
    ((cluster_type, cluster_configuration),) = init_context.executor_config["cluster"].items()
    return StudyDaskExecutor(cluster_type, cluster_configuration)
