"""The code location loads: in process, with `dagster definitions validate`, and with `dg check defs`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import Definitions

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_definitions_load_and_validate():
    from pipelines.definitions import defs

    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {"study_files_sensor", "study_automation"} <= {s.name for s in repo.sensor_defs}
    assert "refresh_url_sources" in {s.name for s in repo.schedule_defs}
    assert repo.has_job("all_studies")


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "DAGSTER_HOME": str(home), "SCALING_WAREHOUSE": str(tmp_path / "warehouse"),
            "SCALING_STUDIES": str(REPO / "studies"), "DAGSTER_DISABLE_TELEMETRY": "1"}


@pytest.mark.parametrize("command, success", [
    (["dagster", "definitions", "validate", "-m", "pipelines.definitions"], "All code locations passed validation"),
    (["dg", "check", "defs"], "All definitions loaded successfully"),
], ids=["dagster-definitions-validate", "dg-check-defs"])
def test_the_command_line_validates_the_code_location(command, success, tmp_path):
    exe = BIN / command[0]
    if not exe.exists():
        pytest.fail(f"{command[0]} is not installed beside the interpreter ({exe.name} missing)")
    proc = subprocess.run([str(exe), *command[1:]], cwd=REPO, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert success in output, output
