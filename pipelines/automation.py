"""Declarative automation: every asset below `raw_sources` follows its upstream, per study partition.

`raw_sources` is requested by the study-files sensor and the URL refresh schedule; everything
downstream of it (normalized runs/points/quarantine, mixture_points, fits and below) carries

    eager() & all_deps_blocking_checks_passed()

`eager()` requests a study partition when any of its upstream partitions updated, and never while an
upstream is missing or in progress, nor while the target itself is in progress. It looks at each
dynamic partition on its own (the latest-time-window clause only narrows time partitions), so a
new study's raw ingest runs that study's downstream and no other. Upstreams requested in the same
tick do not count as missing, so the whole chain below a new ingest is one run per study.

The blocking-check clause keeps automation as strict as the main job, where a failed blocking check
(e.g. `fit_converged`) skips everything below it, also when the upstream was materialized on its
own. Dagster tracks check results per partition only for checks declared with
``AssetCheckSpec(partitions_def=...)``; an unpartitioned check has one latest status across all
studies, so one study's failure would hold back every other. Below such a check the condition is
plain `eager()`, which still skips the rest of the chain inside the run where the check failed.

The sensor that evaluates these conditions is declared here with ``default_status=RUNNING``; the
implicit ``default_automation_condition_sensor`` starts stopped on a fresh instance.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import (AssetKey, AssetsDefinition, AssetSelection, AssetSpec, AutomationCondition,
                     AutomationConditionSensorDefinition, DefaultSensorStatus, map_asset_specs)

RAW_SOURCES = AssetKey("raw_sources")
FOLLOWERS = AssetSelection.assets(RAW_SOURCES).downstream(include_self=False)


def follow_upstream() -> AutomationCondition:
    """Materialize a partition after its upstream partitions update and their blocking checks pass."""
    return (AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()).with_label(
        "eager, after upstream blocking checks pass")


def _unpartitioned_blocking_checks(assets: Sequence[AssetsDefinition]) -> set[AssetKey]:
    """Assets that are partitioned but carry a blocking check without partitions."""
    keys = set()
    for a in assets:
        for check in getattr(a, "check_specs", ()):
            if check.blocking and check.partitions_def is None and a.specs_by_key[check.asset_key].partitions_def:
                keys.add(check.asset_key)
    return keys


def with_automation(assets: Sequence[AssetsDefinition]) -> Sequence[AssetsDefinition]:
    """The same assets with `follow_upstream()` on every asset below `raw_sources` (see the module doc)."""
    followers = FOLLOWERS.resolve(assets)
    unpartitioned = _unpartitioned_blocking_checks(assets)

    def follow(spec: AssetSpec) -> AssetSpec:
        if spec.key not in followers:
            return spec
        if unpartitioned & {dep.asset_key for dep in spec.deps}:
            return spec.replace_attributes(automation_condition=AutomationCondition.eager())
        return spec.replace_attributes(automation_condition=follow_upstream())

    return map_asset_specs(follow, assets)


study_automation = AutomationConditionSensorDefinition(
    "study_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    emit_backfills=False,  # one run per study, not one backfill across studies
    description="Evaluates the automation conditions: downstream assets follow raw ingest per study.",
)
