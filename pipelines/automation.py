"""Declarative automation: every asset below `raw_sources` follows its upstream, per study partition.

`raw_sources` is requested by the study-files sensor and the URL refresh schedule; everything
downstream of it (normalized runs/points/quarantine, mixture_points, fits and below) carries

    eager() & all_deps_blocking_checks_passed()

`eager()` requests a study partition when any of its upstream partitions updated, and never while an
upstream is missing or in progress, nor while the target itself is in progress. It looks at each
dynamic partition on its own (the latest-time-window clause only narrows time partitions), so a
new study's raw ingest runs that study's downstream and no other. The blocking-check clause keeps
automation as strict as the main job, where a failed blocking check (e.g. `fit_converged`) skips
everything below it: a fit that did not converge is not forecast from until it is fixed.

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


def with_automation(assets: Sequence[AssetsDefinition]) -> Sequence[AssetsDefinition]:
    """The same assets with `follow_upstream()` on every asset below `raw_sources`."""
    followers = FOLLOWERS.resolve(assets)

    def follow(spec: AssetSpec) -> AssetSpec:
        return spec.replace_attributes(automation_condition=follow_upstream()) if spec.key in followers else spec

    return map_asset_specs(follow, assets)


study_automation = AutomationConditionSensorDefinition(
    "study_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the automation conditions: downstream assets follow raw ingest per study.",
)
