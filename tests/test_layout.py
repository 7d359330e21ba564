"""The code stays easy to change: one job per function (at most 60 lines, set by issue 32) and per
class (at most 200 lines, issue 42), in every module of the package and its sub-packages."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

MAX_LINES = {ast.FunctionDef: 60, ast.AsyncFunctionDef: 60, ast.ClassDef: 200}


def test_no_function_or_class_in_the_package_is_too_long():
    long = []
    for path in sorted((ROOT / "bigram").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            cap = MAX_LINES.get(type(node))
            if cap is not None and node.end_lineno - node.lineno + 1 > cap:
                where = path.relative_to(ROOT)
                long.append(f"{where}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def _imported(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found | {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_test_files_share_only_the_references_and_the_fixtures():
    """A test file imports tests.reference (plain-Python references) and tests.conftest (fixtures,
    paths, the CLI's helpers), never another test file; the references import nothing of bigram."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        others = {m for m in _imported(path) if m.startswith("tests.")} - {
            "tests.reference",
            "tests.conftest",
        }
        assert others == set(), path.name
    assert not any(m.startswith("bigram") for m in _imported(ROOT / "tests" / "reference.py"))
