"""The walk of one command through the package: which of bigram's functions it calls, in how many
modules, and how often a call crosses from one module into another.

    python scripts/walk.py                      # `bigram train` with the default config
    python scripts/walk.py sample runs/lecture  # any command line

Counts (each distinct, over the whole command; threads included; numba's compiled loops are not
Python frames, so they do not count, nor do a module's or a class's body, comprehensions, lambdas):
    functions   bigram functions called (module-level functions, methods, nested functions)
    modules     the modules they are in
    switches    caller → callee pairs of functions in different modules
    module edges  caller module → callee module pairs
"""

from __future__ import annotations

import inspect
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import bigram

PACKAGE = Path(bigram.__file__).resolve().parent


def _module(filename: str) -> str | None:
    path = Path(filename)
    if path.suffix != ".py" or PACKAGE not in path.parents:
        return None
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts)


def _is_def(code) -> bool:
    """A def's code: not a module's or a class body's (not CO_OPTIMIZED), nor a comprehension's or
    a lambda's (<genexpr>, <listcomp>, <lambda>)."""
    return bool(code.co_flags & inspect.CO_OPTIMIZED) and not code.co_qualname.split(".")[-1].startswith("<")


def walk(argv: list[str]) -> tuple[set, set, Counter]:
    functions: set[tuple[str, str]] = set()
    switches: set[tuple[tuple[str, str], tuple[str, str]]] = set()
    per_module: Counter = Counter()

    def hook(frame, event, arg):
        if event != "call":
            return
        here = _module(frame.f_code.co_filename)
        if here is None or not _is_def(frame.f_code):
            return
        fn = (here, frame.f_code.co_qualname)
        if fn not in functions:
            functions.add(fn)
            per_module[here] += 1
        caller = frame.f_back
        while caller is not None and (
            _module(caller.f_code.co_filename) is None or not _is_def(caller.f_code)
        ):
            caller = caller.f_back
        if caller is not None:
            there = _module(caller.f_code.co_filename)
            if there != here:
                switches.add(((there, caller.f_code.co_qualname), fn))

    from bigram.cli import app

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        app(argv, standalone_mode=False)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return functions, switches, per_module


def main() -> None:
    argv = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        if not argv:
            argv = ["train", "--out", str(Path(tmp) / "run"), "-q"]
        functions, switches, per_module = walk(argv)
    edges = {(a[0], b[0]) for a, b in switches}
    print(
        f"bigram {' '.join(argv[:1])}: {len(functions)} functions in {len(per_module)} modules, "
        f"{len(switches)} switches between modules ({len(edges)} module edges)"
    )
    for module, n in sorted(per_module.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:4d}  {module}")


if __name__ == "__main__":
    main()
