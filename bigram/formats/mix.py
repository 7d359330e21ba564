"""Mixing models: linear interpolation of tables, P(next | context) = Σᵢ λᵢ Pᵢ(next | context).

Every model is a table (bigram.table), so a mix of models is one more table (bigram.combine makes
a run of it). The tables are first lifted onto one vocabulary, the union of theirs, and one order,
the highest of theirs:

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

__all__ = [
    "EMResult",
    "Events",
    "add_into",
    "check_weights",
    "event_probs",
    "events_of_counts",
    "finish",
    "fit_weights",
    "heldout_events",
    "lift_counts",
    "mix_tables",
    "union_vocab",
]


def union_vocab(vocabs: Sequence[Vocab]) -> Vocab:
    """Every data character of any of the vocabularies, in code-point order."""
    return Vocab(tuple(sorted(set().union(*(v.chars for v in vocabs)))))


def _id_maps(vocab: Vocab, union: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """(this vocabulary's id → union id; union id → this vocabulary's id, or −1 where it lacks it)."""
    to_union = torch.tensor([0, *(union.id(c) for c in vocab.chars)], dtype=torch.long)
    from_union = torch.full((union.size,), -1, dtype=torch.long)
    from_union[to_union] = torch.arange(vocab.size)
    return to_union, from_union


def _lifted_rows(vocab: Vocab, union: Vocab, order: int, to_order: int) -> torch.Tensor:
    """For each context row of the union table at `to_order`: the row of this model's table it
    reads, or −1 where the model does not define that context."""
    V, U = vocab.size, union.size
    _, from_union = _id_maps(vocab, union)
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
    return torch.where(defined, own, -1)


def mix_tables(
    tables: Sequence[torch.Tensor], vocabs: Sequence[Vocab], weights: Sequence[float]
) -> tuple[torch.Tensor, Vocab]:
    """The interpolated table (log P, float64) over the union vocabulary at the highest order,
    and that vocabulary. Memory: the result beside the models' tables (see `add_into`)."""
    if not (len(tables) == len(vocabs) == len(weights)) or len(tables) < 2:
        raise BigramError("a mix needs two or more models, each with a weight")
    check_weights(weights)
    union = union_vocab(vocabs)
    orders = [order_of(tuple(t.shape)) for t in tables]
    N, U = max(orders), union.size
    out = torch.zeros(U ** (N - 1), U, dtype=torch.float64)
    mass = torch.zeros(U ** (N - 1), dtype=torch.float64)  # Σ λ of the models defining each row
    for table, vocab, order, w in zip(tables, vocabs, orders, weights, strict=True):
        add_into(out, mass, table, vocab, union, order, w)
    return finish(out, mass), union


def check_weights(weights: Sequence[float]) -> None:
    if any(w < 0 or not math.isfinite(w) for w in weights) or not math.isclose(sum(weights), 1.0):
        raise BigramError(f"mix weights must be ≥ 0 and sum to 1, not {list(weights)}")


def add_into(
    out: torch.Tensor,
    mass: torch.Tensor,
    table: torch.Tensor,
    vocab: Vocab,
    union: Vocab,
    order: int,
    w: float,
) -> None:
    """out += w · P of one model lifted onto the union table, a block of rows at a time (no
    temporary the size of a table); mass += w on the rows it defines."""
    rows = _lifted_rows(vocab, union, order, order_of(tuple(out.shape)))
    to_union, _ = _id_maps(vocab, union)
    at = torch.nonzero(rows >= 0).squeeze(1)
    step = max(1, (1 << 20) // table.shape[1])
    for i in range(0, len(at), step):
        block = at[i : i + step]
        out[block.unsqueeze(1), to_union.unsqueeze(0)] += table[rows[block]].double().exp_().mul_(w)
    mass[at] += w


def finish(out: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """The accumulated Σ λᵢ Pᵢ divided by the weight of the models defining each row, as log P."""
    U = out.shape[1]
    empty = mass == 0
    out.div_(torch.where(empty, 1.0, mass).unsqueeze(1))
    out[empty] = 1.0 / U
    return out.log_()


def heldout_events(names: Sequence[str], union: Vocab, order: int) -> Events:
    """Every prediction of the held-out names as (context row, next id, count 1) over the union
    vocabulary at `order`: the events EM weighs. A character no model has is an error."""
    from bigram.counts import context_rows

    ids = union.encode_corpus(list(names))
    rows, nxt = context_rows(ids, union.size ** (order - 1), union.size)
    return rows, nxt, torch.ones(len(rows), dtype=torch.float64)


def lift_counts(counts: torch.Tensor, vocab: Vocab, union: Vocab) -> torch.Tensor:
    """A C×V count matrix in the union vocabulary (same order): its rows and columns renumbered."""
    N, V, U = order_of(tuple(counts.shape)), vocab.size, union.size
    to_union, _ = _id_maps(vocab, union)
    c = counts.coalesce() if counts.is_sparse else counts.to_sparse().coalesce()
    r, col = c.indices()
    new_r = torch.zeros_like(r)
    for i in range(N - 1):
        new_r = new_r * U + to_union[(r // V ** (N - 2 - i)) % V]
    shape = (U ** (N - 1), U)
    pairs = torch.stack([new_r, to_union[col]])
    return torch.sparse_coo_tensor(pairs, c.values(), shape, check_invariants=False).coalesce()


Events = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (context row, next id, count) in the union


def events_of_counts(counts: torch.Tensor) -> Events:
    """The held-out events of a (union) count matrix: each counted n-gram with its count."""
    c = counts.coalesce() if counts.is_sparse else counts.to_sparse().coalesce()
    return c.indices()[0], c.indices()[1], c.values().double()


def event_probs(
    table: torch.Tensor, vocab: Vocab, union: Vocab, events: Events, order: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P of the model at each held-out event of the union table at `order`, whether the model
    defines the event's context)."""
    rows, nxt, _ = events
    own_rows = _lifted_rows(vocab, union, order_of(tuple(table.shape)), order)
    _, from_union = _id_maps(vocab, union)
    r, c = own_rows[rows], from_union[nxt]
    ok = (r >= 0) & (c >= 0)
    p = torch.zeros(len(rows), dtype=torch.float64)
    p[ok] = table[r[ok], c[ok]].double().exp()
    return p, r >= 0


@dataclass
class EMResult:
    weights: list[float]
    nll: list[float]  # held-out NLL (nats per predicted character) before each update, then after the last


def fit_weights(
    probs: Sequence[tuple[torch.Tensor, torch.Tensor]],
    counts: torch.Tensor,
    *,
    tol: float = 1e-3,
    max_iter: int = 1000,
) -> EMResult:
    """λ that maximize the held-out likelihood, by EM from equal weights, given each model's
    (P, defined) at the held-out events (`event_probs`) and the events' counts; stops when no
    weight moves by more than `tol` in an iteration (as SRILM's compute-best-mix: the NLL can
    be flat long before the weights settle) or after `max_iter` iterations."""
    p = torch.stack([q for q, _ in probs])
    defined = torch.stack([d for _, d in probs])
    total = float(counts.sum())
    lam = torch.full((len(probs),), 1.0 / len(probs), dtype=torch.float64)
    history: list[float] = []
    moved = math.inf
    for it in range(max_iter + 1):
        share = lam.unsqueeze(1) * p  # λᵢ Pᵢ per event
        norm = (lam.unsqueeze(1) * defined).sum(0)  # renormalized where a model lacks the context
        mixed = share.sum(0) / norm
        nll = float(-(counts * mixed.log()).sum() / total)
        if not math.isfinite(nll):
            raise BigramError(
                "a held-out name has a character pair no model gives any probability: "
                "mix in a smoothed model, or hold out other names"
            )
        history.append(nll)
        if it == max_iter or (it > 0 and moved < tol):
            break
        new = (counts * share / share.sum(0)).sum(1) / total
        moved, lam = float((new - lam).abs().max()), new
    return EMResult([float(x) for x in lam], history)
