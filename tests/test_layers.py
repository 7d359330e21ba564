"""The package's layers (docs/design.md draws them): a module imports only its own layer and the
layers below, and no import, at the top or inside a function, closes a circle."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "bigram"
# lowest first; a name is a module or a sub-package (every module in it)
LAYERS = [
    ("base", ["errors", "text", "config", "options", "bundled", "heap", "safety"]),
    ("reading", ["vocab", "reader", "data"]),
    ("counts", ["counts", "backoff", "estimators"]),
    ("models", ["table", "mixture", "models", "metrics", "smoothing", "fit", "optim"]),
    ("sampling", ["sampling", "exact"]),
    ("formats", ["formats"]),
    ("runs", ["runs", "training", "combine"]),
    ("entry", ["cli", "cli_shared", "__main__", "__init__"]),
]


def module_name(path: Path) -> str:
    """bigram/reader/corpus.py → "reader.corpus"; bigram/exact/__init__.py → "exact"."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    for i, (_, names) in enumerate(LAYERS):
        if module in names or head in names:
            return i
    raise AssertionError(f"bigram/{module} is in no layer: add it to LAYERS and docs/design.md")


def imports_of(path: Path) -> set[str]:
    """Every bigram module this file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bigram"):
            base = node.module.removeprefix("bigram").removeprefix(".")
            for alias in node.names:  # `from bigram.safety import atomic` imports the module safety.atomic
                sub = f"{base}.{alias.name}" if base else alias.name
                found.add(sub if (PACKAGE / sub.replace(".", "/")).with_suffix(".py").exists() else base)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("bigram.") for a in node.names if a.name.startswith("bigram.")}
    return {m or "__init__" for m in found}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_imports_only_its_own_layer_and_those_below():
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
        for m, deps in graph().items()
        for d in sorted(deps)
        if layer_of(d) > layer_of(m)
    ]
    assert upward == []


def test_no_import_circle():
    g = graph()
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        assert m not in path, " -> ".join([*path[path.index(m) :], m])
        if m not in done:
            for d in g.get(m, ()):
                visit(d, [*path, m])
            done.add(m)

    for m in g:
        visit(m, [])


def test_the_checks_see_imports():
    """The graph is not empty by mistake: known edges of each kind are found."""
    g = graph()
    assert "safety.atomic" in g["runs"]  # from bigram.safety import atomic
    assert "reader.corpus" in g["training"]  # from bigram.reader.corpus import …
    assert "sampling" in g["runs"]  # inside a function: from bigram import sampling


def test_each_sub_package_says_what_it_holds_and_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        name = init.parent.name
        assert doc.startswith(f"{name}/:"), init
        assert f"({LAYERS[layer_of(name)][0]})" in doc and "imports" in doc, init
        for module in init.parent.glob("*.py"):
            if module.name != "__init__.py":
                assert module.name in doc, f"{init} does not list {module.name}"


def test_the_design_page_draws_every_layer_and_names_every_module():
    page = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    drawing = page[page.index("## The layers") : page.index("## Which module owns what")]
    for i, (name, members) in enumerate(LAYERS):
        row = next(line for line in drawing.splitlines() if line.startswith(f"{i} {name} "))
        for member in members:
            is_package = (PACKAGE / member).is_dir()
            assert (f"{member}/" if is_package else f"{member}.py") in row, (name, member)
    for path in PACKAGE.rglob("*.py"):
        assert path.name == "__init__.py" or f" {path.name} " in page, f"docs/design.md does not name {path}"
