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
