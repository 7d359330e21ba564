"""--order N: n-gram models of every order, checked against plain-Python n-gram counts.

A name is padded with N−1 boundaries before it and one after, so every order makes len + 1
predictions per name; context (c₁ … c_{N−1}) is row Σ cᵢ·V^(N−1−i) of the C×V table.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from bigram.corpus import read_counts
from bigram.counts import context_rows, dense, successor
from bigram.kernels import split_of
from bigram.metrics import evaluate
from bigram.models import NeuralBigram, count_log_probs
from bigram.vocab import Vocab
from tests.conftest import NAMES, ROOT, one_line_error, train_run

# the issue's table (names.txt, no split): contexts seen, NLL unsmoothed, NLL add-one
REFERENCE = {
    1: (1, 2.822726, 2.822726),
    2: (27, 2.454014, 2.454577),
    3: (602, 2.185743, 2.212582),
    4: (5686, 1.884207, 2.089104),
    5: (22135, 1.605843, 2.158039),
}


def plain_ngrams(names: list[str], order: int) -> Counter:
    """(context, next) counts with a dict, the boundary as None, each name padded with
    order − 1 boundaries before it and one after."""
    c: Counter = Counter()
    for w in names:
        chs = [None] * (order - 1) + list(w) + [None]
        for i in range(order - 1, len(chs)):
            c[tuple(chs[i - order + 1 : i]), chs[i]] += 1
    return c


def plain_ngram_nll(c: Counter, V: int, k: float) -> float:
    rows: Counter = Counter()
    for (ctx, _), n in c.items():
        rows[ctx] += n
    total = sum(c.values())
    return -math.fsum(n * math.log((n + k) / (rows[ctx] + k * V)) for (ctx, _), n in c.items()) / total


@pytest.mark.parametrize("order", sorted(REFERENCE))
def test_count_model_matches_plain_python_and_the_reference_table(names, order):
    plain = plain_ngrams(names, order)
    V = len({ch for w in names for ch in w}) + 1
    seen, nll0, nll1 = REFERENCE[order]
    assert len({ctx for ctx, _ in plain}) == seen
    assert sum(plain.values()) == 228_146  # len + 1 predictions per name, at every order
    assert plain_ngram_nll(plain, V, 0.0) == pytest.approx(nll0, abs=5e-7)
    assert plain_ngram_nll(plain, V, 1.0) == pytest.approx(nll1, abs=5e-7)

    counts = read_counts(NAMES, split="random", val_frac=0, test_frac=0, order=order)
    train = counts.splits["train"]
    assert counts.order == order and tuple(train.shape) == (V ** (order - 1), V)
    N = dense(train)
    assert int((N.sum(1) > 0).sum()) == seen
    for k, want in ((0.0, nll0), (1.0, nll1)):
        m = evaluate(count_log_probs(train, k), train)
        assert m["nll"] == pytest.approx(plain_ngram_nll(plain, V, k), abs=1e-9)
        assert m["nll"] == pytest.approx(want, abs=5e-7)
        assert m["bigrams"] == 228_146
    # smoothing 0 on the training data is the data's own conditional entropy: KL 0
    assert evaluate(count_log_probs(train, 0.0), train)["kl"] == pytest.approx(0.0, abs=1e-12)


def test_rows_are_contexts_oldest_character_most_significant(names):
    vocab = Vocab.from_names(names)
    V = vocab.size
    N = dense(read_counts(NAMES, split="random", val_frac=0, test_frac=0, order=3).splits["train"])
    plain = plain_ngrams(names, 3)
    idx = {None: 0, **{ch: vocab.id(ch) for ch in vocab.chars}}
    for (ctx, nxt), n in list(plain.items())[:500]:
        assert int(N[idx[ctx[0]] * V + idx[ctx[1]], idx[nxt]]) == n


@pytest.mark.parametrize("order", [1, 3, 4])
@pytest.mark.parametrize("split", ["hash", "random"])
def test_reader_counts_messy_multilingual_names_at_any_order(tmp_path, order, split):
    lines = ["  Émilie ", "Zoë", "", "李小龍", "Ana María", "𝒜lex", "Σωκράτης", "  ", "o'Neil", "Ли"] * 3
    p = tmp_path / "m.txt"
    p.write_text("\r\n".join(lines) + "\n", encoding="utf-8")
    names = [w.strip() for w in lines if w.strip()]
    got = read_counts(p, split=split, seed=7, val_frac=0.3, test_frac=0.2, order=order)
    vocab = got.vocab
    idx = {None: 0, **{ch: vocab.id(ch) for ch in vocab.chars}}
    if split == "hash":
        which = [split_of(w, 7, 0.3, 0.2) for w in names]
    else:  # the definition: the first places of a seeded torch.randperm are val, then test
        perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(7)).tolist()
        n_val, n_test = round(0.3 * len(names)), round(0.2 * len(names))
        which = [0] * len(names)
        for place, i in enumerate(perm[: n_val + n_test]):
            which[i] = 1 if place < n_val else 2
    V = vocab.size
    for s, label in enumerate(("train", "val", "test")):
        plain = plain_ngrams([w for w, x in zip(names, which, strict=True) if x == s], order)
        want = torch.zeros(V ** (order - 1), V, dtype=torch.long)
        for (ctx, nxt), n in plain.items():
            row = 0
            for ch in ctx:
                row = row * V + idx[ch]
            want[row, idx[nxt]] += n
        assert torch.equal(dense(got.splits[label]) if label in got.splits else want * 0, want)


def test_context_rows_and_successor_agree_with_a_plain_walk(names):
    vocab = Vocab.from_names(names)
    V = vocab.size
    some = names[:300]
    for order in (1, 2, 3, 4):
        C = V ** (order - 1)
        rows, nxt = context_rows(vocab.encode_corpus(some), C, V)
        want_rows = []
        for w in some:  # the plain walk: start at the all-boundary context, slide along the name
            row = 0
            for ch in [*w, None]:
                want_rows.append(row)
                y = torch.tensor([0 if ch is None else vocab.id(ch)])
                row = int(successor(torch.tensor([row]), y, C, V)[0])
        assert rows.tolist() == want_rows
        assert nxt.tolist() == [0 if ch is None else vocab.id(ch) for w in some for ch in [*w, None]]


def test_one_hot_forward_equals_the_loss_and_gradient_from_counts_at_order_3(names):
    vocab = Vocab.from_names(names[:2000])
    V, C = vocab.size, vocab.size**2
    rows, nxt = context_rows(vocab.encode_corpus(names[:2000]), C, V)
    counts = torch.bincount(rows * V + nxt, minlength=C * V).view(C, V).double()
    model = NeuralBigram(V, seed=2147483647, dtype=torch.float64, contexts=C)
    assert model.W.shape == (C, V)
    g = torch.Generator().manual_seed(2147483647)
    assert torch.equal(model.W.detach(), torch.randn(C, V, generator=g, dtype=torch.float64))
    loss, nll, reg = model.loss(rows, nxt, 0.01)  # the literal one-hot forward
    loss.backward()
    auto = model.W.grad.clone()
    c_loss, c_nll, c_reg, grad = model.loss_and_grad_from_counts(counts, 0.01)
    assert c_reg == pytest.approx(reg.item(), abs=1e-15)
    assert c_loss == pytest.approx(loss.item(), abs=1e-12)
    assert c_nll == pytest.approx(nll.item(), abs=1e-12)
    assert reg.item() == pytest.approx(0.01 * float((model.W.detach() ** 2).sum()) / (C * V), abs=1e-15)
    assert torch.allclose(grad, auto, atol=1e-15, rtol=1e-10)


def test_lecture_config_at_order_3_gives_the_issue_s_losses(invoke, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lecture = str(ROOT / "configs" / "lecture.toml")
    run = train_run(invoke, NAMES, tmp_path / "o3", "--config", lecture, "--order", "3")
    ea = EventAccumulator(str(run), size_guidance={"scalars": 0})
    ea.Reload()
    loss = {e.step: e.value for e in ea.Scalars("train/loss")}
    assert loss[0] == pytest.approx(3.802823, abs=5e-5)
    assert loss[99] == pytest.approx(2.520186, abs=5e-5)


def test_score_sample_and_eval_read_contexts(invoke, tmp_path, names):
    run = train_run(invoke, NAMES, tmp_path / "o3", "--order", "3", "--smoothing", "0", "--val-frac", "0",
                    "--test-frac", "0", "--model", "count")  # fmt: skip
    out = invoke("score", run, "emma", "--model", "count", "--json")
    assert out.exit_code == 0, out.output
    scored = json.loads(out.output)[0]
    plain = plain_ngrams(names, 3)
    rows: Counter = Counter()
    for (ctx, _), n in plain.items():
        rows[ctx] += n
    chs = [None, None, *"emma", None]
    want = [math.log(plain[tuple(chs[i - 2 : i]), chs[i]] / rows[tuple(chs[i - 2 : i])]) for i in range(2, 7)]
    assert [b["bigram"] for b in scored["bigrams"]] == ["..e", ".em", "emm", "mma", "ma."]
    assert [b["log_prob"] for b in scored["bigrams"]] == pytest.approx(want, abs=1e-12)
    # with smoothing 0 a sampled name only ever continues a context the corpus continued that way
    out = invoke("sample", run, "-n", "2000", "--seed", "3", "--model", "count")
    assert out.exit_code == 0, out.output
    sampled = out.output.split()
    assert len(sampled) == 2000
    seen = set(plain)
    for w in sampled:
        chs = [None, None, *w, None]
        assert all((tuple(chs[i - 2 : i]), chs[i]) in seen for i in range(2, len(chs)))
    out = invoke("eval", run, "--model", "count")
    assert out.exit_code == 0 and "2.185743" in out.output


def test_orders_beyond_what_is_built_yet_or_too_big_are_one_line_errors(invoke, tmp_path):
    run = train_run(invoke, NAMES, tmp_path / "o3", "--order", "3", "--model", "count")
    one_line_error(invoke("sample", run, "--start", "ka"), "order 3")
    one_line_error(invoke("sample", run, "--most-likely", "3"), "order 3")
    one_line_error(invoke("export", run, "--out", str(tmp_path / "x.arpa")), "order 3")
    one_line_error(invoke("plot", run, "--out", str(tmp_path / "x.png")), "order 3")
    one_line_error(invoke("train", "--order", "0"), "order")
    big = tmp_path / "big.txt"  # 600 characters: order 4 needs 600³ contexts × 600
    big.write_text("\n".join(chr(0x4E00 + i) + chr(0x4E00 + (i * 7) % 600) for i in range(600)) + "\n")
    one_line_error(invoke("train", "--data", str(big), "--order", "4", "--model", "count"), "lower --order")
