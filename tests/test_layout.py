"""The code stays easy to change: one job per function (issue 32 set the bound at 60 lines)."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

MAX_LINES = 60


def test_no_function_in_the_package_is_longer_than_60_lines():
    long = []
    for path in sorted((ROOT / "bigram").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
