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
from dataclasses import dataclass

import torch

from bigram.errors import BigramError
from bigram.exact.chain import Chain
from bigram.exact.constraints import Constraints, Patterns, SearchStopped
from bigram.exact.sparse import chunks
from bigram.options import MAX_STEPS
from bigram.vocab import BOUNDARY_ID, Vocab

MAX_DFA_STATES = 20_000  # one constraint's automaton
MAX_PRODUCT = 1 << 22  # (context, automaton state) pairs a walk can reach
_DEAD = 0  # every DFA here keeps state 0 as the dead state (no accepted completion)


@dataclass
class DFA:
    """delta[q][i]: the state after character i of the alphabet (ids 1..V−1 of the vocabulary;
    index 0 unused); start state; which states accept. State 0 is dead."""

    delta: list[list[int]]
    start: int
    accept: list[bool]


# --- regular expressions → NFA → DFA ------------------------------------------------------------
class _Regex:
    """A small regex parser: literals, `.`, classes [a-z] and [^…], `*`, `+`, `?`, `{m}`, `{m,n}`,
    `{m,}`, `|`, groups `( )` and `(?: )`, backslash escapes of metacharacters. Builds a Thompson
    NFA: states with epsilon moves and moves on sets of characters."""

    META = frozenset("()[]{}|*+?.\\")

    def __init__(self, text: str, alphabet: list[str]):
        self.text, self.i, self.alphabet = text, 0, alphabet
        self.eps: list[list[int]] = []
        self.moves: list[list[tuple[frozenset[int], int]]] = []

    def fail(self, what: str) -> BigramError:
        return BigramError(f"--pattern {self.text!r}: {what} (at character {self.i + 1})")

    def state(self) -> int:
        self.eps.append([])
        self.moves.append([])
        return len(self.eps) - 1

    def peek(self) -> str | None:
        return self.text[self.i] if self.i < len(self.text) else None

    def parse(self) -> tuple[int, int]:
        frag = self.alternation()
        if self.i != len(self.text):
            raise self.fail(f"unexpected {self.text[self.i]!r}")
        return frag

    def alternation(self) -> tuple[int, int]:
        frags = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            frags.append(self.sequence())
        if len(frags) == 1:
            return frags[0]
        s, e = self.state(), self.state()
        for a, b in frags:
            self.eps[s].append(a)
            self.eps[b].append(e)
        return s, e

    def sequence(self) -> tuple[int, int]:
        s = self.state()
        end = s
        while self.peek() not in (None, "|", ")"):
            a, b = self.repeat()
            self.eps[end].append(a)
            end = b
        return s, end

    def repeat(self) -> tuple[int, int]:
        start = self.i
        atom = self.atom()
        atom_text = self.text[start : self.i]
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            lo, hi = self.braces()
        else:
            return atom
        if self.peek() in ("*", "+", "?", "{"):
            raise self.fail("a repeated repetition (like a** or a+?) is not supported")
        return self.times(atom_text, atom, lo, hi)

    def braces(self) -> tuple[int, int | None]:
        close = self.text.find("}", self.i)
        body = self.text[self.i + 1 : close] if close > 0 else ""
        parts = body.split(",")
        try:
            lo = int(parts[0])
            hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1].strip() else None)
        except ValueError:
            raise self.fail("{m}, {m,n} or {m,} with whole numbers") from None
        if len(parts) > 2 or lo < 0 or (hi is not None and hi < lo) or max(lo, hi or 0) > 100:
            raise self.fail("{m,n} needs 0 ≤ m ≤ n ≤ 100")
        self.i = close + 1
        return lo, hi

    def times(self, atom_text: str, atom: tuple[int, int], lo: int, hi: int | None) -> tuple[int, int]:
        """The atom lo..hi times (hi None: no bound): copies chained, each a fragment of its own;
        the copies past lo may be skipped, or without a bound the last one loops."""
        n = max(lo, 1) if hi is None else hi
        pieces = [atom] + [self._reparse(atom_text) for _ in range(n - 1)] if n else []
        s, e = self.state(), self.state()
        cur, starts = s, []
        for a, b in pieces:
            starts.append(cur)
            self.eps[cur].append(a)
            cur = b
        self.eps[cur].append(e)
        if hi is None:
            a, b = pieces[-1]
            self.eps[b].append(a)
            if lo == 0:
                self.eps[s].append(e)
        else:
            for k in range(lo, n):
                self.eps[starts[k]].append(e)
        return s, e

    def _reparse(self, text: str) -> tuple[int, int]:
        saved_text, saved_i = self.text, self.i
        self.text, self.i = text, 0
        try:
            return self.atom()
        finally:
            self.text, self.i = saved_text, saved_i

    def atom(self) -> tuple[int, int]:
        c = self.peek()
        if c is None:
            raise self.fail("the pattern ends where a character was expected")
        if c == "(":
            self.i += 1
            if self.text.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise self.fail("(?…) groups other than (?:…) are not supported")
            frag = self.alternation()
            if self.peek() != ")":
                raise self.fail("a group is not closed")
            self.i += 1
            return frag
        if c == "[":
            return self.char_set(self.char_class())
        if c == ".":
            self.i += 1
            return self.char_set(frozenset(range(1, len(self.alphabet) + 1)))
        if c == "\\":
            nxt = self.text[self.i + 1 : self.i + 2]
            if not nxt or nxt not in self.META | set("-^$"):
                raise self.fail(f"the escape \\{nxt} is not supported (escape only metacharacters)")
            self.i += 2
            return self.char_set(self.ids(nxt))
        if c in ("^", "$"):
            raise self.fail(f"{c!r}: the pattern always matches the whole name, anchors are not needed")
        if c in self.META:
            raise self.fail(f"{c!r} has nothing to repeat or close")
        self.i += 1
        return self.char_set(self.ids(c))

    def ids(self, ch: str) -> frozenset[int]:
        return frozenset(i + 1 for i, a in enumerate(self.alphabet) if a == ch)

    def char_class(self) -> frozenset[int]:
        self.i += 1
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        chars: set[str] = set()
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("a [class] is not closed")
            if c == "]" and not first:
                self.i += 1
                break
            if c == "\\":
                c = self.text[self.i + 1 : self.i + 2]
                self.i += 1
            self.i += 1
            if self.peek() == "-" and self.text[self.i + 1 : self.i + 2] not in ("]", ""):
                hi = self.text[self.i + 1]
                self.i += 2
                if ord(hi) < ord(c):
                    raise self.fail(f"the range {c}-{hi} runs backwards")
                chars |= {a for a in self.alphabet if c <= a <= hi}
            else:
                chars.add(c)
            first = False
        ids = {i + 1 for i, a in enumerate(self.alphabet) if a in chars}
        return frozenset(set(range(1, len(self.alphabet) + 1)) - ids if negate else ids)

    def char_set(self, ids: frozenset[int]) -> tuple[int, int]:
        s, e = self.state(), self.state()
        self.moves[s].append((ids, e))
        return s, e


def compile_pattern(pattern: str, alphabet: list[str]) -> DFA:
    """The DFA of names (strings over `alphabet`) that the whole pattern matches."""
    rx = _Regex(pattern, alphabet)
    start, end = rx.parse()

    def closure(states: frozenset[int]) -> frozenset[int]:
        stack, seen = list(states), set(states)
        while stack:
            for t in rx.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    V1 = len(alphabet) + 1
    first = closure(frozenset([start]))
    index: dict[frozenset[int], int] = {frozenset(): _DEAD, first: 1}
    delta: list[list[int]] = [[_DEAD] * V1, [_DEAD] * V1]
    todo = [first]
    while todo:
        cur = todo.pop()
        q = index[cur]
        targets: dict[int, set[int]] = {}
        for s in cur:
            for ids, t in rx.moves[s]:
                for i in ids:
                    targets.setdefault(i, set()).add(t)
        for i, ts in targets.items():
            nxt = closure(frozenset(ts))
            if nxt not in index:
                if len(index) > MAX_DFA_STATES:
                    raise BigramError(
                        f"--pattern {pattern!r}: its automaton passes {MAX_DFA_STATES:,} states"
                    )
                index[nxt] = len(delta)
                delta.append([_DEAD] * V1)
                todo.append(nxt)
            delta[q][i] = index[nxt]
    accept = [False] * len(delta)
    for states, q in index.items():
        accept[q] = end in states
    return DFA(delta, 1, accept)


def substrings(words: list[str], alphabet: list[str], avoid: bool) -> DFA:
    """Aho–Corasick: the DFA of names containing any of `words` (avoid=False), or none (True)."""
    pos = {a: i + 1 for i, a in enumerate(alphabet)}
    V1 = len(alphabet) + 1
    goto: list[dict[int, int]] = [{}]
    hit = [False]
    for w in words:
        node = 0
        for ch in w:
            i = pos.get(ch)
            if i is None:  # a character the model never produces: the word can never occur
                node = -1
                break
            node = goto[node].setdefault(i, len(goto))
            if node == len(goto):
                goto.append({})
                hit.append(False)
        if node >= 0:
            hit[node] = True
    fail, order = [0] * len(goto), [0]
    delta = [[0] * V1 for _ in goto]
    for node in order:  # breadth first: a node's fail link is done before its children
        for i in range(1, V1):
            child = goto[node].get(i)
            if child is None:
                delta[node][i] = delta[fail[node]][i] if node else 0
            else:
                fail[child] = delta[fail[node]][i] if node else 0
                hit[child] = hit[child] or hit[fail[child]]
                delta[node][i] = child
                order.append(child)
    # shift by one so that state 0 is dead; a hit is absorbing
    n = len(goto)
    table = [[_DEAD] * V1] + [[1 + delta[q][i] for i in range(V1)] for q in range(n)]
    for q in range(n):
        if hit[q]:
            table[1 + q] = [1 + q] * V1
    accept = [False] + [hit[q] != avoid for q in range(n)]
    return DFA(table, 1, accept)


def prefix(text: str, alphabet: list[str]) -> DFA:
    """Names that begin with `text`."""
    pos = {a: i + 1 for i, a in enumerate(alphabet)}
    V1, n = len(alphabet) + 1, len(text)
    table = [[_DEAD] * V1 for _ in range(n + 2)]
    for k, ch in enumerate(text):
        if ch in pos:
            table[1 + k][pos[ch]] = 2 + k
    table[1 + n] = [1 + n] * V1
    return DFA(table, 1, [False] * (n + 1) + [True])


def suffix(text: str, alphabet: list[str]) -> DFA:
    """Names that end with `text` (KMP: the state is the longest prefix of text just read)."""
    if not text:
        return DFA([[_DEAD] * (len(alphabet) + 1), [1] * (len(alphabet) + 1)], 1, [False, True])
    pos = {a: i + 1 for i, a in enumerate(alphabet)}
    V1, n = len(alphabet) + 1, len(text)
    fail = [0] * (n + 1)
    k = 0
    for q in range(1, n):
        while k and text[q] != text[k]:
            k = fail[k]
        if text[q] == text[k]:
            k += 1
        fail[q + 1] = k
    table = [[_DEAD] * V1]
    for q in range(n + 1):
        row = [_DEAD] * V1
        for ch, i in pos.items():
            s = q
            while s and (s == n or text[s] != ch):
                s = fail[s]
            row[i] = 1 + (s + 1 if s < n and text[s] == ch else 0)
        table.append(row)
    return DFA(table, 1, [False] + [q == n for q in range(n + 1)])


def product(dfas: list[DFA], V1: int) -> DFA:
    """The intersection: reachable pairs only, then every state that cannot reach acceptance
    merged into the dead state 0."""
    dfa = dfas[0]
    for other in dfas[1:]:
        index = {(0, 0): _DEAD, (dfa.start, other.start): 1}
        delta, pairs = [[_DEAD] * V1, [_DEAD] * V1], [(0, 0), (dfa.start, other.start)]
        k = 1
        while k < len(pairs):
            a, b = pairs[k]
            for i in range(1, V1):
                p = (dfa.delta[a][i], other.delta[b][i])
                if p[0] == _DEAD or p[1] == _DEAD:
                    continue
                if p not in index:
                    if len(pairs) > MAX_DFA_STATES * 4:
                        raise BigramError(
                            f"the constraints together pass {MAX_DFA_STATES * 4:,} automaton states"
                        )
                    index[p] = len(pairs)
                    pairs.append(p)
                    delta.append([_DEAD] * V1)
                delta[k][i] = index[p]
            k += 1
        accept = [dfa.accept[a] and other.accept[b] for a, b in pairs]
        accept[0] = False
        dfa = DFA(delta, 1, accept)
    return _prune(dfa)


def _prune(dfa: DFA) -> DFA:
    """Send every state that cannot reach an accepting one to the dead state."""
    n = len(dfa.delta)
    back: list[list[int]] = [[] for _ in range(n)]
    for q, row in enumerate(dfa.delta):
        for t in set(row):
            back[t].append(q)
    live = [q for q in range(n) if dfa.accept[q]]
    alive = set(live)
    while live:
        for p in back[live.pop()]:
            if p not in alive:
                alive.add(p)
                live.append(p)
    alive.discard(_DEAD)
    keep = [_DEAD, *sorted(alive)]
    new = {q: k for k, q in enumerate(keep)}
    delta = [[new.get(t, _DEAD) for t in dfa.delta[q]] for q in keep]
    delta[0] = [_DEAD] * len(delta[0])
    return DFA(delta, new.get(dfa.start, _DEAD), [dfa.accept[q] and q != _DEAD for q in keep])


def accepts(dfa: DFA, word: str, alphabet: list[str]) -> bool:
    pos = {a: i + 1 for i, a in enumerate(alphabet)}
    q = dfa.start
    for ch in word:
        if ch not in pos:
            return False
        q = dfa.delta[q][pos[ch]]
    return dfa.accept[q]


# --- the constraints of a request: one automaton, and the plan over it -------------------------------
def constraint_dfa(patterns: Patterns, c: Constraints, vocab: Vocab) -> DFA:
    """One DFA for every constraint of a request (lengths are left to the messages)."""
    alphabet = list(vocab.chars)
    dfas = []
    if patterns.pattern is not None:
        dfas.append(compile_pattern(patterns.pattern, alphabet))
    dfas += [substrings([s], alphabet, avoid=False) for s in patterns.contains]
    avoid = [*patterns.not_contains, *patterns.blocklist]
    if avoid:
        dfas.append(substrings(avoid, alphabet, avoid=True))
    if c.start:
        dfas.append(prefix(c.start, alphabet))
    if c.end:
        dfas.append(suffix(c.end, alphabet))
    return product(dfas, len(alphabet) + 1)


class Plan:
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
        self.lo, self.hi = c.min_len, c.max_len
        self._messages()
        if float(self.R(0)[self.first]) <= 0:
            raise BigramError(
                "no name can match these constraints with non-zero probability under this model"
            )

    def _build(self, chain: Chain, dfa: DFA) -> None:
        """The reachable pairs, sorted by key (chain state · automaton states + automaton state):
        their rows of the table (Pr), next pairs (nxt), and h_0 (end)."""
        probs, V, Q = chain.P, chain.V, len(dfa.delta)
        delta = torch.tensor(dfa.delta, dtype=torch.long)
        accept = torch.tensor(dfa.accept, dtype=torch.float64)
        tokens = torch.arange(V)

        def succ(s: torch.Tensor) -> torch.Tensor:  # the chain's state after each token: len × V
            return chain.next(s[:, None], tokens)

        start = chain.state_of(BOUNDARY_ID) * Q + dfa.start  # a key: chain state · Q + DFA state
        keys = torch.tensor([start])
        frontier = keys
        while len(frontier):
            s, q = frontier // Q, frontier % Q
            ns, nq = succ(s)[:, 1:], delta[q, 1:]
            ok = (probs[s, 1:] > 0) & (nq != _DEAD)
            found = torch.unique(ns[ok] * Q + nq[ok])
            frontier = found[~torch.isin(found, keys)]
            keys = torch.cat([keys, frontier])
            if len(keys) > MAX_PRODUCT:
                raise too_many(Q)
        keys = keys.sort().values
        self.N = N = len(keys)
        self.s, self.q = keys // Q, keys % Q
        nk = succ(self.s) * Q + delta[self.q]  # N × V
        pos = torch.searchsorted(keys, nk).clamp_(max=N - 1)
        hit = (keys[pos] == nk) & (delta[self.q] != _DEAD) & (probs[self.s] > 0)
        self.nxt = torch.where(hit, pos, torch.full_like(pos, N))
        self.nxt[:, BOUNDARY_ID] = N
        self.first = int(torch.searchsorted(keys, keys.new_tensor(start)))
        self.Pr = probs[self.s]  # N × V: each state's row of the table
        self.end = self.Pr[:, BOUNDARY_ID] * accept[self.q]  # h_0

    def _step(self, h: torch.Tensor) -> torch.Tensor:
        """(T h)(x) = Σ_{c ≥ 1} P(c | x's context) · h(the state after c)."""
        padded = torch.cat([h, torch.zeros(1, dtype=h.dtype)])
        return (self.Pr[:, 1:] * padded[self.nxt[:, 1:]]).sum(1)

    def _rows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P rows, next pairs: N where impossible) of the pairs x."""
        return self.Pr[x], self.nxt[x]

    def _row(self, x: int) -> tuple[list[float], list[int]]:
        """(log P, next pair) of each character from pair x, as lists (the search reads them one by one)."""
        P, nxt = self._rows(torch.tensor([x]))
        return P[0].log().tolist(), nxt[0].tolist()

    def _bound(self) -> torch.Tensor:
        """The best completion's log-probability from each pair, lengths aside: max-plus
        iteration until no pair improves (an upper bound: A*'s heuristic)."""
        ninf = torch.tensor(-math.inf, dtype=torch.float64)
        logP = torch.where(self.Pr > 0, self.Pr.log(), ninf)
        bound = torch.where(self.end > 0, self.end.log(), ninf)
        for _ in range(MAX_STEPS):
            padded = torch.cat([bound, ninf[None]])
            new = torch.maximum(bound, (logP[:, 1:] + padded[self.nxt[:, 1:]]).max(1).values)
            if torch.equal(new, bound):
                break
            bound = new
        return bound

    def _messages(self) -> None:
        """h_k for k up to what the lengths need, and the total of all: summed until the terms fall
        below float64 rounding of the total (or to --max-len)."""
        need = max(self.lo, self.hi or 0)
        h, self.h = self.end, [self.end]
        total = self.end.clone()
        for k in range(1, MAX_STEPS + 1):
            if self.hi is not None and k > self.hi:
                break
            h = self._step(h)
            if k <= need:
                self.h.append(h)
            total += h
            if k >= need and float(h.max()) <= 1e-17 * float(total.max()):
                break
        else:
            raise BigramError(
                f"under this model names meeting these constraints often run past {MAX_STEPS:,} characters; "
                "pass a smaller --max-len"
            )
        self.total = total
        self.tails = [total]  # tails[k] = Σ_{i ≥ k} h_i
        for hk in self.h:
            self.tails.append(self.tails[-1] - hk)

    def R(self, j: int) -> torch.Tensor:
        """Per state: the mass of accepted completions of a walk with j characters so far (and one
        more entry, 0, for the impossible state)."""
        lo = max(0, self.lo - j)
        if self.hi is None:
            r = self.tails[min(lo, len(self.h))].clamp(min=0)
        else:
            hi = self.hi - j
            r = sum(self.h[lo : hi + 1], torch.zeros(self.N, dtype=torch.float64)) if hi >= lo else None
            r = torch.zeros(self.N, dtype=torch.float64) if r is None else r
        return torch.cat([r, torch.zeros(1, dtype=torch.float64)])

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
        H = [*self._bound().tolist(), -math.inf]
        end = self.end.tolist()
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


def too_many(Q: int) -> BigramError:
    return BigramError(
        f"the constraints' automaton ({Q:,} states) and the model's contexts reach more than "
        f"{MAX_PRODUCT:,} states together; use fewer or simpler constraints"
    )
