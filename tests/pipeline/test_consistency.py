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

from warehouse.catalog import open_catalog
from warehouse.catalog import query as catalog_query
from test_bad_input import GOOD, HEADER, write_log, write_study
from warehouse.ingest import recover, state_dir

KILLER = Path(__file__).with_name("kill_ingest.py")
# logs a and b, two mixture runs; then log c (one bad row, set aside in the quarantine) and a third mixture run
OLD = {"raw": 40 + 4, "runs": 2, "points": 40, "quarantine": 0, "mixture_points": 8}
NEW = {"raw": 61 + 6, "runs": 3, "points": 60, "quarantine": 1, "mixture_points": 12}
TABLES = tuple(OLD)
MIXTURE = """
[[sources]]
name = "mix"
kind = "mixture_runs"
[sources.mixture]
weights = "mix/weights.csv"
losses = "mix/losses.csv"
"""


def write_mixtures(studies: Path, n: int) -> None:
    """`n` mixture runs over two domains, with their losses on two validation domains."""
    (studies / "mix").mkdir(exist_ok=True)
    (studies / "mix" / "weights.csv").write_text("index,a,b\n" + "".join(f"{i},{0.2 + 0.2 * i},{0.8 - 0.2 * i}\n"
                                                                        for i in range(n)))
    (studies / "mix" / "losses.csv").write_text("index,a,b\n" + "".join(f"{i},{3.0 - 0.1 * i},{3.5 - 0.1 * i}\n"
                                                                        for i in range(n)))


def ingest(studies: Path, warehouse: Path, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(KILLER), str(studies), str(warehouse), "toy", str(kill_at)],
                          capture_output=True, text=True, timeout=600)


def rows(lake: Path) -> dict[str, int]:
    """Rows of each table's partition of the study (every source's, for `raw`), read straight from the lake's files."""
    def count(files) -> int:
        return sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)

    return {t: count((lake / t / "study=toy").glob("**/data.parquet")) for t in TABLES}


@pytest.mark.slow
def test_a_kill_at_any_step_of_an_ingest_leaves_every_table_from_one_ingest(tmp_path):
    studies = write_study(tmp_path, on_error="quarantine")
    (studies / "toy.toml").write_text((studies / "toy.toml").read_text() + MIXTURE)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    write_log(studies, "b.csv", [HEADER, *GOOD])
    write_mixtures(studies, 2)
    template = tmp_path / "template"
    first = ingest(studies, template)
    assert first.returncode == 0, first.stderr[-2000:]
    assert rows(template / "lake") == OLD
    write_log(studies, "c.csv", [HEADER, *GOOD, "21,21000,oops,0.001\n"])
    write_mixtures(studies, 3)

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
        # as `scaling sql` reads it: the catalog brought up to date (a table may have gained its first rows)
        con = open_catalog(w / "catalog.duckdb", lake)
        try:
            counts = catalog_query(con, "SELECT " + ", ".join(f"(SELECT count(*) FROM {t}) AS {t}"
                                                               for t in TABLES)).to_dicts()[0]
        finally:
            con.close()
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
