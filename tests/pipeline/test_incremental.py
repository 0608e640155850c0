"""Nothing is computed twice: `scaling run` skips what has not changed and re-runs only what did.

Real `scaling run` processes on a real Dagster instance and warehouse: the proof of a skip is that
no Dagster run was launched and every file in the lake kept its modification time; the proof of a
re-run is a new run whose steps are exactly the changed study's stale ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from helpers import query
from pipelines.freshness import STEPS, module_closure, step_hashes
from scaling.simulate.results_table import write_results_csv, write_results_study
from scaling.spec import load_study
from warehouse.config import paths
from warehouse.ingest import INGEST_PARTS


def results_csv(path: Path, offset: float = 0.0) -> Path:
    """20 runs of the Chinchilla law (Hoffmann et al. 2022) shifted by `offset`, with 0.4% seeded scatter."""
    return write_results_csv(path, offset, tokens_per_param=(5, 10, 20, 40, 80), noise=0.004)


def write_study(folder: Path, name: str, extra: str = "") -> None:
    write_results_study(folder, name, with_data=False, extra=extra)


def scaling(env, *args) -> str:
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# what a `scaling run` that finds nothing stale must not import: the asset modules, scipy, the fitting code
# and matplotlib (about half of such a run's time on the example studies, when it still imported them;
# scipy and the fitting code came with checking the study files until those checks stopped importing them)
HEAVY = ("assets.fits", "assets.forecasts", "scipy", "scaling.fit.fitter", "scaling.mixing.fit", "matplotlib")
_PROBE = """
import runpy, sys
sys.argv = ["scaling", *sys.argv[1:]]
try:
    runpy.run_module("pipelines.cli", run_name="__main__")
except SystemExit as exc:
    status = exc.code
print("STATUS", status)
print("IMPORTED", ",".join(m for m in HEAVY if m in sys.modules))
"""


def scaling_imports(env, *args) -> tuple[str, list[str]]:
    """Run `scaling ARGS` in a fresh process; its output, and which of `HEAVY` it imported."""
    code = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and "STATUS 0" in lines, proc.stdout + proc.stderr
    imported = [m for m in lines[-1].removeprefix("IMPORTED ").split(",") if m]
    return proc.stdout, imported


def lake_files(warehouse: Path) -> dict[str, int]:
    lake = warehouse / "lake"
    return {f.relative_to(lake).as_posix(): f.stat().st_mtime_ns for f in lake.rglob("*")
            if f.is_file() and "_inputs" not in f.parts}


def report_files(warehouse: Path) -> dict[str, int]:
    return {f.name: f.stat().st_mtime_ns for f in (warehouse / "reports").glob("*.*") if f.is_file()}


def runs_by_study(home: Path) -> dict[str, list[set[str]]]:
    """Per study, the set of steps each of its Dagster runs executed."""
    out: dict[str, list[set[str]]] = {}
    with DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            steps = {ev.step_key for ev in instance.all_logs(run.run_id)
                     if ev.dagster_event and ev.dagster_event.event_type_value == "STEP_SUCCESS"}
            out.setdefault(run.tags.get("dagster/partition"), []).append(steps)
    return out


@pytest.mark.slow
def test_second_run_skips_and_a_changed_source_reruns_only_its_study(tmp_path):
    studies, warehouse, home = tmp_path / "studies", tmp_path / "warehouse", tmp_path / "home"
    studies.mkdir()
    for name, offset in (("alpha", 0.01), ("beta", 0.02)):
        results_csv(studies / "data" / f"{name}.csv", offset=offset)
        write_study(studies, name)
    env = dict(os.environ, SCALING_WAREHOUSE=str(warehouse), SCALING_STUDIES=str(studies), DAGSTER_HOME=str(home))
    home.mkdir()

    first = scaling(env, "run")
    assert first.count("done in") == 2
    assert {k: len(v) for k, v in runs_by_study(home).items()} == {"alpha": 1, "beta": 1}
    before = lake_files(warehouse)
    fits_before = query(warehouse, "SELECT study, estimate FROM law_fits WHERE parameter = 'E' ORDER BY study")

    reports = report_files(warehouse)
    assert {"alpha.html", "alpha.md", "beta.html", "beta.md"} <= set(reports)

    # 1. nothing changed: no Dagster run, no file in the lake written again, no report rewritten, and none
    # of the heavy imports (the asset modules, scipy, the fitting code, matplotlib) that a run needs
    second, imported = scaling_imports(env, "run")
    assert imported == []
    assert "alpha: up to date" in second and "beta: up to date" in second and "done in" not in second
    assert {k: len(v) for k, v in runs_by_study(home).items()} == {"alpha": 1, "beta": 1}
    assert lake_files(warehouse) == before
    assert {k: v for k, v in report_files(warehouse).items() if k != "index.html"} == \
        {k: v for k, v in reports.items() if k != "index.html"}

    # 2. one study's source changed: that study runs again, every step; the other is untouched
    results_csv(studies / "data" / "alpha.csv", offset=0.06)
    third = scaling(env, "run")
    assert "beta: up to date" in third and third.count("done in") == 1
    runs = runs_by_study(home)
    assert len(runs["beta"]) == 1 and len(runs["alpha"]) == 2
    assert runs["alpha"][0] == set(STEPS)  # newest first
    after = lake_files(warehouse)
    assert {k: v for k, v in after.items() if "study=beta" in k} == {k: v for k, v in before.items() if "study=beta" in k}
    assert after["points/study=alpha/data.parquet"] != before["points/study=alpha/data.parquet"]
    fits_after = query(warehouse, "SELECT study, estimate FROM law_fits WHERE parameter = 'E' ORDER BY study")
    assert fits_after["estimate"][1] == fits_before["estimate"][1]  # beta
    assert abs(fits_after["estimate"][0] - fits_before["estimate"][0] - 0.05) < 0.02  # alpha's loss rose by 0.05
    rewritten = report_files(warehouse)  # alpha's report shows its new fit; beta's is as it was
    assert rewritten["alpha.html"] != reports["alpha.html"] and rewritten["alpha.md"] != reports["alpha.md"]
    assert rewritten["beta.html"] == reports["beta.html"] and rewritten["beta.md"] == reports["beta.md"]

    # 3. only the forecasts section changed: only `forecasts` runs, the fits are not redone
    write_study(studies, "alpha", extra='[forecasts]\ntargets = [{ name = "1B-20x", params = 1e9, tokens = 2e10 }]')
    fourth = scaling(env, "run")
    assert "beta: up to date" in fourth
    runs = runs_by_study(home)
    assert runs["alpha"][0] == {"forecasts"}
    last = lake_files(warehouse)
    for table in ("raw/study=alpha/source=table/data.parquet", "points/study=alpha/data.parquet",
                  "law_fits/study=alpha/data.parquet", "law_draws/study=alpha/data.parquet"):
        assert last[table] == after[table], table
    assert last["forecasts/study=alpha/data.parquet"] != after["forecasts/study=alpha/data.parquet"]
    assert query(warehouse, "SELECT count(*) AS n FROM forecasts WHERE study = 'alpha' AND name = '1B-20x'")["n"][0] > 0

    # 4. a lake file removed behind the pipeline's back makes its step stale again
    (warehouse / "lake" / "law_fits" / "study=beta" / "data.parquet").unlink()
    fifth = scaling(env, "run", "--study", "beta")
    assert runs_by_study(home)["beta"][0] == {"fits", "forecasts"}
    assert query(warehouse, "SELECT count(*) AS n FROM law_fits WHERE study = 'beta'")["n"][0] > 0
    assert "done in" in fifth


def test_step_hashes_follow_what_each_step_reads(tmp_path):
    """Input hashes change exactly for the steps below what changed (no Dagster run needed)."""
    studies = tmp_path / "studies"
    results_csv(studies / "data" / "alpha.csv")
    write_study(studies, "alpha")
    p = paths(tmp_path / "warehouse")
    base = step_hashes(load_study(studies / "alpha.toml"), p)
    assert all(base.values())

    write_study(studies, "alpha", extra="seed = 3")  # a [[fits]] key
    fits_changed = step_hashes(load_study(studies / "alpha.toml"), p)
    assert [s for s in STEPS if fits_changed[s] != base[s]] == ["fits", "forecasts"]

    write_study(studies, "alpha")
    results_csv(studies / "data" / "alpha.csv", offset=0.01)
    source_changed = step_hashes(load_study(studies / "alpha.toml"), p)
    assert all(source_changed[s] != base[s] for s in STEPS)

    (studies / "data" / "alpha.csv").unlink()  # cannot be known before running: stale
    assert step_hashes(load_study(studies / "alpha.toml"), p)["raw_sources"] is None


def test_step_graph_matches_the_dagster_definitions():
    from pipelines.definitions import defs

    graph = {}
    for a in defs.resolve_asset_graph().assets_defs:
        if a.is_executable:
            graph[a.op.name] = a
    assert set(graph) == set(STEPS)
    op_of = {key: name for name, a in graph.items() for key in a.keys}
    for name, step in STEPS.items():
        a = graph[name]
        upstream = {op_of[d] for d in a.dependency_keys if d in op_of}
        assert upstream == set(step.upstream), name
        assert a.op.compute_fn.decorated_fn.__module__ == step.module
        assert {k.to_user_string() for k in a.keys} == (set(step.tables) if name != "raw_sources" else {"raw_sources"})
        # the code version covers every module the asset imports, e.g. the law zoo below the fits
        assert len({a.code_versions_by_key[k] for k in a.keys}) == 1
    assert "scaling.laws.chinchilla" in module_closure("assets.fits")
    assert "scaling.fit.bootstrap" in module_closure("assets.forecasts")
    # loading a study checks its [[fits]] (so ingest covers the law zoo), but not the backtests or the plots
    assert "scaling.fit.backtest" not in module_closure("assets.normalized")
    assert "scaling.plots.frontier" not in module_closure("assets.normalized")


def test_code_versions_see_the_parts_a_lazy_package_loads():
    """`scaling.mixing` imports its parts on first use of a name; the code versions, read from the import
    statements, must still follow every part it loads (else a change to one would leave the steps that use
    it up to date)."""
    from scaling import mixing

    parts = {f"scaling.mixing.{m}" for m in mixing._EXPORTS}
    assert parts - set(module_closure("scaling.mixing")) == set()
    assert all(getattr(mixing, name) is not None for name in mixing.__all__)
    assert {"scaling.mixing.study", "scaling.mixing.optimize"} <= set(module_closure("scaling.plan.mixing"))


def test_every_step_reading_an_ingest_waits_for_all_of_its_parts():
    """The last of `INGEST_PARTS` to finish commits the ingest, so a step below one part must also wait
    for the others: `mixing` used to start once `mixture_points` had staged its table, read the lake
    before `normalized` committed the ingest and wrote empty mixing tables (seen on a Dask cluster)."""
    parts = set(INGEST_PARTS)

    def above(name):
        return set(STEPS[name].upstream).union(*(above(u) for u in STEPS[name].upstream))

    for name in STEPS:
        if parts & set(STEPS[name].upstream):
            assert parts <= above(name), name
