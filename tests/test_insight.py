"""Issue 6: the likelihood story in numbers, the Python API."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import pytest
import torch

import bigram
from tests.conftest import NAMES, plain_counts


def plain_entropy(names: list[str]) -> float:
    """H(next | prev) of names.txt's bigram frequencies, by hand: −Σ N_ij log(N_ij/N_i) / ΣN."""
    c = plain_counts(names)
    rows: Counter = Counter()
    for (a, _), n in c.items():
        rows[a] += n
    total = sum(c.values())
    return -math.fsum(n * math.log(n / rows[a]) for (a, _), n in c.items()) / total


@pytest.fixture(scope="module")
def lecture_runs(tmp_path_factory):
    from typer.testing import CliRunner

    from bigram.cli import app

    root = tmp_path_factory.mktemp("insight")
    runs = {}
    for k in (0, 1):
        out = root / f"k{k}"
        args = ["train", "--data", str(NAMES), "--out", str(out), "--val-frac", "0", "--test-frac", "0",
                "--smoothing", str(k), "--optimizer", "lbfgs", "--steps", "60", "-q"]  # fmt: skip
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        runs[k] = out
    return runs


def test_entropy_cross_entropy_kl(names, lecture_runs):
    h = plain_entropy(names)
    m0 = json.loads((lecture_runs[0] / "metrics.json").read_text())
    c0 = m0["count"]["train"]
    assert c0["entropy"] == pytest.approx(h, abs=1e-12)
    assert c0["nll"] == pytest.approx(2.454014, abs=5e-7)  # the smoothing-0 figure
    assert c0["cross_entropy"] == c0["nll"]
    assert abs(c0["kl"]) < 1e-12  # the ML table is the data's own distribution
    m1 = json.loads((lecture_runs[1] / "metrics.json").read_text())
    for model in ("count", "neural"):
        m = m1[model]["train"]
        assert m["kl"] == pytest.approx(m["cross_entropy"] - m["entropy"]) and m["kl"] > 0
    assert m1["count"]["train"]["kl"] == pytest.approx(2.454577 - h, abs=1e-6)


def test_kl_count_neural_by_hand(lecture_runs):
    run = bigram.load_run(lecture_runs[1])
    res = run.evaluate()
    P = run.log_probs("count").exp()
    Q = run.log_probs("neural").exp()
    N = run.counts("train").double()
    w = N.sum(1) / N.sum()
    by_hand = sum(
        float(w[i]) * sum(float(P[i, j]) * math.log(float(P[i, j]) / float(Q[i, j])) for j in range(27))
        for i in range(27)
    )
    assert res["kl_count_neural"]["train"] == pytest.approx(by_hand, rel=1e-9)
    assert 0 < by_hand < 0.05  # reg 0.01 keeps the converged neural model close to add-one counts


def test_python_api(lecture_runs, names):
    run = bigram.load_run(lecture_runs[1])
    assert run.vocab.size == 27
    assert run.counts("train").sum() == 228_146
    lp = run.log_probs("count")
    assert lp.shape == (27, 27) and torch.allclose(lp.exp().sum(1), torch.ones(27, dtype=torch.float64))
    s = run.score("emma", model="count")[0]
    assert s["name"] == "emma" and len(s["bigrams"]) == 5
    assert run.sample(5, seed=0) == run.sample(5, seed=0)
    from bigram.sampling import Constraints

    assert all(w.startswith("ka") for w in run.sample(20, seed=1, constraints=Constraints(start="ka")))
    # the three most likely names by enumeration in plain Python (add-one counts, length ≤ 3),
    # and no longer name beats the third
    c = plain_counts(names)
    letters = [chr(i) for i in range(97, 123)]
    rows = Counter()
    for (a, _), n in c.items():
        rows[a] += n

    def p(a, b):
        return (c[a, b] + 1) / (rows[a] + 27)

    def prob(w):
        chs = [None, *w, None]
        return math.prod(p(a, b) for a, b in itertools.pairwise(chs))

    cands = [a + b + d for a in letters for b in ["", *letters] for d in ["", *letters] if b or not d]
    best = sorted(cands, key=prob, reverse=True)[:3]
    # the most probable name of each length L ≥ 4, by a max-product pass over lengths
    f = {b: p(None, b) for b in letters}
    longest_best = 0.0
    for L in range(1, 80):
        if L >= 4:
            longest_best = max(longest_best, max(f[a] * p(a, None) for a in letters))
        f = {b: max(f[a] * p(a, b) for a in letters) for b in letters}
    assert prob(best[2]) > longest_best
    got = run.most_likely(3, model="count")
    assert [w for w, _ in got] == best
    assert [lp for _, lp in got] == pytest.approx([math.log(prob(w)) for w in best])


def test_plot_writes_the_labelled_heatmap(invoke, lecture_runs, tmp_path):
    from matplotlib.image import imread

    for what in ("counts", "probs"):
        out = tmp_path / f"{what}.png"
        r = invoke("plot", lecture_runs[1], "--what", what, "--out", out)
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = imread(out)
        assert img.shape[0] >= 480 and img.shape[1] >= 480  # legible: ≥ 8 inches at 60 dpi
        assert img[..., :3].std() > 0.05  # not blank
    r = invoke("plot", lecture_runs[1], "--out", tmp_path / "counts.png")
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = invoke("plot", lecture_runs[1], "--what", "logits", "--out", tmp_path / "x.png")
    assert r.exit_code == 1 and "counts or probs" in r.output


def test_plot_cells_are_the_counts():
    from bigram.plots import figure_for
    from bigram.vocab import Vocab

    vocab = Vocab(("a", "b"))
    N = torch.tensor([[0, 2, 1], [1, 0, 1], [2, 0, 0]])
    fig = figure_for(vocab, N, None, "counts", "count", 40)
    texts = sorted(fig.labels)
    assert texts == sorted(["..\n0", ".a\n2", ".b\n1", "a.\n1", "aa\n0", "ab\n1", "b.\n2", "ba\n0", "bb\n0"])


def test_top_tokens_keep_the_boundary_and_the_most_frequent():
    from bigram.counts import top_tokens

    N = torch.zeros(6, 6, dtype=torch.long)
    N[:, 0] = torch.tensor([1, 50, 2, 40, 3, 30])  # row sums: token frequencies
    assert top_tokens(N, 3).tolist() == [0, 1, 3]
    assert top_tokens(N, 10).tolist() == list(range(6))


def test_figures_in_tensorboard(lecture_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(lecture_runs[1]), size_guidance={"images": 0})
    ea.Reload()
    assert {"figures/counts", "figures/probs_neural"} <= set(ea.Tags()["images"])


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

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(out), size_guidance={"scalars": 0})
    ea.Reload()
    assert len(ea.Scalars("smoothing/val_nll")) == len(curve)


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
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for reg in ("0.001", "0.01", "0.1"):
        run = out / f"reg={reg}"
        assert (run / "neural.pt").is_file() and not (run / "count.pt").exists()
        ea = EventAccumulator(str(run))
        ea.Reload()
        assert "_hparams_/session_start_info" in ea.PluginTagToContent("hparams")
    assert invoke("sweep", "--reg", "a,b").exit_code == 1


def test_plot_labels_are_large_and_readable_on_every_cell():
    """Labels ≥ 9 px at the saved size; white on the darkest cells, near-black on light ones, and
    really drawn: the darkest cell's pixels include its white label."""

    from bigram.plots import CELL_PX, FONT_PX, MARGIN_PX, TITLE_PX, figure_for
    from bigram.vocab import Vocab

    vocab = Vocab(("a", "b"))
    N = torch.tensor([[0, 900, 10], [5, 0, 1], [800, 0, 0]])
    fig = figure_for(vocab, N, None, "counts", "count", 40)
    assert FONT_PX >= 9 and CELL_PX >= 2 * FONT_PX + 8
    by_label = dict(zip(fig.labels, fig.inks, strict=True))
    assert by_label[".a\n900"] == "white" and by_label["b.\n800"] == "white"
    assert by_label["..\n0"] != "white" and by_label["ab\n1"] != "white"
    img = fig.array()
    cell = img[TITLE_PX : TITLE_PX + CELL_PX, MARGIN_PX + CELL_PX : MARGIN_PX + 2 * CELL_PX]  # ".a"
    assert (cell.min(axis=2) > 240).sum() > 20  # white glyph pixels on a dark blue cell
