"""Bigram counts: the sufficient statistic of every bigram model.

A count matrix is a V×V int64 tensor, dense for a small vocabulary and sparse (COO) where that is
smaller (a vocabulary of thousands of characters sees a few percent of its V² pairs). The helpers
below read either kind, so every consumer works for both.
"""

from __future__ import annotations

import torch

from bigram.vocab import Vocab


def count_ids(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """N[i, j] = how often id j follows id i in the sequence (one bincount, no Python loop)."""
    pairs = ids[:-1] * vocab_size + ids[1:]
    return torch.bincount(pairs, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size)


def count_bigrams(names: list[str], vocab: Vocab) -> torch.Tensor:
    """The V×V int64 count matrix of the names, each wrapped in boundaries: .emma. → .e em mm ma a."""
    return count_ids(vocab.encode_corpus(names), vocab.size)


def dense(counts: torch.Tensor) -> torch.Tensor:
    """The matrix as a dense tensor."""
    return counts.to_dense() if counts.is_sparse else counts


def compact(counts: torch.Tensor) -> torch.Tensor:
    """Sparse when that is smaller (24 bytes per counted pair against 8 per cell), else dense."""
    sp = counts.coalesce() if counts.is_sparse else counts.to_sparse().coalesce()
    return sp if 3 * sp.values().numel() < counts.shape[0] * counts.shape[1] else dense(sp)


def nonzero(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, columns, counts) of the counted pairs: what every sum over N_ij > 0 reads.

    >>> nonzero(torch.tensor([[0, 2], [1, 0]]))
    (tensor([0, 1]), tensor([1, 0]), tensor([2, 1]))
    """
    if counts.is_sparse:
        c = counts.coalesce()
        i, j = c.indices()
        return i, j, c.values()
    i, j = counts.nonzero(as_tuple=True)
    return i, j, counts[i, j]


def values_at(counts: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """N[i, j] for index tensors i, j (0 where nothing was counted), without densifying a sparse
    matrix: a binary search among its sorted pair keys.

    >>> N = torch.tensor([[0, 2], [1, 0]]).to_sparse()
    >>> values_at(N, torch.tensor([0, 1, 1]), torch.tensor([1, 0, 1]))
    tensor([2, 1, 0])
    """
    if not counts.is_sparse:
        return counts[i, j]
    ci, cj, n = nonzero(counts)  # coalesced: keys sorted
    if len(n) == 0:
        return torch.zeros_like(i)
    V = counts.shape[1]
    keys, want = ci * V + cj, i * V + j
    pos = torch.searchsorted(keys, want).clamp_(max=len(keys) - 1)
    return torch.where(keys[pos] == want, n[pos], torch.zeros_like(n[pos]))


def rows_of(counts: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The dense rows `rows` (an index tensor, repeats allowed) of the matrix, without
    densifying the others: a sparse matrix's pairs are sorted by row, so each row is a slice.

    >>> rows_of(torch.tensor([[0, 2], [1, 0]]).to_sparse(), torch.tensor([1, 1, 0]))
    tensor([[1, 0],
            [1, 0],
            [0, 2]])
    """
    if not counts.is_sparse:
        return counts[rows]
    ci, cj, n = nonzero(counts)
    start = torch.searchsorted(ci, rows)
    lens = torch.searchsorted(ci, rows, right=True) - start
    which = torch.repeat_interleave(torch.arange(len(rows)), lens)
    # the k-th pair of every row's slice: its place in the concatenated slices, shifted to the slice
    pos = torch.arange(int(lens.sum())) - torch.repeat_interleave(lens.cumsum(0) - lens - start, lens)
    out = torch.zeros(len(rows), counts.shape[1], dtype=n.dtype)
    out[which, cj[pos]] = n[pos]
    return out


def row_totals(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the rows that hold a count, sorted; N_i = Σ_j N_ij of each): a row per context seen,
    never one per context an order addresses (V^(N−1) of them).

    >>> row_totals(torch.tensor([[0, 2], [0, 0], [1, 3]]))
    (tensor([0, 2]), tensor([2, 4]))
    """
    i, _, n = nonzero(counts)
    rows = torch.unique_consecutive(i)  # nonzero's rows are sorted
    totals, block = torch.zeros(len(rows), dtype=n.dtype, device=n.device), 1 << 16
    for a in range(0, len(i), block):  # a block of entries at a time: no index per entry held
        totals.index_add_(0, torch.searchsorted(rows, i[a : a + block]), n[a : a + block])
    return rows, totals


def entry_row_sums(counts: torch.Tensor) -> torch.Tensor:
    """N_i of the row of each counted pair, in nonzero()'s order: what Σ_ij N_ij·f(N_ij, N_i) reads."""
    i, _, n = nonzero(counts)
    _, inv = torch.unique_consecutive(i, return_inverse=True)
    return torch.zeros(int(inv.max()) + 1 if len(inv) else 0, dtype=n.dtype).index_add_(0, inv, n)[inv]


def totals_at(counts: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """N_i for index tensor `rows` (0 for a row with no count), by a search among the rows seen."""
    keys, totals = row_totals(counts)
    if not len(keys):
        return torch.zeros(rows.shape, dtype=torch.int64)
    pos = torch.searchsorted(keys, rows).clamp_(max=len(keys) - 1)
    return torch.where(keys[pos] == rows, totals[pos], torch.zeros_like(totals[pos]))


def row_sums(counts: torch.Tensor) -> torch.Tensor:
    """N_i = Σ_j N_ij for each row (a 1-D tensor of the matrix's dtype): C of them, so only for a
    bigram table or a small one (row_totals gives the seen rows at any order)."""
    if counts.is_sparse:
        i, _, n = nonzero(counts)
        return torch.zeros(counts.shape[0], dtype=n.dtype, device=n.device).index_add_(0, i, n)
    return counts.sum(1)


def total(counts: torch.Tensor) -> int:
    """Σ N: the number of bigrams counted."""
    return int(counts._values().sum() if counts.is_sparse else counts.sum())


def top_tokens(counts: torch.Tensor, k: int) -> torch.Tensor:
    """Ids of the k most frequent tokens (the boundary always among them), in vocabulary order:
    what a figure of a large vocabulary shows."""
    if counts.shape[0] <= k:
        return torch.arange(counts.shape[0])
    return _top(row_sums(counts).double(), k, boundary=True)


def _top(freq: torch.Tensor, k: int, boundary: bool = False) -> torch.Tensor:
    """Indices of the k largest of freq (id 0 among them if `boundary`), in index order."""
    if boundary:
        freq = freq.clone()
        freq[0] = float("inf")
    return freq.topk(min(k, len(freq))).indices.sort().values


def figure_ids(counts: torch.Tensor, top: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, columns) a figure of a C×V table shows: for the bigram the `top` most frequent
    tokens both ways (the lecture's square); above, the `top` most frequent contexts (in table
    order) against the `top` most frequent next tokens (the boundary among them)."""
    C, V = counts.shape
    if C == V:
        ids = top_tokens(counts, top)
        return ids, ids
    _, cols, n = nonzero(counts)
    per_col = torch.zeros(V, dtype=n.dtype).index_add_(0, cols, n).double()
    keys, per_row = row_totals(counts)
    if not len(keys):
        return torch.zeros(1, dtype=torch.int64), _top(per_col, top, boundary=True)
    return keys[_top(per_row.double(), min(top, len(keys)))], _top(per_col, top, boundary=True)


# --- contexts: the rows of an order-N table ----------------------------------------------------
def gram_name(order: int) -> str:
    """What text calls an order's n-gram.

    >>> [gram_name(n) for n in (1, 2, 3, 5)]
    ['unigram', 'bigram', 'trigram', '5-gram']
    """
    return {1: "unigram", 2: "bigram", 3: "trigram"}.get(order, f"{order}-gram")


def order_of(shape: tuple[int, ...]) -> int:
    """The n-gram order N of a C×V table: C = V^(N−1) contexts (1 row: N = 1; V rows: N = 2).

    >>> order_of((27, 27)), order_of((729, 27)), order_of((1, 27))
    (2, 3, 1)
    """
    C, V = shape
    if C == V:
        return 2
    n, c = 1, 1
    while c < C:
        n, c = n + 1, c * V
    if c != C:
        raise ValueError(f"a table of {C} rows over {V} tokens is no n-gram table (C must be a power of V)")
    return n


def successor(rows: torch.Tensor | int, nxt: torch.Tensor | int, C: int, V: int) -> torch.Tensor | int:
    """The context after `nxt` follows context `rows`: drop the oldest token, append nxt.
    Row Σ cᵢ·V^(N−1−i) becomes (row mod V^(N−2))·V + nxt (order 2: nxt itself; order 1: row 0).

    >>> successor(torch.tensor([0, 5 * 27 + 13]), torch.tensor([5, 1]), 729, 27).tolist()  # ..→.e, em→ma
    [5, 352]
    """
    if C == 1:
        return nxt * 0  # a tensor of zeros, or 0 for one int
    return (rows % (C // V)) * V + nxt


def context_ids(row: int, C: int, V: int) -> list[int]:
    """The N−1 token ids of context `row`, oldest first (its digits in base V).

    >>> context_ids(5 * 27 + 13, 729, 27)  # "em"
    [5, 13]
    """
    return digits(row, V, order_of((C, V)) - 1)


def digits(value: int, V: int, k: int) -> list[int]:
    """The k base-V digits of value, most significant first: the tokens of a k-token context."""
    return [value // V ** (k - 1 - i) % V for i in range(k)]


def context_tokens(rows: torch.Tensor, C: int, V: int) -> torch.Tensor:
    """Every context's N−1 token ids, oldest first (context_ids for a tensor of rows): len × (N−1).

    >>> context_tokens(torch.tensor([5, 5 * 27 + 13]), 729, 27).tolist()  # .e, em
    [[0, 5], [5, 13]]
    """
    n = order_of((C, V)) - 1
    return (
        torch.stack([rows // V ** (n - 1 - i) % V for i in range(n)], 1)
        if n
        else rows.new_zeros(len(rows), 0)
    )


def leading_boundaries(rows: torch.Tensor, C: int, V: int) -> torch.Tensor:
    """How many of each context's N−1 tokens are boundaries before its first character (the
    padding before a name: N−1 at the start, 0 once N−1 characters are in).

    >>> leading_boundaries(torch.tensor([0, 5, 5 * 27 + 13]), 729, 27).tolist()  # .., .e, em
    [2, 1, 0]
    """
    started = (context_tokens(rows, C, V) != 0).cummax(1).values
    return (~started).sum(1)


def context_rows(ids: torch.Tensor, C: int, V: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(context row, next token) of every prediction in an id sequence of names separated by
    single boundaries (Vocab.encode_corpus: 0 e m m a 0 a v a 0): each name's context starts as
    N−1 boundaries, however many characters came before it.

    >>> rows, nxt = context_rows(torch.tensor([0, 1, 2, 0, 2, 0]), 9, 3)  # .ab.b. at order 3
    >>> rows.tolist(), nxt.tolist()  # .. .a ab | .. .b
    ([0, 1, 5, 0, 2], [1, 2, 0, 2, 0])
    """
    nxt = ids[1:]
    if C == V:  # order 2: the previous token
        return ids[:-1], nxt
    pos = torch.arange(len(ids))
    # the position of the boundary that opened each prediction's name (a name's end boundary
    # belongs to that name: the predictions at t = 1 … len(ids) − 1 look back from t − 1)
    starts = torch.where(ids == 0, pos, torch.zeros_like(pos)).cummax(0).values[:-1]
    rows = torch.zeros(len(nxt), dtype=torch.long)
    k, scale = 1, 1
    while scale < C:  # the k-th token back, 0 where it lies before the name's opening boundary
        back = pos[1:] - k
        rows += torch.where(back >= starts, ids[back.clamp(min=0)], 0) * scale
        k, scale = k + 1, scale * V
    return rows, nxt
