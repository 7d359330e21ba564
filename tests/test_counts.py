"""Counts and the count model against an independent plain-Python count of names.txt."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from bigram.counts import count_bigrams
from bigram.metrics import evaluate
from bigram.table import count_log_probs
from bigram.vocab import Vocab
from tests.reference import clean_names, plain_counts, plain_nll


def test_counts_match_plain_python(names):
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab)
    ref = plain_counts(names)
    assert int(N.sum()) == sum(ref.values()) == 228_146
    expected = torch.zeros(27, 27, dtype=torch.long)
    for (a, b), n in ref.items():
        i = 0 if a is None else ord(a) - ord("a") + 1
        j = 0 if b is None else ord(b) - ord("a") + 1
        expected[i, j] = n
    assert torch.equal(N, expected)
    assert N[0, 0] == 0  # no empty names


def test_row_sums_are_character_frequencies(names):
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab)
    freq = {ch: 0 for ch in vocab.chars}
    for w in names:
        for ch in w:
            freq[ch] += 1
    assert N.sum(1)[0] == len(names) == N.sum(0)[0]  # every name starts and ends once
    assert N.sum(1)[1:].tolist() == [freq[ch] for ch in vocab.chars]


@pytest.mark.parametrize(("k", "reference"), [(1.0, 2.454577), (0.0, 2.454014)])
def test_count_model_nll_reference(names, k, reference):
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab)
    got = evaluate(count_log_probs(N, k), N)
    expected = plain_nll(names, k)
    assert abs(expected - reference) < 5e-7  # the figure, from the plain-Python count
    assert got["nll"] == pytest.approx(expected, abs=1e-9)
    assert got["bigrams"] == 228_146


def test_count_model_rows_are_distributions_and_hand_values():
    vocab = Vocab.from_names(["ab", "ab", "b", "ba"])
    N = count_bigrams(["ab", "ab", "b", "ba"], vocab)
    # ab ab b ba → .a 2, .b 2, ab 2, a. 1, b. 3, ba 1  (ids: . 0, a 1, b 2)
    assert N.tolist() == [[0, 2, 2], [1, 0, 2], [3, 1, 0]]
    P = count_log_probs(N, 1.0).exp()
    assert torch.allclose(P.sum(1), torch.ones(3, dtype=torch.float64))
    assert P[1].tolist() == pytest.approx([2 / 6, 1 / 6, 3 / 6])  # (1+1, 0+1, 2+1) / 6


def test_empty_row_with_zero_smoothing_is_uniform():
    N = torch.tensor([[0, 1, 0], [1, 0, 0], [0, 0, 0]])
    P = count_log_probs(N, 0.0).exp()
    assert P[2].tolist() == pytest.approx([1 / 3] * 3)


def test_held_out_nll_equals_evaluating_the_full_table_sparse_or_dense():
    """choose_smoothing's O(nnz) val NLL is the NLL of the full add-k table, for a large sparse
    vocabulary (with val pairs never seen in train, and val rows empty in train) and a dense one."""
    from bigram.metrics import evaluate
    from bigram.smoothing import held_out_nll
    from bigram.table import count_log_probs

    g = torch.Generator().manual_seed(0)
    V = 300
    train = torch.zeros(V, V, dtype=torch.long)
    idx = torch.randint(0, V - 5, (2, 3000), generator=g)  # the last 5 rows/columns: never in train
    train.index_put_((idx[0], idx[1]), torch.randint(1, 50, (3000,), generator=g), accumulate=True)
    val = torch.zeros(V, V, dtype=torch.long)
    vi = torch.randint(0, V, (2, 800), generator=g)
    val.index_put_((vi[0], vi[1]), torch.randint(1, 5, (800,), generator=g), accumulate=True)
    for t, v in ((train, val), (train.to_sparse(), val.to_sparse())):
        f = held_out_nll(t, v)
        for k in (1e-4, 0.01, 0.5, 1.0, 37.0, 1e3):
            want = evaluate(count_log_probs(train, k), val)["nll"]
            assert abs(f(k) - want) < 1e-12 * max(1.0, abs(want))


def test_count_rows_made_on_demand_are_the_tables_rows():
    """count_table's rows (what the summaries read instead of a large vocabulary's whole table)
    give, at any rows (repeated, empty in train, of a sparse or dense matrix), the add-k values
    written out by hand: log((N_ij + k) / (N_i + kV)), uniform for an empty row at k = 0."""
    import math

    from bigram.table import count_table

    g = torch.Generator().manual_seed(1)
    C, V = 13 * 13, 13  # an order-3 table over 13 tokens
    N = torch.zeros(C, V, dtype=torch.long)
    idx = torch.randint(0, C - 3, (2, 150), generator=g)  # the last 3 rows: empty
    N.index_put_((idx[0], idx[1] % V), torch.randint(1, 9, (150,), generator=g), accumulate=True)
    rows = torch.tensor([168, 0, 5, 5, 167, 12, 0])
    plain = N.tolist()
    for k in (0.0, 0.25, 1.0):
        want = [
            [
                -math.log(V)  # an empty row at k = 0: uniform
                if sum(plain[i]) + k * V == 0
                else math.log((n + k) / (sum(plain[i]) + k * V))
                if n + k
                else -math.inf
                for n in plain[i]
            ]
            for i in rows.tolist()
        ]
        for m in (N, N.to_sparse()):
            got = count_table(m, k)[rows]
            assert got.dtype == torch.float64 and got.shape == (len(rows), V)
            assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-12)


def test_top_tokens_keep_the_boundary_and_the_most_frequent():
    from bigram.counts import top_tokens

    N = torch.zeros(6, 6, dtype=torch.long)
    N[:, 0] = torch.tensor([1, 50, 2, 40, 3, 30])  # row sums: token frequencies
    assert top_tokens(N, 3).tolist() == [0, 1, 3]
    assert top_tokens(N, 10).tolist() == list(range(6))


@given(names=clean_names)
def test_count_sums(names):
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab)
    assert int(N.sum()) == sum(len(w) + 1 for w in names)
    freq = [sum(w.count(c) for w in names) for c in vocab.chars]
    assert N.sum(1).tolist() == [len(names), *freq]  # what follows each token: its frequency
    assert N.sum(0).tolist() == [len(names), *freq]  # what precedes each token: the same
    assert int(N[0, 0]) == 0
