"""The Markov chain a table defines, with contexts no walk can tell apart merged into one state.

At order N a walk's state is its context, the last N − 1 tokens: C = V^(N−1) rows. Most of them
are alike. Every context never seen in training gets the same add-k row (uniform), and
Kneser-Ney gives it the row of its longest seen suffix. Two contexts are *equivalent* when their
rows are equal and, for every next token, the contexts they move to are equivalent again. From
either one, every walk has the same probability, so every message, every draw and every best
name is the same. Sampling and search can then run on one state per class: names.txt at
order 5 has 531,441 contexts and 23,259 classes. This is KenLM's state minimization, found here
from the table alone.

The classes are the coarsest such partition, found by Moore's partition refinement:

    start with "same row";
    split each class by the classes its successors fall in;
    repeat until no class splits.

A context's successors depend only on its last N − 2 tokens, (s mod C/V)·V + c, so a round costs
O(C), not O(C·V). After N − 1 rounds, a context's successors are fixed by the tokens alone, so
the rounds stop by then. Rows and successor lists are grouped by a hash, and every group is then
checked member by member. A collision would leave the table unmerged (slower, never wrong), so
the merge is exact.

    >>> lp = torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]]).double().log()  # order 3, V = 2
    >>> first, classes = merge(lp, at_most=4)  # contexts .. .a a. aa: 0 and 2 move on to 1, 3 to itself
    >>> first.tolist(), classes.tolist()  # rows 0, 2, 3 are equal, but 3 is not like 0 and 2
    ([0, 1, 3], [0, 1, 0, 2])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bigram.counts import order_of, successor

_BLOCK = 1 << 19  # entries hashed or checked at a time (4 MB int64 temporaries)
_MASK = (1 << 35) - 1  # a logical shift right by 29 of an int64, which torch shifts arithmetically
_MIX = torch.randint(1, 1 << 62, (2, 1 << 16), generator=torch.Generator().manual_seed(29)) | 1


class Chain:
    """K states over V tokens: P (K×V probabilities, float64) and the state after each token.

    `succ` is K×V (the state after token c; column 0, the boundary, unused) for a merged chain.
    It is None for the table's own chain, whose states are its C contexts (successor()).
    `of_context` maps each of the table's C contexts to its state (None: the identity), or
    `locate` does, for a chain over a sparse table's states (exact/sparse.py), whose C is far too
    many to list. The products with the chain (Qv, Qmax, reach) and the rows of a block of states
    are what every plan reads; exact/sparse.py's SparseChain answers the same without P."""

    exact_max = True  # Qmax is the max itself

    def __init__(self, P: torch.Tensor, succ: torch.Tensor | None, of_context: torch.Tensor | None, C: int,
                 locate: Callable | None = None):  # fmt: skip
        self.P, self.succ, self.of_context, self.C, self.locate = P, succ, of_context, C, locate
        self.K, self.V = P.shape
        self.order = order_of((C, self.V))
        self._Q: torch.Tensor | None = None
        self._Q_by_block: torch.Tensor | None = None

    @property
    def merged(self) -> bool:
        return self.succ is not None

    @property
    def end(self) -> torch.Tensor:
        """P(boundary | s) for every state."""
        return self.P[:, 0]

    @property
    def Q(self) -> torch.Tensor:
        """P without the boundary column: the walk inside a name (made once, when first asked)."""
        if self._Q is None:
            self._Q = self.P.clone()
            self._Q[:, 0] = 0
        return self._Q

    def state_of(self, context: int) -> int:
        """The state a walk is in at the table's context row `context`."""
        if self.locate is not None:
            return int(self.locate(torch.tensor([context]))[0])
        return context if self.of_context is None else int(self.of_context[context])

    def prob(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.P[states, tokens]

    def prob_all(self, token: int) -> torch.Tensor:
        """P(token | s) for every state s."""
        return self.P[:, token]

    def next(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The states after each token follows each state (shapes broadcast)."""
        if self.succ is None:
            return successor(states, tokens, self.C, self.V)
        return self.succ[states, tokens]

    def next_one(self, state: int, token: int) -> int:
        """next() for one state and token."""
        return successor(state, token, self.C, self.V) if self.succ is None else int(self.succ[state, token])

    def rows(self, states: torch.Tensor, succ: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(P rows, next-state rows or None) of a block of states."""
        return self.P[states], self.next(states[:, None], torch.arange(self.V)) if succ else None

    def weights(self, states: torch.Tensor | None, v: torch.Tensor) -> torch.Tensor:
        """P(s, c)·v(the state after c follows s) for the states given (None: all) and every c."""
        return self.at_next(self.P if states is None else self.P[states], v, torch.mul, states)

    def log_row(self, state: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(log Q(state, c) for every c, −inf at the boundary; the state after each c)."""
        if getattr(self, "_lQ", None) is None:
            self._lQ = self.Q.log()
        return self._lQ[state], self.next(torch.tensor(state), torch.arange(self.V))

    def Qv(self, v: torch.Tensor) -> torch.Tensor:
        """(Q·v)(s) = Σ_c Q(s, c) · v(the state after c follows s): one more middle character.

        A merged chain gathers v at each state's successors. The table's own chain at order ≥ 3:
        state s = a·C/V + r (a: its oldest token) meets v's block r, so Q·v is C/V small
        products Q[a, r, :] · block r, one batched matrix product over a copy of Q laid out
        r-major (5× faster than broadcasting a C×V temporary)."""
        C, V = self.K, self.V
        if self.merged:
            return (self.Q * v[self.succ]).sum(1)
        if C == V:
            return self.Q @ v
        if C == 1:
            return self.Q.sum(1) * v  # one state: every character leads back to it
        if self._Q_by_block is None:
            self._Q_by_block = self.Q.view(V, C // V, V).transpose(0, 1).contiguous()  # [r, a, c]
        return torch.bmm(self._Q_by_block, v.view(C // V, V, 1)).view(C // V, V).T.reshape(C)

    def Qmax(self, lv: torch.Tensor) -> torch.Tensor:
        """max_{c ≥ 1} log Q(s, c) + lv(the state after c) for every state s."""
        if getattr(self, "_lQ", None) is None:
            self._lQ = self.Q.log()
        return self.at_next(self._lQ, lv, torch.add).max(1).values

    def reach(self, can: torch.Tensor) -> torch.Tensor:
        """can, or some c ≥ 1 with Q(s, c) > 0 leads to a state that can."""
        if getattr(self, "_moves", None) is None:
            self._moves = self.Q > 0
        return can | self.at_next(self._moves, can, torch.logical_and).any(1)

    def at_next(
        self, M: torch.Tensor, v: torch.Tensor, op: Callable, states: torch.Tensor | None = None
    ) -> torch.Tensor:
        """op(M[s, c], v(the state after c follows s)) for every state s (or those given, M then
        holding their rows) and token c. For the table's chain by broadcasting: the state after c
        is (s mod C/V)·V + c, so v seen from state s is v's block s mod C/V (the bigram: v itself;
        order 1: v[0]). For a merged chain by gathering v at the successors."""
        if self.succ is not None:
            return op(M, v[self.succ if states is None else self.succ[states]])
        C, V = self.C, self.V
        if C == V:
            return op(M, v[None, :])
        if C == 1:
            return op(M, v[0])
        blocks = v.view(C // V, V)
        if states is None:
            return op(M.view(V, C // V, V), blocks).view(C, V)
        return op(M, blocks[states % (C // V)])


DENSE_CHAIN = 1 << 22  # states × V of a sparse table's chain held as K×V matrices (32 MB each)


def of_table(table, adjust: Callable[[torch.Tensor], torch.Tensor] = torch.exp, temperature: float = 1.0,
             cut: bool = False):  # fmt: skip
    """The chain of a table (bigram.backoff.Table, or a C×V tensor of log-probabilities); its rows
    are `adjust` of the table's rows (temperature, top-k, top-p act on each row alone, so equal
    rows stay equal; `temperature` and `cut` = top-k/top-p say which, for a sparse table).

    A dense table: its C contexts, merged where that pays (order ≥ 3). A sparse one: the states
    of exact/sparse.py, as K×V matrices where K·V ≤ DENSE_CHAIN, else its SparseChain."""
    from bigram.backoff import Table
    from bigram.mixture import Mixture

    if isinstance(table, Mixture):  # kept as its parts: held dense where small, else exact/mixed.py
        if table.dense is None:
            from bigram.exact.mixed import of_mixture

            table = of_mixture(table, adjust, temperature, cut, DENSE_CHAIN)  # a chain, or one backoff table
            if not isinstance(table, Table):
                return table
        else:
            table = Table.of_dense(table.dense)
    if isinstance(table, Table) and table.dense is None:
        from bigram.exact.sparse import SparseChain, States, chunks

        states = States(table)
        K, V = states.K, states.V
        if K * V > DENSE_CHAIN:
            return SparseChain(states, adjust, temperature, cut)
        P, succ = torch.empty(K, V, dtype=torch.float64), torch.empty(K, V, dtype=torch.int64)
        for sl in chunks(K, V):
            lp, succ[sl] = states.block(torch.arange(sl.start, sl.stop))
            P[sl] = adjust(lp)
        return Chain(P, succ, None, V ** (table.order - 1), states.locate)
    log_probs = table.dense if isinstance(table, Table) else table
    C, V = log_probs.shape
    merged = merge(log_probs) if C > V else None
    if merged is None:
        return Chain(adjust(log_probs), None, None, C)
    first, of_context = merged
    succ = of_context.view(C // V, V)[first % (C // V)]  # K×V: the state after each token
    return Chain(adjust(log_probs[first]), succ, of_context, C)


def merge(log_probs: torch.Tensor, at_most: int | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(first context of each class, class of each context), classes numbered in order of their
    first context (so context 0, the start of every name, is state 0); None when merging would
    not pay: more than `at_most` classes (half the contexts: a trained neural table keeps its
    contexts apart)."""
    C, V = log_probs.shape
    at_most = C // 2 if at_most is None else at_most
    B = C // V  # contexts share their successors in blocks: context s moves to block s mod B
    bits = log_probs.contiguous().view(torch.int64)  # rows equal as floats ⇔ equal bits (one NaN aside)
    first, rows = _group(_hash(bits), bits)
    if first is None or len(first) > at_most:
        return None
    classes = rows
    for _ in range(C):
        blocks = classes.view(B, V)[:, 1:]  # the classes of each block's successors
        bfirst, bclass = _group(_hash(blocks), blocks)
        if bfirst is None:
            return None
        new_first, new = _group(rows * len(bfirst) + bclass.repeat(V), None)  # exact keys: no check
        if len(new_first) == len(first):  # refinement only splits: same count, same classes
            break
        if len(new_first) > at_most:
            return None
        first, classes = new_first, new
    return first, classes


def _hash(x: torch.Tensor) -> torch.Tensor:
    """A 64-bit hash of each row of an int64 matrix (multiply, xor-shift, multiply, sum)."""
    n, m = x.shape
    if m > _MIX.shape[1]:
        raise ValueError(f"rows of {m} entries: at most {_MIX.shape[1]}")
    a, b = _MIX[0, :m], _MIX[1, :m]
    out = torch.empty(n, dtype=torch.int64)
    step = max(1, _BLOCK // max(m, 1))
    for lo in range(0, n, step):
        y = x[lo : lo + step] * a  # wraps modulo 2^64
        y ^= (y >> 29) & _MASK
        y *= b
        out[lo : lo + step] = y.sum(1)
    return out


def _group(keys: torch.Tensor, rows: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Classes of equal keys: (first index of each class, in increasing order; class of each).
    With `rows`, keys are hashes of them, and every member is checked against its class's first:
    (None, …) if any differs."""
    n = len(keys)
    _, inv = torch.unique(keys, return_inverse=True)
    first = torch.full((int(inv.max()) + 1 if n else 0,), n).scatter_reduce_(0, inv, torch.arange(n), "amin")
    order = first.argsort()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    first, inv = first[order], rank[inv]
    if rows is not None:
        step = max(1, _BLOCK // max(rows.shape[1], 1))
        for lo in range(0, n, step):
            if not torch.equal(rows[lo : lo + step], rows[first[inv[lo : lo + step]]]):
                return None, inv
    return first, inv
