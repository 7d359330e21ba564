"""The README's and docs/'s examples are what the commands print today.

Every ```text block of README.md and of each page under docs/ is run, in order, in a fresh
directory per page that holds `data/` and `configs/` (a page makes the runs it reads), and its
output is compared line for line: stdout, plus stderr for a command that fails (a terminal shows
both; the notes a command writes to stderr when it succeeds, like "using run …", are left out
unless the page shows them: a note the page shows comes first, as a terminal shows it, and must
still be printed).
Run directories named after the time compare equal whatever the time. A block that shows Ctrl-C
(`^C`) needs a person at the keyboard and is left out.

To refresh a page after a change that moves a number: BIGRAM_UPDATE_README=1 pytest
tests/test_docs.py, then read the diff.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
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


def _run(invoke, cmd: str, want: str = "") -> str:
    args = shlex.split(cmd.split("  #")[0])
    if args[0] == "head":  # `head -N FILE`
        lines = int(args[1][1:])
        return "\n".join(open(args[2], encoding="utf-8").read().splitlines()[:lines])
    assert args[0] == "bigram", cmd
    r = invoke(*args[1:])
    errors = [line for line in r.stderr.splitlines(keepends=True) if not line.startswith("using run ")]
    if r.exit_code == 0:
        shown = set(want.splitlines())
        return ("".join(line for line in errors if line.rstrip("\n") in shown) + r.stdout).strip("\n")
    return (r.stdout + "".join(errors)).strip("\n")


def _errors_page_files(invoke, tmp_path) -> None:
    """What errors.md's examples read: a file that is not UTF-8, a config with an unknown key,
    a count-only run and the lecture's run."""
    (tmp_path / "broken.txt").write_bytes(b"emma\no\xffa\n")  # line 2, byte 6: not UTF-8
    (tmp_path / "my.toml").write_text("learning_rate = 0.1\n", encoding="utf-8")
    for out, model in (("runs/counts-only", "count"), ("runs/lecture", "both")):
        r = invoke("train", "--out", out, "--model", model, "--no-figures", "-q")
        assert r.exit_code == 0, r.output


SETUP = {"errors.md": _errors_page_files}
NO_EXAMPLES = {"benchmarks.md", "design.md", "scale.md"}  # tables, prose and a torchrun line


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_example_prints_what_the_page_shows(invoke, tmp_path, page):
    (tmp_path / "data").symlink_to(ROOT / "data")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    if page.name in SETUP:
        SETUP[page.name](invoke, tmp_path)
    text = page.read_text(encoding="utf-8")
    updated, mismatches, n = text, [], 0
    for m in BLOCK.finditer(text):
        if "^C" in m.group(1):
            continue
        new_block = m.group(1)
        for cmd, want in _commands(m.group(1)):
            got = _run(invoke, cmd, want)
            n += 1
            if TIMESTAMP.sub("runs/…", got) != TIMESTAMP.sub("runs/…", want):
                mismatches.append(f"$ {cmd}\n--- {page.name}\n{want}\n--- printed\n{got}")
                new_block = new_block.replace(want, got, 1)
        updated = updated.replace(m.group(1), new_block, 1)
    if mismatches and os.environ.get("BIGRAM_UPDATE_README"):
        page.write_text(updated, encoding="utf-8")
    assert not re.findall(r"^\$ .*", BLOCK.sub("", text), re.M)  # no example outside a ```text block
    assert n > 0 or page.name in NO_EXAMPLES
    assert not mismatches, "\n\n".join(mismatches)


def test_the_readme_is_a_page_and_the_docs_it_points_to_exist():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    pages = {"math", "cli", "sampling", "smoothing", "benchmarks", "scale", "errors", "design"}
    assert {p.stem for p in DOCS.glob("*.md")} == pages
    assert all(f"](docs/{p}.md)" in text for p in pages)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_pages_lands_on_a_file_and_a_heading():
    for page in [*PAGES, ROOT / "data" / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", page.read_text(encoding="utf-8")):
            path, anchor = target
            if path.startswith("http"):
                continue
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.name}: {path}"
            if anchor:
                headings = re.findall(r"^#+ (.*)$", dest.read_text(encoding="utf-8"), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{page.name}: {path}#{anchor}"


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


def test_the_benchmark_table_has_the_headings_bench_py_prints():
    bench = _bench_module()
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    assert bench.TABLE_HEADER in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) > 5 and all(row.count(" | ") == 4 for row in rows[2:])  # five columns each


def test_every_picture_is_a_committed_png():
    """Every picture the pages show is a PNG under docs/ (scripts/docs_images.py redraws them)."""
    shown = set()
    for page in PAGES:
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            shown.add((page.parent / link).resolve())
    assert {DOCS / name for name in ("heatmap.png", "tensorboard_nll.png", "explore.png")} <= shown
    for path in shown:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
