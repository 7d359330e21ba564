"""Finite automata over a vocabulary's characters, by character class: the DFAs of `--contains`,
`--not-contains`, `--blocklist`, `--start`, `--end` (built here) and `--pattern` (regex.py), and
their product.

A constraint names few characters; every character it does not name behaves alike in it. So a
DFA's transitions are by *class*, not by token: `classes[t]` is the class of token t (one class
holds every token no constraint names), `delta[q, k]` the state after a character of class k.
A table is states × classes, whatever the vocabulary's size; the product of two DFAs refines
their classes (a token's pair of classes), never past the characters they name. State 0 is
dead (no accepted completion) in every DFA here.

Everything is built with tensor operations a level or a round at a time, never a Python loop
per state and token: the Aho–Corasick automaton of 1,000,000 blocked strings one trie depth at
a time, the product breadth first, the pruning by a reverse breadth-first sweep.

    >>> d = substrings(["ab"], ["a", "b", "c"], avoid=False)
    >>> [accepts(d, w, ["a", "b", "c"]) for w in ("cab", "ba", "abab", "")]
    [True, False, True, False]
    >>> d.delta.shape[1]  # classes: a, b, and c (with every other unnamed character)
    3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bigram.errors import BigramError

DEAD = 0
MAX_STATES = 1 << 22  # states of the constraints' product automaton (a pattern's own: regex.py)
MAX_ENTRIES = 1 << 27  # states × classes of one automaton's table (512 MiB of int32)
_I32, _I64 = torch.int32, torch.int64


@dataclass
class DFA:
    """delta: states × classes (int32), the state after a character of each class; classes: the
    class of each token id (length V; entry 0, the boundary, is never read); start state; accept:
    which states accept (bool). State 0 is dead."""

    delta: torch.Tensor
    classes: torch.Tensor
    start: int
    accept: torch.Tensor

    @property
    def n(self) -> int:
        return self.delta.shape[0]

    def rows(self, q: torch.Tensor) -> torch.Tensor:
        """The states after every token from each state in q: len(q) × V (int64)."""
        return self.delta[q][:, self.classes].long()

    def moves(self, q: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The state after each token from each state (tensors of one shape)."""
        return self.delta[q, self.classes[tokens]].long()


_SEEN = 1 << 28  # key spaces up to this size are marked in a table (256 MiB of bool), not searched
_LOOKUP = 1 << 25  # key spaces up to this size are indexed by a table (128 MiB of int32), not searched


class KeySet:
    """The keys (a state of one machine · Q + a state of another) a breadth-first search has
    seen: `add` returns those of a batch not seen before, each once. A small key space is a
    table, a large one a sorted search."""

    def __init__(self, keys: torch.Tensor, space: int):
        self.keys = keys
        self.table = torch.zeros(space, dtype=torch.bool) if space <= _SEEN else None
        if self.table is not None:
            self.table[keys] = True

    def add(self, want: torch.Tensor) -> torch.Tensor:
        if self.table is None:
            found = torch.unique(want)
            new = found[~torch.isin(found, self.keys)]
            self.keys = torch.cat([self.keys, new])
            return new
        new = torch.unique(want[~self.table[want]])
        self.table[new] = True
        return new


class Positions:
    """The position of each key among sorted `keys`, n = len(keys) where absent: a table over a
    small key space, else a search."""

    def __init__(self, keys: torch.Tensor, space: int):
        self.keys, self.n = keys, len(keys)
        self.table = torch.full((space,), self.n, dtype=torch.int32) if space <= _LOOKUP else None
        if self.table is not None:
            self.table[keys] = torch.arange(len(keys), dtype=torch.int32)

    def find(self, want: torch.Tensor) -> torch.Tensor:
        if self.table is not None:
            return self.table[want].long()
        pos = torch.searchsorted(self.keys, want).clamp_(max=self.n - 1)
        return torch.where(self.keys[pos] == want, pos, self.n)


def check_entries(states: int, classes: int, what: str) -> None:
    """A table is states × classes int32: refused before it is made beyond MAX_ENTRIES."""
    if states * classes > MAX_ENTRIES:
        raise BigramError(
            f"{what}: its automaton would hold {states:,} states × {classes:,} character classes "
            f"(limit {MAX_ENTRIES:,} entries); use fewer or shorter strings"
        )


def token_ids(alphabet: list[str]) -> dict[str, int]:
    """Each character's token id (the alphabet is the vocabulary's characters, ids 1..V−1)."""
    return {a: i + 1 for i, a in enumerate(alphabet)}


def named_classes(chars: list[str], alphabet: list[str]) -> tuple[torch.Tensor, dict[str, int]]:
    """Classes for constraints made of literal characters: each named character of the alphabet
    its own class 1..m, every other token class 0. (the classes tensor, char → class)."""
    pos = token_ids(alphabet)
    cls = torch.zeros(len(alphabet) + 1, dtype=_I64)
    of: dict[str, int] = {}
    for ch in chars:
        if ch in pos and ch not in of:
            of[ch] = len(of) + 1
            cls[pos[ch]] = of[ch]
    return cls, of


# --- strings: Aho–Corasick, prefix, suffix -------------------------------------------------------
def _codes(words: list[str], of: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class of every character of the words laid end to end, each word's offset, its length);
    a character the alphabet lacks gets class −1 (the word can never occur)."""
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    flat = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32)
    table = np.full(0x110000, -1, dtype=np.int32)  # every code point's class: 4.4 MB
    for ch, k in of.items():
        table[ord(ch)] = k
    codes = table[flat]
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(words) else lens
    return codes, offs, lens


def _trie(codes: np.ndarray, offs: np.ndarray, lens: np.ndarray, K: int, what: str):
    """The trie of the words, a depth at a time: per depth, (node ids, parent, class) of its
    nodes; `ends`: the node where each word ends. Node 0 is the root; words with a −1 are left out."""
    ok = np.ones(len(lens), dtype=bool)
    bad = np.flatnonzero(codes < 0)
    if len(bad):  # the word holding each bad character: the last offset at or before it
        ok[np.searchsorted(offs, bad, side="right") - 1] = False
    idx = np.flatnonzero(ok & (lens > 0))
    node = np.zeros(len(idx), dtype=np.int64)  # each word's node at the current depth
    levels, total, d = [], 1, 0
    ends = np.full(len(lens), -1, dtype=np.int64)
    while len(idx):
        key = node * K + codes[offs[idx] + d]
        uniq, inv = np.unique(key, return_inverse=True)
        levels.append((np.arange(total, total + len(uniq)), uniq // K, uniq % K))
        node = total + inv
        total += len(uniq)
        check_entries(total, K, what)
        d += 1
        done = lens[idx] == d
        ends[idx[done]] = node[done]
        idx, node = idx[~done], node[~done]
    return levels, total, ends


def substrings(words: list[str], alphabet: list[str], avoid: bool, what: str = "--contains") -> DFA:
    """Aho–Corasick: the DFA of names containing any of `words` (avoid=False), or none (True).

    The trie a depth at a time; then, depth by depth, each node's row is its failure link's
    (already final: the link is shallower) with its own children written over, and each child's
    link is the row of its parent's link at the child's class. A hit (a node where some word ends,
    or whose link is a hit) is dead when avoiding, one absorbing accepting state when looking for."""
    distinct = sorted(set("".join(words)))
    cls, of = named_classes(distinct, alphabet)
    K = len(of) + 1
    codes, offs, lens = _codes(words, of)
    levels, n, ends = _trie(codes, offs, lens, K, what)
    hit = torch.zeros(n, dtype=torch.bool)
    hit[torch.from_numpy(ends[ends >= 0])] = True
    delta = torch.zeros(n, K, dtype=_I32)
    fail = torch.zeros(n, dtype=_I64)
    if levels:
        delta[0, torch.from_numpy(levels[0][2])] = torch.from_numpy(levels[0][0]).to(_I32)
    for d, (nodes, parent, k) in enumerate(levels):  # the nodes at depth d + 1
        nodes, parent, k = torch.from_numpy(nodes), torch.from_numpy(parent), torch.from_numpy(k)
        if d:  # the link of a root's child is the root
            fail[nodes] = delta[fail[parent], k].long()
            hit[nodes] |= hit[fail[nodes]]
        for lo in range(0, len(nodes), 1 << 18):  # the link is shallower: its row is final
            part = nodes[lo : lo + (1 << 18)]
            delta[part] = delta[fail[part]]
        if d + 1 < len(levels):
            kids, up, kk = (torch.from_numpy(x) for x in levels[d + 1])
            delta[up, kk] = kids.to(_I32)
    return _string_dfa(delta, hit, cls, avoid)


def _string_dfa(delta: torch.Tensor, hit: torch.Tensor, cls: torch.Tensor, avoid: bool) -> DFA:
    """Renumber the trie's automaton: state 0 dead, the other nodes 1… in order; a hit is dead
    (avoid) or the one absorbing accepting state, the last (every other state reaches it by
    reading a word: none needs pruning)."""
    n, K = delta.shape
    keep = ~hit
    m = int(keep.sum())
    new = torch.zeros(n, dtype=_I32)
    new[keep] = torch.arange(1, m + 1, dtype=_I32)
    if not avoid:
        new[hit] = m + 1
    if not avoid and not bool(hit.any()):  # no word can occur: nothing is accepted
        return DFA(torch.zeros(1, K, dtype=_I32), cls, DEAD, torch.zeros(1, dtype=torch.bool))
    found = 0 if avoid else 1  # the absorbing state, when looking for the words
    table = torch.zeros(m + 1 + found, K, dtype=_I32)
    rows = keep.nonzero().squeeze(1)
    for lo in range(0, m, 1 << 18):  # a block of rows at a time: no second copy of the table
        hi = min(m, lo + (1 << 18))
        table[1 + lo : 1 + hi] = new[delta[rows[lo:hi]]]
    accept = torch.zeros(m + 1 + found, dtype=torch.bool)
    if avoid:
        accept[1:] = True
    else:
        table[m + 1] = m + 1
        accept[m + 1] = True
    return DFA(table, cls, int(new[0]), accept)


def prefix(text: str, alphabet: list[str]) -> DFA:
    """Names that begin with `text`."""
    cls, of = named_classes(list(text), alphabet)
    n, K = len(text), len(of) + 1
    check_entries(n + 2, K, "--start")
    table = torch.zeros(n + 2, K, dtype=_I32)
    for k, ch in enumerate(text):
        if ch in of:
            table[1 + k, of[ch]] = 2 + k
    table[1 + n] = 1 + n
    accept = torch.zeros(n + 2, dtype=torch.bool)
    accept[1 + n] = True
    if any(ch not in of for ch in text):  # a character the model never writes: nothing matches
        return DFA(table[:1], cls, DEAD, accept[:1])
    return DFA(table, cls, 1, accept)


def suffix(text: str, alphabet: list[str]) -> DFA:
    """Names that end with `text` (KMP: the state is the longest prefix of text just read). Row q
    is row fail(q) with the one move that extends the match written over: O(n · classes)."""
    cls, of = named_classes(list(text), alphabet)
    n, K = len(text), len(of) + 1
    check_entries(n + 2, K, "--end")
    codes = [of.get(ch, -1) for ch in text]
    table = torch.zeros(n + 2, K, dtype=_I32)  # row 1 + q: q characters of text matched
    fail, k = [0] * (n + 1), 0
    for q in range(1, n):
        while k and text[q] != text[k]:
            k = fail[k]
        if text[q] == text[k]:
            k += 1
        fail[q + 1] = k
    for q in range(n + 1):
        table[1 + q] = table[1 + fail[q]] if q else 1  # unmatched: back to 0 matched
        if q < n and codes[q] >= 0:
            table[1 + q, codes[q]] = 2 + q
    accept = torch.zeros(n + 2, dtype=torch.bool)
    accept[1 + n] = True
    if min(codes, default=0) < 0:  # a character the model never writes: nothing matches
        return DFA(table[:1], cls, DEAD, accept[:1])
    return DFA(table, cls, 1, accept)


# --- product, pruning, reading ---------------------------------------------------------------------
def _refine(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The common refinement of two token classings: (new classes, each new class's class in a,
    in b)."""
    Kb = int(b.max()) + 1
    keys, cls = torch.unique(a * Kb + b, return_inverse=True)
    return cls, keys // Kb, keys % Kb


def product(dfas: list[DFA], what: str = "the constraints") -> DFA:
    """The intersection, two at a time: the reachable pairs breadth first over the refined
    classes, then pruned."""
    dfa = dfas[0]
    for other in dfas[1:]:
        cls, ka, kb = _refine(dfa.classes, other.classes)
        K, Qb = len(ka), other.n
        da, db = dfa.delta[:, ka], other.delta[:, kb]  # by the new classes (int32)
        start = dfa.start * Qb + other.start
        keys = torch.tensor([start])
        frontier, seen = keys, KeySet(keys, dfa.n * Qb)
        step = max(1, (1 << 22) // K)
        while len(frontier):
            found = []
            for lo in range(0, len(frontier), step):  # a block at a time, the caps checked after each
                part = frontier[lo : lo + step]
                na, nb = da[part // Qb].long(), db[part % Qb].long()
                found.append(seen.add((na * Qb + nb)[(na != DEAD) & (nb != DEAD)]))
                n = len(keys) + sum(map(len, found))
                if n > MAX_STATES:
                    raise BigramError(
                        f"{what} together pass {MAX_STATES:,} automaton states; "
                        "use fewer or simpler constraints"
                    )
                check_entries(n + 1, K, what)
            frontier = torch.cat(found)
            keys = torch.cat([keys, frontier])
        keys = keys.sort().values
        a, b = keys // Qb, keys % Qb
        index = Positions(keys, dfa.n * Qb)
        table = torch.zeros(len(keys) + 1, K, dtype=_I32)
        for lo in range(0, len(keys), 1 << 16):  # a block of states at a time
            x, y = da[a[lo : lo + (1 << 16)]].long(), db[b[lo : lo + (1 << 16)]].long()
            pos = index.find(x * Qb + y)
            table[1 + lo : 1 + lo + len(x)] = torch.where((x != DEAD) & (y != DEAD), pos + 1, DEAD).to(_I32)
        accept = torch.cat([torch.tensor([False]), dfa.accept[a] & other.accept[b]])
        first = int(index.find(torch.tensor([start]))[0]) + 1
        dfa = prune(DFA(table, cls, first, accept))
    return dfa


_PRUNE_ROUNDS = 64  # backward rounds of prune(); a state not settled by then is kept (never wrong)
_MERGE_ENTRIES = 1 << 22  # tables up to this size are pruned and get their alike columns merged


def prune(dfa: DFA) -> DFA:
    """Every state that cannot reach an accepting one sent to the dead state 0, the others
    renumbered 1…; then classes whose columns are alike merged. Liveness spreads backwards a
    round at a time over the states not yet live; a state still unsettled after _PRUNE_ROUNDS is
    kept (pruning only saves work: a state that cannot accept gets weight 0 anyway)."""
    n = dfa.n
    if dfa.delta.numel() > _MERGE_ENTRIES:  # large: each round would cost the whole table
        return dfa
    alive = dfa.accept.clone()
    alive[DEAD] = False
    todo = (~alive).nonzero().squeeze(1)
    todo = todo[todo != DEAD]
    for _ in range(_PRUNE_ROUNDS):
        now = alive[dfa.delta[todo]].any(1)
        if not bool(now.any()):
            break
        alive[todo[now]] = True
        todo = todo[~now]
    else:
        alive[todo] = True
    alive[DEAD] = False
    keep = torch.cat([torch.tensor([DEAD]), alive.nonzero().squeeze(1)])
    new = torch.zeros(n, dtype=_I32)
    new[keep] = torch.arange(len(keep), dtype=_I32)
    table = new[dfa.delta[keep]]
    table[0] = DEAD
    classes = dfa.classes
    if table.numel() <= _MERGE_ENTRIES:
        cols, inv = torch.unique(table.T, dim=0, return_inverse=True)  # alike columns: one class
        table, classes = cols.T.contiguous(), inv[classes]
    return DFA(table, classes, int(new[dfa.start]), dfa.accept[keep] & alive[keep])


def accepts(dfa: DFA, word: str, alphabet: list[str]) -> bool:
    pos = token_ids(alphabet)
    q = dfa.start
    for ch in word:
        if ch not in pos:
            return False
        q = int(dfa.delta[q, dfa.classes[pos[ch]]])
    return bool(dfa.accept[q])
