"""The chain of a sparse table (bigram.backoff): its states are the contexts the table knows and
their prefixes, never the V^(N−1) contexts it addresses.

A walk's context h (its last N − 1 tokens, leading boundaries as token 0) reads the row of its
longest *known* suffix. That alone is no Markov state: after token w, the longest known suffix of
h·w may be u·w with u a suffix of h that is not known itself. So the states are S, every known
context and each of its prefixes (the context with its newest tokens dropped), with the empty
context, the root; a walk is in state(h) = the longest suffix of h in S. This is Markov:

    state(h·w) = the longest suffix of state(h)·w in S (cut to N − 1 tokens).

Proof: let x = state(h) and y = state(h·w). If y is not the root, y = y′·w with y′ a suffix of h,
and y′ is in S because S is prefix-closed; so |y′| ≤ |x| (x is the longest), y′ is a suffix of x
and y a suffix of x·w. Every suffix of x·w is one of h·w, so none in S is longer than y. And a
state's row is the table's: the longest known suffix of h is in S, hence a suffix of x, hence the
longest known suffix of x. (tests/test_sparse_chain.py checks both against plain Python.)

S is a trie (prefix-closed); `parent(s)`, the longest proper suffix of s in S, is its suffix link
(Aho–Corasick's failure link). Two facts make every product with the chain cost O(entries + K)
instead of K·V, for state s with parent p:

    P(w | s) = β̃(s)·P(w | p)       for every w that s does not list (β̃ = β(s), or 1 if s is unknown)
    next(s, w) = next(p, w)         for every w that is no child s·w of s in the trie

so, with D(s) the tokens s lists or has a child for, A(s) = Σ_w Q(s, w)·v[next(s, w)] is

    A(s) = β̃(s)·A(p) + Σ_{w ∈ D(s)} (Q(s, w)·v[next(s, w)] − β̃(s)·Q(p, w)·v[next(p, w)])

from the shortest states up (the root's A over all V tokens once). Temperature keeps this form
(each row is raised to 1/T and renormalized: β̃ becomes β̃^(1/T)·Z(p)/Z(s)); top-k and top-p cut
each row to an explicit list, then β̃ = 0 and D(s) is that list.

The subtraction is exact algebra but not exact arithmetic: A(s) carries an absolute rounding error
of about 1e-16·A(p), negligible beside the messages' own (GMRES stops at 1e-13).

    >>> from bigram.backoff import Level, Table
    >>> t = Table(2, 3, [None, None, Level.of_rows([1], [[1]], [[0.9]], [0.1 / 0.5])])  # "0a" → a: 0.9
    >>> s = States(t)
    >>> s.K, s.key.tolist(), s.length.tolist()  # the root, "0", "0a"
    (3, [0, 0, 1], [0, 1, 2])
    >>> s.next(torch.tensor([1, 2]), torch.tensor([1, 1])).tolist()  # "0"·a = "0a"; "0a"·a: "aa" → root
    [2, 0]
"""

from __future__ import annotations

import math

import torch

from bigram.backoff import Table

_I64 = torch.int64


def _find(keys: torch.Tensor, want: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(position of each wanted key in sorted `keys`, whether it is there)."""
    if not len(keys):
        return torch.zeros_like(want), torch.zeros(want.shape, dtype=torch.bool)
    pos = torch.searchsorted(keys, want).clamp_(max=len(keys) - 1)
    return pos, keys[pos] == want


def _ranges(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ranges lo[i] … hi[i] − 1: (which range each element is in, the element)."""
    lens = hi - lo
    which = torch.repeat_interleave(torch.arange(len(lo)), lens)
    return which, torch.arange(int(lens.sum())) - torch.repeat_interleave(lens.cumsum(0) - lens - lo, lens)


class States:
    """S, numbered by (length, key): state `offset[i] + r` is the r-th context of i tokens in S.

    key, length: each state's context (digits base V, oldest first) and its number of tokens;
    parent: its longest proper suffix in S (−1 for the root, state 0); own: its row in the table's
    level of its length, −1 where the table does not know it; child_lo/child_hi: its children s·w
    in the trie, the states child_lo … child_hi − 1 (one token longer, sorted by w)."""

    def __init__(self, table: Table):
        self.table, V, N = table, table.V, table.order
        self.V, self.N = V, N
        keys: list[torch.Tensor] = [torch.zeros(0, dtype=_I64)] * N
        below = torch.zeros(0, dtype=_I64)
        for i in range(N - 1, 0, -1):  # every known context, and its prefixes one level down
            lv = table.levels[i]
            keys[i] = torch.unique(torch.cat([below, lv.keys if lv is not None else below[:0]]))
            below = keys[i] // V
        keys[0] = torch.zeros(1, dtype=_I64)  # the root
        self.keys = keys
        sizes = [len(k) for k in keys]
        self.offset = [0, *torch.tensor(sizes).cumsum(0).tolist()]
        self.K = self.offset[-1]
        self.key = torch.cat(keys)
        self.length = torch.repeat_interleave(torch.arange(N), torch.tensor(sizes))
        self._links()

    def _links(self) -> None:
        V, N, K = self.V, self.N, self.K
        self.parent = torch.full((K,), -1, dtype=_I64)
        self.own = torch.full((K,), -1, dtype=_I64)
        self.child_lo = torch.zeros(K, dtype=_I64)
        self.child_hi = torch.zeros(K, dtype=_I64)
        for i in range(N):
            lo, hi, k = self.offset[i], self.offset[i + 1], self.keys[i]
            lv = self.table.levels[i]
            if lv is not None and len(lv):
                row, known = lv.find(k)
                self.own[lo:hi] = torch.where(known, row, -1)
            if i:
                self.parent[lo:hi] = self.locate(k, length=i - 1)
            if i + 1 < N:
                nxt = self.keys[i + 1]
                self.child_lo[lo:hi] = torch.searchsorted(nxt, k * V) + self.offset[i + 1]
                self.child_hi[lo:hi] = torch.searchsorted(nxt, k * V + V) + self.offset[i + 1]
        root_succ = torch.zeros(V, dtype=_I64)  # the root's next states: token w as a state, or the root
        if N > 1:
            pos, hit = _find(self.keys[1], torch.arange(V))
            root_succ[hit] = pos[hit] + self.offset[1]
        self.root_succ = root_succ

    def locate(self, keys: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """The state of each context of `length` tokens (N − 1: the table's full context keys):
        its longest suffix in S."""
        keys = torch.as_tensor(keys, dtype=_I64)
        top = self.N - 1 if length is None else length
        out = torch.zeros(keys.shape, dtype=_I64)
        todo = torch.ones(keys.shape, dtype=torch.bool)
        for m in range(top, 0, -1):
            idx = todo.nonzero().squeeze(1)
            if not len(idx):
                break
            pos, hit = _find(self.keys[m], keys[idx] % self.V**m)
            out[idx[hit]] = pos[hit] + self.offset[m]
            todo[idx[hit]] = False
        return out

    def next(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The state after each token follows each state (tensors of one shape): the longest
        suffix in S of the state's context with the token appended."""
        states, tokens = torch.broadcast_tensors(torch.as_tensor(states), torch.as_tensor(tokens))
        shape, s, w = states.shape, states.reshape(-1), tokens.reshape(-1)
        top = self.N - 1
        key = self.key[s] * self.V + w
        length = self.length[s] + 1
        cut = length > top
        key[cut] %= self.V**top
        length[cut] = top
        out = torch.zeros(len(s), dtype=_I64)
        todo = torch.ones(len(s), dtype=torch.bool)
        for m in range(top, 0, -1):
            idx = (todo & (length >= m)).nonzero().squeeze(1)
            pos, hit = _find(self.keys[m], key[idx] % self.V**m)
            out[idx[hit]] = pos[hit] + self.offset[m]
            todo[idx[hit]] = False
        return out.view(shape)

    def log_prob(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """log P(token | state) (float64), read from the table at each state's context."""
        states, tokens = torch.broadcast_tensors(torch.as_tensor(states), torch.as_tensor(tokens))
        shape, s, w = states.shape, states.reshape(-1), tokens.reshape(-1)
        out = torch.empty(len(s), dtype=torch.float64)
        for i in range(self.N):
            idx = (self.length[s] == i).nonzero().squeeze(1)
            if len(idx):
                out[idx] = self.table.at(self.key[s[idx]], w[idx], length=i)
        return out.view(shape)

    def log_prob_all(self, token: int) -> torch.Tensor:
        """log P(token | s) for every state s, from the shortest states up: listed at s, or
        β(s) times the parent's (an unknown state reads its parent's row): O(K)."""
        out = torch.empty(self.K, dtype=torch.float64)
        out[0] = self.root_row()[token]
        for i in range(1, self.N):
            lo, hi = self.offset[i], self.offset[i + 1]
            res, r = out[self.parent[lo:hi]], self.own[lo:hi]
            known = (r >= 0).nonzero().squeeze(1)
            if len(known):
                lv = self.table.levels[i]
                keys = lv.keys[r[known]]
                pos, listed = lv.lookup(keys, torch.full_like(keys, token), self.table.V)
                res[known] = torch.where(listed, lv.logp[pos], lv.backoff[r[known]] + res[known])
            out[lo:hi] = res
        return out

    def ancestors(self, states: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The suffix chains of `states` as layers, the states' own first: (states other than the
        root in this layer, which of `states` each one belongs to). Each known suffix of a state's
        context, and each trie node whose children it takes, is in its chain."""
        layers, cur, rows = [], torch.as_tensor(states, dtype=_I64), torch.arange(len(states))
        while len(cur):
            keep = cur > 0
            cur, rows = cur[keep], rows[keep]
            if len(cur):
                layers.append((cur, rows))
            cur = self.parent[cur]
        return layers

    def root_row(self) -> torch.Tensor:
        """log P(· | the root): uniform, or the table's row of the empty context."""
        if getattr(self, "_root_row", None) is not None:
            return self._root_row
        out = self._root_row = torch.full((self.V,), -math.log(self.V), dtype=torch.float64)
        lv = self.table.levels[0]
        if lv is not None and len(lv):
            out += lv.backoff[0]
            out[lv.cols[: lv.ptr[1]]] = lv.logp[: lv.ptr[1]]
        return out

    def block(self, states: torch.Tensor, succ: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(log P rows, next-state rows or None) of a block of states: len × V each, as
        Table.rows reads them: the root row plus the log β of every known suffix, then each
        suffix's listed tokens from the shortest up (longer ones overwrite), each plus the log β
        of the known suffixes longer than it. One pass over len × V, the rest sparse."""
        n = len(states)
        deeper = torch.zeros(n, dtype=torch.float64)  # Σ log β of the known suffixes seen so far
        listed = []  # (rows, their known suffixes' rows in level i, i, what deeper β they take)
        layers = self.ancestors(states)
        for cur, rows in layers:  # the longest suffixes first
            for i in range(1, self.N):
                sel = ((self.length[cur] == i) & (self.own[cur] >= 0)).nonzero().squeeze(1)
                if len(sel):
                    r = self.own[cur[sel]]
                    listed.append((rows[sel], r, i, deeper[rows[sel]]))
                    deeper[rows[sel]] += self.table.levels[i].backoff[r]
        lp = self.root_row()[None, :] + deeper[:, None]
        for rows, r, i, extra in reversed(listed):  # the shortest suffixes first
            lv = self.table.levels[i]
            which, pos = lv.slices(r)
            lp[rows[which], lv.cols[pos]] = lv.logp[pos] + extra[which]
        if not succ:
            return lp, None
        out = self.root_succ.expand(n, self.V).clone()
        for cur, rows in reversed(layers):
            which, child = _ranges(self.child_lo[cur], self.child_hi[cur])
            out[rows[which], self.key[child] % self.V] = child
        return lp, out

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(state, token) for every token w ≥ 1 a state other than the root lists or has a child
        for: D(s) of the module docstring, sorted by state then token."""
        found_s, found_w = [], []
        for lo, idx, lv, which, pos in listed(self):
            found_s.append(idx[which] + lo)
            found_w.append(lv.cols[pos])
        child = torch.arange(1, self.K)  # every state but the root is its trie parent's child
        found_s.append(self._trie_parent(child))
        found_w.append(self.key[child] % self.V)
        flat = torch.unique(torch.cat(found_s) * self.V + torch.cat(found_w))
        s, w = flat // self.V, flat % self.V
        keep = (w != 0) & (s != 0)  # the root's row is taken whole (SparseChain.root_q)
        return s[keep], w[keep]

    def _trie_parent(self, states: torch.Tensor) -> torch.Tensor:
        """The state of each context without its newest token (in S: S is prefix-closed)."""
        out = torch.empty_like(states)
        for i in range(1, self.N):
            idx = (self.length[states] == i).nonzero().squeeze(1)
            if len(idx):
                pos, _ = _find(self.keys[i - 1], self.key[states[idx]] // self.V)
                out[idx] = pos + self.offset[i - 1]
        return out


BLOCK_ENTRIES = 1 << 22  # rows × V made at a time (32 MB of float64)
MAX_LISTED = 1 << 26  # entries of the rows top-k/top-p cut (each row a list: 1 GiB at most)


def chunks(n: int, V: int):
    """Slices of n rows such that each slice's rows × V stay under BLOCK_ENTRIES."""
    step = max(1, BLOCK_ENTRIES // max(V, 1))
    return (slice(lo, min(n, lo + step)) for lo in range(0, n, step))


def listed(states: States):
    """For each context length i ≥ 1 that has known states: (the length's first state, which of
    its states are known contexts, the table's level, and Level.slices of their rows: which
    known state each listed entry belongs to, and the entry)."""
    for i in range(1, states.N):
        lo = states.offset[i]
        r = states.own[lo : states.offset[i + 1]]
        idx = (r >= 0).nonzero().squeeze(1)
        if len(idx):
            lv = states.table.levels[i]
            yield lo, idx, lv, *lv.slices(r[idx])


class RowReads:
    """What a chain derives from its `rows(states)` (P rows and next-state rows of a block of
    states) and its `states` (States): the weighted rows of a backward message, one state's log
    row, and the walk from state to state. SparseChain and exact.mixed.MixChain share them."""

    def next(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.states.next(states, tokens)

    def next_one(self, state: int, token: int) -> int:
        return int(self.states.next(torch.tensor([state]), torch.tensor([token]))[0])

    def state_of(self, context: int) -> int:
        """The state of the model's full context `context`."""
        return int(self.states.locate(torch.tensor([context]))[0])

    def weights(self, states: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """P(s, c)·v[next(s, c)] for the states given and every c."""
        P, succ = self.rows(states)
        return P.mul_(v[succ])

    def log_row(self, state: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(log Q(state, c) for every c, −inf at the boundary; the state after each c)."""
        P, succ = self.rows(torch.tensor([state]))
        out = P[0].log()
        out[0] = -math.inf
        return out, succ[0]


class SparseChain(RowReads):
    """The chain over States with rows adjusted by `adjust` (log rows → probabilities: exp, or
    temperature/top-k/top-p row by row), what chain.Chain answers without any K×V matrix.

    Per pair (s, w) of D(s), sorted: a = Q(s, w) and sigma = next(s, w), b = β̃(s)·Q(p, w) and
    tau = next(p, w); per state: beta = β̃ adjusted; the root's whole row (root_q, root_succ).
    `cut` (top-k/top-p): every row is its explicit list, beta = 0 (the root a state like the
    others)."""

    merged = True
    exact_max = False  # Qmax is an upper bound (D(s) hides what p's best token is worth at s)

    def __init__(self, states: States, adjust, temperature: float = 1.0, cut: bool = False):
        self.states, self.adjust, self.T = states, adjust, temperature
        self.K, self.V, self.order = states.K, states.V, states.N
        self.C = self.V ** (self.order - 1)
        self.locate, self.cut = states.locate, cut
        self.exact_max = cut  # a cut row hides nothing behind a backoff: Qmax is the max
        self._built = False
        if cut:
            self._cut()
            self._finish()
        else:  # the products' terms wait for the first product: a plain draw needs none
            self._logz = self._log_z()
            self.end = (states.log_prob_all(0) / self.T - self._logz).exp()

    def _op(self) -> None:
        if not self._built:
            self._backoff()
            self._finish()

    def _finish(self) -> None:
        self._lbeta, self.b = self.beta.log(), self.beta[self.s] * self.qp
        self._bpos = (self.beta[self.s] > 0) & (self.qp > 0)  # b > 0, whatever b's product underflows to
        del self.qp  # 48 bytes a pair are kept: s, w, sigma, tau, a, b
        self._built = True

    def _log_z(self) -> torch.Tensor:
        """log Z(s) = log Σ_w P(w | s)^(1/T) per state (0 at T = 1), up the states as the rows
        are read: Z(s) = Σ_{w listed at s} P(w | s)^(1/T) + β(s)^(1/T)·(Z(p) − Σ_{w listed at s}
        P(w | p)^(1/T)), Z(p) for an unknown state; in logs, so no temperature underflows."""
        if self.T == 1:
            return torch.zeros(self.K, dtype=torch.float64)
        st, T = self.states, self.T
        own = torch.full((self.K,), -math.inf, dtype=torch.float64)
        par = own.clone()
        for lo, idx, lv, which, pos in listed(st):  # each known state's entries: its own P, its parent's
            own[idx + lo] = _segment_lse(which, lv.logp[pos] / T, len(idx))
            parent = st.parent[idx[which] + lo]
            par[idx + lo] = _segment_lse(which, st.log_prob(parent, lv.cols[pos]) / T, len(idx))
        out = torch.empty(self.K, dtype=torch.float64)
        out[0] = torch.logsumexp(st.root_row() / T, 0)
        for i in range(1, self.order):  # parents are shorter: done before their children
            lo, hi = st.offset[i], st.offset[i + 1]
            up = out[st.parent[lo:hi]]
            rest = up + torch.log1p(-(par[lo:hi] - up).clamp(max=0).exp())  # log(Z(p) − Σ listed P(p)^(1/T))
            r = st.own[lo:hi]
            idx = (r >= 0).nonzero().squeeze(1)
            if len(idx):
                lb = st.table.levels[i].backoff[r[idx]] / T
                up[idx] = torch.logaddexp(own[lo + idx], lb + rest[idx])
            out[lo:hi] = up
        return out

    def _backoff(self) -> None:
        st, T, z = self.states, self.T, self._logz
        self.s, self.w = st.pairs()
        p, w = st.parent[self.s], self.w
        self.sigma, self.tau = st.next(self.s, w), st.next(p, w)
        self.a = (st.log_prob(self.s, w) / T - z[self.s]).exp()
        self.qp = (st.log_prob(p, w) / T - z[p]).exp()
        own = torch.zeros(self.K, dtype=torch.float64)
        for i in range(1, self.order):  # log β of each known state (the unknown: 1, log 0)
            lo, hi = st.offset[i], st.offset[i + 1]
            r = st.own[lo:hi]
            known = (r >= 0).nonzero().squeeze(1)
            if len(known):
                own[lo + known] = st.table.levels[i].backoff[r[known]]
        self.beta = (own / T + z[st.parent.clamp(min=0)] - z).exp()
        self.beta[0] = 0.0
        self.root_q = (st.root_row() / T - z[0]).exp()
        self.root_q[0] = 0.0
        self.root_succ = st.root_succ

    def _cut(self) -> None:
        """Every row adjusted and listed whole (its non-zero entries): top-k and top-p cut rows
        to a set no backoff describes."""
        s, w, a, sigma = [], [], [], []
        self.end = torch.empty(self.K, dtype=torch.float64)
        total = 0
        for sl in chunks(self.K, self.V):
            rows = torch.arange(sl.start, sl.stop)
            lp, succ = self.states.block(rows)
            P = self.adjust(lp)
            self.end[sl] = P[:, 0]
            P[:, 0] = 0
            r, c = P.nonzero(as_tuple=True)
            total += len(r)
            if total > MAX_LISTED:
                raise _too_many(total, self.K, self.V)
            s.append(rows[r]), w.append(c), a.append(P[r, c]), sigma.append(succ[r, c])
        self.s, self.w, self.a, self.sigma = torch.cat(s), torch.cat(w), torch.cat(a), torch.cat(sigma)
        self.tau, self.qp = self.sigma, torch.zeros_like(self.a)
        self.beta = torch.zeros(self.K, dtype=torch.float64)
        self.root_q, self.root_succ = torch.zeros(self.V, dtype=torch.float64), self.states.root_succ

    # --- products with the chain: O(pairs + K) -------------------------------------------------
    def _apply(self, v: torch.Tensor, a, b, beta, root_q) -> torch.Tensor:
        A = torch.zeros(self.K, dtype=torch.float64).index_add_(
            0, self.s, a * v[self.sigma] - b * v[self.tau]
        )
        A[0] += (root_q * v[self.root_succ]).sum()
        off, parent = self.states.offset, self.states.parent
        for i in range(1, self.order):  # parents are shorter: done before their children
            lo, hi = off[i], off[i + 1]
            A[lo:hi] += beta[lo:hi] * A[parent[lo:hi]]
        return A

    def Qv(self, v: torch.Tensor) -> torch.Tensor:
        """Σ_{c ≥ 1} Q(s, c)·v[next(s, c)] for every state s (module docstring's recursion)."""
        self._op()
        return self._apply(v, self.a, self.b, self.beta, self.root_q).clamp_(min=0)

    def reach(self, can: torch.Tensor) -> torch.Tensor:
        """can, or some c ≥ 1 with Q(s, c) > 0 leads to a state that can: the same recursion
        counting the moves that do (whole numbers, exact)."""
        self._op()
        a, b = (self.a > 0).double(), self._bpos.double()
        count = self._apply(can.double(), a, b, (self.beta > 0).double(), (self.root_q > 0).double())
        return can | (count > 0.5)

    def Qmax(self, lv: torch.Tensor) -> torch.Tensor:
        """An upper bound of max_{c ≥ 1} log Q(s, c) + lv[next(s, c)]: the pairs' own terms and
        β̃(s) times the parent's bound (which may count a token s lists: never below the max)."""
        self._op()
        M = torch.full((self.K,), -math.inf, dtype=torch.float64)
        M.scatter_reduce_(0, self.s, self.a.log() + lv[self.sigma], "amax")
        M[0] = max(float(M[0]), float((self.root_q.log() + lv[self.root_succ]).max()))
        off, parent = self.states.offset, self.states.parent
        for i in range(1, self.order):
            lo, hi = off[i], off[i + 1]
            M[lo:hi] = torch.maximum(M[lo:hi], self._lbeta[lo:hi] + M[parent[lo:hi]])
        return M

    # --- rows, for draws and searches: a block of states at a time -----------------------------
    def rows(self, states: torch.Tensor, succ: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(P rows adjusted, next-state rows or None) of a block of states: len × V each."""
        lp, out = self.states.block(states, succ)
        return self.adjust(lp), out

    def prob(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """P(token | state), adjusted, for tensors of one shape."""
        states, tokens = torch.broadcast_tensors(torch.as_tensor(states), torch.as_tensor(tokens))
        if not self.cut:  # the table's P^(1/T) / Z(s)
            return (self.states.log_prob(states, tokens) / self.T - self._logz[states]).exp()
        pos, hit = _find(self.s * self.V + self.w, states * self.V + tokens)  # a cut row: its list
        listed = torch.where(hit, self.a[pos], 0.0) if len(self.a) else torch.zeros(states.shape)
        return torch.where(tokens == 0, self.end[states], listed.double())

    def prob_all(self, token: int) -> torch.Tensor:
        """P(token | s), adjusted, for every state s."""
        if token == 0:
            return self.end
        if self.cut:
            return self.prob(torch.arange(self.K), torch.full((self.K,), token, dtype=_I64))
        return (self.states.log_prob_all(token) / self.T - self._logz).exp()


def _segment_lse(which: torch.Tensor, x: torch.Tensor, n: int) -> torch.Tensor:
    """log Σ exp(x) over each of n segments (which: the segment of each x)."""
    top = torch.full((n,), -math.inf, dtype=torch.float64).scatter_reduce_(0, which, x, "amax")
    top = torch.where(torch.isinf(top), 0.0, top)
    total = torch.zeros(n, dtype=torch.float64).index_add_(0, which, (x - top[which]).exp())
    return top + total.log()


def _too_many(total: int, K: int, V: int):
    from bigram.errors import BigramError

    return BigramError(
        f"--top-k/--top-p on this model keep more than {total:,} entries over its {K:,} contexts × "
        f"V = {V:,} (limit {MAX_LISTED:,}): ask for a smaller --top-k or --top-p"
    )
