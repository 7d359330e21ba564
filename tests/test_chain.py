"""chain.py: contexts merged exactly as far as no walk can tell them apart, checked against a
plain-Python partition refinement, and sampling through the merged chain unchanged."""

from __future__ import annotations

import pytest
import torch

from bigram.exact import chain
from bigram.sampling import Constraints, most_likely, sample
from bigram.table import count_log_probs
from bigram.vocab import Vocab
from tests.conftest import NAMES
from tests.reference import backed_off_table

ABC = Vocab(("a", "b", "c"))


def plain_classes(table: list[list[float]]) -> set[frozenset[int]]:
    """The coarsest partition of contexts into classes with equal rows whose successors (after
    each data token) are again in one class, by Moore's refinement in plain Python."""
    C, V = len(table), len(table[0])
    after = [[(s % (C // V)) * V + c for c in range(1, V)] for s in range(C)]
    label = {s: tuple(table[s]) for s in range(C)}
    while True:
        sig = {s: (label[s], tuple(label[t] for t in after[s])) for s in range(C)}
        ids = {v: i for i, v in enumerate(dict.fromkeys(sig.values()))}
        new = {s: ids[sig[s]] for s in range(C)}
        if len(set(new.values())) == len(set(label.values())):
            break
        label = new
    groups: dict = {}
    for s in range(C):
        groups.setdefault(label[s], set()).add(s)
    return {frozenset(g) for g in groups.values()}


def classes_of(merged) -> set[frozenset[int]]:
    first, cls = merged
    groups: dict = {}
    for s, k in enumerate(cls.tolist()):
        groups.setdefault(k, set()).add(s)
    assert [min(groups[k]) for k in range(len(first))] == first.tolist()  # numbered by first context
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("order", [3, 4, 5])
def test_merge_is_the_coarsest_partition_a_walk_cannot_split(order):
    table = backed_off_table(order, seed=order)
    merged = chain.merge(torch.tensor(table, dtype=torch.float64).log(), at_most=len(table))
    assert classes_of(merged) == plain_classes(table)


def test_kneser_ney_at_order_4_merges_as_plain_refinement_does():
    from bigram.reader.corpus import read_counts

    counts = read_counts(NAMES, split="random", val_frac=0, test_frac=0, order=4)
    lp = count_log_probs(counts.splits["train"], "kn")
    table = lp.tolist()
    merged = chain.merge(lp)
    assert merged is not None and len(merged[0]) < len(table) // 3  # 5,980 of 19,683
    assert classes_of(merged) == plain_classes(table)


def test_a_hash_collision_leaves_the_table_unmerged(monkeypatch):
    lp = torch.tensor(backed_off_table(4, seed=4), dtype=torch.float64).log()
    assert chain.merge(lp) is not None
    monkeypatch.setattr(chain, "_hash", lambda x: torch.zeros(len(x), dtype=torch.int64))  # all collide
    assert chain.merge(lp) is None  # the members are checked: never merged wrongly


def test_a_table_with_distinct_rows_is_left_as_it_is():
    g = torch.Generator().manual_seed(0)
    lp = torch.rand(64, 4, generator=g, dtype=torch.float64).log_softmax(1)
    assert chain.merge(lp) is None and not chain.of_table(lp).merged


def test_the_merged_chain_draws_what_the_table_draws(monkeypatch):
    """Same seed, same names, merged or not: equivalent contexts have equal cumulative rows, and
    the messages agree to rounding."""
    lp = torch.tensor(backed_off_table(5, seed=5), dtype=torch.float64).log()
    cases = [Constraints(), Constraints(start="ab", end="c", min_len=4)]
    merged = [sample(lp, ABC, 2000, seed=7, constraints=c) for c in cases]
    best = most_likely(lp, ABC, 10, constraints=cases[1])
    monkeypatch.setattr(chain, "merge", lambda *a, **k: None)
    assert [sample(lp, ABC, 2000, seed=7, constraints=c) for c in cases] == merged
    assert most_likely(lp, ABC, 10, constraints=cases[1]) == pytest.approx(best)
