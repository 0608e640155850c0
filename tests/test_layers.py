"""Data and imports flow one way: scaling <- warehouse <- assets <- pipelines."""

import ast

import pytest

from helpers_paths import REPO

# each layer and the packages it must not import
BELOW = {
    "scaling": ("dagster", "warehouse", "assets", "pipelines"),
    "warehouse": ("dagster", "assets", "pipelines"),
    "assets": ("pipelines",),
}


def imported(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_a_layer_imports_nothing_above_it(layer):
    offenders = {str(p.relative_to(REPO)): sorted(imported(p) & set(BELOW[layer]))
                 for p in sorted((REPO / layer).rglob("*.py"))}
    assert {f: names for f, names in offenders.items() if names} == {}
