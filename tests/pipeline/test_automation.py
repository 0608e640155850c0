"""Declarative automation: downstream assets follow raw ingest per study, checked with Dagster's evaluator."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from dagster import (AssetCheckResult, AssetCheckSpec, AssetKey, AutomationCondition, DagsterInstance,
                     DefaultScheduleStatus, DefaultSensorStatus, Definitions, MaterializeResult, asset,
                     build_sensor_context, evaluate_automation_conditions, materialize)

from scaling.simulate.results_table import write_results_study
from pipelines.automation import follow_upstream, with_automation
from pipelines.partitions import study_partitions
from warehouse.catalog import connect

RAW = AssetKey("raw_sources")


def write_study(folder: Path, name: str, offset: float = 0.0) -> Path:
    """A study over a results table from the Chinchilla law (Hoffmann et al. 2022)."""
    return write_results_study(folder, name, offset, law="power_law_flops", n_resamples=20, backtest_resamples=10)


@pytest.fixture
def studies(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    monkeypatch.setenv("SCALING_STUDIES", str(folder))
    monkeypatch.setenv("SCALING_WAREHOUSE", str(tmp_path / "warehouse"))
    return folder


@pytest.fixture
def defs(studies):
    from pipelines.definitions import defs

    return defs


def requested(result) -> dict[str, set]:
    """Requested partitions by asset name, leaving out assets with none."""
    out = {}
    for key in result.results:
        parts = result.get_requested_partitions(key.key) if isinstance(key.key, AssetKey) else set()
        if parts:
            out[key.key.to_user_string()] = set(parts)
    return out


def run(defs: Definitions, instance: DagsterInstance, partition: str, keys) -> None:
    job = defs.resolve_job_def("all_studies")
    result = job.execute_in_process(partition_key=partition, instance=instance, asset_selection=list(keys),
                                    raise_on_error=False)
    assert result.success, f"run of {sorted(k.to_user_string() for k in keys)} for {partition} failed"


def test_downstream_follows_raw_ingest_of_its_own_partition_only(studies, defs):
    write_study(studies, "tiny_a")
    write_study(studies, "tiny_b")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("study", ["tiny_a", "tiny_b"])
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        assert requested(first) == {}, "nothing runs before raw_sources lands"

        run(defs, instance, "tiny_a", [RAW])
        second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        # one tick requests the whole chain below raw_sources for tiny_a (deps requested in the same
        # tick do not count as missing), and nothing for tiny_b
        below = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys() if k != RAW)
        assert {"runs", "points", "quarantine", "mixture_points", "law_fits"} <= set(below)
        assert requested(second) == {k: {"tiny_a"} for k in below}

        run(defs, instance, "tiny_a", [AssetKey(k) for k in requested(second)])
        third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
        assert requested(third) == {}, "a settled partition requests nothing"

        run(defs, instance, "tiny_b", [RAW])
        fourth = evaluate_automation_conditions(defs=defs, instance=instance, cursor=third.cursor)
        assert requested(fourth) == {k: {"tiny_b"} for k in below}


def test_every_asset_below_raw_sources_follows_and_raw_sources_does_not(defs):
    from pipelines.automation import _unpartitioned_blocking_checks

    graph = defs.resolve_asset_graph()
    unpartitioned = _unpartitioned_blocking_checks(list(defs.assets))
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if key == RAW:
            assert node.automation_condition is None
            continue
        expected = AutomationCondition.eager() if set(node.parent_keys) & unpartitioned else follow_upstream()
        assert node.automation_condition is not None, key
        assert node.automation_condition.get_label() == expected.get_label(), key


def test_the_automation_sensor_runs_by_default_and_covers_every_follower(defs):
    repo = defs.get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    assert "default_automation_condition_sensor" not in sensors, "every follower is covered by study_automation"
    assert sensors["study_automation"].default_status == DefaultSensorStatus.RUNNING
    assert sensors["study_files_sensor"].default_status == DefaultSensorStatus.RUNNING
    assert {s.name: s.default_status for s in repo.schedule_defs} == {
        "refresh_url_sources": DefaultScheduleStatus.RUNNING}


def _fit_chain(partitioned_check: bool):
    """raw_sources -> fitted (blocking check failing for partition 'diverged') -> forecast, with automation."""
    @asset(name="raw_sources", partitions_def=study_partitions)
    def raw():
        return None

    spec = AssetCheckSpec("converged", asset="fitted", blocking=True,
                          **({"partitions_def": study_partitions} if partitioned_check else {}))

    @asset(partitions_def=study_partitions, deps=[raw], check_specs=[spec])
    def fitted(context):
        yield MaterializeResult()
        yield AssetCheckResult(check_name="converged", passed=context.partition_key != "diverged")

    @asset(partitions_def=study_partitions, deps=[fitted])
    def forecast():
        return None

    return with_automation([raw, fitted, forecast])


def _forecasts_requested_after_fitting(assets) -> set:
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("study", ["converged", "diverged"])
        first = evaluate_automation_conditions(defs=assets, instance=instance)
        for key in ("converged", "diverged"):
            materialize(assets[:2], partition_key=key, instance=instance, raise_on_error=False)
        second = evaluate_automation_conditions(defs=assets, instance=instance, cursor=first.cursor)
        return set(second.get_requested_partitions(AssetKey("forecast")))


@pytest.mark.filterwarnings("ignore::dagster.PreviewWarning")
def test_a_failed_partitioned_blocking_check_holds_back_only_its_own_study():
    assert _forecasts_requested_after_fitting(_fit_chain(partitioned_check=True)) == {"converged"}


def test_an_unpartitioned_blocking_check_does_not_couple_studies():
    assets = _fit_chain(partitioned_check=False)
    assert assets[2].specs_by_key[AssetKey("forecast")].automation_condition.get_label() == "eager"
    assert "converged" in _forecasts_requested_after_fitting(assets)


@pytest.mark.slow
def test_end_to_end_a_new_study_file_ends_in_the_catalog(tmp_path, studies, defs, monkeypatch):
    """Sensor tick -> raw ingest -> automation ticks -> runs, points and fits in the DuckDB catalog."""
    from pipelines.sensors import study_files_sensor

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    write_study(studies, "tiny")
    with DagsterInstance.get() as instance:
        tick = study_files_sensor(build_sensor_context(instance=instance, definitions=defs, resources=defs.resources))
        for req in tick.dynamic_partitions_requests:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        assert [r.partition_key for r in tick.run_requests] == ["tiny"]
        # the automation sensor is already ticking when the raw run starts
        cursor = evaluate_automation_conditions(defs=defs, instance=instance).cursor
        for req in tick.run_requests:
            run(defs, instance, req.partition_key, req.asset_selection)

        rounds = 0
        while True:
            result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            cursor, todo = result.cursor, requested(result)
            if not todo:
                break
            by_partition = defaultdict(set)
            for name, parts in todo.items():
                for p in parts:
                    by_partition[p].add(AssetKey(name))
            assert set(by_partition) == {"tiny"}
            for partition, keys in by_partition.items():
                run(defs, instance, partition, keys)
            rounds += 1
            assert rounds < 10, "automation does not settle"

        again = study_files_sensor(build_sensor_context(instance=instance, cursor=tick.cursor, definitions=defs,
                                                             resources=defs.resources))
        assert not again.run_requests

    con = connect(tmp_path / "warehouse" / "catalog.duckdb")
    try:
        runs = con.execute("SELECT count(*) FROM runs WHERE study = 'tiny'").fetchone()[0]
        points = con.execute("SELECT count(*) FROM points WHERE study = 'tiny'").fetchone()[0]
        laws = con.execute("SELECT DISTINCT law FROM law_fits WHERE study = 'tiny'").fetchall()
    finally:
        con.close()
    assert runs == 12 and points == 12
    assert laws == [("power_law_flops",)]
