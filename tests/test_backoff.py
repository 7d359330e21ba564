"""The sparse table (bigram/backoff.py) against plain-Python n-gram counts and the dense table:
the same numbers at orders 2–5 on names.txt, rows that sum to one, memory that follows what was
seen, and a damaged stored table refused in one line."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import torch

from bigram.backoff import Level, Table, row_sum_error, table_of_state, table_state
from bigram.errors import BigramError
from bigram.estimators.kneser_ney import kneser_ney_table
from bigram.reader.corpus import read_counts
from bigram.table import count_log_probs, count_table
from tests.conftest import NAMES
from tests.reference import plain_names


def ngram_counts(names: list[str], order: int) -> tuple[Counter, Counter]:
    """(context, next) counts and context totals of .name. at an order, contexts padded with
    order − 1 boundaries (None), in plain Python."""
    grams: Counter = Counter()
    for w in names:
        chs = [None] * (order - 1) + list(w) + [None]
        for i in range(order - 1, len(chs)):
            grams[tuple(chs[i - order + 1 : i]), chs[i]] += 1
    rows: Counter = Counter()
    for (ctx, _), n in grams.items():
        rows[ctx] += n
    return grams, rows


@pytest.fixture(scope="module")
def names() -> list[str]:
    return plain_names(NAMES)


def key_of(ctx: tuple, vocab) -> int:
    key = 0
    for ch in ctx:
        key = key * vocab.size + (0 if ch is None else vocab.encode(ch)[0])
    return key


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_add_k_rows_are_the_plain_counts_at_every_order(names, order):
    """add-k 0.5: a seen context's seen token (c + k)/(c(h) + kV), its other tokens and every
    unseen context's tokens as the formula says, read through the backoff form."""
    counts = read_counts(NAMES, split="random", seed=1, val_frac=0.0, test_frac=0.0, order=order)
    vocab, V, k = counts.vocab, counts.vocab.size, 0.5
    table = count_table(counts.splits["train"], k)
    table.dense = None  # the sparse path, even where the table is small enough to keep dense
    grams, rows = ngram_counts(names, order)
    rng = random.Random(order)
    seen = rng.sample(sorted(grams, key=str), 300)
    chars = [None, *vocab.chars]
    unseen_ctx = [tuple(rng.choice(chars[1:]) for _ in range(order - 1)) for _ in range(50)]
    cases = [(ctx, w) for ctx, w in seen] + [(ctx, rng.choice(chars)) for ctx in unseen_ctx]
    cases += [(ctx, rng.choice(chars)) for ctx, _ in seen[:100]]  # mostly unseen followers
    want = [
        math.log((grams[ctx, w] + k) / (rows[ctx] + k * V)) if rows[ctx] else -math.log(V) for ctx, w in cases
    ]
    ctx_keys = torch.tensor([key_of(ctx, vocab) for ctx, _ in cases])
    nxt = torch.tensor([0 if w is None else vocab.encode(w)[0] for _, w in cases])
    assert table.at(ctx_keys, nxt).tolist() == pytest.approx(want, abs=1e-12)
    assert table.rows(ctx_keys)[torch.arange(len(cases)), nxt].tolist() == pytest.approx(want, abs=1e-12)
    assert table.contexts == len(rows) and table.entries == len(grams)


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize("smoothing", [0.0, 0.5, "kn"])
def test_the_sparse_table_is_the_dense_one(order, smoothing):
    """Every row of the sparse table, made whole, equals the dense table (add-k: the dense
    formula over the C×V counts; Kneser-Ney: its dense fast path)."""
    counts = read_counts(NAMES, split="random", seed=1, val_frac=0.1, test_frac=0.1, order=order)
    train = counts.splits["train"]
    table = count_table(train, smoothing)
    want = table.dense if smoothing == "kn" else count_log_probs(train, smoothing)
    assert want is not None or smoothing != "kn"
    table.dense = None
    got = table.to_dense()
    finite = want > -math.inf
    assert torch.equal(finite, got > -math.inf)
    assert torch.allclose(got[finite], want[finite], rtol=0, atol=1e-12)
    assert row_sum_error(table) < 1e-12


def test_the_table_grows_with_what_was_seen_at_order_ten():
    """Order 10 on names.txt: 27⁹ ≈ 7.6e12 contexts an order names, a few hundred thousand seen."""
    counts = read_counts(NAMES, split="random", seed=1, val_frac=0.0, test_frac=0.0, order=10)
    table, _ = kneser_ney_table(counts.splits["train"])
    assert table.dense is None and table.shape[0] == 27**9
    assert table.entries < 400_000 and row_sum_error(table) < 1e-9
    listed = sum(lv.nbytes() for lv in table.levels if lv is not None)
    assert listed < 40 * 2**20


def test_the_math_pages_rows(names):
    """docs/math.md's numbers: add-one's row of q (272 bigrams, 11 next characters, β = 27/299)
    and Kneser-Ney's row of em at order 3 (15 next characters, β = 0.0310)."""
    grams, rows = ngram_counts(names, 2)
    assert rows[("q",)] == 272 and len([1 for (c, _) in grams if c == ("q",)]) == 11
    counts = read_counts(NAMES, split="random", seed=1, val_frac=0.0, test_frac=0.0, order=2)
    table = count_table(counts.splits["train"], 1.0)
    table.dense = None
    level, q = table.levels[1], counts.vocab.encode("q")[0]
    r, known = level.find(torch.tensor([q]))
    assert bool(known) and math.exp(float(level.backoff[r])) == pytest.approx(27 / 299, rel=1e-12)
    counts3 = read_counts(NAMES, split="random", seed=1, val_frac=0.0, test_frac=0.0, order=3)
    kn, _ = kneser_ney_table(counts3.splits["train"])
    e, m = counts3.vocab.encode("em")
    level = kn.levels[2]
    r, known = level.find(torch.tensor([e * 27 + m]))
    r = int(r)
    grams3, _ = ngram_counts(names, 3)
    assert int(level.ptr[r + 1] - level.ptr[r]) == len([1 for (c, _) in grams3 if c == ("e", "m")]) == 15
    assert math.exp(float(level.backoff[r])) == pytest.approx(0.0310, abs=5e-5)


def damaged(state: dict, level: int, part: str, value) -> dict:
    levels = [None if lv is None else dict(lv) for lv in state["levels"]]
    levels[level][part] = value
    return {"order": state["order"], "levels": levels}


def test_a_damaged_stored_table_is_one_line():
    t = Table(3, 2, [None, Level.of_rows([0, 2], [[1, 2], [0]], [[0.5, 0.25], [0.5]], [0.75, 0.75])])
    state = table_state(t)
    assert table_of_state(state, 3, "x.pt").at(
        torch.tensor([2]), torch.tensor([1])
    ).exp().item() == pytest.approx(0.25)
    bad = [
        damaged(state, 1, "keys", torch.tensor([2, 0])),  # unsorted
        damaged(state, 1, "keys", torch.tensor([0, 9])),  # beyond V
        damaged(state, 1, "cols", torch.tensor([2, 1, 0])),  # a row's tokens unsorted
        damaged(state, 1, "cols", torch.tensor([1, 7, 0])),  # outside the vocabulary
        damaged(state, 1, "ptr", torch.tensor([0, 5, 3])),  # offsets
        damaged(state, 1, "logp", torch.tensor([0.9, 0.25, 0.5]).log()),  # a row summing to 1.15
        damaged(state, 1, "backoff", torch.tensor([float("nan"), 0.0])),
        damaged(state, 1, "logp", torch.tensor([1, 2, 3])),  # integers
        {"order": 3, "levels": state["levels"]},
        "not a table",
    ]
    for s in bad:
        with pytest.raises(BigramError, match=r"x\.pt holds a table"):
            table_of_state(s, 3, "x.pt")


@pytest.mark.parametrize("order", [2, 3])
def test_kl_between_sparse_tables_is_the_dense_sum(order):
    """KL(P ‖ Q) of two add-k tables read entry by entry (listed tokens, then the rest in one
    term) equals the sum over every token of the dense tables, weighted by the val contexts."""
    from bigram.metrics import kl_between

    counts = read_counts(NAMES, split="random", seed=1, val_frac=0.1, test_frac=0.0, order=order)
    train, val = counts.splits["train"], counts.splits["val"]
    P, Q = count_table(train, 0.01), count_table(train, 3.0)
    P.dense = Q.dense = None
    dense_p, dense_q = count_log_probs(train, 0.01), count_log_probs(train, 3.0)
    rows = val.coalesce().indices()[0] if val.is_sparse else val.nonzero()[:, 0]
    w = torch.bincount(rows, weights=(val.coalesce().values() if val.is_sparse else val[val > 0]).double(),
                       minlength=dense_p.shape[0])  # fmt: skip
    want = float((w / w.sum() * (dense_p.exp() * (dense_p - dense_q)).sum(1)).sum())
    assert kl_between(P, Q, val) == pytest.approx(want, rel=1e-10)
