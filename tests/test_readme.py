"""The README and docs/ document the catalog exactly as the code defines it, their links resolve, and
the README's set-up commands are the CI's."""

import re

from helpers_paths import REPO
from warehouse.docs import tables_markdown

PAGES = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]


def test_table_reference_matches_the_schema():
    assert tables_markdown() in (REPO / "docs" / "tables.md").read_text()


def test_readme_links_every_reference_page_and_every_link_resolves():
    readme = (REPO / "README.md").read_text()
    for name in ("tables", "studies", "laws", "scale-out", "benchmarks", "results", "ui", "architecture"):
        assert f"](docs/{name}.md)" in readme, name
    for page in PAGES:
        text = (REPO / page).read_text()
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://")):
                continue
            assert ((REPO / page).parent / target).exists(), f"{page}: broken link {target}"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    command = 'python -m pip install -e ".[test]" && python -m pytest'
    assert command in readme
    assert command in (REPO / ".ci" / "run").read_text()
    assert "python -m pip install -e . && scaling run" in readme
