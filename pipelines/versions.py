"""Dagster code versions for the assets, from the same per-step code hashes `scaling run` records.

With a code version on every asset, the Dagster UI marks an asset whose code changed since its
last materialization as stale ("code version changed"), and one whose upstream was materialized
again since as stale ("upstream data changed").
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetsDefinition, AssetSpec, map_asset_specs

from pipelines.freshness import STEPS, code_version


def with_code_versions(assets: Sequence[AssetsDefinition]) -> Sequence[AssetsDefinition]:
    """The same assets with ``code_version`` set to their step's code hash."""
    step_of = {key: a.op.name for a in assets if isinstance(a, AssetsDefinition) and a.is_executable
               for key in a.keys}

    def versioned(spec: AssetSpec) -> AssetSpec:
        step = step_of.get(spec.key)
        return spec.replace_attributes(code_version=code_version(step)) if step in STEPS else spec

    return map_asset_specs(versioned, assets)
