"""Regular constraints on names, conditioned exactly: `--pattern`, `--contains`, `--not-contains`,
`--blocklist` (with `--start/--end/--min-len/--max-len` beside them).

Each constraint is a DFA over the vocabulary's characters; together they are their product. A
walk of the model is then in a state (context s, automaton state q), and the backward messages

    h_k(s, q) = P(the walk ends, accepted, after exactly k more characters)
              = Σ_c P(c | s) · h_{k−1}(s after c, δ(q, c)),   h_0(s, q) = P(end | s) · [q accepts]

give R_j = Σ_{k : min ≤ j + k ≤ max} h_k, the probability that a walk with j characters so far
completes into an accepted name. Drawing each character ∝ P(c | s) · R_{j+1}(next state) samples
exactly from the model conditioned on the constraints (the sums run until the terms fall below
float64 rounding); `Plan.best` runs A* with max-product messages as its heuristic.

    >>> dfa = compile_pattern("a(b|c)*", ["a", "b", "c"])
    >>> [accepts(dfa, w, ["a", "b", "c"]) for w in ("a", "abcb", "ba", "")]
    [True, True, False, False]
"""

from __future__ import annotations

import heapq
import math
import warnings

import torch

from bigram.errors import BigramError
from bigram.exact.chain import Chain
from bigram.exact.constraints import Constraints, Patterns, SearchStopped
from bigram.exact.dfa import DEAD as _DEAD
from bigram.exact.dfa import DFA, KeySet, Positions, accepts, prefix, product, substrings, suffix
from bigram.exact.regex import compile_pattern
from bigram.exact.sparse import chunks
from bigram.options import MAX_STEPS
from bigram.vocab import BOUNDARY_ID, Vocab

__all__ = ["DFA", "Plan", "accepts", "compile_pattern", "constraint_dfa", "prefix", "product", "substrings",
           "suffix"]  # fmt: skip

MAX_PRODUCT = 1 << 22  # (context, automaton state) pairs a walk can reach
MAX_MESSAGES = 1 << 26  # numbers the messages keep (lengths × pairs): 512 MiB, and as much for sums
MAX_ENTRIES = 1 << 26  # pairs × V of a table held whole: its rows, 768 MiB (sparse_automaton: its moves)


# --- the constraints of a request: one automaton, and the plan over it -------------------------------
def constraint_dfa(patterns: Patterns, c: Constraints, vocab: Vocab) -> DFA:
    """One DFA for every constraint of a request (lengths are left to the messages)."""
    alphabet = list(vocab.chars)
    dfas = []
    if patterns.pattern is not None:
        dfas.append(compile_pattern(patterns.pattern, alphabet))
    dfas += [substrings([s], alphabet, avoid=False) for s in patterns.contains]
    if patterns.not_contains:
        dfas.append(substrings(list(patterns.not_contains), alphabet, avoid=True, what="--not-contains"))
    if patterns.blocklist:
        dfas.append(substrings(list(patterns.blocklist), alphabet, avoid=True, what="--blocklist"))
    if c.start:
        dfas.append(prefix(c.start, alphabet))
    if c.end:
        dfas.append(suffix(c.end, alphabet))
    return product(dfas)


class _Messages:
    """The backward messages of a plan (automaton.Plan, sparse_automaton.Plan), from its one-step
    operator `_step` and its h_0 `end`, both in the scale of `_scale`: their sums over the lengths
    the constraints allow (`R`), and P(the constraints) (`log_mass`)."""

    def _messages(self) -> None:
        """h_k for every k a window of lengths can start at (up to --min-len), and with --max-len
        on until it: each summed into the total until every pair's term falls below float64
        rounding of its own total from --min-len on (then every later one does too, and changes no
        sum). Per pair, not of the largest: a pair far from acceptance has a total far below the
        others'; and from --min-len on, not from 0: the lengths asked may weigh far less than the
        short ones."""
        h, self.h = self.end, [self.end]
        # Σ_{i ≥ lo} h_i, each pair's total that its terms are compared with; and the terms past
        # the last kept one, summed apart: the tails are sums from the far end, never a difference,
        # whose rounding (of the early terms) would drown a tail far below them (--min-len 400)
        from_lo = self.end.clone() if self.lo == 0 else torch.zeros_like(self.end)
        beyond = torch.zeros_like(self.end)
        for k in range(1, MAX_STEPS + 1):
            if self.hi is not None and k > self.hi:
                break
            h = self._step(h)
            if k >= self.lo:
                from_lo += h
            done = k >= self.lo and bool((h <= 1e-17 * from_lo).all())
            if not done and (k <= self.lo or self.hi is not None):
                self.h.append(h)
                if len(self.h) * self.N > MAX_MESSAGES:
                    raise BigramError(
                        f"the lengths asked need {len(self.h):,}+ messages over {self.N:,} states (limit "
                        f"{MAX_MESSAGES:,} numbers); pass a smaller --min-len or --max-len"
                    )
            else:
                beyond += h
            if done:
                break
        else:
            fix = "a smaller --max-len" if self.hi is not None else "--max-len (e.g. --max-len 50)"
            raise BigramError(
                f"the constraints' sums did not settle within {MAX_STEPS:,} characters: from some contexts "
                f"of this model a walk almost never ends a name (an unseen context may read a near-uniform "
                f"row); pass {fix}"
            )
        if self.hi is None:
            tails = [beyond]  # tails[k] = Σ_{i ≥ k} h_i, built from the far end
            for hk in reversed(self.h):
                tails.append(tails[-1] + hk)
            self.tails = tails[::-1]
        else:  # sums over windows of lengths, from a tree of pairwise sums: no subtraction
            level = torch.stack(self.h)
            self._tree = [level]
            while len(level) > 1:
                if len(level) % 2:
                    level = torch.cat([level, torch.zeros(1, self.N, dtype=torch.float64)])
                level = level[0::2] + level[1::2]
                self._tree.append(level)

    def _window(self, a: int, b: int) -> torch.Tensor:
        """Σ_{a ≤ i ≤ b} h_i: O(log) sums of the tree's nodes, all of them positive."""
        out = torch.zeros(self.N, dtype=torch.float64)
        lo, hi, depth = a, min(b, len(self.h) - 1) + 1, 0
        while lo < hi:
            if lo & 1:
                out += self._tree[depth][lo]
                lo += 1
            if hi & 1:
                hi -= 1
                out += self._tree[depth][hi]
            lo, hi, depth = lo >> 1, hi >> 1, depth + 1
        return out

    def log_mass(self) -> float:
        """log P(the constraints): the mass of every accepted completion from the start."""
        r = float(self.R(0)[self.first])
        return math.log(r) + float(self._G[self.first]) if r > 0 else -math.inf

    def R(self, j: int) -> torch.Tensor:
        """Per state, in the messages' scale (_scale): the mass of accepted completions of a walk
        with j characters so far (and one more entry, 0, for the impossible state)."""
        lo = max(0, self.lo - j)
        if self.hi is not None:
            return torch.cat([self._window(lo, self.hi - j), torch.zeros(1, dtype=torch.float64)])
        r = self.tails[min(lo, len(self.h))].clamp(min=0)
        return torch.cat([r, torch.zeros(1, dtype=torch.float64)])


class _Answers:
    """What a plan answers (plans.Plan) from its messages: names drawn exactly (`draw`) and the most
    probable ones (`best`), by `_rows`/`_row`/`_best_bound` of the plan."""

    def draw(self, n: int, g: torch.Generator) -> list[str]:
        """n names drawn exactly under the plan, every name a step at a time."""
        if n == 0:
            return []
        x = torch.full((n,), self.first, dtype=torch.long)
        alive = torch.arange(n)
        who: list[torch.Tensor] = []  # per step: which names drew, and what (0: the name ended)
        what: list[torch.Tensor] = []
        for j in range(MAX_STEPS):
            if len(alive) == 0:
                break
            R = self.R(j + 1)
            w = torch.empty(len(x), self.V, dtype=torch.float64)
            nxt = torch.empty(len(x), self.V, dtype=torch.long)
            for sl in chunks(len(x), self.V):  # a block of rows at a time
                P, nxt[sl] = self._rows(x[sl])
                w[sl] = P * R[nxt[sl]]
            allowed = j >= self.lo and (self.hi is None or j <= self.hi)
            w[:, BOUNDARY_ID] = self.end[x] if allowed else 0.0
            u = torch.rand(len(alive), generator=g, dtype=torch.float64)
            cdf = w.cumsum(1)
            pick = (
                torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)
                .squeeze(1)
                .clamp_(max=self.V - 1)
            )
            who.append(alive)
            what.append(pick)
            going = pick != BOUNDARY_ID
            alive, x = alive[going], nxt[going, pick[going]]
        order = torch.sort(torch.cat(who), stable=True).indices  # each name's characters in order, its 0 last
        return self.vocab.decode_flat(torch.cat(what)[order])

    def best(
        self, k: int, *, exclude: set[str] | None = None, max_queued: int = 2_000_000
    ) -> list[tuple[str, float]]:
        """The k most probable accepted names, most probable first, by A* with max-product messages
        (the best completion's log-probability from each state, lengths aside: an upper bound)."""
        H = [*self._best_bound().tolist(), -math.inf]
        end = self.end_raw.tolist()
        rows: dict[int, tuple[list[float], list[int]]] = {}  # the expanded pairs' rows
        # (−(g + h), tie-break, g = log P so far, characters so far, state, path, ended)
        heap: list = [(-H[self.first], 0, 0.0, 0, self.first, (), False)]
        out: list[tuple[str, float]] = []
        counter = 0
        while heap and len(out) < k:
            _, _, g, j, x, path, done = heapq.heappop(heap)
            if done:
                name = self.vocab.decode(path)
                if not (exclude and name in exclude) and name == name.strip():
                    out.append((name, g))
                continue
            if counter > max_queued:
                raise SearchStopped.bound(k, max_queued, out)
            if end[x] > 0 and j >= self.lo and (self.hi is None or j <= self.hi):
                counter += 1
                whole = g + math.log(end[x])
                heapq.heappush(heap, (-whole, counter, whole, j, x, path, True))
            if self.hi is not None and j >= self.hi:
                continue
            if x not in rows:
                rows[x] = self._row(x)
            lp, nxt = rows[x]
            for c in range(1, self.V):
                y = nxt[c]
                if H[y] == -math.inf or lp[c] == -math.inf:
                    continue
                counter += 1
                longer = g + lp[c]
                heapq.heappush(heap, (-(longer + H[y]), counter, longer, j + 1, y, (*path, c), False))
        return out


_SWEEPS = 32  # rounds of _bound over every pair before it follows only the improved ones


class Plan(_Messages, _Answers):
    """The messages of a (table, automaton, lengths) request, and what they answer (plans.Plan):
    names drawn exactly (`draw`) and the most probable ones (`best`).

    Its states are the (context, automaton state) pairs a walk can reach from the start with
    non-zero probability, found breadth first: usually about as many as the automaton has, not
    contexts × states. `nxt[x, c]` is the state after character c (N, a state of mass 0, where
    the move is impossible). Over a SparseChain the pairs' rows are never made whole:
    exact/sparse_automaton.py's Plan answers `_build`, `_step`, `_rows`, `_row` and `_bound`."""

    def __init__(self, chain: Chain, vocab: Vocab, c: Constraints, patterns: Patterns):
        self.vocab, self.constraints = vocab, c
        self.C, self.V = chain.K, chain.V  # the chain's states: contexts, or classes of them
        self._build(chain, constraint_dfa(patterns, c, vocab))
        self.end_raw = self.end
        self.lo, self.hi = c.min_len, c.max_len
        self._scale(self._levels())
        self._messages()
        if float(self.R(0)[self.first]) <= 0:
            raise BigramError(
                "no name can match these constraints with non-zero probability under this model"
            )

    def _build(self, chain: Chain, dfa: DFA) -> None:
        """The reachable pairs, sorted by key (chain state · automaton states + automaton state):
        their rows of the table (Pr), next pairs (nxt, int32), and h_0 (end)."""
        probs, V, Q = chain.P, chain.V, dfa.n
        accept = dfa.accept.to(torch.float64)
        tokens = torch.arange(V)

        def succ(s: torch.Tensor) -> torch.Tensor:  # the chain's state after each token: len × V
            return chain.next(s[:, None], tokens)

        start = chain.state_of(BOUNDARY_ID) * Q + dfa.start  # a key: chain state · Q + DFA state
        keys = torch.tensor([start])
        frontier, seen = keys, KeySet(keys, chain.K * Q)
        while len(frontier):
            found = []
            for sl in chunks(len(frontier), V):  # a block at a time, the cap checked after each
                s, q = frontier[sl] // Q, frontier[sl] % Q
                ns, nq = succ(s)[:, 1:], dfa.rows(q)[:, 1:]
                found.append(seen.add((ns * Q + nq)[(probs[s, 1:] > 0) & (nq != _DEAD)]))
                if len(keys) + sum(map(len, found)) > MAX_PRODUCT:
                    raise too_many(Q)
            frontier = torch.cat(found)
            keys = torch.cat([keys, frontier])
        keys = keys.sort().values
        self.N = N = len(keys)
        if N * (V - 1) > MAX_ENTRIES:
            raise BigramError(
                f"the constraints' automaton ({Q:,} states) and the model's {chain.K:,} contexts make "
                f"{N * (V - 1):,} moves to weigh (limit {MAX_ENTRIES:,}); use fewer or simpler constraints"
            )
        self.s, self.q = keys // Q, keys % Q
        self.nxt = torch.empty(N, V - 1, dtype=torch.int32)  # columns: tokens 1 … V − 1
        self.Pr = torch.empty(N, V - 1, dtype=torch.float64)
        index = Positions(keys, chain.K * Q)
        for sl in chunks(N, V):  # a block of pairs at a time: no N × V int64 temporaries
            nq = dfa.rows(self.q[sl])[:, 1:]
            P = probs[self.s[sl], 1:]
            pos = index.find(succ(self.s[sl])[:, 1:] * Q + nq)
            self.nxt[sl] = torch.where((nq != _DEAD) & (P > 0), pos, N)
            self.Pr[sl] = P
        self.first = int(index.find(torch.tensor([start]))[0])
        self.end = probs[self.s, BOUNDARY_ID] * accept[self.q]  # h_0

    # --- the messages' scale ---------------------------------------------------------------------
    def _levels(self) -> torch.Tensor:
        """log of each pair's scale: its best completion (the search's bound, kept for `best`).
        Pr is turned to log P in place for the bound, and back by _scale: one N × V table."""
        self.Pr.log_()
        self._H = self._bound()
        return torch.where(torch.isfinite(self._H), self._H, 0.0)

    def _scale(self, G: torch.Tensor) -> None:
        """Messages in the scale of each pair's best completion: h(x) stored as h(x)·e^(−G(x)),
        so rows become P(c | x)·e^(G(next) − G(x)) and h_0 = end·e^(−G). A name that needs
        3,000 given letters has P ~ 1e-5000 at the start and ~1 near its end; in this scale
        every pair's mass is ~1 at its best length, far from float64's limits either way.
        Then the rows are one sparse matrix, N × (N + 1) (column N: the impossible pair), over
        the same storage: a step is one sparse product (20× the gathers')."""
        self._G, self._Gp = G, torch.cat([G, torch.zeros(1, dtype=G.dtype)])
        for sl in chunks(self.N, self.V):
            nxt = self.nxt[sl]
            e = (self.Pr[sl] + self._Gp[nxt] - G[sl, None]).clamp_(max=700.0).exp_()  # Pr: log P
            self.Pr[sl] = torch.where(nxt < self.N, e, 0.0)
        self.end = (self.end_raw.log() - G).clamp_(max=700.0).exp_()
        width = self.V - 1
        crow = torch.arange(self.N + 1, dtype=torch.int32) * width
        with warnings.catch_warnings():  # torch calls its CSR support beta, once per process
            warnings.simplefilter("ignore")
            self._T = torch.sparse_csr_tensor(
                crow, self.nxt.view(-1), self.Pr.view(-1), size=(self.N, self.N + 1), dtype=torch.float64
            )

    def _step(self, h: torch.Tensor) -> torch.Tensor:
        """(T h)(x) = Σ_{c ≥ 1} P(c | x's context) · h(the state after c), in the messages' scale."""
        return self._T @ torch.cat([h, torch.zeros(1, dtype=h.dtype)])

    def _rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P rows in the messages' scale, next pairs: N where impossible) of the pairs x, V wide
        (column 0, the boundary, 0 and N)."""
        P = torch.cat([torch.zeros(len(x), 1, dtype=torch.float64), self.Pr[x]], 1)
        return P, torch.cat([torch.full((len(x), 1), self.N), self.nxt[x].long()], 1)

    def _row(self, x: int) -> tuple[list[float], list[int]]:
        """(log P, next pair) of each character from pair x, as lists (the search reads them one by one)."""
        P, nxt = self._rows(torch.tensor([x]))
        return (P[0].log() - self._Gp[nxt[0]] + self._G[x]).tolist(), nxt[0].tolist()

    def _best_bound(self) -> torch.Tensor:
        return self._H

    def _bound(self) -> torch.Tensor:
        """The best completion's log-probability from each pair, lengths aside (Pr holding log P):
        max-plus rounds until no pair improves (exact: A*'s heuristic, and the messages' scale).
        The first rounds sweep every pair; past _SWEEPS (a --end of 3,000 letters takes 3,000)
        only the pairs that move into one that improved, through the reverse moves."""
        ninf = torch.tensor(-math.inf, dtype=torch.float64)
        bound = torch.where(self.end_raw > 0, self.end_raw.log(), ninf)
        rows: torch.Tensor | None = None  # None: every pair
        for r in range(MAX_STEPS):
            padded = torch.cat([bound, ninf[None]])
            new = bound.clone()
            for x in chunks(self.N, self.V) if rows is None else (rows,):
                best = (self.Pr[x] + padded[self.nxt[x]]).max(1).values
                new[x] = torch.maximum(new[x], best)
            changed = (new != bound).nonzero().squeeze(1)
            if not len(changed):
                break
            bound = new
            if r + 1 >= _SWEEPS:
                rows = self._predecessors(changed)
        return bound

    def _predecessors(self, x: torch.Tensor) -> torch.Tensor:
        """The pairs with a move into any of the pairs x (the reverse moves made when first asked)."""
        if getattr(self, "_rev", None) is None:
            dst = self.nxt.reshape(-1).long()
            order = torch.argsort(dst)
            ptr = torch.searchsorted(dst[order], torch.arange(self.N + 2))
            self._rev = (order // max(self.V - 1, 1), ptr)
        src, ptr = self._rev
        lo, hi = ptr[x], ptr[x + 1]
        lens = hi - lo
        idx = torch.repeat_interleave(lo - (lens.cumsum(0) - lens), lens) + torch.arange(int(lens.sum()))
        return torch.unique(src[idx])


def too_many(Q: int) -> BigramError:
    return BigramError(
        f"the constraints' automaton ({Q:,} states) and the model's contexts reach more than "
        f"{MAX_PRODUCT:,} states together; use fewer or simpler constraints"
    )
