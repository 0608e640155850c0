"""Bad input through real materializations: clear errors naming where and what; good data untouched."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import query, run_study
from scaling.errors import ScalingError

HEADER = "_step,tokens,train/loss,lr\n"
GOOD = [f"{s},{s * 1000},{4.0 - s * 0.01:.4f},0.001\n" for s in range(1, 21)]

STUDY = """
[study]
name = "toy"

[[sources]]
name = "logs"
kind = "training_logs"
location = "{location}"
format = "csv"
run = "{{file_stem}}"
on_error = "{on_error}"
[sources.columns]
step = "_step"
tokens = "tokens"
learning_rate = "lr"
[sources.metrics]
loss = "{loss_column}"
[sources.defaults]
params = 1000000
"""


def write_study(tmp_path, *, location="logs/*.csv", on_error="fail", loss_column="train/loss"):
    studies = tmp_path / "studies"
    (studies / "logs").mkdir(parents=True, exist_ok=True)
    (studies / "toy.toml").write_text(STUDY.format(location=location, on_error=on_error, loss_column=loss_column))
    return studies


def write_log(studies, name, lines):
    (studies / "logs" / name).write_text("".join(lines))


def error_of(fn) -> ScalingError:
    with pytest.raises(Exception) as info:
        fn()
    err, seen = info.value, set()
    while err is not None and not isinstance(err, ScalingError) and id(err) not in seen:
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    err = err if isinstance(err, ScalingError) else None
    assert err is not None, f"no ScalingError behind {info.value!r}"
    return err


@pytest.fixture
def good_study(tmp_path):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    write_log(studies, "b.csv", [HEADER, *GOOD])
    warehouse = tmp_path / "warehouse"
    run_study(studies, warehouse, "toy")
    return studies, warehouse


def lake_snapshot(warehouse):
    """Every table partition file (the study's state folder `_state` holds no table data)."""
    lake = warehouse / "lake"
    return {p: p.read_bytes() for p in sorted(lake.rglob("data.parquet")) if p.relative_to(lake).parts[0] != "_state"}


def assert_untouched(warehouse, before):
    assert lake_snapshot(warehouse) == before
    assert query(warehouse, "SELECT count(*) AS n FROM points")["n"][0] == 40


def test_malformed_csv_line_names_file_and_line(good_study):
    studies, warehouse = good_study
    before = lake_snapshot(warehouse)
    write_log(studies, "b.csv", [HEADER, *GOOD[:5], "6,6000,3.94\n", *GOOD[6:]])
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    text = str(err)
    assert "study 'toy'" in text and "source 'logs'" in text and "b.csv" in text and "line 7" in text
    assert "expected 4 fields" in text
    assert_untouched(warehouse, before)


def test_missing_mapped_column(tmp_path):
    studies = write_study(tmp_path, loss_column="train/los")
    write_log(studies, "a.csv", [HEADER, *GOOD])
    err = error_of(lambda: run_study(studies, tmp_path / "w", "toy"))
    assert err.where.column == "train/los" and err.where.source == "logs" and "not found" in err.problem


def test_empty_file(good_study):
    studies, warehouse = good_study
    before = lake_snapshot(warehouse)
    write_log(studies, "b.csv", [])
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert "b.csv" in str(err) and "empty" in err.problem
    assert_untouched(warehouse, before)


def test_nan_loss(good_study):
    studies, warehouse = good_study
    before = lake_snapshot(warehouse)
    write_log(studies, "b.csv", [HEADER, *GOOD[:3], "4,4000,NaN,0.001\n", *GOOD[4:]])
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert err.where.file.endswith("b.csv") and err.where.line == 5 and err.where.column == "train/loss"
    assert "finite" in err.problem
    # the ingest is all-or-nothing: raw keeps its previous version along with runs and points
    assert_untouched(warehouse, before)


def test_duplicated_step(good_study):
    studies, warehouse = good_study
    write_log(studies, "b.csv", [HEADER, *GOOD[:10], GOOD[9], *GOOD[10:]])
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert "duplicated step 10" in err.problem and "run 'b'" in err.problem and err.where.line == 12


def test_wrong_type(good_study):
    studies, warehouse = good_study
    write_log(studies, "a.csv", [HEADER, *GOOD[:7], "8,8000,abc,0.001\n", *GOOD[8:]])
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert err.where.line == 9 and err.where.column == "train/loss" and "expected a number, got 'abc'" in err.problem


def test_unreachable_url(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    studies = write_study(tmp_path, location=f"http://127.0.0.1:{port}/a.csv")
    err = error_of(lambda: run_study(studies, tmp_path / "w", "toy"))
    assert f"127.0.0.1:{port}/a.csv" in str(err) and "source 'logs'" in str(err)


def test_url_source_over_loopback(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "a.csv").write_text(HEADER + "".join(GOOD))
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.csv"
        studies = write_study(tmp_path, location=url)
        run_study(studies, tmp_path / "w", "toy")
        pts = query(tmp_path / "w", "SELECT run, file, count(*) AS n FROM points GROUP BY ALL")
        assert pts.rows() == [("a", url, 20)]
    finally:
        server.shutdown()
        server.server_close()


def test_quarantine_sets_bad_rows_aside_with_reasons(tmp_path):
    studies = write_study(tmp_path, on_error="quarantine")
    write_log(studies, "a.csv", [HEADER, *GOOD[:3], "4,4000,NaN,0.001\n", *GOOD[4:7], "8,8000,abc,0.001\n",
                                 *GOOD[8:10], GOOD[9], *GOOD[10:]])
    run_study(studies, tmp_path / "w", "toy")
    q = query(tmp_path / "w", "SELECT file, row, \"column\", reason FROM quarantine ORDER BY row")
    assert q["row"].to_list() == [5, 9, 12]
    assert "finite" in q["reason"][0] and "expected a number" in q["reason"][1] and "duplicated" in q["reason"][2]
    pts = query(tmp_path / "w", "SELECT step FROM points ORDER BY step")
    assert pts.height == 18 and 4 not in pts["step"].to_list() and 8 not in pts["step"].to_list()
