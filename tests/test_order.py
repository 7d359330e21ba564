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

from bigram.counts import context_rows, dense, successor
from bigram.exact.chain import of_table
from bigram.metrics import evaluate
from bigram.models import NeuralBigram
from bigram.reader.corpus import read_counts
from bigram.reader.counting import split_of
from bigram.sampling import Constraints, most_likely, sample
from bigram.table import count_log_probs
from bigram.vocab import Vocab
from tests.conftest import NAMES, ROOT, one_line_error, train_run
from tests.reference import backed_off_table, check_frequencies, enumerate_names, random_table

# the table (names.txt, no split): contexts seen, NLL unsmoothed, NLL add-one
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


LATIN1 = "".join(map(chr, [*range(0x21, 0x7F), *range(0xC0, 0x100)]))
CYRILLIC = "".join(map(chr, range(0x400, 0x460)))  # 96 letters: more than the dense block's ids


@pytest.mark.parametrize(
    ("order", "lines"),
    [(n, ["  Émilie ", "Zoë", "", "李小龍", "Ana María", "𝒜lex", "Σωκράτης", "  ", "o'Neil", "Ли"] * 3)
     for n in (1, 3, 4, 5)]
    # above order 7 no n-gram packs into one key; a code point ≥ 256 mid-name changes the key's kind
    + [(8, ["abéba", "ωab", "aωbaaéb", "bbbbbbbbbb", "é", "aaaaaaaωa"] * 2)]
    # order 3 counts its first 64 code points < 256 in a dense block, the others by key: 158 here
    + [(3, [LATIN1[i : i + 9] + "ω" * (i % 5 == 0) for i in range(0, 158, 4)] * 2 + ["a" + LATIN1])]
    + [(3, [CYRILLIC[i : i + 7] + "a" * (i % 3 == 0) for i in range(0, 96, 3)] * 2)],
)  # fmt: skip
@pytest.mark.parametrize("split", ["hash", "random"])
def test_reader_counts_messy_multilingual_names_at_any_order(tmp_path, order, lines, split):
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


def test_lecture_config_at_order_3_gives_the_reference_losses(invoke, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lecture = str(ROOT / "configs" / "lecture.toml")
    run = train_run(invoke, NAMES, tmp_path / "o3", "--config", lecture, "--order", "3")
    ea = EventAccumulator(str(run / "neural"), size_guidance={"scalars": 0})
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
    assert [(b["context"], b["next"]) for b in scored["bigrams"]] == [("..", "e"), (".e", "m"), ("em", "m"),
                                                                     ("mm", "a"), ("ma", ".")]  # fmt: skip
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
    assert out.output.split()[2] == "trigrams"  # the header names what is counted: one per prediction
    # constrained: every name meets the constraints and continues only what the corpus continued
    out = invoke("sample", run, "-n", "500", "--seed", "0", "--start", "ka", "--end", "a", "--max-len", "7")
    assert out.exit_code == 0, out.output
    for w in out.stdout.split():  # (stderr says P(the constraints))
        chs = [None, None, *w, None]
        assert w.startswith("ka") and w.endswith("a") and len(w) <= 7, w
        assert all((tuple(chs[i - 2 : i]), chs[i]) in seen for i in range(2, len(chs)))
    # --most-likely gives names in order with the log-probability score gives them
    out = invoke("sample", run, "--most-likely", "5", "--start", "ma", "--json")
    assert out.exit_code == 0, out.output
    best = json.loads(out.stdout)
    scores = json.loads(invoke("score", run, *[b["name"] for b in best], "--json").output)
    assert [b["log_likelihood"] for b in best] == pytest.approx(
        [s["log_likelihood"] for s in scores], abs=1e-9
    )
    assert [b["log_likelihood"] for b in best] == sorted((b["log_likelihood"] for b in best), reverse=True)
    assert all(b["name"].startswith("ma") for b in best)
    one_line_error(invoke("sample", run, "--start", "qx"), "the trigram '.qx'")


def test_bad_or_too_big_orders_are_one_line_errors(invoke, tmp_path):
    one_line_error(invoke("train", "--order", "0"), "order")
    big = tmp_path / "big.txt"  # 600 characters: 601^7 ≈ 2.8e19 n-grams do not fit 64-bit keys
    big.write_text("\n".join(chr(0x4E00 + i) + chr(0x4E00 + (i * 7) % 600) for i in range(600)) + "\n")
    one_line_error(invoke("train", "--data", str(big), "--order", "7", "--model", "count"), "lower --order")
    # order 6 fits (601^6 ≈ 4.7e16): the table holds what was seen, not 601^5 rows
    ok = invoke("train", "--data", str(big), "--order", "6", "--model", "count", "--out", str(tmp_path / "r"))
    assert ok.exit_code == 0, ok.output


# --- exact constraints over context states, checked by enumeration -------------------------------
ABC = Vocab(("a", "b", "c"))


def ngram_prob(w: str, table: list[list[float]], order: int) -> float:
    """Plain-Python probability of a name: N−1 boundaries, the name, one boundary."""
    ids = [0] * (order - 1) + [" abc".index(ch) for ch in w] + [0]
    p = 1.0
    for i in range(order - 1, len(ids)):
        row = sum(x * 4 ** (order - 2 - k) for k, x in enumerate(ids[i - order + 1 : i]))
        p *= table[row][ids[i]]
    return p


def ngram_mass(c: Constraints, table: list[list[float]], order: int, horizon: int = 300) -> float:
    """P(a name meets c): a forward pass over names by their last K tokens (K = max(N−1, |E|)),
    the start forced, to `horizon` characters for an unbounded length (the rest is < 1e-30)."""
    S, E = [" abc".index(x) for x in c.start], tuple(" abc".index(x) for x in c.end)
    K = max(order - 1, len(E), 1)
    fwd = {(0,) * K: 1.0}
    z = 0.0
    for L in range((c.max_len if c.max_len is not None else horizon) + 1):
        for last, m in fwd.items():
            row = (
                sum(x * 4 ** (order - 2 - k) for k, x in enumerate(last[K - order + 1 :])) if order > 1 else 0
            )
            if max(c.min_len, len(S)) <= L and last[K - len(E) :] == E:  # padding (0) never matches E
                z += m * table[row][0]
        nxt: dict = {}
        for last, m in fwd.items():
            row = (
                sum(x * 4 ** (order - 2 - k) for k, x in enumerate(last[K - order + 1 :])) if order > 1 else 0
            )
            for d in [S[L]] if len(S) > L else [1, 2, 3]:
                key = (*last[1:], d)
                nxt[key] = nxt.get(key, 0.0) + m * table[row][d]
        fwd = nxt
    return z


ORDER_CASES = [
    Constraints(),
    Constraints(start="a", end="b", min_len=2, max_len=5),
    Constraints(end="ca", min_len=3, max_len=6),
    Constraints(end="abc"),  # longer than the context: the end's own path is partly fixed
    Constraints(start="ab", end="ba", min_len=1, max_len=5),  # "aba": start and end overlap
    Constraints(start="c", end="a", min_len=0),  # unbounded length
    Constraints(min_len=4),
]


TABLES = [(1, random_table), (3, random_table), (4, random_table)]
TABLES += [(3, backed_off_table), (5, backed_off_table)]  # rows repeat: the merged chain


@pytest.mark.parametrize(("order", "make"), TABLES, ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("c", ORDER_CASES, ids=str)
def test_constrained_sampling_is_exact_at_any_order(order, make, c):
    table = make(order, seed=order)
    z = ngram_mass(c, table, order)
    probs = {
        w: ngram_prob(w, table, order) / z
        for w in enumerate_names(min(7, c.max_len if c.max_len is not None else 7))
        if len(w) >= c.min_len and w.startswith(c.start) and w.endswith(c.end)
    }
    probs = {w: p for w, p in probs.items() if p > 0}
    lp = torch.tensor(table, dtype=torch.float64).log()
    assert of_table(lp).merged == (make is backed_off_table)  # the merged chain is what is tested there
    names = sample(lp, ABC, 100_000, seed=1, constraints=c)
    check_frequencies(names, probs)


@pytest.mark.parametrize(("order", "make"), TABLES, ids=lambda x: getattr(x, "__name__", x))
def test_most_likely_is_exact_at_any_order(order, make):
    table = make(order, seed=order)
    lp = torch.tensor(table, dtype=torch.float64).log()
    for c in ORDER_CASES[:5]:
        cands = [
            w
            for w in enumerate_names(min(8, c.max_len or 8))
            if len(w) >= c.min_len
            and w.startswith(c.start)
            and w.endswith(c.end)
            and ngram_prob(w, table, order)
        ]
        best = sorted(cands, key=lambda w: -ngram_prob(w, table, order))[:6]
        got = most_likely(lp, ABC, 6, constraints=c)
        # the same probabilities in the same order (at order 1 "ab" and "ba" tie), each name once
        assert [round(v, 9) for _, v in got] == [
            round(math.log(ngram_prob(w, table, order)), 9) for w in best
        ], c
        assert len({w for w, _ in got}) == len(got) and {w for w, _ in got} <= set(cands)
        for w, v in got:
            assert v == pytest.approx(math.log(ngram_prob(w, table, order)), abs=1e-12)


def test_sweep_over_orders_answers_the_exercise(invoke, tmp_path, names):
    """One run per order with the NLL a plain count gives; a reg per order; one-line errors."""
    from bigram.runs import Run

    out = tmp_path / "orders"
    r = invoke("sweep", "--order", "1,3,4", "--data", NAMES, "--out", out, "--model", "count",
               "--smoothing", "0", "--val-frac", "0", "--test-frac", "0", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[1].split()[:3] == ["order", "model", "train"]
    table = {int(row.split()[0]): float(row.split()[2]) for row in lines[2:5]}
    V = len({ch for w in names for ch in w}) + 1
    for n in (1, 3, 4):
        assert table[n] == pytest.approx(plain_ngram_nll(plain_ngrams(names, n), V, 0.0), abs=5e-7)
        assert Run.open(out / f"order={n}").config.order == n
    assert "k = 0" in lines[2]
    out = tmp_path / "neural"
    r = invoke("sweep", "--order", "2,3", "--reg", "0.01,0.1", "--data", NAMES, "--out", out,
               "--model", "neural", "--steps", "3", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert [Run.open(out / f"order={n}").config.reg for n in (2, 3)] == [0.01, 0.1]
    assert "reg = 0.1" in r.output.splitlines()[3]
    one_line_error(
        invoke("sweep", "--order", "2,3,4", "--reg", "0.1,1", "--out", tmp_path / "x"), "one per order"
    )
    one_line_error(invoke("sweep", "--order", "2,2", "--out", tmp_path / "x"), "repeated")
    one_line_error(invoke("sweep", "--out", tmp_path / "x"), "--order")
    one_line_error(invoke("sweep", "--order", "2,0", "--out", tmp_path / "x"), "order")
    assert not (tmp_path / "x").exists()
