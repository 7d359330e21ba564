"""Training runs end to end (training.py, fit.py, formats/tensorboard.py): the lecture's numbers,
TensorBoard, sweep, resume, divergence, Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from tests.conftest import NAMES, ROOT, one_line_error, train_run
from tests.reference import plain_nll


def events(run: Path, model: str) -> EventAccumulator:
    """What TensorBoard reads of one model's directory of the run (its TensorBoard run)."""
    ea = EventAccumulator(str(run / model), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def tb_steps(run: Path, tag: str) -> list[int]:
    return [e.step for e in events(run, "neural").Scalars(tag)]


def scalars(run_dir, tag, model="neural"):
    ea = events(run_dir, model)
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


def test_figures_in_tensorboard(lecture_runs):
    assert "figures/counts" in events(lecture_runs[1], "count").Tags()["images"]  # N: the count model's
    assert "figures/probs_neural" in events(lecture_runs[1], "neural").Tags()["images"]


def test_sweep(invoke, tmp_path):
    out = tmp_path / "sweep"
    r = invoke("sweep", "--reg", "0.001,0.01,0.1", "--data", NAMES, "--out", out, "--steps", 60, "-q")
    assert r.exit_code == 0, r.output
    rows = [
        line.split()
        for line in r.output.splitlines()
        if line.strip() and line.split()[0] in ("0.001", "0.01", "0.1")
    ]
    assert len(rows) == 3
    train_nll = [float(row[1]) for row in rows]
    ks = [float(row[4]) for row in rows]
    assert train_nll == sorted(train_nll) and ks == sorted(ks)  # more L2, more smoothing
    for reg in ("0.001", "0.01", "0.1"):
        run = out / f"reg={reg}"
        assert (run / "neural.pt").is_file() and not (run / "count.pt").exists()
        assert "_hparams_/session_start_info" in events(run, "neural").PluginTagToContent("hparams")
    assert invoke("sweep", "--reg", "a,b").exit_code == 1


def test_sweep_refuses_repeated_or_non_finite_regs_before_training(invoke, tmp_path, tiny_corpus):
    for reg in ("0.1,0.1", "nan", "0,inf"):
        out = tmp_path / f"sweep{len(reg)}"
        one_line_error(invoke("sweep", "--reg", reg, "--data", tiny_corpus, "--out", out), "--reg")
        assert not out.exists()


def test_the_ctrl_c_handler_is_restored_after_training_from_python(tmp_path, tiny_corpus):
    """A notebook trains, then presses Ctrl-C: it must interrupt, not set a forgotten flag."""
    import signal

    from bigram.config import TrainConfig
    from bigram.training import train

    before = signal.getsignal(signal.SIGINT)
    cfg = TrainConfig(data=str(tiny_corpus), steps=3, figures=False, val_frac=0, test_frac=0)
    train(cfg, out=tmp_path / "r", progress=False)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("delay", [0.7, 1.0, 1.5, 2.5, 3.5, 4.5, 6.0])
def test_ctrl_c_at_any_moment_of_train(tmp_path, delay):
    """SIGINT at moments from start-up (the CLI and torch still importing) to the final figures:
    exit 130, one line, and no run directory or a consistent one (both checkpoints and metrics).
    (In the first ~0.4 s the signal lands in the interpreter's own start-up, where this machine's
    site-packages .pth files import certifi and others, before any bigram code runs.)"""
    import signal

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "run"
    p = subprocess.Popen(
        [sys.executable, "-m", "bigram", "train", "--data", str(ROOT / "data" / "names.txt"),
         "--out", str(out), "-q", "--steps", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert "Traceback" not in err and "RecursionError" not in err, err
    if p.returncode == 0:  # it finished before the signal: a complete run
        assert (out / "metrics.json").is_file()
        return
    assert p.returncode == 130, (p.returncode, err)
    assert len(err.strip().splitlines()) == 1, err
    if out.exists():
        assert {"config.toml", "vocab.json", "counts.pt", "count.pt", "neural.pt", "metrics.json"} <= {
            x.name for x in out.iterdir()
        }, sorted(x.name for x in out.iterdir())


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
    base = ["--data", NAMES, "--val-frac", 0.1, "--test-frac", 0, "-q", "--eval-every", 10, *flags]
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
    # train/nll: one point a step and the final one; the stopped run's final point (step 12) is
    # where the resumed run starts, logged once (issue 32)
    assert (
        tb_steps(tmp_path / "part", "train/nll")
        == tb_steps(tmp_path / "full", "train/nll")
        == list(range(31))
    )
    # val points: the uninterrupted run's, plus the 12-step run's final one, none twice
    part, whole = tb_steps(tmp_path / "part", "val/nll"), tb_steps(tmp_path / "full", "val/nll")
    assert sorted(set(part)) == part and set(whole) <= set(part) and set(part) - set(whole) == {12}


def test_resume_refusals(invoke, tmp_path, tiny_corpus):
    out = train_run(invoke, tiny_corpus, tmp_path / "run", "--steps", 5)
    one_line_error(invoke("train", "--resume", out), "already at step 5")
    one_line_error(invoke("train", "--resume", out, "--steps", 9, "--lr", 1), "only --steps")
    counts_only = train_run(invoke, tiny_corpus, tmp_path / "c", "--model", "count")
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
        logged = list(out.glob("neural/events.out.tfevents.*"))
        if logged and logged[0].stat().st_size > 50_000:
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
    assert not list(out.glob("events.out.tfevents.*"))  # TensorBoard's files: a directory per model
    for model in ("count", "neural"):
        (logged,) = (out / model).glob("events.out.tfevents.*")
        assert json.loads((out / model / ".bigram-run").read_text())["files"] == [logged.name]
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["lr"] == 50.0 and cfg["steps"] == 100 and cfg["val_frac"] == 0.0
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["chars"] == [chr(c) for c in range(97, 123)] and vocab["boundary_id"] == 0
    neural = torch.load(out / "neural.pt", weights_only=True)
    assert neural["W"].shape == (27, 27) and neural["step"] == 100
    count = torch.load(out / "count.pt", weights_only=True)
    assert count["counts"].to_dense().sum() == 228_146 and count["smoothing"] == 1.0


def test_tensorboard_events(lecture_run):
    """The lecture run as TensorBoard reads it: two runs, neural and count (each its own colour);
    the neural curve over the 100 steps taken and the final model; the count model's line over
    the same steps, at its NLL, 2.454577 (eval_every 10: every tenth step)."""
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    out, _ = lecture_run
    tb = EventMultiplexer()
    tb.AddRunsFromDirectory(str(out))
    assert set(tb.Runs()) == {"count", "neural"}  # the names TensorBoard shows
    tb.AddRunsFromDirectory(str(out.parent))
    assert {"lecture/count", "lecture/neural"} <= set(tb.Runs())  # --logdir runs: each run's two
    ea, nll = scalars(out, "train/nll")
    _, reg = scalars(out, "train/reg")
    _, loss = scalars(out, "train/loss")
    assert [s for s, _ in nll] == list(range(101)) and [s for s, _ in loss] == [s for s, _ in reg] == list(
        range(100)
    )
    for (_, lo), (_, n), (_, r) in zip(loss, nll[:100], reg, strict=True):
        assert lo == pytest.approx(n + r, rel=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["neural_training"]["steps"] == 100
    assert nll[-1] == (100, pytest.approx(metrics["neural"]["train"]["nll"], rel=1e-6))
    count, line = scalars(out, "train/nll", "count")
    assert [s for s, _ in line] == list(range(0, 101, 10))
    assert [x for _, x in line] == [pytest.approx(2.454577, abs=5e-7)] * 11
    assert (
        set(count.Tags()["scalars"]) == {"train/nll"} and "custom_scalars__config__" in ea.Tags()["tensors"]
    )
    figures = {"count": "figures/counts", "neural": "figures/probs_neural"}  # N is the count model's
    for model, run in (("count", count), ("neural", ea)):
        assert sorted(run.Tags()["images"]) == [figures[model], f"probs/{model}"]
        text = run.Tensors(f"samples/{model}/text_summary")[0].tensor_proto.string_val[0].decode()
        assert len([line for line in text.splitlines() if line.strip()]) == 10
        hparams = run.PluginTagToContent("hparams")
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
    for split in ("train", "val", "test"):  # the count model's line: the same steps, its NLL
        _, line = scalars(out, f"{split}/nll", "count")
        assert [s for s, _ in line] == [0, 10, 20, 25]
        assert [x for _, x in line] == [pytest.approx(metrics["count"][split]["nll"], rel=1e-6)] * 4


def check_tensorboard(run: Path) -> None:
    """What a learner sees of a run in TensorBoard, read back from its event files: a TensorBoard
    run per model directory and no event file beside them; every scalar chart spans the steps
    training took, 0 to metrics.json's step count (a count-only run, which takes none: one point at
    step 0); the count model's charts flat; no `hparam/` tags; and each model's HParams metrics
    its {split}/nll charts, whose last points are metrics.json's final NLLs."""
    metrics = json.loads((run / "metrics.json").read_text())
    assert not list(run.glob("events.out.tfevents.*"))
    steps = metrics.get("neural_training", {}).get("steps", 0)
    for model in ("count", "neural"):
        if not (run / model).exists():
            assert model == "neural" and "neural" not in metrics
            continue
        ea = events(run, model)
        for tag in ea.Tags()["scalars"]:
            points = ea.Scalars(tag)
            last = steps - 1 if tag in ("train/loss", "train/reg") else steps  # the loss before each step
            assert not tag.startswith("hparam"), tag
            assert points[0].step == 0 and points[-1].step == last, (tag, points)
            assert len(points) > 1 if steps else len(points) == 1, (tag, points)
            if model == "count":
                assert len({e.value for e in points}) == 1, (tag, points)
        infos = []
        if model in metrics:
            content = ea.PluginTagToContent("hparams")["_hparams_/experiment"]
            infos = HParamsPluginData.FromString(content).experiment.metric_infos
        assert sorted(i.display_name for i in infos) == sorted(f"{s} NLL" for s in metrics.get(model, ()))
        for info in infos:
            split = info.display_name.split()[0]
            assert (info.name.group, info.name.tag) == ("", f"{split}/nll")
            last = max(ea.Scalars(info.name.tag), key=lambda e: e.step)
            assert last.value == pytest.approx(metrics[model][split]["nll"], rel=1e-6), info


def test_tensorboard_charts_span_the_steps_taken_and_hparams_are_the_curves_ends(
    invoke, tmp_path, lecture_run
):
    check_tensorboard(lecture_run[0])  # count + neural, the lecture's SGD
    data = tmp_path / "mixed.txt"  # a vocabulary beyond a-z, val and test splits
    data.write_text("\n".join(["Ünal", "Zoë", "anna", "bo", "Ōta", "emma", "ava", "lia"] * 20) + "\n")
    for model in ("count", "neural", "both"):
        check_tensorboard(train_run(invoke, data, tmp_path / model, "--model", model))
    out = tmp_path / "sweep"
    r = invoke("sweep", "--reg", "0.01,1", "--data", data, "--out", out, "-q")
    assert r.exit_code == 0, r.output
    for reg in ("0.01", "1"):
        check_tensorboard(out / f"reg={reg}")


def test_custom_scalars_put_the_neural_curve_and_the_count_line_on_one_chart(invoke, tmp_path):
    """The layout read back from the event file: per split, one chart whose tag is logged in both
    the neural and the count directory, two TensorBoard runs (so two colours): the neural model's
    curve, and the count model's line over the same steps."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    run = train_run(invoke, NAMES, tmp_path / "r", "--steps", "30", "--optimizer", "lbfgs", "--tol", "0")
    neural, count = events(run, "neural"), events(run, "count")
    layout = layout_pb2.Layout()
    layout.ParseFromString(neural.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    assert "custom_scalars__config__" not in count.Tags()["tensors"]  # one layout per run
    (category,) = layout.category
    assert category.title < min(neural.Tags()["scalars"])  # listed before the raw tags' groups
    charts = {c.title.split(":")[0]: list(c.multiline.tag) for c in category.chart}
    assert set(charts) == {"train NLL", "val NLL", "test NLL"}
    assert all("neural" in c.title and "count" in c.title for c in category.chart)  # what each line is
    for split in ("train", "val", "test"):
        assert charts[f"{split} NLL"] == [f"^{split}/nll$"]
        curve, line = neural.Scalars(f"{split}/nll"), count.Scalars(f"{split}/nll")
        assert [e.step for e in curve] == [e.step for e in line] == list(range(31))
        assert len({e.value for e in curve}) > 10 and len({e.value for e in line}) == 1


@pytest.mark.parametrize(
    ("flags", "first"), [(["--reg", "0,0.1"], ["reg"]), (["--order", "1,2"], ["order", "reg"])]
)
def test_a_sweeps_hparams_list_the_swept_keys_first(invoke, tmp_path, tiny_corpus, flags, first):
    """The HParams table shows the keys a sweep varies first, not after 25 others (issue 32)."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    out = tmp_path / "sw"
    r = invoke("sweep", *flags, "--data", tiny_corpus, "--steps", "3", "--out", out)
    assert r.exit_code == 0, r.output
    for sub in sorted(p for p in out.iterdir() if p.is_dir()):
        content = events(sub, "neural").PluginTagToContent("hparams")["_hparams_/experiment"]
        names = [h.name for h in HParamsPluginData.FromString(content).experiment.hparam_infos]
        assert names[: len(first) + 1] == [*first, "model"] and len(names) > 10  # then whose row it is
