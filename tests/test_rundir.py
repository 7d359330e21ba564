"""Run directories (safety/rundir.py, safety/atomic.py): --overwrite replaces only what bigram made
(a user's file in a run stops it, even one named like TensorBoard's), a missing run or model is
named, and every write is atomic."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NAMES, ROOT, one_line_error


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root with its content: what must survive a refused --overwrite."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def train(invoke, data, out, *extra):
    r = invoke("train", "--data", data, "--out", out, "-q", "--no-figures", "--steps", "3", *extra)
    assert r.exit_code == 0, r.output
    return Path(out)


def test_a_project_with_a_config_toml_is_never_deleted(invoke, tmp_path):
    """The reported data loss: a directory with a config.toml looked like a run."""
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "config.toml").write_text('title="x"\n')
    (proj / "src" / "thesis.tex").write_text("thesis\n")
    (proj / "names.txt").write_text("anna\nbob\ncarla\n")
    before = tree(tmp_path)
    one_line_error(
        invoke("train", "--data", proj / "names.txt", "--out", proj, "--overwrite", "-q"), "refusing"
    )
    assert tree(tmp_path) == before


def test_the_current_directory_is_never_replaced(invoke, tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('title="x"\n')
    (tmp_path / "names.txt").write_text("anna\nbob\ncarla\n")
    before = tree(tmp_path)
    one_line_error(invoke("train", "--data", "names.txt", "--out", ".", "--overwrite", "-q"), "current")
    assert tree(tmp_path) == before
    # not even a real run, from inside it
    run = train(invoke, tmp_path / "names.txt", tmp_path / "run")
    monkeypatch.chdir(run)
    before = tree(tmp_path)
    one_line_error(invoke("train", "--data", tmp_path / "names.txt", "--out", ".", "--overwrite"), "current")
    one_line_error(invoke("train", "--data", tmp_path / "names.txt", "--out", "..", "--overwrite"), "current")
    assert tree(tmp_path) == before


def test_a_run_holding_anything_else_is_not_replaced(invoke, tmp_path, tiny_corpus):
    run = train(invoke, tiny_corpus, tmp_path / "run")
    (run / "names.arpa").write_text("my export\n")  # a user's file inside a run
    before = tree(tmp_path)
    one_line_error(invoke("train", "--data", tiny_corpus, "--out", run, "--overwrite"), "names.arpa")
    assert tree(tmp_path) == before
    # nor one holding the data file itself, nor one whose marker is gone
    (run / "names.arpa").unlink()
    data = run / "data.txt"
    data.write_text("anna\nbob\n")
    one_line_error(invoke("train", "--data", data, "--out", run, "--overwrite"), "data file")
    data.unlink()
    (run / ".bigram-run").unlink()
    one_line_error(invoke("train", "--data", tiny_corpus, "--out", run, "--overwrite"), "marker")
    assert (run / "config.toml").is_file()


def test_symlinks_and_files_as_out(invoke, tmp_path, tiny_corpus):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    (tmp_path / "link").symlink_to(target)
    one_line_error(invoke("train", "--data", tiny_corpus, "--out", tmp_path / "link", "--overwrite"), "link")
    (tmp_path / "file").write_text("x\n")
    one_line_error(invoke("train", "--data", tiny_corpus, "--out", tmp_path / "file", "--overwrite"), "file")
    assert (target / "keep.txt").read_text() == "keep\n" and (tmp_path / "file").read_text() == "x\n"


def test_overwrite_replaces_a_bigram_run_only_once_the_new_one_is_complete(
    invoke, tmp_path, tiny_corpus, monkeypatch
):
    run = train(invoke, tiny_corpus, tmp_path / "run")
    old = tree(run)
    # a failure while the new run is being built leaves the old one exactly as it was
    import bigram.runs

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bigram.training, "_fit_and_report", fail)
    r = invoke("train", "--data", tiny_corpus, "--out", run, "--overwrite", "-q", "--seed", "5")
    assert r.exit_code == 130
    assert tree(run) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tiny.txt"]  # no staging left
    monkeypatch.undo()
    # a complete one replaces it
    monkeypatch.chdir(tmp_path)
    train(invoke, tiny_corpus, run, "--overwrite", "--seed", "5")
    assert "seed = 5" in (run / "config.toml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tiny.txt"]
    assert (run / ".bigram-run").is_file()


def test_a_failed_fresh_run_leaves_nothing(invoke, tmp_path, tiny_corpus, monkeypatch):
    import bigram.training

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bigram.runs, "write_inputs", fail)
    r = invoke("train", "--data", tiny_corpus, "--out", tmp_path / "new", "-q")
    assert r.exit_code != 0
    assert not (tmp_path / "new").exists()


def _limited(limit: int):
    """In the child: files larger than `limit` bytes cannot be written (EFBIG, like a full disk)."""

    def pre() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_export_on_a_full_disk_keeps_the_old_file(invoke, tmp_path, tiny_corpus):

    run = train(invoke, NAMES, tmp_path / "run", "--model", "count")
    out = tmp_path / "names.arpa"
    out.write_text("the old export\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for cmd in (
        ["export", str(run), "--out", str(out), "--overwrite"],
        ["plot", str(run), "--out", str(tmp_path / "old.png"), "--overwrite"],
    ):
        (tmp_path / "old.png").write_text("the old figure\n")
        p = subprocess.run(
            [sys.executable, "-m", "bigram", *cmd], capture_output=True, text=True, env=env, cwd=tmp_path,
            preexec_fn=_limited(4096), timeout=120,
        )  # fmt: skip
        assert p.returncode == 1, p.stderr
        assert p.stderr.startswith("error: cannot write") and len(p.stderr.splitlines()) == 1, p.stderr
    assert out.read_text() == "the old export\n"
    assert (tmp_path / "old.png").read_text() == "the old figure\n"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("name", ["config.toml", "metrics.json", "vocab.json"])
def test_run_files_are_written_atomically(tmp_path, monkeypatch, name):
    from bigram.errors import BigramError
    from bigram.safety import atomic

    path = tmp_path / name
    atomic.write_text(path, "old\n")

    class Boom(OSError):
        pass

    real = os.replace

    def crash(src, dst):
        raise Boom(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(BigramError, match="No space left"):
        atomic.write_text(path, "new\n")
    monkeypatch.setattr(os, "replace", real)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize("limit", [20_000, 60_000])  # while writing counts.pt; TensorBoard's events
def test_train_on_a_full_disk_leaves_no_half_made_run(tmp_path, limit):

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "bigram", "train", "--data", str(NAMES), "--out", str(out), "-q",
         "--steps", "2000", "--eval-every", "1"],
        capture_output=True, text=True, env=env, cwd=tmp_path, preexec_fn=_limited(limit), timeout=120,
    )  # fmt: skip
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("error: cannot write") and len(p.stderr.splitlines()) == 1, p.stderr
    assert not out.exists()


def test_out_and_export_paths_that_cannot_be_written(invoke, tmp_path, run):
    (tmp_path / "afile").write_text("x\n")
    one_line_error(
        invoke("train", "--data", run.parent / "tiny.txt", "--out", tmp_path / "afile" / "r"), "afile"
    )
    one_line_error(invoke("export", run, "--out", tmp_path / "missing" / "x.arpa"), "No such file")
    one_line_error(invoke("plot", run, "--out", tmp_path / "missing" / "x.png"), "No such file")


@pytest.mark.parametrize("command", ["sample", "eval", "score"])
def test_missing_run_or_model(invoke, tmp_path, tiny_corpus, command):
    names = ["ab"] if command == "score" else []
    if command == "score":  # score's first argument is a run only when it is one: no runs at all here
        one_line_error(invoke("score", "emma"), "no runs found")
    else:
        one_line_error(invoke(command, tmp_path / "nope"), "does not exist")
    out = train(invoke, tiny_corpus, tmp_path / "counts-only", "--model", "count")
    one_line_error(invoke(command, out, *names, "--model", "neural"), "no neural model", "count")


def test_out_exists(invoke, tmp_path, tiny_corpus):
    out = train(invoke, tiny_corpus, tmp_path / "run")
    one_line_error(invoke("train", "--data", tiny_corpus, "--out", out), "--overwrite")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    one_line_error(
        invoke("train", "--data", tiny_corpus, "--out", tmp_path / "mine", "--overwrite"), "not a bigram run"
    )
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_a_file_named_like_an_event_file_is_the_users(invoke, tmp_path, small, tiny_corpus):
    notes = small / "events.out.tfevents.my-notes.txt"
    notes.write_text("mine")
    r = invoke("train", "--data", tiny_corpus, "--out", small, "--overwrite", "-q", "--no-figures")
    one_line_error(r, "is not a file bigram writes", "events.out.tfevents.my-notes.txt")
    assert notes.read_text() == "mine"
    r = invoke("sweep", "--reg", "0,0.1", "--data", tiny_corpus, "--out", tmp_path / "sw", "--steps", "2")
    assert r.exit_code == 0, r.output
    inner = tmp_path / "sw" / "reg=0" / "events.out.tfevents.1.host.2.3.notes"
    inner.write_text("mine too")
    r = invoke("train", "--data", tiny_corpus, "--out", tmp_path / "sw", "--overwrite", "-q", "--no-figures")
    one_line_error(r, "is not a file bigram writes")
    assert inner.read_text() == "mine too"
    # what TensorBoard itself wrote is bigram's: the run is replaced
    assert any(p.name.startswith("events.out.tfevents.") for p in small.iterdir())
    notes.unlink()
    r = invoke("train", "--data", tiny_corpus, "--out", small, "--overwrite", "-q", "--no-figures")
    assert r.exit_code == 0, r.output


def test_sweep_into_an_existing_directory_and_under_torchrun(invoke, small, tiny_corpus, monkeypatch):
    r = invoke("sweep", "--reg", "0,0.1", "--data", tiny_corpus, "--out", small)
    one_line_error(r, "already exists and is not empty: choose another --out")
    assert "--overwrite" not in r.output  # sweep has no such option
    monkeypatch.setenv("WORLD_SIZE", "2")
    one_line_error(invoke("sweep", "--reg", "0,0.1", "--data", tiny_corpus), "without torchrun")
