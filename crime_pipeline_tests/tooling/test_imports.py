"""Public Dagster APIs only: no module under crime_pipeline/ imports a private `dagster._...` module
or name, and lib/ imports no Dagster package at all (import-linter checks the layers in CI, but sees
an external package only whole, so it cannot tell `dagster._core` from `dagster`)."""

from __future__ import annotations

import ast
from pathlib import Path

from crime_pipeline_tests.conftest import REPO

PRODUCT = REPO / "crime_pipeline"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every module and name a file imports, at any depth (lazy imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def is_dagster(name: str) -> bool:
    top = name.split(".")[0]
    return top == "dagster" or top.startswith("dagster_")


def offending(folder: Path, rule, root: Path = REPO) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line} imports {name}"
        for path in sorted(folder.rglob("*.py"))
        for line, name in imports_of(path)
        if rule(name)
    ]


def is_private_dagster(name: str) -> bool:
    return is_dagster(name) and any(part.startswith("_") for part in name.split(".")[1:])


def test_no_private_dagster_import_in_the_product_code():
    assert offending(PRODUCT, is_private_dagster) == []


def test_lib_imports_no_dagster_package():
    assert offending(PRODUCT / "lib", is_dagster) == []


def test_the_scan_sees_plain_from_and_lazy_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import dagster._core.x as x\nfrom dagster import _check\n"
        "def f():\n    from dagster_k8s._internal import y\n    import dagster as dg\n"
    )
    assert offending(tmp_path, is_private_dagster, root=tmp_path) == [
        "sample.py:1 imports dagster._core.x",
        "sample.py:2 imports dagster._check",
        "sample.py:4 imports dagster_k8s._internal.y",
    ]
    assert offending(tmp_path, is_dagster, root=tmp_path)[-1] == "sample.py:5 imports dagster"
