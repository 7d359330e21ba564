"""Bad input, interruption and untrusted files: one-line errors, nothing lost, no code run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import NAMES, ROOT


def one_line_error(r, *needles: str) -> None:
    assert r.exit_code == 1, r.output
    assert r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.output, (n, r.output)


def train(invoke, data, out, *extra):
    r = invoke("train", "--data", data, "--out", out, "-q", "--no-figures", *extra)
    assert r.exit_code == 0, r.output
    return out


# --- data ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        (b"", "no names"),
        (b"\n  \n\t\n", "no names"),
        (b"anna\x00\x01\x02bob\n", "binary"),
        (b"anna\nbob\nc\xe9line\n", "line 3"),
    ],
)
@pytest.mark.parametrize("split", ["random", "hash"])
def test_bad_data_is_refused(invoke, tmp_path, content, needle, split):
    p = tmp_path / "data.txt"
    if content is not None:
        p.write_bytes(content)
    one_line_error(invoke("train", "--data", p, "--split", split), needle)


def test_data_directory_is_refused(invoke, tmp_path):
    one_line_error(invoke("train", "--data", tmp_path), "directory")


# --- config ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ("learning_rate = 1.0\n", ["'learning_rate'", "'lr'"]),
        ("smoothing = 'lots'\n", ["smoothing", "number"]),
        ("steps = 2.5\n", ["steps", "integer"]),
        ("lowercase = 1\n", ["lowercase", "true or false"]),
        ("steps = 0\n", ["steps"]),
        ("steps = -5\n", ["steps"]),
        ("lr = 0.0\n", ["lr"]),
        ("lr = -1.0\n", ["lr"]),
        ("smoothing = -1.0\n", ["smoothing"]),
        ("reg = -0.1\n", ["reg"]),
        ("val_frac = 0.5\ntest_frac = 0.5\n", ["no training names"]),
        ("model = 'gpt'\n", ["count, neural, both"]),
        ("steps = \n", ["not valid TOML"]),
    ],
)
def test_bad_config_is_refused(invoke, tmp_path, toml, needles):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data = "{NAMES}"\n' + toml)
    one_line_error(invoke("train", "--config", cfg), *needles)


def test_bad_flags_are_refused(invoke):
    one_line_error(invoke("train", "--data", NAMES, "--steps", 0), "steps")
    one_line_error(invoke("train", "--data", NAMES, "--lr", -1), "lr")
    one_line_error(invoke("train", "--data", NAMES, "--smoothing", -2), "smoothing")


# --- runs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["sample", "eval", "score"])
def test_missing_run_or_model(invoke, tmp_path, tiny_corpus, command):
    names = ["ab"] if command == "score" else []
    if command == "score":  # score's first argument is a run only when it is one: no runs at all here
        one_line_error(invoke("score", "emma"), "no runs found")
    else:
        one_line_error(invoke(command, tmp_path / "nope"), "does not exist")
    out = train(invoke, tiny_corpus, tmp_path / "counts-only", "--model", "count")
    one_line_error(invoke(command, out, *names, "--model", "neural"), "no neural model", "count")


def test_corrupted_and_truncated_checkpoints(invoke, tmp_path, tiny_corpus):
    out = train(invoke, tiny_corpus, tmp_path / "run", "--steps", 3)
    ckpt = out / "neural.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    one_line_error(invoke("sample", out, "-n", 2), "corrupted")
    ckpt.write_bytes(b"\x00" * 100)
    one_line_error(invoke("sample", out, "-n", 2), "corrupted")


class _Exploit:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_pickle_is_refused_and_never_runs(invoke, tmp_path, tiny_corpus):
    out = train(invoke, tiny_corpus, tmp_path / "run", "--steps", 3)
    marker = tmp_path / "pwned"
    torch.save({"kind": "neural", "W": _Exploit(marker)}, out / "neural.pt")
    r = invoke("sample", out, "-n", 2)
    one_line_error(r, "corrupted or not a bigram checkpoint")
    assert not marker.exists()
    # and plain unpickling of the same file would have run it: the test would catch a regression
    torch.load(out / "neural.pt", weights_only=False)
    assert marker.exists()


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    from bigram import checkpoints

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


def test_out_exists(invoke, tmp_path, tiny_corpus):
    out = train(invoke, tiny_corpus, tmp_path / "run")
    one_line_error(invoke("train", "--data", tiny_corpus, "--out", out), "--overwrite")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    one_line_error(
        invoke("train", "--data", tiny_corpus, "--out", tmp_path / "mine", "--overwrite"), "not a bigram run"
    )
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


# --- corpora that must work ------------------------------------------------------------------
def test_unusual_corpora_work(invoke, tmp_path):
    cases = {
        "one_name": b"anna\n",
        "crlf_bom": b"\xef\xbb\xbfanna\r\nbob\r\n\r\nzoe\r\n",
        "one_char_names": b"a\nb\nc\na\n",
        "long_line": b"anna\n" + b"ab" * 5000 + b"\nbob\n",
    }
    for name, content in cases.items():
        p = tmp_path / f"{name}.txt"
        p.write_bytes(content)
        for split in ("auto",) if name == "one_name" else ("random", "hash"):  # one name may hash to val
            out = train(invoke, p, tmp_path / f"run-{name}-{split}", "--split", split, "--steps", 5)
            assert invoke("sample", out, "-n", 5, "--seed", 0, "--max-len", 30).exit_code == 0


def test_names_with_dots_never_collide_with_the_boundary(invoke, tmp_path):
    p = tmp_path / "dots.txt"
    p.write_text("j.r.\na.b\n.x\nc.\n" * 5, encoding="utf-8")
    out = train(
        invoke, p, tmp_path / "run", "--val-frac", 0, "--test-frac", 0, "--model", "count", "--smoothing", 0
    )
    vocab = json.loads((out / "vocab.json").read_text())
    assert "." in vocab["chars"] and vocab["boundary_display"] != "."
    names = invoke("sample", out, "-n", 300, "--seed", 1).output.splitlines()
    assert any("." in n for n in names)
    assert all(n[0] in "j.ac" for n in names)  # a name starts as a corpus name starts
    r = json.loads(invoke("score", out, "j.r.", "--json").output)[0]
    assert r["bigrams"][-1]["bigram"] == "." + vocab["boundary_display"]  # the final "." then the end
    assert r["log_likelihood"] > -20


def test_unicode_normalization_and_case(invoke, tmp_path):
    p = tmp_path / "n.txt"
    p.write_text("Ame\u0301lie\nZoe\u0308\n", encoding="utf-8")  # decomposed é and ë
    out = train(invoke, p, tmp_path / "nfc", "--val-frac", 0, "--test-frac", 0)
    chars = json.loads((out / "vocab.json").read_text())["chars"]
    assert "é" in chars and "\u0301" not in chars and "A" in chars and "Z" in chars
    out = train(
        invoke, p, tmp_path / "asis", "--val-frac", 0, "--test-frac", 0, "--normalize", "none", "--lowercase"
    )
    chars = json.loads((out / "vocab.json").read_text())["chars"]
    assert "\u0301" in chars and "é" not in chars and "A" not in chars and "a" in chars


# --- training --------------------------------------------------------------------------------
def test_divergence_stops_and_keeps_the_last_finite_model(invoke, tmp_path):
    out = tmp_path / "run"
    r = invoke("train", "--data", NAMES, "--out", out, "--optimizer", "sgd", "--lr", 1e9, "--steps", 50, "-q")
    one_line_error(r, "diverged", "lower --lr")
    ckpt = torch.load(out / "neural.pt", weights_only=True)
    assert 0 < ckpt["step"] < 50 and torch.isfinite(ckpt["W"]).all()
    from bigram.models import NeuralBigram

    m = NeuralBigram(27)
    with torch.no_grad():
        m.W.copy_(ckpt["W"])
    N = torch.load(out / "counts.pt", weights_only=True)["splits"]["train"].to_dense().float()
    assert torch.isfinite(m.loss_from_counts(N, 0.01)[0])
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(v["nll"] == v["nll"] for v in metrics["neural"].values())  # present, not NaN


@pytest.mark.parametrize(
    "flags",
    [
        ["--optimizer", "sgd"],
        ["--optimizer", "adam"],
        ["--optimizer", "lbfgs"],
        ["--optimizer", "adam", "--batch-size", "64"],
    ],
)
def test_resume_gives_the_uninterrupted_weights(invoke, tmp_path, flags):
    base = ["--data", NAMES, "--val-frac", 0.1, "--test-frac", 0, "-q", *flags]
    assert invoke("train", *base, "--steps", 30, "--out", tmp_path / "full").exit_code == 0
    assert invoke("train", *base, "--steps", 12, "--out", tmp_path / "part").exit_code == 0
    r = invoke("train", "--resume", tmp_path / "part", "--steps", 30, "-q")
    assert r.exit_code == 0, r.output
    a = torch.load(tmp_path / "full" / "neural.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "neural.pt", weights_only=True)
    assert b["step"] == 30 and torch.equal(a["W"], b["W"])
    assert (tmp_path / "full" / "metrics.json").read_text() == (
        tmp_path / "part" / "metrics.json"
    ).read_text()
    steps = tb_steps(tmp_path / "part", "train/loss")
    assert steps == list(range(30))  # continued, not repeated
    # val points: the uninterrupted run's, plus the 12-step run's final one, none twice
    part, whole = tb_steps(tmp_path / "part", "val/nll"), tb_steps(tmp_path / "full", "val/nll")
    assert sorted(set(part)) == part and set(whole) <= set(part) and set(part) - set(whole) == {12}


def tb_steps(run: Path, tag: str) -> list[int]:
    ea = EventAccumulator(str(run), size_guidance={"scalars": 0})
    ea.Reload()
    return [e.step for e in ea.Scalars(tag)]


def test_resume_refusals(invoke, tmp_path, tiny_corpus):
    out = train(invoke, tiny_corpus, tmp_path / "run", "--steps", 5)
    one_line_error(invoke("train", "--resume", out), "already at step 5")
    one_line_error(invoke("train", "--resume", out, "--steps", 9, "--lr", 1), "only --steps")
    counts_only = train(invoke, tiny_corpus, tmp_path / "c", "--model", "count")
    one_line_error(invoke("train", "--resume", counts_only, "--steps", 9), "no neural checkpoint")


def test_ctrl_c_saves_a_consistent_run_that_resumes(tmp_path):
    out, full = tmp_path / "run", tmp_path / "full"
    base = [sys.executable, "-m", "bigram", "train", "--data", str(NAMES), "-q", "--optimizer", "adam"]
    base += ["--eval-every", "1000", "--no-figures", "--tol", "0"]  # never converged: Ctrl-C stops it
    proc = subprocess.Popen(
        [*base, "--out", str(out), "--steps", "10000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:  # until training steps are being logged
        events = list(out.glob("events.out.tfevents.*"))
        if events and events[0].stat().st_size > 50_000:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and f"bigram train --resume {out}" in err and "Traceback" not in err
    done = torch.load(out / "neural.pt", weights_only=True)["step"]
    assert 0 < done < 10_000_000
    assert tb_steps(out, "train/loss") == list(range(done))
    assert json.loads((out / "metrics.json").read_text())["neural"]["train"]["nll"] > 0

    resume = [sys.executable, "-m", "bigram", "train", "--resume", str(out), "--steps", str(done + 20), "-q"]
    r = subprocess.run(resume, capture_output=True, text=True, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stderr
    assert tb_steps(out, "train/loss") == list(range(done + 20))
    r = subprocess.run([*base, "--out", str(full), "--steps", str(done + 20)], capture_output=True, text=True,
                       cwd=ROOT, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    a = torch.load(full / "neural.pt", weights_only=True)["W"]
    b = torch.load(out / "neural.pt", weights_only=True)["W"]
    assert torch.equal(a, b)


def test_ctrl_c_before_the_first_step_saves_step_zero(names):
    from bigram.config import TrainConfig
    from bigram.counts import count_bigrams
    from bigram.fit import StopOnCtrlC, fit_neural
    from bigram.models import NeuralBigram
    from bigram.vocab import Vocab

    vocab = Vocab.from_names(names)
    flag = StopOnCtrlC()
    flag.requested = True  # Ctrl-C pressed while the run was being set up
    fit = fit_neural(
        TrainConfig(steps=50), {"train": count_bigrams(names, vocab)}, device=torch.device("cpu"), ctrl_c=flag
    )
    assert fit.stopped == "interrupted" and fit.step == 0
    assert torch.equal(fit.model.W, NeuralBigram(27, seed=TrainConfig().seed).W)  # untouched init
