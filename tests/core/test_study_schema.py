"""The JSON Schema of study files is generated from the loader's own key sets: it validates every shipped
study, lists exactly the keys the loader accepts, and the committed copy is current."""

from __future__ import annotations

import json
import tomllib

import jsonschema
import pytest

from helpers_paths import REPO
from scaling.errors import SpecError
from scaling.spec import discover_studies, load_study
from scaling.study_schema import _types, key_sets, schema_text, study_schema

SHIPPED = [p for folder in (REPO / "studies", REPO / "studies" / "public") for p in discover_studies(folder)]


def test_committed_schema_is_current():
    assert (REPO / "studies" / "study.schema.json").read_text() == schema_text(), \
        "regenerate: python -m scaling.study_schema > studies/study.schema.json"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_study_validates_against_the_schema(path):
    jsonschema.validate(tomllib.loads(path.read_text()), study_schema())


def test_schema_types_name_only_keys_the_loader_accepts():
    sets = key_sets()
    for table, types in _types().items():
        assert set(types) <= sets[table][0], f"{table}: typed keys the loader rejects: {set(types) - sets[table][0]}"


BASE = """
[study]
name = "s1"
{study}
[[sources]]
name = "logs"
kind = "training_logs"
location = "logs/*.csv"
format = "csv"
{source}
[sources.metrics]
loss = "train/loss"
"""


def _load(tmp_path, study="", source=""):
    p = tmp_path / "s1.toml"
    p.write_text(BASE.format(study=study, source=source))
    return load_study(p)


@pytest.mark.parametrize("table", ["study", "source"])
def test_schema_and_loader_agree_on_every_key(tmp_path, table):
    """Each key the schema lists is known to the loader (any error is about its value, never 'unknown key'),
    and a key the schema does not list is rejected by both."""
    schema = study_schema()["$defs"][table]["properties"]
    for key in schema:
        if key in ("name", "kind", "location", "format", "metrics"):
            continue
        kw = {table: f"{key} = 1\n"}
        try:
            _load(tmp_path, **kw)
        except SpecError as exc:
            assert "unknown key" not in exc.problem, (key, exc)
    with pytest.raises(SpecError, match="unknown key"):
        _load(tmp_path, **{table: "colour = 1\n"})
    doc = tomllib.loads(BASE.format(**{"study": "", "source": "", table: "colour = 1\n"}))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, study_schema())


def test_schema_checks_values_an_editor_can_check():
    doc = tomllib.loads(BASE.format(study='flops_convention = "6NDD"\n', source=""))
    with pytest.raises(jsonschema.ValidationError, match="6NDD"):
        jsonschema.validate(doc, study_schema())
    assert json.loads(schema_text())["required"] == ["sources"]


def test_a_value_of_the_wrong_shape_is_a_spec_error_naming_the_field(tmp_path):
    with pytest.raises(SpecError) as info:
        _load(tmp_path, source="columns = 1\n")
    assert (info.value.where.study, info.value.where.source, info.value.where.field) == ("s1", "logs", "columns")
    with pytest.raises(SpecError) as info:
        _load(tmp_path, study="group_by = 3\n")
    assert info.value.where.field == "study.group_by"
