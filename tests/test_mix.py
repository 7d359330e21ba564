"""Linear interpolation of tables (bigram.mix): union vocabularies, lifted orders, EM weights."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import torch

from bigram.errors import BigramError
from bigram.mix import fit_weights, mix_tables
from bigram.vocab import Vocab
from tests.conftest import NAMES


def add_one_table(names: list[str], vocab: Vocab, order: int) -> torch.Tensor:
    """log P of an add-one n-gram model, counted in plain Python (contexts padded with boundaries)."""
    V = vocab.size
    counts: Counter = Counter()
    for w in names:
        ids = [0] * (order - 1) + [vocab.id(ch) for ch in w] + [0]
        for j in range(order - 1, len(ids)):
            row = 0
            for t in ids[j - order + 1 : j]:
                row = row * V + t
            counts[row, ids[j]] += 1
    N = torch.ones(V ** (order - 1), V, dtype=torch.float64)
    for (r, c), n in counts.items():
        N[r, c] += n
    return (N / N.sum(1, keepdim=True)).log()


def test_the_union_vocabulary_gives_a_missing_character_zero_and_renormalizes_missing_contexts():
    """A over {a, b}, B over {b, c}: after b (both have it) the mix is λ·P_A + (1−λ)·P_B with
    P_A(c | b) = 0 and P_B(a | b) = 0; after a (only A has it) it is P_A's row; every row sums to 1."""
    va, vb = Vocab(("a", "b")), Vocab(("b", "c"))
    pa = torch.tensor([[0.0, 0.6, 0.4], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]], dtype=torch.float64)  # . a b
    pb = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.25, 0.25, 0.5]], dtype=torch.float64)  # . b c
    mixed, union = mix_tables([pa.log(), pb.log()], [va, vb], [0.7, 0.3])
    assert union.chars == ("a", "b", "c")
    P = mixed.exp()
    a, b, c = 1, 2, 3
    # after b: A's row b is [. a b] = [0.1, 0.1, 0.8]; B's row b is [. b c] = [0.6, 0.1, 0.3]
    want_b = [0.7 * 0.1 + 0.3 * 0.6, 0.7 * 0.1, 0.7 * 0.8 + 0.3 * 0.1, 0.3 * 0.3]
    assert P[b].tolist() == pytest.approx(want_b, abs=1e-12)
    assert P[a].tolist() == pytest.approx([0.5, 0.2, 0.3, 0.0], abs=1e-12)  # only A knows a
    assert P[c].tolist() == pytest.approx([0.25, 0.0, 0.25, 0.5], abs=1e-12)  # only B knows c
    assert torch.allclose(P.sum(1), torch.ones(4, dtype=torch.float64))


def test_a_lower_order_model_is_lifted_exactly():
    """A unigram mixed with a trigram: every trigram context's row is λ·u + (1 − λ)·P(· | context),
    the unigram the same in every row; a bigram lifted to order 3 reads only the last token."""
    v = Vocab(("a", "b"))
    g = torch.Generator().manual_seed(0)
    uni = torch.rand(1, 3, generator=g, dtype=torch.float64)
    bi = torch.rand(3, 3, generator=g, dtype=torch.float64)
    tri = torch.rand(9, 3, generator=g, dtype=torch.float64)
    uni, bi, tri = (t / t.sum(1, keepdim=True) for t in (uni, bi, tri))
    mixed, _ = mix_tables([uni.log(), bi.log(), tri.log()], [v, v, v], [0.2, 0.3, 0.5])
    for row in range(9):
        last = row % 3
        want = 0.2 * uni[0] + 0.3 * bi[last] + 0.5 * tri[row]
        assert torch.allclose(mixed[row].exp(), want, atol=1e-12)


def test_weights_must_be_a_distribution():
    v = Vocab(("a",))
    t = torch.full((2, 2), 0.5, dtype=torch.float64).log()
    for bad in ([0.5, 0.6], [-0.1, 1.1], [float("nan"), 1.0]):
        with pytest.raises(BigramError, match="sum to 1"):
            mix_tables([t, t], [v, v], bad)


def test_em_never_raises_the_heldout_nll_and_stops_at_the_optimum():
    """names.txt split 80/10/10 by a seeded shuffle; add-one unigram, bigram and trigram tables
    counted in plain Python on the 80 %. EM on the 10 % val: the NLL never rises, the weights sum to
    one, and at the end they meet the optimum's condition (for a weight > 0, the mean over held-out
    events of Pᵢ / P_mix is 1), checked here from the tables directly."""
    names = [w for w in NAMES.read_text().split("\n") if w]
    random.Random(42).shuffle(names)
    n = len(names)
    train, val = names[: int(0.8 * n)], names[int(0.8 * n) : int(0.9 * n)]
    vocab = Vocab.from_names(names)
    tables = [add_one_table(train, vocab, order) for order in (1, 2, 3)]
    fit = fit_weights(tables, [vocab] * 3, val, tol=1e-10, max_iter=500)
    assert all(b <= a + 1e-12 for a, b in zip(fit.nll, fit.nll[1:], strict=False))
    assert len(fit.nll) > 3 and fit.nll[0] - fit.nll[-1] > 1e-3
    assert math.isclose(sum(fit.weights), 1.0)
    V = vocab.size
    ratios = torch.zeros(3, dtype=torch.float64)
    events = 0
    for w in val:
        ids = [0, 0] + [vocab.id(ch) for ch in w] + [0]
        for j in range(2, len(ids)):
            p = [tables[0][0, ids[j]].exp(), tables[1][ids[j - 1], ids[j]].exp()]
            p.append(tables[2][ids[j - 2] * V + ids[j - 1], ids[j]].exp())
            mixed = sum(lam * pi for lam, pi in zip(fit.weights, p, strict=True))
            ratios += torch.stack([pi / mixed for pi in p])
            events += 1
    ratios /= events
    for lam, r in zip(fit.weights, ratios.tolist(), strict=True):
        if lam > 1e-3:
            assert r == pytest.approx(1.0, abs=1e-4)
    # the printed NLL is the mixed table's own held-out NLL
    mixed_table, _ = mix_tables(tables, [vocab] * 3, fit.weights)
    nll = 0.0
    for w in val:
        ids = [0, 0] + [vocab.id(ch) for ch in w] + [0]
        nll -= sum(float(mixed_table[ids[j - 2] * V + ids[j - 1], ids[j]]) for j in range(2, len(ids)))
    assert nll / events == pytest.approx(fit.nll[-1], abs=1e-9)
