"""Regular constraints over a SparseChain (exact/sparse.py): automaton.Plan's messages, draws and
search on pairs x = (state s, automaton state q), with no row of a pair ever made whole.

The chain's recursion carries over to pairs, as the automaton reads the same token c from (s, q)
and from (p, q), p = parent(s):

    (T h)(s, q) = β̃(s)·(T h)(p, q)
                  + Σ_{c ∈ D(s)} (Q(s, c)·h(next(s, c), δ(q, c)) − β̃(s)·Q(p, c)·h(next(p, c), δ(q, c)))

and the root's pairs sum over every token. So the pairs are those a walk reaches from the start,
closed under (s, q) → (p, q) where β̃(s) > 0 (the recursion reads them), each with one entry per
c of D(s): O(entries) per product, not pairs × V.
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch

from bigram.errors import BigramError
from bigram.exact import automaton
from bigram.exact.automaton import MAX_ENTRIES, MAX_PRODUCT, too_many
from bigram.exact.dfa import DEAD as _DEAD
from bigram.exact.dfa import DFA, KeySet
from bigram.exact.sparse import SparseChain, _ranges, chunks
from bigram.options import MAX_STEPS
from bigram.vocab import BOUNDARY_ID

_ROUNDS = 200  # the search's bound, from above: rounds at most (each one a bound)


class Plan(automaton.Plan):
    """automaton.Plan over a SparseChain: `_build` finds the pairs and their entries; `_step`,
    `_rows` and `_bound` use them (the rest, messages, draws and search, is automaton.Plan's)."""

    def _build(self, chain: SparseChain, dfa: DFA) -> None:
        chain._op()
        Q = dfa.n
        self.chain, self.Qd, self.dfa = chain, Q, dfa
        self.ptr = torch.searchsorted(chain.s, torch.arange(chain.K + 1))  # each state's pairs (s, w)
        start = chain.state_of(BOUNDARY_ID) * Q + dfa.start  # a key: chain state · Q + DFA state
        self.keys = keys = self._reach(torch.tensor([start]))
        self.N = N = len(keys)
        self.s, self.q = keys // Q, keys % Q
        self.first = int(torch.searchsorted(keys, keys.new_tensor(start)))
        accept = dfa.accept.to(torch.float64)
        self.end = chain.end[self.s] * accept[self.q]  # h_0
        beta = chain.beta[self.s]
        self.px = torch.where(beta > 0, self._find(chain.states.parent[self.s].clamp(min=0) * Q + self.q), N)
        self.beta, self.lbeta = beta, beta.log()
        self._entries()
        bounds = torch.searchsorted(chain.states.length[self.s], torch.arange(1, chain.order + 1)).tolist()
        self.levels = list(itertools.pairwise(bounds))  # the pairs of each state length ≥ 1

    def _find(self, want: torch.Tensor) -> torch.Tensor:
        """The index of each wanted pair key, N where it is no pair (an impossible move)."""
        pos = torch.searchsorted(self.keys, want).clamp_(max=len(self.keys) - 1)
        return torch.where(self.keys[pos] == want, pos, len(self.keys))

    def _moves(self, s: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every move from pairs (s, q) the products read: (which pair, own target key, the
        parent's target key, own weight, parent's weight); a target −1 where the automaton dies."""
        chain, Q = self.chain, self.Qd
        self._count(s)
        which, e = _ranges(self.ptr[s], self.ptr[s + 1])
        nq = self.dfa.moves(q[which], chain.w[e])
        own = torch.where(nq != _DEAD, chain.sigma[e] * Q + nq, -1)
        par = torch.where(nq != _DEAD, chain.tau[e] * Q + nq, -1)
        out = [(which, own, par, chain.a[e], chain.b[e])]
        root = (s == 0).nonzero().squeeze(1)  # the root's pairs: every token it can emit
        c = (chain.root_q > 0).nonzero().squeeze(1)
        if len(root) and len(c):
            nq = self.dfa.moves(q[root][:, None], c[None, :])
            key = torch.where(nq != _DEAD, chain.root_succ[c][None, :] * Q + nq, -1)
            n, weights = len(root) * len(c), chain.root_q[c].repeat(len(root))
            none, zero = torch.full((n,), -1), torch.zeros(n, dtype=torch.float64)
            out.append((root.repeat_interleave(len(c)), key.reshape(-1), none, weights, zero))
        return tuple(torch.cat(parts) for parts in zip(*out, strict=True))

    def _count(self, s: torch.Tensor) -> None:
        """The moves of pairs at states s, counted (with those counted before: every pair's moves
        are made once while the pairs are found) and refused past MAX_ENTRIES before any is made."""
        root = int((s == 0).sum()) * int((self.chain.root_q > 0).sum())
        self._counted = getattr(self, "_counted", 0) + int((self.ptr[s + 1] - self.ptr[s]).sum()) + root
        if self._counted > MAX_ENTRIES:
            raise BigramError(
                f"the constraints' automaton ({self.Qd:,} states) and the model's contexts make more than "
                f"{MAX_ENTRIES:,} moves to weigh; use fewer or simpler constraints"
            )

    def _reach(self, keys: torch.Tensor) -> torch.Tensor:
        """The pairs a walk reaches from `keys`, closed under (s, q) → (parent(s), q) where
        β̃(s) > 0, sorted."""
        chain, Q = self.chain, self.Qd
        frontier, seen = keys, KeySet(keys, chain.K * Q)
        while len(frontier):
            s, q = frontier // Q, frontier % Q
            _, own, _, a, _ = self._moves(s, q)
            up = chain.beta[s] > 0
            parents = chain.states.parent[s[up]] * Q + q[up]
            frontier = seen.add(torch.cat([own[(a > 0) & (own >= 0)], parents]))
            keys = torch.cat([keys, frontier])
            if len(keys) > MAX_PRODUCT:
                raise too_many(Q)
        return keys.sort().values

    def _entries(self) -> None:
        self._counted = 0  # the pairs' moves, all made again here
        which, own, par, a, b = self._moves(self.s, self.q)
        N = self.N
        self.ex, self.ea, self.eb = which, a, b
        self.ei = torch.where(own >= 0, self._find(own.clamp(min=0)), N)
        self.ej = torch.where(par >= 0, self._find(par.clamp(min=0)), N)
        self.ela = a.log()

    def _step(self, h: torch.Tensor) -> torch.Tensor:
        """(T h)(x) for every pair: the entries (one sparse product), then β̃ times the parent
        pair's, shortest first."""
        hp = torch.cat([h, torch.zeros(1, dtype=h.dtype)])
        A = self._M @ hp
        for lo, hi in self.levels:
            A[lo:hi] += self.beta[lo:hi] * A[self.px[lo:hi]]
        return A[: self.N].clamp_(min=0)

    def _raw_rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P rows, next pairs: N where impossible) of the pairs x, made from their states' rows."""
        P, succ = self.chain.rows(self.s[x])
        moves = self.dfa.rows(self.q[x])
        nxt = self._find(succ * self.Qd + moves)
        nxt[moves == _DEAD] = self.N
        nxt[:, BOUNDARY_ID] = self.N
        return P, nxt

    def _rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """_raw_rows in the messages' scale (automaton.Plan._scale)."""
        P, nxt = self._raw_rows(x)
        e = (P.log_() + self._Gp[nxt] - self._G[x, None]).clamp_(max=700.0).exp_()
        return torch.where(nxt < self.N, e, 0.0), nxt

    def _row(self, x: int) -> tuple[list[float], list[int]]:
        P, nxt = self._raw_rows(torch.tensor([x]))
        return P[0].log().tolist(), nxt[0].tolist()

    def _best_bound(self) -> torch.Tensor:
        return self._bound()

    def _levels(self) -> torch.Tensor:
        """log of each pair's scale: the best completion from below (through the entries and
        β̃ times the parent's moves, as _bound), at most 0, until no pair improves."""
        lend = self.end_raw.log()
        H = lend.clamp(max=0)
        for _ in range(MAX_STEPS):
            M = self._best_move(H)
            new = torch.maximum(H, M).clamp_(max=0)
            if torch.equal(new, H):
                break
            H = new
        return torch.where(torch.isfinite(H), H, 0.0)

    def _best_move(self, H: torch.Tensor) -> torch.Tensor:
        """max over moves of log Q + H(next), through the entries and β̃ times the parent's."""
        Hp = torch.cat([H, torch.tensor([-math.inf], dtype=torch.float64)])
        M = torch.full((self.N + 1,), -math.inf, dtype=torch.float64)
        M.scatter_reduce_(0, self.ex, self.ela + Hp[self.ei], "amax")
        for lo, hi in self.levels:
            M[lo:hi] = torch.maximum(M[lo:hi], self.lbeta[lo:hi] + M[self.px[lo:hi]])
        return M[: self.N]

    def _scale(self, G: torch.Tensor) -> None:
        """automaton.Plan._scale on the entries: each weight times e^(G(its target) − G(its pair)),
        β̃ times e^(G(parent pair) − G(pair))."""
        self._G, self._Gp = G, torch.cat([G, torch.zeros(1, dtype=G.dtype)])
        Gx = self._Gp[self.ex]
        self.ea = (self.ela + self._Gp[self.ei] - Gx).clamp_(max=700.0).exp_()
        self.eb = (self.eb.log() + self._Gp[self.ej] - Gx).clamp_(max=700.0).exp_()
        self.beta = (self.lbeta + self._Gp[self.px] - G).clamp_(max=700.0).exp_()
        self.end = (self.end_raw.log() - G).clamp_(max=700.0).exp_()
        n = self.N + 1
        rows, cols = torch.cat([self.ex, self.ex]), torch.cat([self.ei, self.ej])
        with warnings.catch_warnings():  # torch calls its sparse support beta, once per process
            warnings.simplefilter("ignore")
            coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), torch.cat([self.ea, -self.eb]), (n, n))
            self._M = coo.coalesce().to_sparse_csr()  # the entries as one matrix: duplicates summed

    def _bound(self) -> torch.Tensor:
        """An upper bound of the best completion's log-probability from each pair, lengths aside:
        from log 1 down, each round max(end, the best move) through the entries and β̃ times the
        parent pair's bound (which may count a token the pair's state lists: never below)."""
        lend = self.end_raw.log()
        H = torch.zeros(self.N, dtype=torch.float64)
        for _ in range(_ROUNDS):
            new = torch.minimum(H, torch.maximum(lend, self._best_move(H)))
            if torch.equal(new, H):
                break
            H = new
        return H


__all__ = ["Plan", "chunks"]
