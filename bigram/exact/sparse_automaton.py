"""Regular constraints over a SparseChain (exact/sparse.py): automaton.Plan's messages, draws and
search on pairs x = (state s, automaton state q), with no row of a pair ever made whole.

The chain's recursion carries over to pairs, as the automaton reads the same token c from (s, q)
and from (p, q), p = parent(s):

    (T h)(s, q) = β̃(s)·(T h)(p, q)
                  + Σ_{c ∈ D(s)} (Q(s, c)·h(next(s, c), δ(q, c)) − β̃(s)·Q(p, c)·h(next(p, c), δ(q, c)))

and the root's pairs sum over every token. So the pairs are those a walk reaches from the start,
closed under (s, q) → (p, q) where β̃(s) > 0 (the recursion reads them), each with one entry per
c of D(s): O(entries) per product, not pairs × V.

The root's pairs (root, q) (every automaton state has one, through the β̃ recursion) would each
sum over all V tokens. But the tokens of one automaton class k move every q alike, to δ(q, k); so
the sum over a class's tokens, U(k, q′) = Σ_{c ∈ k} P(c | root)·h(next(root, c), q′), is one
*virtual node* per (class, target state) that some root pair reaches, made once and shared, and a
root pair's row is Σ_k U(k, δ(q, k)): classes × root pairs + V per target, not V × root pairs
(a 1,000-string blocklist at V = 4,504: 3.7 million moves become 0.4 million).
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
from bigram.exact.dfa import DFA, KeySet, Positions
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
        c = (chain.root_q > 0).nonzero().squeeze(1)  # the root's tokens, by the automaton's class
        k = dfa.classes[c]
        order = torch.argsort(k, stable=True)
        self._rtok, k = c[order], k[order]
        self._rclass = torch.unique(k)
        self._rptr = torch.searchsorted(k, torch.arange(int(dfa.classes.max()) + 2))
        self._vseen = KeySet(torch.zeros(0, dtype=torch.long), (int(dfa.classes.max()) + 1) * Q)
        start = chain.state_of(BOUNDARY_ID) * Q + dfa.start  # a key: chain state · Q + DFA state
        self.keys = keys = self._reach(torch.tensor([start]))
        self.N = N = len(keys)
        self._index = Positions(keys, chain.K * Q)
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
        return self._index.find(want)

    def _moves(self, s: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every move from pairs (s, q) the products read: (which pair, own target key, the
        parent's target key, own weight, parent's weight); a target −1 where the automaton dies."""
        chain, Q = self.chain, self.Qd
        self._count(s)
        which, e = _ranges(self.ptr[s], self.ptr[s + 1])
        nq = self.dfa.moves(q[which], chain.w[e])
        own = torch.where(nq != _DEAD, chain.sigma[e] * Q + nq, -1)
        par = torch.where(nq != _DEAD, chain.tau[e] * Q + nq, -1)
        return which, own, par, chain.a[e], chain.b[e]

    def _root_links(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """From root pairs (root, q): one link per class of the root's tokens where the automaton
        lives, to the class's virtual node (class, δ(q, class)): (which pair, the node's key).
        Every token of a class moves the automaton alike, so the node's sum over its tokens
        is made once and shared by every root pair that reaches it (module docstring)."""
        self._count(None, len(q) * len(self._rclass))
        nq = self.dfa.delta[q][:, self._rclass].long()
        ok = nq != _DEAD
        which = torch.arange(len(q))[:, None].expand_as(nq)[ok]
        return which, (self._rclass[None, :] * self.Qd + nq)[ok]

    def _expand(self, vkeys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each virtual node's moves: (which node, target pair key, the root's P of the token)."""
        k, q = vkeys // self.Qd, vkeys % self.Qd
        self._count(None, int((self._rptr[k + 1] - self._rptr[k]).sum()))
        which, t = _ranges(self._rptr[k], self._rptr[k + 1])
        c = self._rtok[t]
        return which, self.chain.root_succ[c] * self.Qd + q[which], self.chain.root_q[c]

    def _count(self, s: torch.Tensor | None, more: int = 0) -> None:
        """The moves of pairs at states s (and `more`), counted (with those counted before: every
        move is made once while the pairs are found) and refused past MAX_ENTRIES before any is made."""
        n = more if s is None else int((self.ptr[s + 1] - self.ptr[s]).sum())
        self._counted = getattr(self, "_counted", 0) + n
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
            _, vkeys = self._root_links(q[s == 0])
            _, targets, _ = self._expand(self._vseen.add(vkeys))
            frontier = seen.add(torch.cat([own[(a > 0) & (own >= 0)], parents, targets]))
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
        roots = (self.s == 0).nonzero().squeeze(1)
        lw, vkeys = self._root_links(self.q[roots])
        self.vkeys, self.lu = torch.unique(vkeys, return_inverse=True)  # links: root pair lx → node lu
        self.lx = roots[lw]
        self.uu, targets, w = self._expand(self.vkeys)  # the nodes' moves: node uu → pair ui
        self.ui, self.ula = self._find(targets), w.log()

    def _step(self, h: torch.Tensor) -> torch.Tensor:
        """(T h)(x) for every pair: the entries (one sparse product), then β̃ times the parent
        pair's, shortest first."""
        hp = torch.cat([h, torch.zeros(1, dtype=h.dtype)])
        A = self._M @ hp + self._L @ (self._U @ hp)
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
        """log of each pair's scale: its best completion from below, at most 0 (until none improves)."""
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
        M.scatter_reduce_(0, self.lx, self._node_best(Hp)[self.lu], "amax")
        for lo, hi in self.levels:
            M[lo:hi] = torch.maximum(M[lo:hi], self.lbeta[lo:hi] + M[self.px[lo:hi]])
        return M[: self.N]

    def _node_best(self, Hp: torch.Tensor) -> torch.Tensor:
        """Each virtual node's best move: max over its tokens of log P + H(target)."""
        U = torch.full((len(self.vkeys),), -math.inf, dtype=torch.float64)
        return U.scatter_reduce_(0, self.uu, self.ula + Hp[self.ui], "amax")

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
            self._M = _csr(rows, cols, torch.cat([self.ea, -self.eb]), (n, n))
            Gu = self._node_best(self._Gp)  # a node's scale: its best move
            Gu = torch.where(torch.isfinite(Gu), Gu, 0.0)
            u = (self.ula + self._Gp[self.ui] - Gu[self.uu]).clamp_(max=700.0).exp_()
            self._U = _csr(self.uu, self.ui, u, (len(Gu), n))
            link = (Gu[self.lu] - self._Gp[self.lx]).clamp_(max=700.0).exp_()
            self._L = _csr(self.lx, self.lu, link, (n, len(Gu)))

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


def _csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix of the entries (duplicates summed)."""
    coo = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, size)
    return coo.coalesce().to_sparse_csr()


__all__ = ["Plan", "chunks"]
