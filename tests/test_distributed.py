"""Distributed counting (torchrun) and devices."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from tests.conftest import NAMES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
@pytest.mark.parametrize("order", [2, 3])
def test_torchrun_two_processes_equal_one(tmp_path, order):
    args = ["train", "--data", str(NAMES), "--split", "hash", "--steps", "20", "--overwrite", "-q"]
    args += ["--order", str(order)]
    dist, single = tmp_path / "dist", tmp_path / "single"
    cmd = ["torchrun", "--nproc_per_node=2", f"--master_port={free_port()}", "-m", "bigram"]
    r = subprocess.run(
        [*cmd, *args, "--out", str(dist)], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert r.returncode == 0, r.stderr[-2000:]
    r1 = subprocess.run(
        [sys.executable, "-m", "bigram", *args, "--out", str(single)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r1.returncode == 0, r1.stderr[-2000:]
    assert json.loads((dist / "metrics.json").read_text()) == json.loads(
        (single / "metrics.json").read_text()
    )
    a = torch.load(dist / "neural.pt", weights_only=True)
    b = torch.load(single / "neural.pt", weights_only=True)
    assert torch.equal(a["W"], b["W"])
    ca = torch.load(dist / "counts.pt", weights_only=True)["splits"]
    cb = torch.load(single / "counts.pt", weights_only=True)["splits"]
    assert all(torch.equal(ca[s].to_dense(), cb[s].to_dense()) for s in cb)
    # only rank 0 wrote: one event file per model, one run directory
    assert sorted(p.parent.name for p in dist.glob("*/events.out.tfevents.*")) == ["count", "neural"]
    assert r.stdout.count("run:") == 1


def test_random_split_is_refused_under_torchrun(monkeypatch):
    from bigram.config import TrainConfig
    from bigram.errors import BigramError
    from bigram.reader.corpus import load_counts

    with pytest.raises(BigramError, match="hash"):
        load_counts(TrainConfig(data=str(NAMES), split="random"), rank=0, world=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu(invoke, tmp_path):  # pragma: no cover - runs where a GPU exists
    for device in ("cpu", "cuda"):
        r = invoke(
            "train", "--data", NAMES, "--out", tmp_path / device, "--device", device, "--steps", 30, "-q"
        )
        assert r.exit_code == 0, r.output
    cpu = json.loads((tmp_path / "cpu" / "metrics.json").read_text())
    gpu = json.loads((tmp_path / "cuda" / "metrics.json").read_text())
    for split, m in cpu["neural"].items():
        assert gpu["neural"][split]["nll"] == pytest.approx(m["nll"], rel=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_clear_error(invoke):
    r = invoke("train", "--data", NAMES, "--device", "cuda")
    assert r.exit_code == 1 and "no CUDA GPU" in r.output
