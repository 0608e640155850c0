"""`scaling run`: decide what is stale, run only that per study, show live progress, summarize.

Each study's steps are checked against the input hashes the warehouse recorded when they last
succeeded (`pipelines.freshness`); a study with nothing stale is not run at all, and a study with
some stale steps runs only those (and what is below them). On a terminal, a live display (rich)
shows each study's current step, steps done, bootstrap refits done / total and the time left;
elsewhere (a pipe, a log file, CI) the output is the plain per-study report.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import uuid
from pathlib import Path

from scaling.errors import ScalingError

QUICK_TAG = "scaling/quick"
# `fits` logs this after each fitted group (see assets/fits.py)
_REFITS = re.compile(r"refits (\d+)/(\d+)")


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, flush=True)


def register_studies(instance, names: list[str]) -> list[str]:
    """Add study partitions the instance does not know yet; return the ones added."""
    known = set(instance.get_dynamic_partitions("study"))
    new = [n for n in names if n not in known]
    if new:
        instance.add_dynamic_partitions("study", new)
    return new


class LiveProgress:
    """A rich display fed by polling the runs' event logs in the Dagster instance: the step each
    study is in, steps done / to do, and refits done / total from the `fits` step's log lines."""

    def __init__(self, plans: dict):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(),
                                 TextColumn("left"), transient=False)
        self.plans = plans
        self.tasks = {}
        self.refit_tasks = {}
        self.runs: dict[str, str] = {}
        self.seen: dict[str, int] = {}
        self.total = self.progress.add_task(f"[bold]{len(plans)} studies", total=len(plans))
        self._stop = threading.Event()
        self._thread = None
        self._instance = None

    @property
    def console(self):
        return self.progress.console

    def start(self, instance) -> None:
        self._instance = instance
        self.progress.start()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._update()
        self.progress.stop()

    def begin(self, study: str, run_id: str) -> None:
        self.runs[study] = run_id
        self.tasks[study] = self.progress.add_task(f"  {study}: starting", total=len(self.plans[study].stale))

    def finish(self, study: str) -> None:
        self._update_one(study)
        self.runs.pop(study, None)
        task = self.tasks.get(study)
        if task is not None:
            self.progress.update(task, completed=len(self.plans[study].stale), visible=False)
        refits = self.refit_tasks.pop(study, None)
        if refits is not None:
            self.progress.update(refits, visible=False)
        self.progress.advance(self.total)

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def _update(self) -> None:
        for study in list(self.runs):
            try:
                self._update_one(study)
            except Exception:  # the display must never break a run
                pass

    def _update_one(self, study: str) -> None:
        from dagster import DagsterEventType

        run_id = self.runs.get(study)
        if run_id is None or self._instance is None:
            return
        records = self._instance.all_logs(run_id)
        done, current = 0, None
        for rec in records:
            ev = rec.dagster_event
            if ev is not None and ev.event_type == DagsterEventType.STEP_START:
                current = ev.step_key
            elif ev is not None and ev.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE,
                                                      DagsterEventType.STEP_SKIPPED):
                done += 1
            elif ev is None and rec.user_message:
                m = _REFITS.search(rec.user_message)
                if m:
                    self._refits(study, int(m.group(1)), int(m.group(2)))
        task = self.tasks[study]
        self.progress.update(task, completed=done, description=f"  {study}: {current or 'starting'}")

    def _refits(self, study: str, done: int, total: int) -> None:
        task = self.refit_tasks.get(study)
        if task is None:
            task = self.refit_tasks[study] = self.progress.add_task(f"    {study}: bootstrap refits", total=total)
        self.progress.update(task, completed=done, total=total)


def _plans(names: list[str], specs: dict, force: bool):
    from pipelines.freshness import STEPS, StudyPlan, plan_study
    from warehouse.config import paths

    p = paths()
    out = {}
    for name in names:
        out[name] = StudyPlan(name, {}, list(STEPS)) if force else plan_study(specs[name], p)
    return out


def run_studies(root: Path, only: list[str] | None = None, quiet: bool = False, parallel: int = 1,
                multiprocess: bool = False, summary: bool = True, quick: bool = False, force: bool = False,
                live: bool | None = None, executor: str = "in_process", dask_scheduler: str | None = None,
                dask_workers: int = 2) -> int:
    """Run the stale steps of every study (or of ``only``); returns the process exit status.
    With ``executor="dask"`` the steps run on the Dask cluster at ``dask_scheduler``, or on a local
    cluster of ``dask_workers`` processes (`pipelines.distributed`).

    Invalid study files are reported and not run (the others run; the exit status is 1); studies whose
    file is gone are removed from the warehouse (with a message) on a run over every study."""
    from scaling.spec import load_study
    from pipelines.resources import Warehouse

    t0 = time.time()
    warehouse = Warehouse()
    warehouse.pull_all()  # an object-store warehouse: plan from its committed state
    found = warehouse.scan()
    invalid = report_invalid(found, only)
    names = sorted(found.files) if not only else [n for n in only if n in found.files]
    missing = [n for n in (only or []) if n not in found.files]
    if missing and not invalid:
        print(f"error: no study named {missing} in {warehouse.studies_dir}", file=sys.stderr)
        return 2
    problems = []  # what failed outside a study's run (the warehouse could not be written, ...)
    if not only:
        try:
            remove_gone_studies(warehouse, found, quiet)
        except ScalingError as exc:  # e.g. a read-only warehouse: said once, the studies still run
            print(f"error: {exc}", file=sys.stderr)
            problems.append("removing studies whose file is gone")
    specs = {}
    for n in names:
        try:
            specs[n] = load_study(found.files[n], data_roots=warehouse.allowed_data_roots)
        except ScalingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            invalid.append(found.files[n].name)
    names = [n for n in names if n in specs]
    plans = _plans(names, specs, force)
    todo = [n for n in names if plans[n].stale]
    for n in names:
        if not plans[n].stale:
            _say(f"{n}: up to date (no change to its study file, sources or code since the last run)", quiet)
    outcomes = []
    show = live if live is not None else (sys.stdout.isatty() and not quiet)
    if todo and executor == "dask":
        from pipelines.distributed import dask_scheduler as cluster

        with cluster(dask_scheduler, dask_workers) as address:
            _say(f"running on the Dask cluster at {address}", quiet)
            at_once = parallel if parallel > 1 else (dask_workers if not dask_scheduler else 2)
            outcomes = _run(todo, plans, quiet, at_once, multiprocess, quick, show, dask_address=address)
    elif todo:
        outcomes = _run(todo, plans, quiet, parallel, multiprocess, quick, show)
    failed = [o.study for o in outcomes if not o.success]
    warehouse.pull_all()  # steps may have run in other processes or machines
    try:
        warehouse.refresh_catalog()
    except ScalingError as exc:  # a read-only or full warehouse: the summary shows the catalog as it was
        print(f"error: {exc}", file=sys.stderr)
        problems.append("updating the catalog")
    if summary and warehouse.paths.catalog.exists():
        from pipelines.summary import summary_lines

        print()
        for line in summary_lines(warehouse.paths, names, time.time() - t0):
            print(line)
    return exit_status(names, failed, invalid, problems)


def _report(i: int, n: int, outcome, quiet: bool, console=None) -> None:
    say = (lambda m: console.print(m, highlight=False, markup=False)) if console is not None else \
        (lambda m: _say(m, quiet))
    say(f"[{i}/{n}] {outcome.study}")
    for line in outcome.lines:
        say(line)
    if outcome.success:
        say(f"    done in {outcome.seconds:.1f}s")
    else:
        print(f"    error: {outcome.failure}", file=sys.stderr)


def _run(todo: list[str], plans: dict, quiet: bool, parallel: int, multiprocess: bool, quick: bool,
         live: bool, dask_address: str | None = None) -> list:
    from dagster import DagsterInstance

    import pipelines.definitions  # noqa: F401  (imported once, before any worker is forked)
    from pipelines.runner import StudyOutcome, execute_study, pool_execute, pool_initializer

    sequential = parallel <= 1 or len(todo) == 1
    instance = DagsterInstance.get()  # one instance for the whole command
    register_studies(instance, todo)
    if not sequential:
        instance.dispose()  # the workers are forked next: they open their own
    run_config = None
    tags_quick = {QUICK_TAG: "1"} if quick else {}
    run_ids = {n: str(uuid.uuid4()) for n in todo}
    outcomes = []
    progress = LiveProgress({n: plans[n] for n in todo}) if live else None
    if sequential:
        if progress:
            progress.start(instance)
        try:
            for i, name in enumerate(todo, start=1):
                if not progress:
                    _say(f"running {name} ({', '.join(plans[name].stale)}) ...", quiet)
                else:
                    progress.begin(name, run_ids[name])
                try:
                    outcome = execute_study(plans[name], run_id=run_ids[name], multiprocess=multiprocess,
                                            run_config=run_config, tags=tags_quick, instance=instance,
                                            dask_address=dask_address)
                except ScalingError as exc:  # e.g. the warehouse cannot be written: the study failed, others run
                    outcome = StudyOutcome(name, False, 0.0, [], str(exc))
                if progress:
                    progress.finish(name)
                _report(i, len(todo), outcome, quiet, progress.console if progress else None)
                outcomes.append(outcome)
        finally:
            if progress:
                progress.stop()
            instance.dispose()
        return outcomes

    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    _say(f"running {len(todo)} studies, {parallel} at a time in worker processes ...", quiet)
    workers = min(parallel, len(todo))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"), initializer=pool_initializer) as pool:
        futures = {pool.submit(pool_execute, plans[n], run_ids[n], run_config, tags_quick, dask_address): n
                   for n in todo}
        instance = DagsterInstance.get() if progress else None  # opened after the workers were forked
        if progress:
            progress.start(instance)
            for n in todo:
                progress.begin(n, run_ids[n])
        try:
            for i, fut in enumerate(as_completed(futures), start=1):
                outcome = fut.result()
                if progress:
                    progress.finish(outcome.study)
                _report(i, len(todo), outcome, quiet, progress.console if progress else None)
                outcomes.append(outcome)
        finally:
            if progress:
                progress.stop()
    return outcomes


def report_invalid(found, only: list[str] | None) -> list[str]:
    """Print every invalid study file (only those of the named studies, with --study); return their names.
    The other studies still run."""
    bad = []
    for file, problem in sorted(found.invalid.items()):
        if only and not any(f"'{name}'" in problem or file == f"{name}.toml" for name in only):
            continue
        print(f"error: invalid study file {file}: {problem}", file=sys.stderr)
        bad.append(file)
    return bad


def remove_gone_studies(warehouse, found, quiet: bool = False) -> list[str]:
    """Remove the studies whose file is gone from the lake and the Dagster instance, saying so. The
    instance is opened only when there is one to remove: a run where nothing changed never opens it."""
    from pipelines.cleanup import gone_studies, remove_gone

    gone = gone_studies(warehouse.paths.lake, found)
    removed = remove_gone(warehouse.paths.lake, gone, lambda msg: _say(msg, quiet))
    if not removed:
        return removed
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions("study"))
        for name in removed:
            if name in known:
                instance.delete_dynamic_partition("study", name)
    warehouse.refresh_catalog()
    return removed


def exit_status(names: list[str], failed: list[str], invalid: list[str], problems: list[str] = ()) -> int:
    """0 when every study ran, every study file was valid and the warehouse took every write; 1 when
    anything failed (said on stderr)."""
    if failed:
        print(f"\n{len(failed)} of {len(names)} studies failed: {', '.join(failed)}", file=sys.stderr)
    if invalid:
        print(f"{len(invalid)} invalid study file(s) not run: {', '.join(invalid)}", file=sys.stderr)
    if problems:
        print(f"failed: {', '.join(problems)} (see the error above)", file=sys.stderr)
    return 1 if failed or invalid or problems else 0
