"""A study's tables agree after any failure or kill: every table comes from one ingest.

The ingest of a small study is killed (SIGKILL, a real subprocess running a real materialization)
before each rename or removal it makes in the lake; after each kill the tables are either all from
the previous ingest or all from the new one, once `recover` (which every later run and `scaling sql`
call) has finished a switch the kill interrupted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from helpers import query
from test_bad_input import GOOD, HEADER, write_log, write_study
from warehouse.ingest import recover, state_dir

KILLER = Path(__file__).with_name("kill_ingest.py")
OLD = {"raw": 40, "runs": 2, "points": 40}   # logs a and b
NEW = {"raw": 60, "runs": 3, "points": 60}   # logs a, b and c


def ingest(studies: Path, warehouse: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(KILLER), str(studies), str(warehouse), "toy", str(kill_at)],
                          capture_output=True, text=True, timeout=600)


def rows(lake: Path) -> dict[str, int]:
    """Rows of each table's partition of the study, read straight from the lake's files."""
    files = {"raw": lake / "raw" / "study=toy" / "source=logs" / "data.parquet",
             "runs": lake / "runs" / "study=toy" / "data.parquet",
             "points": lake / "points" / "study=toy" / "data.parquet"}
    return {t: pl.scan_parquet(f).select(pl.len()).collect().item() if f.exists() else 0 for t, f in files.items()}


@pytest.mark.slow
def test_a_kill_at_any_step_of_an_ingest_leaves_every_table_from_one_ingest(tmp_path):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    write_log(studies, "b.csv", [HEADER, *GOOD])
    template = tmp_path / "template"
    assert ingest(studies, template).returncode == 0
    assert rows(template / "lake") == OLD
    write_log(studies, "c.csv", [HEADER, *GOOD])

    full = tmp_path / "full"
    shutil.copytree(template, full)
    done = ingest(studies, full)
    assert done.returncode == 0, done.stderr[-2000:]
    assert rows(full / "lake") == NEW
    steps = int(done.stdout.strip().rsplit("ops=", 1)[1])
    assert steps >= 8  # staged files, pending records, commit record, switch renames

    def killed_at(n: int) -> subprocess.CompletedProcess:
        shutil.copytree(template, tmp_path / f"killed{n}")
        return ingest(studies, tmp_path / f"killed{n}", kill_at=n)

    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(range(1, steps + 1), pool.map(killed_at, range(1, steps + 1))))
    outcomes = []
    for n, killed in runs.items():
        w = tmp_path / f"killed{n}"
        assert killed.returncode == -9, f"step {n} was not reached: {killed.stderr[-2000:]}"
        lake = w / "lake"
        seen = rows(lake)
        switching = "switch" in json.loads((state_dir(lake, "toy") / "commit.json").read_text())
        # before recovery: one ingest's tables, or a recorded switch that recovery finishes
        assert seen in (OLD, NEW) or switching, f"kill before step {n}: tables disagree {seen}"
        recover(lake, "toy")
        seen = rows(lake)
        assert seen in (OLD, NEW), f"kill before step {n}: tables disagree after recovery {seen}"
        counts = query(w, "SELECT (SELECT count(*) FROM raw) AS raw, (SELECT count(*) FROM runs) AS runs, "
                          "(SELECT count(*) FROM points) AS points").to_dicts()[0]
        assert counts == seen
        outcomes.append((n, "new" if seen == NEW else "old", switching))
    # kills before the commit record keep the previous ingest, kills after it complete the new one
    kinds = [kind for _, kind, _ in outcomes]
    assert "old" in kinds and "new" in kinds
    assert kinds == sorted(kinds, key=lambda k: k == "new"), outcomes
    assert any(switching for _, _, switching in outcomes)
    # and the next run over a killed warehouse lands the new ingest
    again = ingest(studies, tmp_path / f"killed{outcomes[0][0]}")
    assert again.returncode == 0 and rows(tmp_path / f"killed{outcomes[0][0]}" / "lake") == NEW
