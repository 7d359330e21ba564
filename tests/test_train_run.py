"""`bigram train` end to end: the lecture's numbers, the run directory, and TensorBoard events."""

from __future__ import annotations

import json
import math
import tomllib

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import NAMES, ROOT, plain_nll


def scalars(run_dir, tag):
    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea, [(e.step, e.value) for e in ea.Scalars(tag)]


@pytest.fixture(scope="module")
def lecture_run(tmp_path_factory):
    """configs/lecture.toml, trained once for this module through the CLI."""
    from typer.testing import CliRunner

    from bigram.cli import app

    out = tmp_path_factory.mktemp("runs") / "lecture"
    args = ["train", "--config", ROOT / "configs" / "lecture.toml", "--data", NAMES, "--out", out]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_lecture_reference_numbers(names, lecture_run):
    out, output = lecture_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"count", "neural", "neural_training"}
    assert metrics["neural_training"] == {
        "optimizer": "sgd", "lr": 50.0, "steps": 100, "step_cap": 100, "tol": 0.0, "converged": False
    }  # fmt: skip
    assert "neural model: SGD (lr 50), 100 steps, every step run (tol = 0)" in output
    assert "count model:  add-k smoothing, k = 1" in output
    assert set(metrics["count"]) == {"train"}  # val and test are empty, so left out
    count = metrics["count"]["train"]
    assert count["bigrams"] == 228_146
    assert count["nll"] == pytest.approx(plain_nll(names, 1.0), abs=1e-9)
    assert count["nll"] == pytest.approx(2.454577, abs=5e-7)
    assert count["perplexity"] == pytest.approx(math.exp(count["nll"]))
    assert count["bits_per_char"] == pytest.approx(count["nll"] / math.log(2))

    _, loss = scalars(out, "train/loss")
    assert [s for s, _ in loss] == list(range(100))
    assert loss[0][1] == pytest.approx(3.768619, abs=5e-5)
    assert loss[99][1] == pytest.approx(2.490130, abs=5e-5)
    assert "2.454577" in output  # the summary table


def test_run_directory_contents(lecture_run):
    out, _ = lecture_run
    assert {"config.toml", "vocab.json", "count.pt", "neural.pt", "metrics.json", "counts.pt"} <= {
        p.name for p in out.iterdir()
    }
    assert any(p.name.startswith("events.out.tfevents") for p in out.iterdir())
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["lr"] == 50.0 and cfg["steps"] == 100 and cfg["val_frac"] == 0.0
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["chars"] == [chr(c) for c in range(97, 123)] and vocab["boundary_id"] == 0
    neural = torch.load(out / "neural.pt", weights_only=True)
    assert neural["W"].shape == (27, 27) and neural["step"] == 100
    count = torch.load(out / "count.pt", weights_only=True)
    assert count["counts"].to_dense().sum() == 228_146 and count["smoothing"] == 1.0


def test_tensorboard_events(lecture_run):
    out, _ = lecture_run
    ea, nll = scalars(out, "train/nll")
    _, reg = scalars(out, "train/reg")
    _, loss = scalars(out, "train/loss")
    assert len(nll) == len(reg) == 100
    for (_, lo), (_, n), (_, r) in zip(loss, nll, reg, strict=True):
        assert lo == pytest.approx(n + r, rel=1e-6)
    _, ref = scalars(out, "train/nll_count_model")
    assert ref[0][1] == pytest.approx(2.454577, abs=5e-7)
    tags = ea.Tags()
    assert {"probs/count", "probs/neural"} <= set(tags["images"])
    assert {"samples/count/text_summary", "samples/neural/text_summary"} <= set(tags["tensors"])
    text = ea.Tensors("samples/neural/text_summary")[0].tensor_proto.string_val[0].decode()
    assert len([line for line in text.splitlines() if line.strip()]) == 10
    hparams = ea.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in hparams and "_hparams_/session_start_info" in hparams


def test_val_nll_logged_every_eval_steps(invoke, tiny_corpus, tmp_path):
    data = tmp_path / "more.txt"
    data.write_text("\n".join(["anna", "bob", "ab", "ba", "abba", "bab", "aab", "bba"] * 5) + "\n")
    out = tmp_path / "run"
    r = invoke(
        "train",
        "--data",
        data,
        "--out",
        out,
        "--steps",
        25,
        "--optimizer",
        "sgd",  # all 25 steps (Newton converges in fewer)
        "--eval-every",
        10,
        "--val-frac",
        0.2,
        "--test-frac",
        0.2,
        "-q",
    )
    assert r.exit_code == 0, r.output
    _, val = scalars(out, "val/nll")
    assert [s for s, _ in val] == [0, 10, 20, 25]  # before steps 0, 10, 20, and the final model
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["neural"]) == {"train", "val", "test"}
    assert val[-1][1] == pytest.approx(metrics["neural"]["val"]["nll"], rel=1e-5)
    _, ref = scalars(out, "val/nll_count_model")
    assert ref[0][1] == pytest.approx(metrics["count"]["val"]["nll"], rel=1e-6)
