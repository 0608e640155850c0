"""The ingest benchmark still runs end to end (on a small file) and ends with its RESULT lines.

Benchmarks are run by hand on an idle machine; this only keeps the script from breaking unseen when
the code it drives changes. No timing is asserted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ingest_benchmark_runs_and_reports_every_path(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_ingest.py"), "--rows", "20000",
                           "--repeats", "1", "--dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            fields = dict(f.split("=", 1) for f in line.split()[1:])
            results[" ".join(filter(None, (fields["path"], fields.get("output"))))] = fields
    assert set(results) == {"text_copy_floor", "points_floor", "narrow_points_floor", "byte_copy_floor", "land",
                            "land+normalize", "floor_sum text+points", "floor_sum text+narrow",
                            "floor_sum bytes+points", "floor_sum bytes+narrow"}
    for name, fields in results.items():
        assert fields["rows"] == "20000" and fields["repeats"] == "1"
        assert float(fields["ratio_vs_duckdb"]) > 0
        if not name.startswith("floor_sum"):
            assert float(fields["peak_rss_ratio_vs_duckdb"]) > 0
    # each child's own peak: the byte copy (no polars, no DuckDB) needs less than DuckDB's copy. When the
    # parent generated the file itself, every child inherited its peak and both read the same.
    assert float(results["byte_copy_floor"]["peak_rss_ratio_vs_duckdb"]) < 1
    # the points floors write as many points as ours does (the 20,000 losses and every 10th step's eval loss)
    assert {results[k]["points_rows"] for k in ("points_floor", "narrow_points_floor", "land+normalize")} == {"22000"}
    assert re.search(r"^\| scaling: land raw \+ normalize to `points` \| [\d,]+ \| [\d.]+x \|", proc.stdout, re.M)
