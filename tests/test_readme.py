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

import importlib.util
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


def test_readme_error_examples_print_what_the_readme_shows(invoke, tmp_path):
    """The error section's examples, with the files they need made first (the Ctrl-C example
    needs a person at the keyboard and is left out)."""
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "broken.txt").write_bytes(b"emma\no\xffa\n")  # line 2, byte 6: not UTF-8
    (tmp_path / "my.toml").write_text("learning_rate = 0.1\n", encoding="utf-8")
    for out, model in (("runs/counts-only", "count"), ("runs/lecture", "both")):
        r = invoke("train", "--out", out, "--model", model, "--no-figures", "-q")
        assert r.exit_code == 0, r.output
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Errors") : text.index("\n## ", text.index("## Errors") + 1)]
    n = 0
    for m in BLOCK.finditer(section):
        if "^C" in m.group(1):
            continue
        for cmd, want in _commands(m.group(1)):
            got = _run(invoke, cmd)
            n += 1
            assert TIMESTAMP.sub("runs/…", got) == want, f"$ {cmd}\n--- README\n{want}\n--- printed\n{got}"
    assert n == 6


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench", ROOT / "scripts" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_bench_py_still_drives_the_training_code(names):
    """scripts/bench.py calls into bigram's internals (the README's table comes from it): a change
    there must not leave it broken until the next full run. Its neural-steps helper on names.txt:
    the default optimizer (Newton) reaches the optimum + 1e-4 in a handful of steps."""
    from bigram.config import TrainConfig
    from bigram.counts import count_bigrams
    from bigram.vocab import Vocab

    bench = _bench_module()
    N = count_bigrams(names, Vocab.from_names(names))
    assert 1 <= bench._steps_to(TrainConfig(), N, 2.480399 + 1e-4) <= 10


def test_readme_benchmark_table_has_the_headings_bench_py_prints():
    bench = _bench_module()
    text = README.read_text(encoding="utf-8")
    benchmarks = text[text.index("## Benchmarks") : text.index("## Scale")]
    assert bench.TABLE_HEADER in benchmarks
    rows = [line for line in benchmarks.splitlines() if line.startswith("| ")]
    assert len(rows) > 5 and all(row.count(" | ") == 4 for row in rows[2:])  # five columns each


def test_readme_pictures_are_committed_pngs():
    """Every picture the README shows is a PNG under docs/ (scripts/docs_images.py redraws them)."""
    import re

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text(encoding="utf-8"))
    assert set(links) >= {"docs/heatmap.png", "docs/tensorboard_nll.png"}
    for link in links:
        assert (ROOT / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
