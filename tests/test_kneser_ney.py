"""Kneser-Ney (kneser_ney.py) against a plain-Python estimate written from Chen & Goodman and
lmplz's conventions, and against reference NLLs from lmplz (--discount_fallback, renormalized
without <unk>)."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict

import pytest
import torch

from bigram.estimators.kneser_ney import FALLBACK, discounts, kneser_ney_probs
from bigram.metrics import evaluate
from bigram.reader.corpus import read_counts
from bigram.vocab import Vocab
from tests.conftest import NAMES

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# names.txt, no split, per predicted character (issue 14)
REFERENCE = {2: 2.454430, 3: 2.195116, 4: 1.935935, 5: 1.727439}


def plain_kn(names: list[str], N: int):
    """p(w | h) by the recursion, from dicts: raw counts for the longest n-grams and for those
    starting with <s>, continuation counts (distinct tokens before) for the other shorter ones."""
    a: dict[int, Counter] = {k: Counter() for k in range(1, N + 1)}
    for w in names:
        s = [BOS, *w, EOS]
        for i in range(1, len(s)):
            k = min(N, i + 1)  # one <s>: a history at the start of a name is shorter
            a[k][tuple(s[i - k + 1 : i + 1])] += 1
    for k in range(N - 1, 0, -1):
        for g in a[k + 1]:
            a[k][g[1:]] += 1
    D = {}
    for k, c in a.items():
        n = Counter(x for x in c.values() if x < 5)
        d = None
        if n[1] and n[2] and n[3]:
            y = n[1] / (n[1] + 2 * n[2])
            d = [j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3)]
            if any(not 0 <= x <= j for j, x in zip((1, 2, 3), d, strict=True)):
                d = None
        D[k] = [0.0, *(d or FALLBACK)]
    uniform = 1 / (len({ch for w in names for ch in w}) + 2)  # characters, </s>, <unk>
    ctx: dict = defaultdict(lambda: [0, Counter()])
    for c in a.values():
        for g, x in c.items():
            ctx[g[:-1]][0] += x
            ctx[g[:-1]][1][min(x, 3)] += 1

    def p(w: str, h: tuple) -> float:
        lower = p(w, h[1:]) if h else uniform
        if h not in ctx:
            return lower
        k, (den, by) = len(h) + 1, ctx[h]
        x = a[k].get((*h, w), 0)
        gamma = sum(D[k][j] * by[j] for j in (1, 2, 3)) / den
        return max(x - D[k][min(x, 3)], 0) / den + gamma * lower

    return p


def plain_log_prob(p, name: str, N: int) -> float:
    s = [BOS, *name, EOS]
    total = 0.0
    for i in range(1, len(s)):
        h = tuple(s[max(0, i - N + 1) : i])
        total += math.log(p(s[i], h) / (1 - p(UNK, h)))
    return total


def table_log_prob(P: torch.Tensor, vocab: Vocab, name: str, N: int) -> float:
    ids = [0] * (N - 1) + vocab.encode(name) + [0]
    V = vocab.size
    total = 0.0
    for i in range(N - 1, len(ids)):
        row = 0
        for t in ids[i - N + 1 : i]:
            row = row * V + t
        total += math.log(float(P[row, ids[i]]))
    return total


@pytest.mark.parametrize("order", sorted(REFERENCE))
def test_kneser_ney_matches_the_reference_and_a_plain_estimate(names, order):
    counts = read_counts(NAMES, split="random", val_frac=0, test_frac=0, order=order)
    train, vocab = counts.splits["train"], counts.vocab
    P, found = kneser_ney_probs(train)
    assert evaluate(P.log(), train)["nll"] == pytest.approx(REFERENCE[order], abs=5e-7)
    assert torch.allclose(P.sum(1), torch.ones(P.shape[0], dtype=torch.float64), atol=1e-12)
    assert found[0].fallback and not any(d.fallback for d in found[1:])  # names.txt: unigrams fall back
    p = plain_kn(names, order)
    probe = [*names[::997], "zzyzx", "qxq", "a", "mmmmmmmmmm"]  # seen, and never-seen histories
    for w in probe:
        assert table_log_prob(P, vocab, w, order) == pytest.approx(plain_log_prob(p, w, order), abs=1e-9), w


@pytest.mark.parametrize("block", [1, 5])
def test_kneser_ney_estimated_a_few_histories_at_a_time_is_the_same(names, monkeypatch, block):
    """A level is estimated a block of whole histories at a time (a block of 1 or 5 n-grams holds
    less than many histories); the metrics read a block at a time: the plain estimate still."""
    import bigram.estimators.kneser_ney as kn
    import bigram.metrics as metrics

    monkeypatch.setattr(kn, "BLOCK", block)
    monkeypatch.setattr(metrics, "BLOCK", 7 * block)
    counts = read_counts(NAMES, split="random", val_frac=0, test_frac=0, order=3)
    P, _ = kneser_ney_probs(counts.splits["train"])
    assert evaluate(P.log(), counts.splits["train"])["nll"] == pytest.approx(REFERENCE[3], abs=5e-7)
    p = plain_kn(names, 3)
    for w in [*names[::1999], "zzyzx", "qxq"]:
        assert table_log_prob(P, counts.vocab, w, 3) == pytest.approx(plain_log_prob(p, w, 3), abs=1e-9), w


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_on_an_odd_vocabulary(tmp_path, order):
    """Dots, spaces and characters beyond Latin-1 in names; a corpus so small that every length
    falls back; every history scored, including ones that were never a context."""
    names = ["a.b", "ab", "b a", "ωa", "aωω", "ab", "ba.", "ω"]
    path = tmp_path / "odd.txt"
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    counts = read_counts(path, split="random", val_frac=0, test_frac=0, order=order)
    P, _ = kneser_ney_probs(counts.splits["train"])
    assert torch.allclose(P.sum(1), torch.ones(P.shape[0], dtype=torch.float64), atol=1e-12)
    p = plain_kn(names, order)
    for w in [*names, "ωωωω", ". .", "ba"]:
        got = table_log_prob(P, counts.vocab, w, order)
        assert got == pytest.approx(plain_log_prob(p, w, order), abs=1e-9), w


def test_discounts_follow_chen_and_goodman_or_fall_back():
    # n₁ = 4, n₂ = 2, n₃ = 1, n₄ = 1: Y = 4/8; D₁ = 1 − 2·½·2/4, D₂ = 2 − 3·½·1/2, D₃ = 3 − 4·½·1/1
    got = discounts(torch.tensor([1, 1, 1, 1, 2, 2, 3, 4, 9, 0]))
    assert got.d == pytest.approx((0.5, 1.25, 1.0)) and not got.fallback
    assert discounts(torch.tensor([1, 1, 2, 4])).fallback  # no n₃
    # n₁ = n₂ = 1, n₃ = 5: Y = 1/3, D₂ = 2 − 3·⅓·5 < 0, out of range
    assert discounts(torch.tensor([1, 2, 3, 3, 3, 3, 3])).d == FALLBACK


def test_train_with_kn_end_to_end(invoke, names, tmp_path):
    """`--smoothing kn` through the CLI: the summary's discounts and fallback note, the reference
    NLL, and score / eval --data of names never seen equal to the plain estimate."""
    from tests.conftest import train_run

    out = train_run(invoke, NAMES, tmp_path / "kn4", "--order", "4", "--smoothing", "kn", "--model", "count",
                    "--val-frac", "0", "--test-frac", "0")  # fmt: skip
    r = invoke("eval", out, "--json")
    assert json.loads(r.output)["count"]["train"]["nll"] == pytest.approx(REFERENCE[4], abs=5e-7)
    p = plain_kn(names, 4)
    unseen = ["zzyzx", "qxq", "emmanuelle", "xavierjohn"]
    got = json.loads(invoke("score", out, *unseen, "--json").output)
    for s, w in zip(got, unseen, strict=True):
        assert s["log_likelihood"] == pytest.approx(plain_log_prob(p, w, 4), abs=1e-9)
    (tmp_path / "new.txt").write_text("\n".join(unseen) + "\n", encoding="utf-8")
    ev = json.loads(invoke("eval", out, "--data", tmp_path / "new.txt", "--json").output)
    plain = -sum(plain_log_prob(p, w, 4) for w in unseen) / sum(len(w) + 1 for w in unseen)
    assert next(iter(ev["count"].values()))["nll"] == pytest.approx(plain, abs=1e-9)
    args = ["--order", "4", "--smoothing", "kn", "--model", "count"]
    summary = invoke(
        "train", "--data", NAMES, "--out", tmp_path / "again", "-q", "--no-figures", *args
    ).output
    lines = summary[summary.index("count model:") :].splitlines()
    assert "interpolated modified Kneser-Ney" in lines[0] and len(lines) >= 5, summary
    assert "unigrams  0.5000  1.0000  1.5000  lmplz's fallback" in lines[1]
    assert all("fallback" not in x for x in lines[2:5]) and "4-grams" in lines[4]


def test_kn_is_a_smoothing_choice_and_others_are_refused(invoke, tmp_path):
    from tests.conftest import one_line_error

    one_line_error(invoke("train", "--data", NAMES, "--smoothing", "kneser"), "--smoothing", "kn")
    (tmp_path / "c.toml").write_text('smoothing = "knn"\n', encoding="utf-8")
    one_line_error(invoke("train", "--data", NAMES, "--config", tmp_path / "c.toml"), "smoothing", "'kn'")


def test_sweep_auto_weighs_kneser_ney_against_add_k_per_order(invoke, names, tmp_path):
    """sweep --order with auto: both count models per order, the one better on val saved. The
    order-4 Kneser-Ney row equals the plain estimate from the train names, scored on val names."""
    from bigram.data import split_names
    from bigram.runs import Run

    out = tmp_path / "orders"
    r = invoke("sweep", "--order", "1,4", "--data", NAMES, "--out", out, "--model", "count", "-q")
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.output.splitlines()[2:6]]
    assert [(x[0], x[5]) for x in rows] == [
        ("1", "add-k"),
        ("1", "Kneser-Ney"),
        ("4", "add-k"),
        ("4", "Kneser-Ney"),
    ]
    for a, b in (rows[0:2], rows[2:4]):  # the mark sits on the lower val NLL
        best = a if float(a[3]) < float(b[3]) else b
        assert "saved" in best and "saved" not in (b if best is a else a)
    assert "saved" in rows[3]  # names.txt: Kneser-Ney wins at order 4 (val 2.0526 vs 2.0962)
    split = split_names(names, 0.1, 0.1, 2147483647)
    p = plain_kn(split["train"], 4)
    val = -sum(plain_log_prob(p, w, 4) for w in split["val"]) / sum(len(w) + 1 for w in split["val"])
    assert float(rows[3][3]) == pytest.approx(val, abs=5e-7)
    run = Run.open(out / "order=4")
    assert run.count_model()[1] == "kn" and run.metrics()["smoothing"]["chosen"] == "kn"
    assert run.evaluate("count")["count"]["val"]["nll"] == pytest.approx(val, abs=1e-9)
    assert Run.open(out / "order=1").count_model()[1] == pytest.approx(float(rows[0][8]), rel=1e-3)
