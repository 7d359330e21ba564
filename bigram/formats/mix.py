"""Mixing models: linear interpolation, P(next | context) = Σᵢ λᵢ Pᵢ(next | context).

Every model is a table (bigram.table), so a mix of models is read like one more table
(bigram.mixture.Mixture: the parts kept, lifted onto one vocabulary, the union of theirs, and
read at the highest of their orders; bigram.combine makes a run of it):

- a character one model lacks gets probability 0 in its rows, so each row still sums to one;
- a lower-order model reads only the newest tokens of a context (a unigram the same row for
  every context): the mix is exact at every order, in the parts' memory;
- a context holding a character a model lacks: where the longest suffix any model knows holds
  one (among the tokens the model reads), that model sits out and the others' weights are
  renormalized (after "è", a mix of an Italian and an English run is the Italian run's row);
  otherwise the model reads the context as it reads any context it never saw (bigram.mixture says
  why: a walk's state stays its longest known suffix).

The weights are given, or fitted by EM on held-out counts (SRILM's compute-best-mix): each
held-out n-gram is shared among the models in proportion to λᵢ Pᵢ, and λᵢ becomes the share the
model won. When every model takes part at every held-out context (the case of runs on one
corpus) this is EM on a mixture, whose held-out likelihood never falls from one iteration to the next.

    >>> a = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64).log()  # two bigram tables
    >>> b = torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64).log()
    >>> v = Vocab(("x",))
    >>> mixed, vocab = mix_tables([a, b], [v, v], [0.5, 0.5])
    >>> mixed.rows(torch.tensor([0, 1])).exp().round(decimals=12).tolist()
    [[0.7, 0.3], [0.75, 0.25]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bigram.backoff import Table
from bigram.counts import order_of
from bigram.errors import BigramError
from bigram.mixture import MAX_DEPTH, Mixture, lift, nesting, token_map
from bigram.vocab import Vocab, check_keys

__all__ = [
    "EMResult",
    "Events",
    "check_union",
    "check_weights",
    "event_probs",
    "events_of_counts",
    "fit_weights",
    "heldout_events",
    "lift_counts",
    "mix_tables",
    "union_vocab",
]


def union_vocab(vocabs: Sequence[Vocab]) -> Vocab:
    """Every data character of any of the vocabularies, in code-point order."""
    return Vocab(tuple(sorted(set().union(*(v.chars for v in vocabs)))))


def mix_tables(tables: Sequence, vocabs: Sequence[Vocab], weights: Sequence[float]) -> tuple[Mixture, Vocab]:
    """The mix (a Mixture over the union vocabulary, at the highest order) and that vocabulary.
    A table is a Table, a Mixture (a mixed run mixed again) or a C×V tensor of log P."""
    if not (len(tables) == len(vocabs) == len(weights)) or len(tables) < 2:
        raise BigramError("a mix needs two or more models, each with a weight")
    check_weights(weights)
    union = union_vocab(vocabs)
    parts = [
        lift(t if hasattr(t, "levels") else Table.of_dense(t), v, union)
        for t, v in zip(tables, vocabs, strict=True)
    ]
    own = [token_map(v, union) for v in vocabs]
    mixed = Mixture(parts, weights, own)
    if nesting(mixed) > MAX_DEPTH:  # no command would read it back (Mixture.of_state)
        raise BigramError(
            f"this mix would nest mixes {nesting(mixed)} deep, and a mix holds them at most {MAX_DEPTH} "
            "deep: mix the runs its deepest mix mixes instead"
        )
    return mixed.with_dense(), union


def event_probs(mixture: Mixture, events: Events) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each part's (P at each held-out event, whether it takes part in the event's context): what
    `fit_weights` weighs (the weights the mixture holds do not matter here)."""
    rows, nxt, _ = events
    return mixture.part_probs(rows, nxt)


def check_weights(weights: Sequence[float]) -> None:
    """Weights are a distribution: finite, ≥ 0, summing to 1 (to rounding)."""
    if any(not 0 <= w < math.inf for w in weights) or not math.isclose(math.fsum(weights), 1.0):
        given = ", ".join(f"{w:g}" for w in weights)
        given = given if len(given) <= 200 else given[:200] + "…"
        raise BigramError(f"mix weights must be ≥ 0 and sum to 1, not [{given}]")


def check_union(union: Vocab, order: int) -> None:
    """Refuse a union vocabulary beyond train's limits, before any table is lifted onto it: at
    most MAX_V − 256 distinct characters beyond Latin-1 (the reader's limit), and n-grams that
    fit 64-bit keys at the mix's order (V^N < 2^62, `check_keys`)."""
    from bigram.reader.corpus import MAX_V

    beyond = sum(ord(ch) >= 0x100 for ch in union.chars)
    if beyond + 256 > MAX_V:
        raise BigramError(
            f"the runs' vocabularies together hold {beyond:,} distinct characters beyond Latin-1, more "
            f"than train's limit of {MAX_V - 256:,}: a mix is read over the union of its runs' "
            "characters; mix runs that share more of them"
        )
    check_keys(union.size, order, " (the union of the runs' vocabularies)")


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
    to_union = token_map(vocab, union)
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
