"""Fixtures shared by the pipeline tests: one materialization of the example studies for all readers."""

from __future__ import annotations

import pytest

from helpers import copy_study, run_study

EXAMPLES = ("example_sweep", "example_checkpoints", "example_mixture")


@pytest.fixture(scope="session")
def example_warehouse(tmp_path_factory):
    """Every asset of the three example studies, materialized once into a temp warehouse.

    Tests read it; one re-runs an unchanged ingest, which must leave it as it was."""
    root = tmp_path_factory.mktemp("examples")
    studies, warehouse = root / "studies", root / "warehouse"
    for name in EXAMPLES:
        copy_study(name, studies)
    for name in EXAMPLES:
        run_study(studies, warehouse, name)
    return studies, warehouse


INGEST = ["raw_sources", "runs", "points", "quarantine", "mixture_points"]


@pytest.fixture(scope="session")
def public_study(tmp_path_factory, shared_data):
    """`public_study(name, full=True)`: (studies folder, warehouse) of a shipped public study, each in a
    warehouse of its own, materialized once per session: its ingest only (`full=False`), or every asset.

    A study first ingested and later asked for in full runs the rest into the same warehouse."""
    state: dict[str, tuple] = {}

    def get(name: str, *, full: bool = True):
        if name not in state:
            root = tmp_path_factory.mktemp(f"public_{name}")
            copy_study(name, root / "studies", public=True, shared=shared_data)
            state[name] = (root / "studies", root / "warehouse", None)
        studies, warehouse, done = state[name]
        if done != "full" and (full or done is None):
            run_study(studies, warehouse, name, selection=None if full else INGEST)
            state[name] = (studies, warehouse, "full" if full else "ingest")
        return studies, warehouse

    return get
