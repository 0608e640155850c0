"""Shared fixtures: where the public data lives, and temp warehouses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCALING_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public scaling-study data beside the checkout (`../shared/data`).

    Tests that need it skip when it is absent; with SCALING_REQUIRE_SHARED_DATA=1
    (set by .ci/run) its absence is a failure instead.
    """
    if not SHARED_DATA.is_dir():
        reason = f"public data folder {SHARED_DATA.name!r} not found beside the checkout (../shared/data)"
        if os.environ.get("SCALING_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _no_leftover_dagster_state_storage():
    """Dagster instances register their state storage in a context variable; one disposed in another
    test's fixture can leave it pointing at a dead instance (an internal of the pinned release), which
    breaks later materializations. Every test starts without one."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)
    yield
