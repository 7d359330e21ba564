"""Checkpoint files (checkpoints.py, runs.py): atomic writes, safe loads, damaged, crafted or
foreign files refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import one_line_error, train_run


class _Exploit:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_damaged_checkpoints_are_refused(invoke, run):
    ckpt = torch.load(run / "neural.pt", weights_only=True)
    good = ckpt["W"]
    for bad in (float("nan"), float("inf"), -float("inf")):  # one damaged cell is enough
        ckpt["W"] = good.clone()
        ckpt["W"][2, 1] = bad
        torch.save(ckpt, run / "neural.pt")
        one_line_error(invoke("sample", run, "--model", "neural"), "non-finite")
    ckpt["W"] = torch.full_like(good, float("nan"))
    torch.save(ckpt, run / "neural.pt")
    one_line_error(invoke("train", "--resume", run, "--steps", "9"), "non-finite")
    ckpt["W"] = torch.zeros(2, 7)
    torch.save(ckpt, run / "neural.pt")
    one_line_error(invoke("score", run, "ab", "--model", "neural"), "shape")
    count = torch.load(run / "count.pt", weights_only=True)
    count["counts"] = (-count["counts"].to_dense()).to_sparse()
    torch.save(count, run / "count.pt")
    one_line_error(invoke("eval", run, "--model", "count"), "negative")
    # a tiny file declaring a 200000 × 200000 matrix: refused before any allocation
    huge = torch.sparse_coo_tensor(
        torch.tensor([[0], [0]]), torch.tensor([1]), (200_000, 200_000), check_invariants=False
    )
    count["counts"] = huge
    torch.save(count, run / "count.pt")
    t = time.perf_counter()
    one_line_error(invoke("export", run, "--model", "count", "--out", run.parent / "x.arpa"), "200000")
    assert time.perf_counter() - t < 5


def test_a_counts_file_from_another_run_or_an_edited_config_is_refused(invoke, tmp_path, run):
    other = tmp_path / "other.txt"
    other.write_text("xyz\nzzy\nqq\n")
    r = invoke("train", "--data", other, "--out", tmp_path / "other", "-q", "--no-figures", "--steps", "2")
    assert r.exit_code == 0, r.output
    (run / "counts.pt").write_bytes((tmp_path / "other" / "counts.pt").read_bytes())
    one_line_error(invoke("eval", run), "another run")
    cfg = (run / "config.toml").read_text()
    (run / "config.toml").write_text(cfg.replace('optimizer = "newton"', 'optimizer = "adam"'))
    one_line_error(invoke("train", "--resume", run, "--steps", "9"), "optimizer")
    (run / "config.toml").write_text(cfg.replace('data = "', "data = 5\n#"))
    one_line_error(invoke("train", "--resume", run, "--steps", "9"), "data")


def test_corrupted_and_truncated_checkpoints(invoke, tmp_path, tiny_corpus):
    out = train_run(invoke, tiny_corpus, tmp_path / "run", "--steps", 3)
    ckpt = out / "neural.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    one_line_error(invoke("sample", out, "-n", 2), "corrupted")
    ckpt.write_bytes(b"\x00" * 100)
    one_line_error(invoke("sample", out, "-n", 2), "corrupted")


def test_a_crafted_pickle_is_refused_and_never_runs(invoke, tmp_path, tiny_corpus):
    out = train_run(invoke, tiny_corpus, tmp_path / "run", "--steps", 3)
    marker = tmp_path / "pwned"
    torch.save({"kind": "neural", "W": _Exploit(marker)}, out / "neural.pt")
    r = invoke("sample", out, "-n", 2)
    one_line_error(r, "corrupted or not a bigram checkpoint")
    assert not marker.exists()
    # and plain unpickling of the same file would have run it: the test would catch a regression
    torch.load(out / "neural.pt", weights_only=False)
    assert marker.exists()


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    from bigram.safety import checkpoints

    path = tmp_path / "neural.pt"
    checkpoints.save({"kind": "neural", "W": torch.ones(2, 2)}, path)
    before = path.read_bytes()

    def crash(obj, f):
        Path(f).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    from bigram.errors import BigramError

    with pytest.raises(BigramError, match="disk full"):
        checkpoints.save({"kind": "neural", "W": torch.zeros(2, 2)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["neural.pt"]  # no temp file left behind


@pytest.mark.parametrize("smoothing", ["1", "kn"])
def test_a_sparse_checkpoint_with_an_index_past_its_table_refused(invoke, tmp_path, tiny_corpus, smoothing):
    run = train_run(invoke, tiny_corpus, tmp_path / "r", "--model", "count", "--smoothing", smoothing)
    bad = torch.sparse_coo_tensor(
        torch.tensor([[0, 1], [1, 7]]), torch.tensor([3, 1]), (3, 3), check_invariants=False
    )  # column 7 of a 3-column table
    ckpt = torch.load(run / "count.pt", weights_only=True)
    torch.save({**ckpt, "counts": bad}, run / "count.pt")
    for args in (["sample", run], ["eval", run], ["export", run, "--out", tmp_path / "m.arpa"]):
        one_line_error(invoke(*args), "count indices outside its 3×3 table")
    splits = torch.load(run / "counts.pt", weights_only=True)
    torch.save({**splits, "splits": {"train": bad}}, run / "counts.pt")
    one_line_error(invoke("eval", run), "count indices outside")


def test_a_raw_pickle_is_one_line_without_torchs_warning(invoke, tmp_path, tiny_corpus):
    """A plain pickle where a checkpoint belongs made torch print a two-line UserWarning (and
    advise weights_only=False) before the one-line error: the error alone is printed now."""
    import pickle
    import subprocess
    import sys

    out = train_run(invoke, tiny_corpus, tmp_path / "run", "--steps", 3)
    (out / "neural.pt").write_bytes(pickle.dumps({"kind": "neural", "W": [[0.0]]}, protocol=4))
    r = subprocess.run(
        [sys.executable, "-m", "bigram", "sample", str(out), "-n", "2", "--model", "neural"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("error: ") and "Warning" not in r.stderr and "weights_only" not in r.stderr
    assert "beyond tensors and plain data" in r.stderr
