"""Property-based fuzzing of study files and input files through load and ingest.

Whatever a study file or a data file holds, loading and ingesting it either works or raises one
of the project's errors (`ScalingError`), and nothing else in the warehouse changes: the files of a
study ingested before are byte-identical, and nothing is written outside the lake. (Whether a
failed ingest of the fuzzed study itself leaves its own layers consistent is tested by the
all-or-nothing ingest tests.)
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.errors import ScalingError
from scaling.normalize.study import normalize_study
from scaling.spec import load_study
from warehouse.lake import atomic_sink_parquet, partition_dir, write_table
from warehouse.raw import land_source, read_raw
from warehouse.tables import POINTS, QUARANTINE, RUNS

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BASE_SOURCE = {
    "name": "logs", "kind": "training_logs", "location": "logs/*.csv", "format": "csv", "run": "{file_stem}",
    "columns": {"step": "_step", "tokens": "tokens"}, "metrics": {"loss": "train/loss"},
    "defaults": {"params": 1000000},
}
GOOD_CSV = "_step,tokens,train/loss\n" + "".join(f"{s},{s * 1000},{4 - s / 100}\n" for s in range(1, 11))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string (\uXXXX escapes included)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict) -> str:
    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                lines.append(f"[[{json.dumps(key)}]]")
                lines += [f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in table.items()]
        elif isinstance(value, dict):
            lines.append(f"[{json.dumps(key)}]")
            lines += [f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{json.dumps(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


NASTY = st.sampled_from([
    "../../x", "..", "a/b", "nl\n", "x" * 300, "/etc/passwd", "../outside/*.csv", "logs/*.csv", "logs/a.csv",
    "logs", "http://127.0.0.1:9/x.csv", "s3://b/k", "csv", "jsonl", "json", "text", "parquet", "long", "wide",
    "{model}", "{}", "{_row}-{file}", "quarantine", "all", "loss", "train/loss", "tokens", "_step", "ok",
    "tokens > 5", "(SELECT 1)", "read_csv('/etc/passwd')", "", " ", "\x00", "é", "*",
])
SCALARS = st.one_of(NASTY, st.text(max_size=12), st.integers(-10, 10**12), st.booleans(),
                    st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(NASTY, st.text(max_size=6)), inner, max_size=3)),
    max_leaves=6)
SOURCE_KEYS = sorted(BASE_SOURCE) + ["options", "filter", "final", "on_error", "unit", "units", "layout",
                                     "metric_columns", "metadata", "runs", "mixture", "bogus"]


@st.composite
def study_documents(draw) -> str:
    """A valid study, then a few random edits: set a source key or a study key to anything, or drop one."""
    source = dict(BASE_SOURCE)
    study = {"name": "fuzz"}
    doc = {"study": study, "sources": [source]}
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["source", "source", "source", "study", "top", "columns", "drop"]))
        if where == "source":
            source[draw(st.sampled_from(SOURCE_KEYS))] = draw(VALUES)
        elif where == "study":
            study[draw(st.sampled_from(["name", "simulate", "group_by", "flops_convention", "checks"]))] = draw(VALUES)
        elif where == "columns":
            columns = source.get("columns") if isinstance(source.get("columns"), dict) else {}
            source["columns"] = {**columns, draw(st.sampled_from(["run", "step", "tokens", "params", "x"])):
                                 draw(VALUES)}
        elif where == "top":
            doc[draw(st.sampled_from(["fits", "forecasts", "mixing", "extra"]))] = draw(VALUES)
        else:
            source.pop(draw(st.sampled_from(sorted(source))), None)
    return toml_document(doc)


def digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def ingest(study_file: Path, lake: Path, downloads: Path, spill: Path) -> None:
    """What `raw_sources` and `normalized` do for one study, without Dagster."""
    spec = load_study(study_file)
    for src in spec.sources:
        land_source(spec, src, lake, downloads)
    result = normalize_study(spec, lambda s: read_raw(lake, spec.name, s, lazy=True), downloads, spill_dir=spill)
    try:
        if result.points is not None:
            atomic_sink_parquet(POINTS.conform(result.points), partition_dir(lake, "points", spec.name) / "data.parquet")
            write_table(lake, "runs", spec.name, RUNS.conform(result.runs))
        if result.quarantine.height:
            write_table(lake, "quarantine", spec.name, QUARANTINE.conform(result.quarantine))
    finally:
        result.cleanup()


@pytest.fixture
def space(tmp_path):
    """A warehouse already holding study `base`, and a studies folder for the fuzzed study."""
    root = tmp_path / "space"
    studies, lake = root / "studies", root / "warehouse" / "lake"
    (studies / "logs").mkdir(parents=True)
    (studies / "logs" / "a.csv").write_text(GOOD_CSV)
    base = studies / "base.toml"
    base.write_text(toml_document({"study": {"name": "base"}, "sources": [BASE_SOURCE]}))
    (root / "spill").mkdir()
    ingest(base, lake, root / "warehouse" / "downloads", root / "spill")
    base.unlink()
    return root


def check_one(root: Path, study_text: str | None = None, data: bytes | None = None, fmt: str = "csv",
              on_error: str = "fail") -> None:
    studies, warehouse = root / "studies", root / "warehouse"
    lake = warehouse / "lake"
    for p in list(studies.iterdir()):
        if p.name != "logs":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    logs = studies / "logs"
    shutil.rmtree(logs)
    logs.mkdir()
    (logs / "a.csv").write_text(GOOD_CSV)
    if data is not None:
        (logs / f"b.{fmt}").write_bytes(data)
    if study_text is None:
        source = {**BASE_SOURCE, "location": f"logs/*.{fmt}", "format": fmt, "on_error": on_error}
        study_text = toml_document({"study": {"name": "fuzz"}, "sources": [source]})
    path = studies / "fuzz.toml"
    path.write_bytes(study_text.encode("utf-8", "surrogatepass"))
    base_before = {k: v for k, v in digest_tree(lake).items() if "study=base" in k}
    outside_before = digest_tree(root.parent)
    try:
        ingest(path, lake, warehouse / "downloads", root / "spill")
    except ScalingError as exc:
        assert str(exc) and "Traceback" not in str(exc)
    except Exception as exc:  # anything else is a bug: show the input that caused it
        raise AssertionError(f"{type(exc).__name__}: {exc}\n--- study file ---\n{study_text}"
                             f"\n--- data ---\n{data!r}") from exc
    after = digest_tree(lake)
    assert {k: v for k, v in after.items() if "study=base" in k} == base_before
    outside_after = digest_tree(root.parent)
    changed = {k for k in set(outside_before) | set(outside_after) if outside_before.get(k) != outside_after.get(k)}
    allowed = ("space/warehouse/", "space/studies/", "space/spill/")
    assert not [k for k in changed if not k.startswith(allowed)], changed


@pytest.mark.slow
@FUZZ
@given(text=study_documents())
def test_fuzzed_study_files(space, text):
    check_one(space, study_text=text)


@pytest.mark.slow
@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_as_a_study_file(space, text):
    check_one(space, study_text=text)


CSV_PIECES = st.sampled_from([b"_step", b"tokens", b"train/loss", b",", b"\n", b"\r\n", b'"', b"1", b"2.5", b"-3",
                              b"nan", b"inf", b"", b" ", b"\xff", b"\xc3\xa9", b"\x00", b"1e400", b"abc", b"#",
                              b"_file", b"_row"])


@st.composite
def csv_bytes(draw) -> bytes:
    """A header that often matches the study, then rows of random pieces (or raw random bytes)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    header = draw(st.sampled_from([b"_step,tokens,train/loss\n", b"_step,tokens\n", b"train/loss,train/loss\n",
                                   b"", b"_step;tokens;train/loss\n"]))
    rows = draw(st.lists(st.lists(CSV_PIECES, max_size=6).map(b"".join), max_size=8))
    return header + b"\n".join(rows)


@pytest.mark.slow
@FUZZ
@given(data=csv_bytes(), on_error=st.sampled_from(["fail", "quarantine"]))
def test_fuzzed_csv_files(space, data, on_error):
    check_one(space, data=data, fmt="csv", on_error=on_error)


JSONL_LINES = st.one_of(
    st.dictionaries(st.sampled_from(["_step", "tokens", "train/loss", "x"]),
                    st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=5), st.none(),
                              st.lists(st.integers(), max_size=2), st.booleans()), max_size=4)
    .map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=20))


@pytest.mark.slow
@FUZZ
@given(lines=st.lists(JSONL_LINES, max_size=8), on_error=st.sampled_from(["fail", "quarantine"]))
def test_fuzzed_jsonl_files(space, lines, on_error):
    check_one(space, data=b"\n".join(lines), fmt="jsonl", on_error=on_error)
