"""The README documents the catalog exactly as the code defines it, and its set-up commands are the CI's."""

from helpers_paths import REPO
from warehouse.docs import tables_markdown


def test_readme_table_reference_matches_the_schema():
    assert tables_markdown() in (REPO / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    command = 'python -m pip install -e ".[test]" && python -m pytest'
    assert command in readme
    assert command in (REPO / ".ci" / "run").read_text()
    assert "python -m pip install -e . && scaling run" in readme
