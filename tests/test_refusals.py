"""Failing fast and failing safe: refusals before torch is imported, flag values whose memory cannot
be bounded refused before anything is allocated, failed runs marked, skipped and refused, paths and
corpus text never written raw to the terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

import pytest

from bigram.errors import BigramError
from tests.conftest import NAMES, one_line_error, train_run

HEAVY = ("torch", "numba", "tensorboard", "matplotlib", "numpy")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--data", "missing.txt"],
        ["train", "--config", "bad.toml"],
        ["train", "--steps", "-5"],
        ["sample", "--top-p", "2"],
        ["sample", "--temperature", "0"],
        ["sample", "no-such-run"],
        ["eval", "--data", "missing.txt"],
        ["export", "--out", "x.yaml"],
        ["train", "--out", "full", "--data", "names.txt"],
    ],
)
def test_refusals_answer_before_any_heavy_library_is_imported(tmp_path, args):
    """`python -X importtime` lists every module the command imported: none of the heavy ones."""
    (tmp_path / "bad.toml").write_text("stepz = 3\n")
    (tmp_path / "names.txt").write_text("ann\nbob\n")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bigram", *args],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if not line.startswith("import time:")]
    assert len(errors) == 1 and errors[0].startswith("error: "), errors
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), imported & set(HEAVY)


def _make_diverged(invoke, tmp_path):
    """runs/good (count model, finished) and then runs/diverged (SGD at lr 1e9), in tmp_path."""
    train_run(invoke, NAMES, "runs/good", "--model", "count")
    os.utime(tmp_path / "runs/good/config.toml", (0, 1_000_000))  # older than the diverged run
    r = invoke("train", "--data", NAMES, "--out", "runs/diverged", "--optimizer", "sgd", "--lr", "1e9",
               "--reg", "0.01", "--no-figures", "-q")  # fmt: skip
    one_line_error(r, "training diverged", "the loss was inf at step 4")
    marker = json.loads((tmp_path / "runs/diverged/.bigram-run").read_text())
    assert marker["status"] == "diverged" and "step 4" in marker["note"]
    assert json.loads((tmp_path / "runs/good/.bigram-run").read_text())["status"] == "complete"


def test_a_diverged_run_is_skipped_by_the_newest_run_and_refused_by_name(invoke, tmp_path):
    _make_diverged(invoke, tmp_path)
    for args in (["sample", "-n", "3", "--seed", "0"], ["eval"], ["score", "emma"]):
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        assert "skipped run runs/diverged: its training diverged" in r.stderr, r.stderr
        assert "using run runs/good" in r.stderr
    r = invoke("eval")
    assert "count model" in r.stderr and "neural" not in r.stdout  # runs/good has the count model only
    named = (["sample", "runs/diverged"], ["eval", "runs/diverged"], ["train", "--resume", "runs/diverged"],
             ["export", "runs/diverged", "--out", "m.arpa"])  # fmt: skip
    for args in named:
        one_line_error(invoke(*args), "runs/diverged cannot be used: its training diverged", "lower --lr")


def test_the_python_api_skips_a_diverged_run_with_a_warning_and_refuses_it_by_name(
    invoke, tmp_path, monkeypatch
):
    from bigram.runs import Run
    from bigram.sampling import Constraints

    _make_diverged(invoke, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="skipped run runs/diverged"):
        run = Run.open()
    assert run.path.name == "good"
    names = run.sample(20, seed=0, constraints=Constraints(start="ka", end="a", min_len=5, max_len=8))
    assert all(n.startswith("ka") and n.endswith("a") and 5 <= len(n) <= 8 for n in names)
    with pytest.raises(BigramError, match="diverged"):
        Run.open("runs/diverged")


def test_a_run_whose_process_was_killed_is_skipped_and_refused(invoke, tmp_path):
    """A run still marked "training" (its process was killed mid-way: nothing ended it)."""
    from bigram.safety import rundir

    train_run(invoke, NAMES, "runs/good", "--model", "count")
    os.utime(tmp_path / "runs/good/config.toml", (0, 1_000_000))
    train_run(invoke, NAMES, "runs/killed", "--model", "count")
    rundir.mark(tmp_path / "runs/killed")  # as new_run_dir leaves it before training ends
    r = invoke("sample", "-n", "1")
    assert r.exit_code == 0 and "skipped run runs/killed: its training has not finished" in r.stderr
    one_line_error(invoke("sample", "runs/killed"), "has not finished", "train it again")
    (tmp_path / "runs/good/count.pt").unlink()  # now no run can be read
    one_line_error(invoke("sample"), "no finished run under runs/", "runs/killed", "runs/good")


def test_tables_keep_their_columns_for_inf_nan_and_huge_values():
    from bigram.metrics import format_table

    def m(x):
        return dict(bigrams=182_438, nll=x, perplexity=x, bits_per_char=x, entropy=2.45, kl=x)

    text = format_table({"count": {"train": m(2.45)}, "neural": {"train": m(5.8e21), "val": m(float("inf")),
                                                                  "test": m(float("nan"))}})  # fmt: skip
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1, text  # every row as wide as the header
    head = lines[0]
    ends = [m.end() for m in re.finditer(r"\S+", head)][2:]  # the right edges of the number columns
    for line in lines[2:]:
        cells = [m.end() for m in re.finditer(r"\S+", line)][2:]
        assert cells == ends, line
    assert "5.8e+21" in lines[3] and " inf " in lines[4] and " nan " in lines[5]


def test_a_data_path_that_is_not_utf8_is_recorded_losslessly_and_resumes(tmp_path):
    data = tmp_path / os.fsdecode(b"bad\xff\x1b.txt")
    data.write_bytes(NAMES.read_bytes())
    args = [sys.executable, "-m", "bigram", "train", "--data", data, "--out", "r", "-q", "--no-figures",
            "--optimizer", "adam", "--steps", "3", "--tol", "0"]  # fmt: skip
    r = subprocess.run(args, capture_output=True, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    config = (tmp_path / "r" / "config.toml").read_bytes()
    assert b"\\xff\\x1b" in config and b"\x1b" not in config  # shown escaped in the comment
    assert os.fsdecode(bytes(tomllib.loads(config.decode())["data"])) == str(data)
    r = subprocess.run([sys.executable, "-m", "bigram", "train", "--resume", "r", "--steps", "5", "-q"],
                       capture_output=True, cwd=tmp_path, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["neural_training"]["steps"] == 5
    r = subprocess.run([sys.executable, "-m", "bigram", "sample", "r", "--novel", "-n", "3"],
                       capture_output=True, cwd=tmp_path, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr  # --novel reads the same file again
    missing = os.fsdecode(b"gone\xff\x1b.txt")
    r = subprocess.run([sys.executable, "-m", "bigram", "train", "--data", missing],
                       capture_output=True, cwd=tmp_path, check=False)  # fmt: skip
    assert r.returncode == 1 and r.stderr == b"error: data file gone\\xff\\x1b.txt does not exist: " \
        b"pass --data with a UTF-8 file, one name per line\n"  # fmt: skip


CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def test_control_characters_from_a_corpus_never_reach_the_terminal(invoke, tmp_path):
    """ESC (a colour code), BEL and U+009B (the one-character CSI) in names: every command shows
    them escaped; JSON escapes them its own way and reads back to the very names."""
    corpus = tmp_path / "ctl.txt"
    corpus.write_text("a\x1b[31mred\nbel\x07l\nc\x9bsi\nanna\nbob\n", encoding="utf-8")
    train_run(invoke, corpus, "r", "--val-frac", "0", "--test-frac", "0", "--smoothing", "0")
    outputs = {
        "sample": invoke("sample", "r", "-n", "200", "--seed", "1"),
        "most-likely": invoke("sample", "r", "--most-likely", "20"),
        "score": invoke("score", "r", "a\x1b[31mred", "c\x9bsi", "bel\x07l"),
        "unknown": invoke("score", "r", "zz"),
        "start": invoke("sample", "r", "-n", "5", "--start", "\x1b"),
    }
    for what, r in outputs.items():
        assert not CONTROL.search(r.stdout + r.stderr), (what, r.stdout + r.stderr)
    sampled = outputs["sample"].stdout.split()
    assert {"a\\x1b[31mred", "bel\\x07l", "c\\x9bsi"} <= set(sampled), sampled
    assert "a\\x1b   P = " in outputs["score"].stdout and "c\\x9b" in outputs["score"].stdout
    assert (
        "\\x07\\x1b" in outputs["unknown"].stderr and "\\x9b" in outputs["unknown"].stderr
    )  # the vocabulary
    r = invoke("sample", "r", "-n", "200", "--seed", "1", "--json")
    assert not CONTROL.search(r.stdout) and "\\u009b" in r.stdout and "\\u001b" in r.stdout
    names = [x["name"] for x in json.loads(r.stdout)]
    assert [
        n.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\x9b", "\\x9b") for n in names
    ] == sampled
    r = invoke("score", "r", "c\x9bsi", "--json")
    assert json.loads(r.stdout)[0]["name"] == "c\x9bsi" and "\x9b" not in r.stdout


def test_flag_values_whose_memory_cannot_be_bounded_are_refused(invoke, tmp_path, monkeypatch):
    """A minibatch's logits are batch × V; L-BFGS keeps copies of W: both refused before they are
    allocated, in one line (names.txt: V = 27). The sparse model's L-BFGS is refused by its
    weights, one per n-gram seen in training and one per context: here above a lowered cap."""
    from bigram import fit

    r = invoke("train", "--data", NAMES, "--model", "neural", "--optimizer", "sgd", "--batch-size", "2000000")
    one_line_error(r, "--batch-size 2,000,000", "at most 1,242,756")  # 2^25 // 27
    monkeypatch.setattr(fit, "DENSE_CELLS", 0)
    monkeypatch.setattr(fit, "LBFGS_MAX_ENTRIES", 20_000)
    r = invoke("train", "--data", NAMES, "--model", "neural", "--optimizer", "lbfgs", "--order", "4")
    one_line_error(r, "weights (more than 20,000)", "--optimizer newton")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    r = invoke("plot", "--top", "101", "--out", "x.png")
    one_line_error(r, "--top 101", "between 2 and 100")
