"""Interpolated modified Kneser-Ney (Chen & Goodman 1998) as KenLM's `lmplz` estimates it, for a
C×V count table of any order, renormalized over bigram's closed vocabulary.

Add-k gives an unseen context's row almost nothing but its pseudo-counts; Kneser-Ney mixes every
row with the row of the context one character shorter, down to a uniform distribution:

    p(w | h) = max(a(hw) − D(a(hw)), 0) / Σ_x a(hx)  +  γ(h) · p(w | h without its oldest token)
    γ(h)     = (D₁·#{x: a(hx) = 1} + D₂·#{x: a(hx) = 2} + D₃·#{x: a(hx) ≥ 3}) / Σ_x a(hx)

and a history never seen as a context backs off entirely: p(w | h) = p(w | shorter h). The counts
a(·) are lmplz's: raw counts for the longest n-grams and for those that start a name (nothing can
come before `<s>`), and for every other shorter n-gram its *continuation count*, the number of
distinct tokens seen before it. The three discounts of each length come from its counts of counts
n₁…n₄: Y = n₁ / (n₁ + 2n₂), D_j = j − (j + 1)·Y·n_{j+1} / n_j; where those are undefined or out of
[0, j] (character models often have no unigram seen exactly once) lmplz's fallback 0.5, 1, 1.5
is used, as `lmplz --discount_fallback` does. Unigrams interpolate with 1 / (V + 1): the V
tokens and `<unk>`.

bigram's vocabulary is closed, so its table is lmplz's distribution given that the next token is
a real one: p(w | h) / (1 − p(<unk> | h)). Each row sums to 1 over the V tokens.

Histories: a row's context is N−1 tokens with the name padded by boundaries, so leading
boundaries are one `<s>`: at order 4 the row `..e` is the history `<s> e`, an n-gram of length 3.
An n-gram of length k is indexed like a row of an order-k table: its tokens as digits base V,
oldest first (a leading `<s>` is the digit 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bigram.counts import leading_boundaries, nonzero, order_of

FALLBACK = (0.5, 1.0, 1.5)  # lmplz's --discount_fallback


@dataclass
class Discounts:
    """One n-gram length's discounts D₁, D₂, D₃₊, and whether they are lmplz's fallback."""

    d: tuple[float, float, float]
    fallback: bool


def discounts(adjusted: torch.Tensor) -> Discounts:
    """D₁, D₂, D₃₊ from the counts of counts of one length's (adjusted) counts, as lmplz computes
    them (Chen & Goodman's equation 26), or the fallback where they are not defined.

    >>> discounts(torch.tensor([1, 1, 1, 2, 3, 4, 7]))  # n₁ = 3, n₂ = n₃ = n₄ = 1: Y = 0.6
    Discounts(d=(0.6, 0.2, 0.6), fallback=False)
    >>> discounts(torch.tensor([2, 3, 5])).fallback  # no count of 1: D₁ undefined
    True
    """
    n = torch.bincount(adjusted[(adjusted > 0) & (adjusted < 5)].long(), minlength=5).tolist()
    if min(n[1:4]) == 0:
        return Discounts(FALLBACK, True)
    y = n[1] / (n[1] + 2 * n[2])
    d = tuple(j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3))
    if any(not 0 <= x <= j for j, x in zip((1, 2, 3), d, strict=True)):
        return Discounts(FALLBACK, True)
    return Discounts(tuple(round(x, 12) for x in d), False)


def _history_lengths(C: int, V: int, N: int) -> torch.Tensor:
    """For each row of an order-N table, the length of its history: N − 1, except that z ≥ 2
    leading boundaries are one <s>, leaving N − z tokens."""
    return N - leading_boundaries(torch.arange(C), C, V).clamp(min=1)


def adjusted_counts(counts: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """lmplz's counts a(·) for every n-gram length k = 1 … N, from an order-N table of training
    counts: for each length, (keys, counts) of the n-grams with a(·) > 0, the keys (the
    n-gram's digits, see the module docstring) sorted. Sparse: a dense V^N vector would be as
    big as the table."""
    C, V = counts.shape
    N = order_of((C, V))
    rows, cols, n = (x.long() for x in nonzero(counts))
    length = _history_lengths(C, V, N)[rows] + 1  # each counted n-gram's length, <s> included
    # raw counts: the longest n-grams, and those that start with <s>
    raw = [(rows[length == k] % V ** (k - 1)) * V + cols[length == k] for k in range(N + 1)]
    weights = [n[length == k] for k in range(N + 1)]
    adjusted = [_sum_by_key(raw[N], weights[N])]
    for k in range(N - 1, 0, -1):  # the others: how many distinct tokens were seen before them
        longer = adjusted[0][0] % V**k  # each distinct longer n-gram, without its oldest token
        adjusted.insert(
            0, _sum_by_key(torch.cat([raw[k], longer]), torch.cat([weights[k], torch.ones_like(longer)]))
        )
    return adjusted


def _sum_by_key(keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct keys, sorted; the sum of the values of each)."""
    distinct, inv = torch.unique(keys, return_inverse=True)
    return distinct, torch.zeros(len(distinct), dtype=torch.int64).index_add_(0, inv, values)


@dataclass
class Level:
    """Kneser-Ney for the histories of one length k − 1 (n-grams of length k), lmplz's numbers
    before the renormalization: P(w | h) over the V tokens, p(<unk> | h), and γ(h), the weight
    of the shorter history's row (1 for a history never seen: it backs off entirely)."""

    probs: torch.Tensor  # V^(k−1) × V
    unk: torch.Tensor  # V^(k−1)
    gamma: torch.Tensor  # V^(k−1)
    keys: torch.Tensor  # the n-grams of this length with a(·) > 0 (adjusted_counts), sorted


def kneser_ney_levels(counts: torch.Tensor) -> tuple[list[Level], list[Discounts]]:
    """Every length's Level, k = 1 … N (index k − 1), and its Discounts.

    Built one history length at a time: every history starts as its parent's row (itself without
    its oldest token: the backoff of an unseen history), then the seen ones mix in their counts."""
    C, V = counts.shape
    N = order_of((C, V))
    adjusted = adjusted_counts(counts)
    found = [discounts(a) for _, a in adjusted]
    probs = torch.full((1, V), 1.0 / (V + 1), dtype=torch.float64)  # length 0: uniform over V + <unk>
    unk = torch.full((1,), 1.0 / (V + 1), dtype=torch.float64)
    levels = []
    for k in range(1, N + 1):
        parent = torch.arange(V ** (k - 1)) % V ** max(k - 2, 0)
        probs, unk = probs[parent], unk[parent]
        gamma = torch.ones(V ** (k - 1), dtype=torch.float64)
        keys, values = adjusted[k - 1]
        seen, at = torch.unique(keys // V, return_inverse=True)
        a = torch.zeros(len(seen), V, dtype=torch.int64)
        a[at, keys % V] = values
        d = torch.tensor([0.0, *found[k - 1].d], dtype=torch.float64)[a.clamp(max=3)]  # D(a(hw))
        den = a.sum(1, keepdim=True).to(torch.float64)
        gamma[seen] = d.sum(1) / den.squeeze(1)  # the mass the discounts freed; <unk> is never counted
        probs[seen] = (a - d).clamp_(min=0).div_(den).add_(gamma[seen].unsqueeze(1) * probs[seen])
        unk[seen] *= gamma[seen]
        levels.append(Level(probs, unk, gamma, keys))
    return levels, found


def kneser_ney_probs(counts: torch.Tensor) -> tuple[torch.Tensor, list[Discounts]]:
    """The C×V table of P(next | context) of interpolated modified Kneser-Ney (float64),
    renormalized without <unk>, and each length's Discounts (index k − 1 for length k)."""
    C, V = counts.shape
    N = order_of((C, V))
    levels, found = kneser_ney_levels(counts)
    top = levels[-1]
    table = top.probs.div_((1 - top.unk).unsqueeze(1))
    for k in range(2, N):  # rows with N − k + 1 ≥ 2 leading boundaries: the history <s> + k − 2 characters
        lo, hi, level = (V ** (k - 3) if k >= 3 else 0), V ** (k - 2), levels[k - 1]
        table[lo:hi] = level.probs[lo:hi] / (1 - level.unk[lo:hi]).unsqueeze(1)
    return table, found
