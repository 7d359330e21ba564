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

from bigram.backoff import Level, Table
from bigram.counts import nonzero, order_of
from bigram.vocab import check_keys

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


def adjusted_counts(counts: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """lmplz's counts a(·) for every n-gram length k = 1 … N, from an order-N table of training
    counts: for each length, (keys, counts) of the n-grams with a(·) > 0, the keys (the
    n-gram's digits, see the module docstring) sorted. Sparse: a dense V^N vector would be as
    big as the table."""
    C, V = counts.shape
    N = order_of((C, V))
    rows, cols, n = (x.long() for x in nonzero(counts))
    # each counted n-gram's length, <s> included: N, except that z ≥ 2 leading boundaries are one
    # <s>; a row has z ≥ m leading boundaries exactly when it is below V^(N−1−m)
    length = torch.full(rows.shape, N, dtype=torch.int8)
    for m in range(2, N):
        length -= (rows < V ** (N - 1 - m)).to(torch.int8)
    # raw counts: the longest n-grams, and those that start with <s>
    raw = [(rows[length == k] % V ** (k - 1)) * V + cols[length == k] for k in range(N + 1)]
    weights = [n[length == k] for k in range(N + 1)]
    del rows, cols, n, length
    adjusted = [(raw[N], weights[N])]  # sorted and distinct already: the counts' pairs are
    for k in range(N - 1, 0, -1):  # the others: how many distinct tokens were seen before them
        longer = adjusted[0][0] % V**k  # each distinct longer n-gram, without its oldest token
        longer.numpy().sort()  # in place: no permutation is needed, only how often each occurs
        seen_after, before = torch.unique_consecutive(longer, return_counts=True)
        del longer
        keys, a = torch.cat([raw[k], seen_after]), torch.cat([weights[k], before])
        raw[k] = weights[k] = seen_after = before = None
        if not bool((keys[1:] > keys[:-1]).all()):  # (those after <s> come first, each once: no sort)
            keys, a = _sum_by_key(keys, a)
        adjusted.insert(0, (keys, a))
    return adjusted


def _sum_by_key(keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct keys, sorted; the sum of the values of each): one sort, then sums of runs.

    >>> _sum_by_key(torch.tensor([5, 2, 5, 7]), torch.tensor([1, 2, 3, 4]))
    (tensor([2, 5, 7]), tensor([2, 4, 4]))
    """
    if not len(keys):
        return keys, values
    keys, order = keys.sort()
    distinct, runs = torch.unique_consecutive(keys, return_counts=True)
    ends = runs.cumsum(0) - 1
    csum = values[order].cumsum(0)
    return distinct, csum[ends] - torch.cat([csum.new_zeros(1), csum[ends[:-1]]])


BLOCK = 1 << 16  # n-grams a level is estimated from at a time: bounded temporaries at any order


def kneser_ney_table(counts: torch.Tensor) -> tuple[Table, list[Discounts]]:
    """The table of interpolated modified Kneser-Ney, in backoff form (bigram.backoff), renormalized
    without <unk>, and each length's Discounts (index k − 1 for length k).

    Level k − 1 holds the histories of the n-grams of length k with a(·) > 0, listing the tokens
    w with a(hw) > 0. lmplz's interpolation p(w | h) = (a − D)/Σa + γ(h)·p(w | h′) is a backoff
    with weight γ(h) for every other token (their a is 0); renormalized, the weight becomes
    γ(h)·(1 − p(<unk> | h′)) / (1 − p(<unk> | h)). A padded context with two or more leading
    boundaries is no history of its own: it is found at its shorter suffix, <s> and what follows."""
    C, V = counts.shape
    N = order_of((C, V))
    check_keys(V, N)
    adjusted = adjusted_counts(counts)
    found = [discounts(a) for _, a in adjusted]
    levels: list[Level | None] = []
    below = None  # the previous length's (n-gram keys, linear p, unk per history, history keys)
    for k in range(1, N + 1):
        keys, a = adjusted[k - 1]
        adjusted[k - 1] = None  # each length's counts go once its level is made
        level, below = _level(keys, a, found[k - 1].d, below, V, k, last=k == N)
        levels.append(level)
    return Table(V, N, levels).with_dense(), found


def _level(keys: torch.Tensor, a: torch.Tensor, d3: tuple, below, V: int, k: int, last: bool):
    """The table's level k − 1 from the adjusted counts a of the n-grams of length k (`keys`,
    sorted), and what the next level reads of it (None for the last): a block of whole
    histories at a time, written into the level's tensors, so that the temporaries stay BLOCK
    long at any order."""
    spans = list(_blocks(keys, V))
    starts = [0]  # where each block's histories start among the level's
    for lo, hi in spans:
        starts.append(starts[-1] + len(torch.unique_consecutive(keys[lo:hi] // V)))
    n, H = len(keys), starts[-1]
    logp, p_all = torch.empty(n, dtype=torch.float64), None if last else torch.empty(n, dtype=torch.float64)
    hkeys, ptr = torch.empty(H, dtype=torch.int64), torch.zeros(H + 1, dtype=torch.int64)
    backoff, unk_all = torch.empty(H, dtype=torch.float64), torch.empty(H, dtype=torch.float64)
    disc = torch.tensor([0.0, *d3], dtype=torch.float64)
    for (lo, hi), h0, h1 in zip(spans, starts, starts[1:], strict=False):
        kb, ab = keys[lo:hi], a[lo:hi]
        hk, inv, per = torch.unique_consecutive(kb // V, return_inverse=True, return_counts=True)
        d = disc[ab.clamp(max=3)]  # D(a(hw))
        den = torch.zeros(len(hk), dtype=torch.float64).index_add_(0, inv, ab.double())
        gamma = torch.zeros(len(hk), dtype=torch.float64).index_add_(0, inv, d) / den
        if below is None:  # the unigrams interpolate with the uniform 1/(V + 1)
            lower, unk = torch.full_like(d, 1.0 / (V + 1)), gamma / (V + 1)
            beta = unk * V / (1 - unk)  # onto the root 1/V: the unigram's unlisted share, renormalized
        else:  # h′w is listed at h′ whenever hw is (a(h′w) counts hw's first token): one search
            grams, p_below, unk_below, h_below = below
            lower = p_below[torch.searchsorted(grams, kb % V ** (k - 1))]
            up = unk_below[torch.searchsorted(h_below, hk % V ** (k - 2))]  # p(<unk> | h′)
            unk = gamma * up
            beta = gamma * (1 - up) / (1 - unk)
        p = (ab - d).clamp_(min=0).div_(den[inv]).add_(gamma[inv] * lower)
        logp[lo:hi] = (p / (1 - unk)[inv]).log_()
        if p_all is not None:
            p_all[lo:hi] = p
        hkeys[h0:h1], ptr[h0 + 1 : h1 + 1], backoff[h0:h1], unk_all[h0:h1] = hk, per, beta.log_(), unk
    level = Level(hkeys, ptr.cumsum_(0), keys % V, logp, backoff)
    level._grams = keys  # the level's n-gram keys are these (Level.grams)
    return level, None if last else (keys, p_all, unk_all, hkeys)


def _blocks(keys: torch.Tensor, V: int):
    """(lo, hi) spans of about BLOCK sorted n-gram keys that split no history (keys // V)."""
    lo, n = 0, len(keys)
    while lo < n:
        hi = min(lo + BLOCK, n)
        if hi < n:  # back to the start of the history the cut falls in, or past a long one
            hi = int(torch.searchsorted(keys, keys[hi] // V * V))
            if hi <= lo:
                hi = int(torch.searchsorted(keys, (keys[lo] // V + 1) * V))
        yield lo, hi
        lo = hi


def kneser_ney_probs(counts: torch.Tensor) -> tuple[torch.Tensor, list[Discounts]]:
    """The C×V table of P(next | context) (float64, only for a table small enough to hold) and
    each length's Discounts: kneser_ney_table made dense."""
    table, found = kneser_ney_table(counts)
    return table.to_dense().exp(), found
