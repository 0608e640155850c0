"""The study-files sensor and the URL refresh schedule, evaluated with Dagster's testing contexts."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import (AssetKey, AssetMaterialization, AssetSelection, DagsterInstance, DeleteDynamicPartitionsRequest,
                     RunRequest, SensorResult, SkipReason, build_schedule_context, build_sensor_context,
                     instance_for_test)

from helpers import query, results_csv, run_study
from scaling.simulate.results_table import write_results_study
from pipelines.definitions import defs
from pipelines.resources import Warehouse
from pipelines.schedules import refresh_url_sources
from pipelines.sensors import study_files_sensor

REPO = Path(__file__).resolve().parents[2]
RAW = AssetKey("raw_sources")



def write_study(folder: Path, name: str, location: str | None = None, with_data: bool = True) -> Path:
    return write_results_study(folder, name, location=location or f"data/{name}/*.csv", with_data=with_data,
                               law=None)


class Tick:
    """Runs sensor ticks the way the daemon does: carry the cursor, apply partition requests."""

    def __init__(self, instance: DagsterInstance, warehouse: Warehouse):
        self.instance, self.warehouse, self.cursor = instance, warehouse, None

    def __call__(self) -> SensorResult:
        ctx = build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=defs,
                                   resources={"warehouse": self.warehouse})
        result = study_files_sensor(ctx)
        assert isinstance(result, SensorResult)
        for req in result.dynamic_partitions_requests or []:
            if isinstance(req, DeleteDynamicPartitionsRequest):
                for key in req.partition_keys:
                    self.instance.delete_dynamic_partition(req.partitions_def_name, key)
            else:
                self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        self.cursor = result.cursor
        return result


def added(result: SensorResult) -> list[str]:
    return sorted(k for req in result.dynamic_partitions_requests or [] for k in req.partition_keys
                  if not isinstance(req, DeleteDynamicPartitionsRequest))


def requested(result: SensorResult) -> list[str]:
    for req in result.run_requests or []:
        assert isinstance(req, RunRequest) and req.asset_selection == [RAW]
    return sorted(req.partition_key for req in result.run_requests or [])


@pytest.fixture
def studies(tmp_path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    return folder


@pytest.fixture
def tick(tmp_path, studies):
    with DagsterInstance.ephemeral() as instance:
        yield Tick(instance, Warehouse(root=str(tmp_path / "warehouse"), studies=str(studies)))


def test_new_study_adds_its_partition_and_requests_only_it(studies, tick):
    write_study(studies, "alpha")
    first = tick()
    assert added(first) == ["alpha"] and requested(first) == ["alpha"]
    write_study(studies, "beta")
    second = tick()
    assert added(second) == ["beta"] and requested(second) == ["beta"]
    assert sorted(tick.instance.get_dynamic_partitions("study")) == ["alpha", "beta"]


def test_unchanged_studies_request_nothing(studies, tick):
    write_study(studies, "alpha")
    tick()
    again = tick()
    assert requested(again) == [] and added(again) == []
    assert "no study changed" in again.skip_reason.skip_message


def test_a_changed_source_file_requests_only_its_study(studies, tick):
    write_study(studies, "alpha")
    write_study(studies, "beta")
    tick()
    data = studies / "data" / "beta" / "results.csv"
    results_csv(data, offset=0.01)
    changed = tick()
    assert requested(changed) == ["beta"] and added(changed) == []
    assert changed.run_requests[0].tags["scaling/trigger"] == "source files changed"
    assert requested(tick()) == []


def test_touching_a_file_without_changing_it_requests_nothing(studies, tick):
    write_study(studies, "alpha")
    tick()
    data = studies / "data" / "alpha" / "results.csv"
    later = time.time() + 60
    os.utime(data, (later, later))
    assert requested(tick()) == []


def test_a_new_file_matching_a_glob_requests_the_study(studies, tick):
    write_study(studies, "alpha")
    write_study(studies, "beta")
    tick()
    results_csv(studies / "data" / "alpha" / "more.csv", offset=0.02)
    assert requested(tick()) == ["alpha"]


def test_a_changed_study_file_requests_only_that_study(studies, tick):
    write_study(studies, "alpha")
    path = write_study(studies, "beta")
    tick()
    path.write_text(path.read_text().replace("a small results table", "the same table, described anew"))
    result = tick()
    assert requested(result) == ["beta"]
    assert result.run_requests[0].tags["scaling/trigger"] == "study file changed"


def test_reverting_a_change_requests_again_under_a_new_run_key(studies, tick):
    write_study(studies, "alpha")
    data = studies / "data" / "alpha" / "results.csv"
    original = data.read_bytes()
    keys = [tick().run_requests[0].run_key]
    results_csv(data, offset=0.05)
    keys.append(tick().run_requests[0].run_key)
    data.write_bytes(original)
    keys.append(tick().run_requests[0].run_key)
    assert len(set(keys)) == 3


def test_invalid_study_file_is_skipped_with_its_name_and_problem(studies, tick):
    write_study(studies, "alpha")
    (studies / "broken.toml").write_text("[study]\nname = 'broken'\n[[sources]]\nname = 'x'\nkind = 'nonsense'\n"
                                        "location = 'x.csv'\nformat = 'csv'\n")
    (studies / "garbled.toml").write_text("[study\n")
    first = tick()
    assert requested(first) == ["alpha"] and added(first) == ["alpha"]
    second = tick()
    message = second.skip_reason.skip_message
    assert "broken.toml" in message and "kind" in message and "nonsense" in message
    assert "garbled.toml" in message and "invalid TOML" in message


def test_a_study_that_becomes_invalid_and_is_fixed_is_compared_to_its_last_good_state(studies, tick):
    path = write_study(studies, "alpha")
    good = path.read_text()
    tick()
    path.write_text(good.replace('kind = "checkpoint_results"', 'kind = "wrong"'))
    broken = tick()
    assert requested(broken) == [] and "alpha.toml" in broken.skip_reason.skip_message
    path.write_text(good)
    assert requested(tick()) == []
    state = json.loads(tick.cursor)["studies"]
    assert list(state) == ["alpha"]


def test_a_deleted_study_leaves_every_table_and_its_partition(studies, tick, capfd):
    write_study(studies, "alpha")
    path = write_study(studies, "beta")
    tick()
    ingest = AssetSelection.assets("raw_sources", "runs", "points", "quarantine", "mixture_points")
    for name in ("alpha", "beta"):
        run_study(studies, Path(tick.warehouse.root), name, selection=ingest, instance=tick.instance)
    lake = Path(tick.warehouse.root) / "lake"
    assert (lake / "runs" / "study=beta").is_dir()
    path.unlink()
    capfd.readouterr()
    result = tick()
    log = capfd.readouterr().err
    assert requested(result) == []
    assert list(json.loads(tick.cursor)["studies"]) == ["alpha"]
    assert sorted(tick.instance.get_dynamic_partitions("study")) == ["alpha"]
    assert [p for p in lake.rglob("study=beta")] == []
    counts = query(Path(tick.warehouse.root), "SELECT study, count(*) AS n FROM runs GROUP BY study")
    assert counts.rows() == [("alpha", 12)]
    assert "study 'beta': its file beta.toml is gone; removed its partition and its rows from " \
           "points, raw, runs" in log


def test_a_study_waits_for_a_missing_source_then_runs_when_it_appears(studies, tick):
    write_study(studies, "alpha", location="incoming/results.csv", with_data=False)
    first = tick()
    assert added(first) == ["alpha"] and requested(first) == []
    results_csv(studies / "incoming" / "results.csv")
    assert requested(tick()) == ["alpha"]


def test_an_example_study_with_a_simulator_is_requested_before_its_data_exists(studies, tick):
    shutil.copy(REPO / "studies" / "example_sweep.toml", studies)
    first = tick()
    assert added(first) == ["example_sweep"] and requested(first) == ["example_sweep"]
    # the simulator writes the data on the first run; that output is not a new input
    from scaling.simulate import write_example_data
    write_example_data(studies / "_simulated" / "example", seed=0)
    assert requested(tick()) == []


def test_a_study_ingested_after_its_files_changed_is_adopted_without_a_run(studies, tick):
    write_study(studies, "alpha")
    write_study(studies, "beta")
    tick.instance.add_dynamic_partitions("study", ["alpha", "beta"])
    tick.instance.report_runless_asset_event(AssetMaterialization(asset_key=RAW, partition="alpha"))
    result = tick()
    assert requested(result) == ["beta"] and added(result) == []


def _schedule_context(instance, studies, tmp_path):
    return build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2026, 3, 1, 4, tzinfo=timezone.utc),
        resources={"warehouse": Warehouse(root=str(tmp_path / "warehouse"), studies=str(studies))})


def test_schedule_refreshes_only_registered_studies_with_url_sources(studies, tmp_path):
    write_study(studies, "local")
    write_study(studies, "remote", location="https://example.org/results/table.csv", with_data=False)
    write_study(studies, "unregistered", location="http://example.org/other.csv", with_data=False)
    (studies / "mixed.toml").write_text(
        "[[sources]]\nname = 'mix'\nkind = 'mixture_runs'\n[sources.mixture]\n"
        "weights = 'https://example.org/w.csv'\nlosses = 'local_losses.csv'\n")
    with instance_for_test() as instance:  # schedule contexts need a persistent instance
        instance.add_dynamic_partitions("study", ["local", "remote", "mixed"])
        result = refresh_url_sources(_schedule_context(instance, studies, tmp_path))
    assert sorted(r.partition_key for r in result) == ["mixed", "remote"]
    assert all(r.asset_selection == [RAW] for r in result)
    assert {r.run_key for r in result} == {"mixed:2026-03-01", "remote:2026-03-01"}


def test_schedule_skips_when_no_study_reads_a_url(studies, tmp_path):
    write_study(studies, "local")
    (studies / "broken.toml").write_text("[study\n")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("study", ["local"])
        result = refresh_url_sources(_schedule_context(instance, studies, tmp_path))
    assert isinstance(result, SkipReason)
    assert "broken.toml" in result.skip_message
