"""Mixing models: linear interpolation of tables, P(next | context) = Σᵢ λᵢ Pᵢ(next | context).

Every model is a table (runs.py), so a mix of models is one more table. The tables are first
lifted onto one vocabulary, the union of theirs, and one order, the highest of theirs:

- a character one model lacks gets probability 0 in its rows, so each row still sums to one;
- a lower-order model is a higher-order one whose rows ignore the older tokens (a unigram is the
  same row for every context), so lifting it is exact;
- a context holding a character a model lacks is one that model never defines: there the mix is
  renormalized over the models that do define it (weights λᵢ / Σ of theirs). A context no model
  defines (characters from different models' vocabularies) cannot be reached by a walk of the
  mix: its row is uniform, only so that the table stays row-stochastic.

The weights are given, or fitted by EM on held-out counts (SRILM's compute-best-mix): each
held-out n-gram is shared among the models in proportion to λᵢ Pᵢ, and λᵢ becomes the share the
model won. When every model defines every held-out context (the case of runs on one corpus) this
is EM on a mixture, whose held-out likelihood never falls from one iteration to the next.

    >>> a = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64).log()  # two bigram tables
    >>> b = torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64).log()
    >>> v = Vocab(("x",))
    >>> mixed, vocab = mix_tables([a, b], [v, v], [0.5, 0.5])
    >>> mixed.exp().round(decimals=12).tolist()
    [[0.7, 0.3], [0.75, 0.25]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bigram.counts import order_of
from bigram.errors import BigramError
from bigram.vocab import Vocab

__all__ = ["EMResult", "fit_weights", "heldout_events", "mix_tables", "union_vocab"]


def union_vocab(vocabs: Sequence[Vocab]) -> Vocab:
    """Every data character of any of the vocabularies, in code-point order."""
    return Vocab(tuple(sorted(set().union(*(v.chars for v in vocabs)))))


def _lifted_rows(vocab: Vocab, union: Vocab, order: int, to_order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(for each context row of the union table at `to_order`: the row of this model's table it
    reads, or −1 where the model does not define that context; this model's token → union id)."""
    V, U = vocab.size, union.size
    to_union = torch.tensor([0, *(union.id(c) for c in vocab.chars)], dtype=torch.long)
    from_union = torch.full((U,), -1, dtype=torch.long)
    from_union[to_union] = torch.arange(V)
    k = to_order - 1  # tokens in a union context; the model reads its last order − 1
    rows = torch.arange(U**k, dtype=torch.long)
    own = torch.zeros_like(rows)
    defined = torch.ones_like(rows, dtype=torch.bool)
    for i in range(k):
        digit = (rows // U ** (k - 1 - i)) % U
        if i >= k - (order - 1):  # one of the tokens this model's context holds (it ignores older ones)
            mine = from_union[digit]
            defined &= mine >= 0
            own = own * V + mine.clamp(min=0)
    return torch.where(defined, own, -1), to_union


def mix_tables(
    tables: Sequence[torch.Tensor], vocabs: Sequence[Vocab], weights: Sequence[float]
) -> tuple[torch.Tensor, Vocab]:
    """The interpolated table (log P, float64) over the union vocabulary at the highest order,
    and that vocabulary. Memory: the result, one model's table and one of its probabilities."""
    if not (len(tables) == len(vocabs) == len(weights)) or len(tables) < 2:
        raise BigramError("a mix needs two or more models, each with a weight")
    if any(w < 0 or not math.isfinite(w) for w in weights) or not math.isclose(sum(weights), 1.0):
        raise BigramError(f"mix weights must be ≥ 0 and sum to 1, not {list(weights)}")
    union = union_vocab(vocabs)
    orders = [order_of(tuple(t.shape)) for t in tables]
    N, U = max(orders), union.size
    out = torch.zeros(U ** (N - 1), U, dtype=torch.float64)
    mass = torch.zeros(U ** (N - 1), dtype=torch.float64)  # Σ λ of the models defining each row
    for table, vocab, order, w in zip(tables, vocabs, orders, weights, strict=True):
        rows, to_union = _lifted_rows(vocab, union, order, N)
        at = torch.nonzero(rows >= 0).squeeze(1)
        out[at.unsqueeze(1), to_union.unsqueeze(0)] += w * table.double().exp()[rows[at]]
        mass[at] += w
    empty = mass == 0
    out[~empty] /= mass[~empty].unsqueeze(1)
    out[empty] = 1.0 / U
    return out.log_(), union


def heldout_events(names: Sequence[str], union: Vocab, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every prediction of the held-out names as (context row, next id) over the union
    vocabulary at `order`: the events EM weighs. A character no model has is an error."""
    from bigram.counts import context_rows

    ids = union.encode_corpus(list(names))
    C = union.size ** (order - 1)
    return context_rows(ids, C, union.size)


@dataclass
class EMResult:
    weights: list[float]
    nll: list[float]  # held-out NLL (nats per predicted character) before each update, then after the last


def fit_weights(
    tables: Sequence[torch.Tensor],
    vocabs: Sequence[Vocab],
    names: Sequence[str],
    *,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> EMResult:
    """λ that maximize the held-out likelihood of `names`, by EM from equal weights; stops when
    the NLL improves by less than `tol` nats or after `max_iter` iterations."""
    union = union_vocab(vocabs)
    orders = [order_of(tuple(t.shape)) for t in tables]
    N = max(orders)
    rows, nxt = heldout_events(names, union, N)
    p = torch.zeros(len(tables), len(rows), dtype=torch.float64)  # Pᵢ of each held-out event
    defined = torch.zeros(len(tables), len(rows), dtype=torch.bool)
    for i, (table, vocab, order) in enumerate(zip(tables, vocabs, orders, strict=True)):
        own_rows, to_union = _lifted_rows(vocab, union, order, N)
        from_union = torch.full((union.size,), -1, dtype=torch.long)
        from_union[to_union] = torch.arange(vocab.size)
        r, c = own_rows[rows], from_union[nxt]
        ok = (r >= 0) & (c >= 0)
        defined[i] = r >= 0
        p[i, ok] = table[r[ok], c[ok]].double().exp()
    lam = torch.full((len(tables),), 1.0 / len(tables), dtype=torch.float64)
    history: list[float] = []
    for it in range(max_iter + 1):
        share = lam.unsqueeze(1) * p  # λᵢ Pᵢ per event
        norm = (lam.unsqueeze(1) * defined).sum(0)  # renormalized where a model lacks the context
        mixed = share.sum(0) / norm
        nll = float(-(mixed.log().mean()))
        if not math.isfinite(nll):
            raise BigramError(
                "a held-out name has a character pair no model gives any probability: "
                "mix in a smoothed model, or hold out other names"
            )
        history.append(nll)
        if it == max_iter or (len(history) > 1 and history[-2] - nll < tol):
            break
        lam = (share / share.sum(0)).mean(1)
    return EMResult([float(x) for x in lam], history)
