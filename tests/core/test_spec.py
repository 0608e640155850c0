"""Study files are validated up front; errors name the study, the source and the field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scaling.errors import SpecError
from scaling.spec import discover_studies, load_study

BASE = """
[study]
name = "s1"

[[sources]]
name = "logs"
kind = "training_logs"
location = "logs/*.csv"
format = "csv"
[sources.metrics]
loss = "train/loss"
"""


def load(tmp_path, text):
    p = tmp_path / "s1.toml"
    p.write_text(text)
    return load_study(p)


def test_shipped_studies_are_valid():
    from helpers_paths import REPO

    for folder in (REPO / "studies", REPO / "studies" / "public"):
        for path in discover_studies(folder):
            spec = load_study(path)
            assert spec.sources


@pytest.mark.parametrize("text, field, words", [
    (BASE.replace('name = "s1"', 'name = "s1"\ncolour = "red"'), "study.colour", "unknown key"),
    (BASE.replace('format = "csv"', 'format = "csv"\ncolour = "red"'), "colour", "unknown key"),
    (BASE.replace('kind = "training_logs"', 'kind = "logs"'), "kind", "expected one of"),
    (BASE.replace('format = "csv"', 'format = "xlsx"'), "format", "expected one of"),
    (BASE.replace('format = "csv"', 'format = "csv"\nunit = "nat"'), "unit", "expected one of"),
    (BASE + '[sources.units]\nloss = "joules"\n', "units.loss", "expected one of"),
    (BASE.replace('location = "logs/*.csv"\n', ""), "location", "missing required key"),
    (BASE + '[sources.defaults]\nparams = "big"\n', "defaults.params", "expected float"),
    (BASE + '[sources.defaults]\nwidth = 3\n', "defaults.width", "unknown run metadata key"),
    (BASE + '[sources.columns]\nsteps = "_step"\n', "columns.steps", "unknown canonical column"),
    (BASE.replace("[sources.metrics]\nloss = \"train/loss\"\n", ""), "metrics", "needs `metrics`"),
    (BASE.replace('format = "csv"', 'format = "text"'), "options.pattern", "regex"),
])
def test_invalid_specs_name_the_field(tmp_path, text, field, words):
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    err = info.value
    assert err.where.study == "s1" and err.where.field == field and words in err.problem
    if not field.startswith("study"):
        assert err.where.source == "logs"


def test_invalid_toml_names_the_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load(tmp_path, "[study\n")
    assert "invalid TOML" in info.value.problem and info.value.where.file == "s1.toml"


def test_fit_plan_validation(tmp_path):
    # checked when the study loads, not first when the fits run
    with pytest.raises(SpecError) as info:
        load(tmp_path, BASE + '\n[[fits]]\nlaw = "chinchilla"\ntarget = "loss"\nbounds = { gamma = [0, 1] }\n')
    assert "no parameter 'gamma'" in info.value.problem
    with pytest.raises(SpecError) as info:
        load(tmp_path, BASE + '\n[[fits]]\nlaw = "chinchila"\ntarget = "loss"\n')
    assert "unknown law 'chinchila'" in info.value.problem


def test_fit_points_default_by_law_and_recorded_in_settings(tmp_path):
    from scaling.plan.fits import plan_fits

    spec = load(tmp_path, BASE + '\n[[fits]]\nlaw = "chinchilla"\ntarget = "loss"\n'
                '\n[[fits]]\nlaw = "lr_annealing"\ntarget = "loss"\nby_run = true\n')
    final, curve = plan_fits(spec, None, None)
    assert (final.points, curve.points) == ("final", "all")
    assert final.settings()["points"] == "final" and curve.settings()["points"] == "all"


@pytest.mark.parametrize("extra, field, words", [
    ('extract = [{ column = "name", pattern = "(no-group)" }]\n', "extract[0].pattern", "no named group"),
    ('extract = [{ column = "name", pattern = "(?P<a>[" }]\n', "extract[0].pattern", "invalid regex"),
    ('scale = { loss = 1e9 }\n', "scale.loss", "cannot scale"),
    ('scale = { params = -1 }\n', "scale.params", "positive"),
    ('labels = { family = 3 }\n', "labels", "label = column"),
])
def test_invalid_source_extras_name_the_field(tmp_path, extra, field, words):
    with pytest.raises(SpecError) as info:
        load(tmp_path, BASE.replace('format = "csv"\n', 'format = "csv"\n' + extra))
    assert info.value.where.field == field and words in info.value.problem and info.value.where.source == "logs"


@pytest.mark.parametrize("table, field, words", [
    ('[computed.x]\nexpr = "read_csv(\'/etc/passwd\')"\n', "computed.x.expr", "not allowed"),
    ('[computed.x]\nexpr = "1 - a"\nmean_of = ["a"]\n', "computed.x", "expected one of"),
    ('[computed.x]\nlast_mean_of = "loss"\nk = 0\n', "computed.x.k", "positive integer"),
    ('[computed.x]\nweights = { a = -1 }\n', "computed.x.weights", "positive weight"),
    ('[computed.x]\nmean_of = ["a"]\nunit = "joules"\n', "computed.x.unit", "expected one of"),
])
def test_invalid_computed_metrics_name_the_field(tmp_path, table, field, words):
    with pytest.raises(SpecError) as info:
        load(tmp_path, BASE + "\n" + table)
    assert info.value.where.field == field and words in info.value.problem and info.value.where.study == "s1"


def test_fits_are_checked_when_the_study_loads(tmp_path):
    with pytest.raises(SpecError) as info:
        load(tmp_path, BASE + '\n[[fits]]\nlaw = "chinchila"\ntarget = "loss"\n')
    assert "unknown law 'chinchila'" in info.value.problem and info.value.where.field == "fits[0]"
    with pytest.raises(SpecError) as info:
        load(tmp_path, BASE + '\n[forecasts]\ntargets = [{ name = "7B" }]\n')
    assert info.value.where.field == "forecasts.targets[0]"


def test_checking_a_study_imports_no_fitting_code():
    """Reading and checking every shipped study file (sensors, the ingest steps and a `scaling run` that finds
    nothing stale do only this) imports neither scipy nor the fitting, forecast or mixing-fit code: the
    checks read the law registries and the tables' keys alone."""
    from helpers_paths import REPO

    files = sorted(str(p) for p in (REPO / "studies").rglob("*.toml"))
    heavy = ("scipy", "scaling.fit", "scaling.forecast", "scaling.mixing.fit", "scaling.mixing.optimize")
    code = ("import sys\nfrom scaling.spec import load_study\nfor f in sys.argv[1:]:\n    load_study(f)\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, *files], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert len(files) >= 10 and proc.stdout.strip() == ""
