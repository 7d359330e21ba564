"""The README's examples are what the commands print today.

Every ```text block of the README up to "## Errors" (the error examples there need files of
their own; the tests of each module check those messages) is run, in order, in a fresh
directory that holds `data/` and `configs/`, and its output is compared line for line: stdout,
plus stderr for a command that fails (a terminal shows both; the notes a command writes to stderr
when it succeeds, like "using run …", are left out, as the README says). Run directories named
after the time compare equal whatever the time.

To refresh the README after a change that moves a number: BIGRAM_UPDATE_README=1 pytest
tests/test_readme.py, then read the diff.
"""

from __future__ import annotations

import os
import re
import shlex

from tests.conftest import ROOT

README = ROOT / "README.md"
BLOCK = re.compile(r"```text\n(.*?)```", re.S)
TIMESTAMP = re.compile(r"runs/\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?")


def _commands(block: str) -> list[tuple[str, str]]:
    """A block's (command, expected output) pairs: each line starting with "$ " begins one."""
    pairs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            pairs.append((line[2:], []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(cmd, "\n".join(out).strip("\n")) for cmd, out in pairs]


def _run(invoke, cmd: str) -> str:
    args = shlex.split(cmd.split("  #")[0])
    if args[0] == "head":  # `head -N FILE`
        lines = int(args[1][1:])
        return "\n".join(open(args[2], encoding="utf-8").read().splitlines()[:lines])
    assert args[0] == "bigram", cmd
    r = invoke(*args[1:])
    errors = [line for line in r.stderr.splitlines(keepends=True) if not line.startswith("using run ")]
    return (r.stdout if r.exit_code == 0 else r.stdout + "".join(errors)).strip("\n")


def test_readme_examples_print_what_the_readme_shows(invoke, tmp_path):
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    text = README.read_text(encoding="utf-8")
    checked = text[: text.index("## Errors")]
    updated, mismatches, n = checked, [], 0
    for m in BLOCK.finditer(checked):
        new_block = m.group(1)
        for cmd, want in _commands(m.group(1)):
            got = _run(invoke, cmd)
            n += 1
            if TIMESTAMP.sub("runs/…", got) != TIMESTAMP.sub("runs/…", want):
                mismatches.append(f"$ {cmd}\n--- README\n{want}\n--- printed\n{got}")
                new_block = new_block.replace(want, got, 1)
        updated = updated.replace(m.group(1), new_block, 1)
    if mismatches and os.environ.get("BIGRAM_UPDATE_README"):
        README.write_text(updated + text[len(checked) :], encoding="utf-8")
    assert n >= 12  # every example ran (a block the parser missed would pass silently)
    assert not mismatches, "\n\n".join(mismatches)
