"""Nothing escapes the warehouse: names that become paths, lake containment, and the folders a study may read."""

from __future__ import annotations

import os

import polars as pl
import pytest

from scaling.errors import SourceError, SpecError, StorageError
from scaling.sources import resolve_location
from scaling.spec import NAME_MAX_LENGTH, check_name, load_study
from warehouse.lake import inside_lake, partition_dir, write_table

SOURCE = """
[[sources]]
name = {name}
kind = "training_logs"
location = {location}
format = "csv"
[sources.metrics]
loss = "loss"
"""


def study_file(folder, text, stem="toy"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.toml"
    path.write_text(text)
    return path


def source(name='"logs"', location='"logs/*.csv"'):
    return SOURCE.format(name=name, location=location)


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\\\b", "..", "x..y", "nl\\n", "tab\\tx", "a b", "study=a",
                                  "", "-x", "é"])
def test_bad_source_names_are_spec_errors(tmp_path, name):
    path = study_file(tmp_path, source(name=f'"{name}"'))
    with pytest.raises(SpecError, match="source name") as err:
        load_study(path)
    assert err.value.where.study == "toy" and err.value.where.field == "name"


@pytest.mark.parametrize("name", ["nl\\n", "../up", "a/b", "x" * 300, "ok\\u0000"])
def test_bad_study_names_are_spec_errors(tmp_path, name):
    path = study_file(tmp_path, f'[study]\nname = "{name}"\n' + source())
    with pytest.raises(SpecError, match="study name") as err:
        load_study(path)
    assert err.value.where.file == "toy.toml" and err.value.where.field == "study.name"
    assert "\n" not in str(err.value)  # one line, even for a name with a newline


def test_long_names_are_bounded_and_the_error_is_short(tmp_path):
    path = study_file(tmp_path, source(name='"' + "s" * 300 + '"'))
    with pytest.raises(SpecError, match=f"300 characters long; at most {NAME_MAX_LENGTH}") as err:
        load_study(path)
    assert len(str(err.value)) < 200 and err.value.where.source == "#1"
    assert check_name("s" * NAME_MAX_LENGTH, "source name") == "s" * NAME_MAX_LENGTH


def test_non_string_location_and_name_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="expected a non-empty string, got 5") as err:
        load_study(study_file(tmp_path, source(location="5")))
    assert err.value.where.field == "location" and err.value.where.source == "logs"
    with pytest.raises(SpecError, match="source name must be a string, got int 7"):
        load_study(study_file(tmp_path, source(name="7")))
    with pytest.raises(SpecError, match="source '#1': invalid value: 1 is not of type 'object'"):
        load_study(study_file(tmp_path, "sources = [1]\n"))


def test_partition_paths_stay_inside_the_lake(tmp_path):
    lake = tmp_path / "warehouse" / "lake"
    for study, src in (("ok", "../../x"), ("../../x", None), ("a/b", None), ("ok", "nl\n")):
        with pytest.raises(SpecError):
            partition_dir(lake, "raw", study, src)
    assert partition_dir(lake, "raw", "ok", "logs") == lake / "raw" / "study=ok" / "source=logs"
    # a table folder that is a symlink leaving the lake is refused, and nothing is written there
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    lake.mkdir(parents=True)
    (lake / "runs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="refusing to write outside the lake"):
        write_table(lake, "runs", "ok", pl.DataFrame({"a": [1]}))
    assert list(outside.iterdir()) == []
    with pytest.raises(StorageError):
        inside_lake(lake, lake / ".." / "x")


def test_locations_outside_the_roots_say_how_to_allow_them(tmp_path):
    studies, data = tmp_path / "studies", tmp_path / "data"
    (studies / "logs").mkdir(parents=True)
    data.mkdir()
    (studies / "logs" / "a.csv").write_text("loss\n1\n")
    (data / "b.csv").write_text("loss\n2\n")
    (tmp_path / "secret.csv").write_text("loss\n3\n")
    cache = tmp_path / "cache"

    assert [f.label for f in resolve_location("logs/*.csv", base_dir=studies, cache_dir=cache)] == ["logs/a.csv"]
    for location in ("../data/b.csv", str(data / "b.csv"), "../data/*.csv", "../secret.csv", "/etc/passwd"):
        with pytest.raises(SourceError, match="outside the folders study files may read.*--data-root") as err:
            resolve_location(location, base_dir=studies, cache_dir=cache)
        assert err.value.where.file == location
    # a configured data root is allowed, and nothing above it
    (got,) = resolve_location("../data/b.csv", base_dir=studies, cache_dir=cache, roots=[studies, data])
    assert got.path == data / "b.csv"
    with pytest.raises(SourceError, match="outside"):
        resolve_location("../secret.csv", base_dir=studies, cache_dir=cache, roots=[studies, data])


def test_symlinks_leaving_the_roots_are_refused(tmp_path):
    studies = tmp_path / "studies"
    (studies / "logs").mkdir(parents=True)
    (tmp_path / "secret.csv").write_text("loss\n3\n")
    (studies / "logs" / "a.csv").write_text("loss\n1\n")
    (studies / "logs" / "link.csv").symlink_to(tmp_path / "secret.csv")
    (studies / "dir").symlink_to(tmp_path, target_is_directory=True)
    for location in ("logs/link.csv", "logs/*.csv", "dir/secret.csv", "dir/*.csv"):
        with pytest.raises(SourceError, match="resolves to .*secret.csv"):
            resolve_location(location, base_dir=studies, cache_dir=tmp_path / "cache")


def test_study_data_roots_reach_resolution(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    path = study_file(tmp_path / "studies", source(location=f'"{data}/*.csv"'))
    spec = load_study(path, data_roots=[data])
    assert spec.allowed_roots == (path.parent, data.resolve())
    assert load_study(path).allowed_roots == (path.parent,)


def test_simulator_output_must_stay_in_the_studies_folder(tmp_path):
    for out in ("../elsewhere", "/srv/elsewhere", "a/../../b"):
        path = study_file(tmp_path / "studies", f'[study]\nsimulate = {{ out = "{out}" }}\n' + source())
        with pytest.raises(SpecError, match="may only write inside the studies folder") as err:
            load_study(path)
        assert err.value.where.field == "study.simulate.out"
    path = study_file(tmp_path / "studies", '[study]\nsimulate = { out = "_simulated/x" }\n' + source())
    assert load_study(path).simulate["out"] == "_simulated/x"
    (tmp_path / "studies" / "escape").symlink_to(tmp_path, target_is_directory=True)
    path = study_file(tmp_path / "studies", '[study]\nsimulate = { out = "escape/x" }\n' + source())
    with pytest.raises(SpecError, match="may only write inside"):
        load_study(path)


def test_data_roots_from_the_environment(monkeypatch, tmp_path):
    from warehouse.config import data_roots

    monkeypatch.setenv("SCALING_DATA_ROOTS", os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")]))
    assert data_roots() == (tmp_path / "a", tmp_path / "b")
    assert data_roots([str(tmp_path / "c")]) == (tmp_path / "c",)
    monkeypatch.delenv("SCALING_DATA_ROOTS")
    assert data_roots() == ()


def test_a_commit_record_cannot_switch_files_outside_the_lake(tmp_path):
    """The switch of a study's tables (`warehouse.ingest`) renames and removes only paths inside the lake,
    whatever a (damaged or hand-edited) commit record names."""
    from warehouse.ingest import _apply

    lake = tmp_path / "lake"
    (lake / "_state").mkdir(parents=True)
    victim = tmp_path / "outside.parquet"
    victim.write_bytes(b"keep")
    staged = lake / "_state" / "x.parquet"
    staged.write_bytes(b"new")
    for switch in ([[None, "../outside.parquet"]], [["_state/x.parquet", "../outside.parquet"]]):
        with pytest.raises(StorageError, match="refusing to write outside the lake"):
            _apply(lake, switch)
    assert victim.read_bytes() == b"keep" and staged.read_bytes() == b"new"


MIXTURE = """
[[sources]]
name = "mix"
kind = "mixture_runs"
[sources.mixture]
weights = "w.csv"
losses = "l.csv"
extra_tests = [{{ split = {split}, weights = "w2.csv", losses = "l2.csv" }}]
"""

LONG_MIXTURE = """
[[sources]]
name = "mix"
kind = "mixture_runs"
[sources.mixture]
layout = "long"
losses = "long.csv"
weight_columns = ["w_a", "w_b"]
split = {split}
"""


@pytest.mark.parametrize("split", ['"../../x"', '"a/b"', '"nl\\n"', '""', "3"])
def test_mixture_split_names_become_file_names_and_are_checked(tmp_path, split):
    """A held-out split names a plot file (`mixing_<split>.png`): the same check as every other name."""
    for text, field in ((MIXTURE, "mixture.extra_tests[0].split"), (LONG_MIXTURE, "mixture.split")):
        with pytest.raises(SpecError, match="split name") as err:
            load_study(study_file(tmp_path, text.format(split=split)))
        assert err.value.where.field == field and err.value.where.source == "mix"
    assert load_study(study_file(tmp_path, MIXTURE.format(split='"test_60m"'))).sources[0].mixture[
        "extra_tests"][0]["split"] == "test_60m"
