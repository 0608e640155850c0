"""Attacks on the warehouse through real materializations and the CLI: nothing escapes, every bad input
gets a located one-line error, and what the warehouse already holds is left as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, query, run_study
from scaling.errors import ScalingError, SourceError, StorageError
from test_bad_input import GOOD, HEADER, assert_untouched, error_of, lake_snapshot, write_log, write_study


def files_outside(tmp_path: Path, warehouse: Path, studies: Path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.is_file()
            and not p.is_relative_to(warehouse) and not p.is_relative_to(studies)]


def test_a_source_named_to_climb_out_writes_nothing_outside(tmp_path):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    toml = studies / "toy.toml"
    toml.write_text(toml.read_text().replace('name = "logs"', 'name = "../../../x"'))
    warehouse = tmp_path / "deep" / "warehouse"
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert "source name" in str(err) and err.where.study == "toy"
    assert files_outside(tmp_path, warehouse, studies) == []


def test_a_study_name_with_a_newline_is_refused_and_others_still_query(tmp_path):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    warehouse = tmp_path / "warehouse"
    run_study(studies, warehouse, "toy")
    bad = studies / "evil.toml"
    bad.write_text((studies / "toy.toml").read_text().replace('name = "toy"', 'name = "nl\\n"'))
    err = error_of(lambda: run_study(studies, warehouse, "nl\n"))
    assert "study name" in str(err)
    assert query(warehouse, "SELECT count(*) AS n FROM raw")["n"][0] == 20


def test_a_location_outside_the_roots_fails_and_the_data_root_allows_it(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("".join([HEADER, *GOOD]))
    studies = write_study(tmp_path, location=f"{data}/*.csv")
    warehouse = tmp_path / "warehouse"
    err = error_of(lambda: run_study(studies, warehouse, "toy", data_roots=()))
    assert isinstance(err, SourceError) and "outside the folders study files may read" in str(err)
    assert "--data-root" in str(err) and err.where.source == "logs"
    assert not (warehouse / "lake" / "raw").exists()
    run_study(studies, warehouse, "toy", data_roots=(data,))
    assert query(warehouse, "SELECT count(*) AS n FROM points")["n"][0] == 20


def test_invalid_utf8_on_the_fast_path_names_the_line_and_latin1_reads(tmp_path):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    (studies / "logs" / "b.csv").write_bytes(
        "".join([HEADER, *GOOD[:4]]).encode() + "5,5000,3.95,0.001\n6,6000,3.94,caf\u00e9\n".encode("latin-1"))
    warehouse = tmp_path / "warehouse"
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert str(err).startswith("study 'toy', source 'logs', file 'logs/b.csv', line 7: not valid UTF-8")
    assert "options.encoding" in str(err)

    toml = studies / "toy.toml"
    toml.write_text(toml.read_text().replace('format = "csv"', 'format = "csv"\noptions = { encoding = "latin-1" }'))
    err = error_of(lambda: run_study(studies, warehouse, "toy"))  # read now; the text is not a learning rate
    assert "line 7, column 'lr': expected a number for learning_rate, got 'café'" in str(err)


def test_an_empty_run_id_column_is_a_located_error(tmp_path):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", ["model," + HEADER, *[f"m1,{g}" for g in GOOD[:3]], f",{GOOD[3]}"])
    toml = studies / "toy.toml"
    toml.write_text(toml.read_text().replace('run = "{file_stem}"', 'run = "{model}-x"'))
    err = error_of(lambda: run_study(studies, tmp_path / "warehouse", "toy"))
    assert str(err) == ("study 'toy', source 'logs', file 'logs/a.csv', line 5, column 'model': empty run id: "
                        "the run template '{model}-x' (columns ['model']) needs a value here")


@pytest.fixture
def tiny_mount(tmp_path):
    """A 16 MiB tmpfs at tmp_path/mnt (skips where mounting is not permitted)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_a_storage_error_and_the_lake_keeps_its_data(tmp_path, tiny_mount):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    write_log(studies, "b.csv", [HEADER, *GOOD])
    warehouse = tiny_mount / "warehouse"
    run_study(studies, warehouse, "toy")
    before = lake_snapshot(warehouse)
    filler = tiny_mount / "filler"
    with open(filler, "wb", buffering=0) as out:  # take every free byte of the file system
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    rows = [f"{s},{s * 1000},{4.0 - s * 0.001:.4f},0.001\n" for s in range(1, 20001)]
    write_log(studies, "b.csv", [HEADER, *rows])
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert isinstance(err, StorageError) and "No space left on device" in str(err)
    assert "\n" not in str(err)
    filler.unlink()
    assert_untouched(warehouse, before)


def test_a_read_only_warehouse_is_a_storage_error(tmp_path, tiny_mount):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    warehouse = tiny_mount / "warehouse"
    run_study(studies, warehouse, "toy")
    before = lake_snapshot(warehouse)
    write_log(studies, "b.csv", [HEADER, *GOOD])
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_mount)], check=True)
    err = error_of(lambda: run_study(studies, warehouse, "toy"))
    assert isinstance(err, StorageError) and "read-only file system" in str(err)
    assert lake_snapshot(warehouse) == before


def scaling_cli(tmp_path, *args, env=None):
    full = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(tmp_path / "home"), **(env or {})}
    full.pop("SCALING_DATA_ROOTS", None)
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_scaling_run_prints_one_line_errors_and_data_root_allows_reading(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("".join([HEADER, *GOOD]))
    studies = write_study(tmp_path, location="../data/*.csv")
    args = ["--studies", str(studies), "--warehouse", str(tmp_path / "warehouse")]
    proc = scaling_cli(tmp_path, *args, "run", "--no-summary")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "outside the folders" in line]
    assert len(lines) == 1 and "study 'toy', source 'logs', file '../data/*.csv'" in lines[0]

    proc = scaling_cli(tmp_path, *args, "--data-root", "data", "run", "--no-summary")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert query(tmp_path / "warehouse", "SELECT count(*) AS n FROM points")["n"][0] == 20


def test_readme_public_command_passes_the_data_root():
    results = (REPO / "docs" / "results.md").read_text()
    assert "scaling --studies studies/public --data-root ../shared/data --warehouse .warehouse-public run" in results
    assert "SCALING_DATA_ROOTS" in (REPO / "README.md").read_text() and "SCALING_DATA_ROOTS" in (REPO / "studies" / "README.md").read_text()


def test_storage_errors_are_scaling_errors():
    assert issubclass(StorageError, ScalingError)


@pytest.fixture
def read_only(tmp_path):
    """`read_only(folder)` makes `folder` read-only for this process: a read-only bind mount as root (who
    writes through file modes), else the write bits removed; skips where neither is possible."""
    mounted, chmodded = [], []

    def make(folder: Path) -> None:
        if os.geteuid() != 0:
            for p in [folder, *folder.rglob("*")]:
                if not p.is_symlink():
                    p.chmod(p.stat().st_mode & ~0o222)
                    chmodded.append(p)
            return
        done = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a read-only folder here (bind mount refused: {done.stderr.strip()})")
        mounted.append(folder)
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a read-only folder here (read-only remount refused: {done.stderr.strip()})")

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    for p in chmodded:
        p.chmod(p.stat().st_mode | 0o200)


def warehouse_files(warehouse: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(warehouse.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_scaling_run_on_a_read_only_warehouse_is_one_line_and_changes_nothing(tmp_path, read_only):
    studies = write_study(tmp_path)
    write_log(studies, "a.csv", [HEADER, *GOOD])
    warehouse = tmp_path / "warehouse"
    args = ["--studies", str(studies), "--warehouse", str(warehouse), "run"]
    first = scaling_cli(tmp_path, *args, "--no-summary")
    assert first.returncode == 0, first.stdout + first.stderr
    # the catalog is older than the lake (as in a copy taken while a run was switching tables): the
    # run rebuilds it, and the study has a new log to ingest
    state = warehouse / ".catalog.duckdb.state"
    state.write_text('{"state": "older"}')
    write_log(studies, "b.csv", [HEADER, *GOOD])
    before = warehouse_files(warehouse)
    read_only(warehouse)
    proc = scaling_cli(tmp_path, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    catalog = [line for line in proc.stderr.splitlines() if "cannot write" in line and "/warehouse/catalog" in line]
    assert len(catalog) == 1 and catalog[0].endswith("the warehouse is on a read-only file system"), out
    assert "failed: updating the catalog" in proc.stderr and "1 of 1 studies failed: toy" in proc.stderr
    assert "Summary (1 studies" in proc.stdout  # from the catalog as it was
    # the read-only warehouse still answers SQL
    asked = scaling_cli(tmp_path, "--warehouse", str(warehouse), "sql", "--csv", "SELECT count(*) AS n FROM points")
    assert asked.returncode == 0 and asked.stdout.split() == ["n", "20"], asked.stdout + asked.stderr
    assert warehouse_files(warehouse) == before


@pytest.mark.slow
def test_a_metadata_table_under_a_data_root_keeps_the_study_up_to_date(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("".join([HEADER, *GOOD]))
    (data / "meta.csv").write_text("run,params\na,2000000\n")
    studies = write_study(tmp_path, location=f"{data}/a.csv")
    toml = studies / "toy.toml"
    toml.write_text(toml.read_text().replace("[sources.columns]", f'metadata = "{data}/meta.csv"\n'
                                             '[sources.metadata_columns]\nrun = "run"\nparams = "params"\n'
                                             "[sources.columns]"))
    args = ["--studies", str(studies), "--warehouse", str(tmp_path / "warehouse"), "--data-root", str(data), "run",
            "--no-summary"]
    first = scaling_cli(tmp_path, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "running toy" in first.stdout
    assert query(tmp_path / "warehouse", "SELECT DISTINCT params FROM runs")["params"].to_list() == [2000000]
    again = scaling_cli(tmp_path, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "toy: up to date" in again.stdout and "running toy" not in again.stdout, again.stdout


def test_a_catalog_rebuild_on_a_full_disk_is_a_storage_error_and_keeps_the_catalog(tiny_mount):
    """DuckDB reports a failed write as its own IOException: the catalog rebuild says it in one line too."""
    import polars as pl

    from warehouse.catalog import build_catalog
    from warehouse.lake import write_table
    from warehouse.tables import RUNS

    warehouse = tiny_mount / "warehouse"
    lake, catalog = warehouse / "lake", warehouse / "catalog.duckdb"
    write_table(lake, "runs", "toy", RUNS.conform(pl.DataFrame({"study": ["toy"], "run": ["a"]})))
    build_catalog(catalog, lake)
    before = catalog.read_bytes()
    with open(tiny_mount / "filler", "wb", buffering=0) as out:  # take every free byte of the file system
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(StorageError) as err:
        build_catalog(catalog, lake)
    assert str(err.value).startswith(f"cannot write {catalog}: No space left on device"), err.value
    assert "\n" not in str(err.value) and catalog.read_bytes() == before
    assert [p.name for p in warehouse.iterdir() if p.name.endswith(".tmp")] == []
