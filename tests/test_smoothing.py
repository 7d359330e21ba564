"""Choosing add-k (smoothing.py): on val, and by leave-one-out without one."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from tests.conftest import NAMES
from tests.reference import plain_counts


def plain_split_nll(train: list[str], held: list[str], k: float) -> float:
    """NLL of the held-out names under add-k counts of the training names, in plain Python."""
    c = plain_counts(train)
    alphabet = sorted({ch for w in train + held for ch in w})
    V = len(alphabet) + 1
    rows: Counter = Counter()
    for (a, _), n in c.items():
        rows[a] += n
    h = plain_counts(held)
    total = sum(h.values())
    return -math.fsum(n * math.log((c[a, b] + k) / (rows[a] + k * V)) for (a, b), n in h.items()) / total


def test_smoothing_auto_picks_the_best_k_on_val(invoke, tmp_path, names):
    from bigram.data import split_names

    out = tmp_path / "auto"
    args = [
        "--smoothing",
        "auto",
        "--val-frac",
        0.2,
        "--test-frac",
        0,
        "--model",
        "count",
        "--no-figures",
        "-q",
    ]
    r = invoke("train", "--data", NAMES, "--out", out, *args)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    k = m["smoothing"]["chosen"]
    split = split_names(names, 0.2, 0.0, seed=2147483647)
    at_k = plain_split_nll(split["train"], split["val"], k)
    assert m["count"]["val"]["nll"] == pytest.approx(at_k, abs=1e-9)
    for other in (k / 1.3, k * 1.3, 1.0, 0.01):
        assert plain_split_nll(split["train"], split["val"], other) > at_k
    curve = m["smoothing"]["curve"]
    assert len(curve) > 20 and min(curve, key=lambda x: x[1])[1] == pytest.approx(m["count"]["val"]["nll"])
    assert torch.load(out / "count.pt", weights_only=True)["smoothing"] == k

    check_smoothing_figure(out, k, m["count"]["val"]["nll"])


def check_smoothing_figure(run, k: float, nll: float) -> None:
    """TensorBoard shows the k search as a figure in the run's count/ (k is no step: a scalar
    chart's x axis would be one): the chosen k's red mark where k lies on its log axis from
    10^-4 to 10^3, and the k in words."""
    import io

    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bigram.formats.tensorboard import PLOT_BOX

    ea = EventAccumulator(str(run / "count"), size_guidance={"images": 0, "tensors": 0})
    ea.Reload()
    assert "smoothing/val_nll" not in ea.Tags()["scalars"]
    (image,) = ea.Images("smoothing/val_nll")
    pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB")).astype(int)
    left, top, right, bottom = PLOT_BOX
    plot = pixels[top : bottom + 1, left : right + 1]
    red = (abs(plot - [214, 39, 40]).sum(axis=2) < 30).nonzero()  # the chosen k's line and dot
    assert np.median(red[1]) + left == pytest.approx(left + (math.log10(k) + 4) / 7 * (right - left), abs=1.5)
    said = ea.Tensors("smoothing/chosen/text_summary")[0].tensor_proto.string_val[0].decode()
    assert said == f"k = {k:.6g} (val NLL {nll:.6f})"


def test_auto_smoothing_without_val_names_chooses_by_leave_one_out(invoke, tmp_path, tiny_corpus):
    """No val names (a 5 % split of 4 names, or val_frac 0): k minimizes the leave-one-out NLL of
    the training bigrams, computed here by hand: each bigram predicted from the others' counts."""
    out = tmp_path / "run"
    r = invoke(
        "train", "--data", tiny_corpus, "--out", out, "--val-frac", "0", "--test-frac", "0", "--no-figures"
    )
    assert r.exit_code == 0, r.output
    assert "chosen by leave-one-out" in r.output
    got = json.loads((out / "metrics.json").read_text())["smoothing"]
    assert got["chosen_by"] == "leave-one-out"
    # .ab. .ab. .b. .ba. → rows over V = 3 tokens (".", "a", "b"): counts per row
    rows = {".": {"a": 2, "b": 2}, "a": {"b": 2, ".": 1}, "b": {".": 3, "a": 1}}

    def loo(k: float) -> float:
        total = sum(sum(r.values()) for r in rows.values())
        ll = sum(
            c * math.log((c - 1 + k) / (sum(r.values()) - 1 + 3 * k))
            for r in rows.values()
            for c in r.values()
        )
        return -ll / total

    best = min((10 ** (e / 1000) for e in range(-4000, 3001)), key=loo)
    assert got["chosen"] == pytest.approx(best, rel=5e-3)
    assert loo(got["chosen"]) <= loo(best) + 1e-9


def test_when_kneser_ney_wins_the_k_figure_says_it_was_not_chosen(tmp_path):
    """A sweep weighs Kneser-Ney beside the best add-k; when Kneser-Ney's val NLL is lower, the
    run's count model is Kneser-Ney, and the k search's words say so (the best k is no choice)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bigram.formats.tensorboard import Writers, log_smoothing_curve
    from bigram.safety.rundir import mark

    curve = [(10.0**e, 2.3 + 0.01 * abs(e)) for e in range(-4, 4)]
    for kn, want in [(2.25, "Kneser-Ney (val NLL 2.250000), below the best add-k, k = 1 (val NLL 2.300000)"),
                     (2.35, "k = 1 (val NLL 2.300000)")]:  # fmt: skip
        run = tmp_path / f"r{kn}"
        run.mkdir()
        mark(run)
        writers = Writers(run)
        log_smoothing_curve(writers, 1.0, curve, "val", kn)
        writers.close()
        ea = EventAccumulator(str(run / "count"), size_guidance={"tensors": 0})
        ea.Reload()
        assert ea.Tensors("smoothing/chosen/text_summary")[0].tensor_proto.string_val[0].decode() == want
