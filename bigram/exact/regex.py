"""`--pattern REGEX` → a DFA over character classes (dfa.py), at a cost bounded before it is paid.

The syntax: literals, `.`, classes `[a-z]` and `[^…]`, `*`, `+`, `?`, `{m}`, `{m,n}`, `{m,}`,
`|`, groups `( )` and `(?: )`, backslash escapes of metacharacters; the whole name must match.

Three steps, each bounded:

1. parse, with an explicit stack (no recursion: 10,000 nested groups cost what 10,000 letters
   do), into a tree whose every node knows the size of its Thompson NFA: a counted repetition
   multiplies its body's. A tree past MAX_NFA states is refused as soon as it is seen, before
   anything is built (`(((a{100}){100}){100}){100}` in microseconds, not 10^8 states);
2. the character classes: every character the pattern's sets cannot tell apart is one class
   (`[a-z]+x` over 4,500 characters: a–w and y–z, x, the rest), so what follows costs the
   pattern, not the vocabulary;
3. the NFA, built from the tree with a stack, then subset construction over the classes, which
   counts its steps (MAX_WORK) and states (MAX_DFA_STATES) and stops at either cap.

Why not greenery or interegular (both parse this syntax into automata): on 4.2.3 and 0.3.3,
`(((a{100}){100}){100}){100}` and `(.{0,100}){0,100}` each ran past 30 s with no answer, and 300
nested groups raised RecursionError: they expand counted repetitions with no bound and parse
recursively.

    >>> d = compile_pattern("a(b|c)*", ["a", "b", "c"])
    >>> from bigram.exact.dfa import accepts
    >>> [accepts(d, w, ["a", "b", "c"]) for w in ("a", "abcb", "ba", "")]
    [True, True, False, False]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from bigram.errors import BigramError
from bigram.exact.dfa import DFA, check_entries, prune

MAX_PATTERN = 1_000  # characters of a --pattern
MAX_NFA = 100_000  # states of a pattern's NFA, computed from the parse tree before it is built
MAX_DFA_STATES = 20_000  # states of a pattern's DFA
MAX_WORK = 2_000_000  # subset construction's steps (NFA states visited, moves followed): ~1.5 s
_META = frozenset("()[]{}|*+?.\\")
_QUANT = frozenset("*+?{")


def shown(pattern: str) -> str:
    """The pattern as an error message quotes it: repr (controls escaped), cut to 200 characters."""
    return repr(pattern[:200]) + ("…" if len(pattern) > 200 else "")


@dataclass
class Node:
    """A parse tree node: kind "set" (atom: its index), "cat" or "alt" (kids), "rep" (kids[0]
    lo..hi times, hi None: no bound); size: the states of its Thompson NFA."""

    kind: str
    kids: list[Node] = field(default_factory=list)
    atom: int = -1
    lo: int = 0
    hi: int | None = 0
    size: int = 0

    @property
    def copies(self) -> int:
        return (max(self.lo, 1) if self.hi is None else self.hi) if self.kind == "rep" else 1


@dataclass
class Atom:
    """A set of characters: `chars` and the `ranges` (lo, hi) given, or all but them (negate)."""

    negate: bool
    chars: set[str]
    ranges: list[tuple[str, str]] = field(default_factory=list)


class _Parser:
    """The pattern's tree and its atoms, read left to right with a stack of open groups."""

    def __init__(self, text: str):
        self.text, self.i = text, 0
        self.atoms: list[Atom] = []

    def fail(self, what: str) -> BigramError:
        return BigramError(f"--pattern {shown(self.text)}: {what} (at character {self.i + 1})")

    def peek(self) -> str | None:
        return self.text[self.i] if self.i < len(self.text) else None

    def node(self, kind: str, kids: list[Node], **kw) -> Node:
        """A node, its NFA size checked against MAX_NFA before anything grows from it."""
        n = Node(kind, kids, **kw)
        if kind == "set":
            n.size = 2
        elif kind == "cat":
            n.size = 1 + sum(k.size for k in kids)
        elif kind == "alt":
            n.size = 2 + sum(k.size for k in kids)
        else:
            n.size = 2 + n.copies * kids[0].size
        if n.size > MAX_NFA:
            raise self.fail(
                f"its automaton would have {n.size:,} states, more than {MAX_NFA:,} "
                "(counted repetitions multiply: a{m}{n} is m·n copies); use smaller counts"
            )
        return n

    def parse(self) -> Node:
        if len(self.text) > MAX_PATTERN:
            raise BigramError(
                f"--pattern {shown(self.text)}: {len(self.text):,} characters, more than {MAX_PATTERN:,}"
            )
        stack: list[tuple[list[Node], list[Node], int]] = [([], [], 0)]  # per open group: alts, seq, where
        while self.i < len(self.text):
            c = self.text[self.i]
            alts, seq, _ = stack[-1]
            if c == "(":
                self.group()
                stack.append(([], [], self.i))
            elif c == ")" and len(stack) > 1:
                stack.pop()
                self.i += 1
                stack[-1][1].append(self.quantified(self.close(alts, seq)))
            elif c == "|":
                alts.append(self.node("cat", seq))
                stack[-1] = (alts, [], stack[-1][2])
                self.i += 1
            else:
                seq.append(self.quantified(self.atom()))
        if len(stack) > 1:
            self.i = stack[-1][2] - 1
            raise self.fail("a group is not closed")
        return self.close(*stack[0][:2])

    def group(self) -> None:
        self.i += 1
        if self.text.startswith("?:", self.i):
            self.i += 2
        elif self.peek() == "?":
            raise self.fail("(?…) groups other than (?:…) are not supported")

    def close(self, alts: list[Node], seq: list[Node]) -> Node:
        last = self.node("cat", seq)
        return self.node("alt", [*alts, last]) if alts else last

    def quantified(self, atom: Node) -> Node:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            lo, hi = self.braces()
        else:
            return atom
        if self.peek() in _QUANT:
            raise self.fail("a repeated repetition (like a** or a+?) is not supported")
        return self.node("rep", [atom], lo=lo, hi=hi)

    def braces(self) -> tuple[int, int | None]:
        close = self.text.find("}", self.i)
        body = self.text[self.i + 1 : close] if close > 0 else ""
        parts = body.split(",")
        try:
            if len(body) > 12:
                raise ValueError
            lo = int(parts[0])
            hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1].strip() else None)
        except ValueError:
            raise self.fail("{m}, {m,n} or {m,} with whole numbers") from None
        if len(parts) > 2 or lo < 0 or (hi is not None and hi < lo) or max(lo, hi or 0) > 100:
            raise self.fail("{m,n} needs 0 ≤ m ≤ n ≤ 100")
        self.i = close + 1
        return lo, hi

    def atom(self) -> Node:
        c = self.text[self.i]
        if c == "[":
            return self.char_class()
        if c == ".":
            self.i += 1
            return self.leaf(Atom(True, set()))
        if c == "\\":
            nxt = self.text[self.i + 1 : self.i + 2]
            if not nxt or nxt not in _META | set("-^$"):
                raise self.fail(f"the escape \\{nxt} is not supported (escape only metacharacters)")
            self.i += 2
            return self.leaf(Atom(False, {nxt}))
        if c in ("^", "$"):
            raise self.fail(f"{c!r}: the pattern always matches the whole name, anchors are not needed")
        if c in _META:
            raise self.fail(f"{c!r} has nothing to repeat or close")
        self.i += 1
        return self.leaf(Atom(False, {c}))

    def leaf(self, atom: Atom) -> Node:
        self.atoms.append(atom)
        return self.node("set", [], atom=len(self.atoms) - 1)

    def char_class(self) -> Node:
        self.i += 1
        atom = Atom(self.peek() == "^", set())
        if atom.negate:
            self.i += 1
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.fail("a [class] is not closed")
            if c == "]" and not first:
                self.i += 1
                return self.leaf(atom)
            if c == "\\":
                c = self.text[self.i + 1 : self.i + 2]
                self.i += 1
            self.i += 1
            if self.peek() == "-" and self.text[self.i + 1 : self.i + 2] not in ("]", ""):
                hi = self.text[self.i + 1]
                self.i += 2
                if ord(hi) < ord(c):
                    raise self.fail(f"the range {c}-{hi} runs backwards")
                atom.ranges.append((c, hi))
            else:
                atom.chars.add(c)
            first = False


def classes_of(atoms: list[Atom], alphabet: list[str]) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    """The coarsest classing of the tokens that every atom respects (refined one atom at a time:
    O(atoms · V) tensor work), and the classes each atom accepts."""
    V1 = len(alphabet) + 1
    code = torch.tensor([0, *(ord(a) for a in alphabet)], dtype=torch.int64)
    pos = {a: i + 1 for i, a in enumerate(alphabet)}
    cls = torch.zeros(V1, dtype=torch.int64)
    members = []
    for atom in atoms:
        m = torch.zeros(V1, dtype=torch.bool)
        ids = [pos[ch] for ch in atom.chars if ch in pos]
        m[ids] = True
        for lo, hi in atom.ranges:
            m |= (code >= ord(lo)) & (code <= ord(hi))
        m[0] = False
        members.append(m)
        _, cls = torch.unique(cls * 2 + m, return_inverse=True)
    K = int(cls.max()) + 1
    first = torch.full((K,), V1, dtype=torch.int64).scatter_reduce_(0, cls, torch.arange(V1), "amin")
    accepted = []
    for atom, m in zip(atoms, members, strict=True):
        inside = m[first]
        accepted.append(tuple((~inside if atom.negate else inside).nonzero().squeeze(1).tolist()))
    return cls, accepted


class _NFA:
    """Thompson's construction from the tree, with a stack: eps[s] the epsilon moves of state s;
    a state has at most one move on characters, on the classes move_on[s] to move_to[s]."""

    def __init__(self, root: Node, accepted: list[tuple[int, ...]]):
        self.eps: list[list[int]] = []
        self.move_on: list[tuple[int, ...]] = []
        self.move_to: list[int] = []
        out: list[tuple[int, int]] = []
        todo: list[tuple[Node, bool]] = [(root, False)]
        while todo:
            node, ready = todo.pop()
            if node.kind == "set":
                s, e = self.state(), self.state()
                self.move_on[s], self.move_to[s] = accepted[node.atom], e
                out.append((s, e))
            elif not ready:  # its kids first (a repetition's body once per copy), then itself
                todo.append((node, True))
                kids = node.kids if node.kind != "rep" else node.kids * node.copies
                todo.extend((k, False) for k in reversed(kids))
            else:
                n = len(node.kids) if node.kind != "rep" else node.copies
                frags = out[len(out) - n :]
                del out[len(out) - n :]
                out.append(self.combine(node, frags))
        self.start, self.end = out[0]

    def state(self) -> int:
        self.eps.append([])
        self.move_on.append(())
        self.move_to.append(-1)
        return len(self.eps) - 1

    def combine(self, node: Node, frags: list[tuple[int, int]]) -> tuple[int, int]:
        s = self.state()
        if node.kind == "alt":
            e = self.state()
            for a, b in frags:
                self.eps[s].append(a)
                self.eps[b].append(e)
            return s, e
        cur, starts = s, []
        for a, b in frags:  # cat, rep: the pieces chained
            starts.append(cur)
            self.eps[cur].append(a)
            cur = b
        if node.kind == "cat":
            return s, cur
        e = self.state()
        self.eps[cur].append(e)
        if node.hi is None:  # the last copy loops; with no lower bound the whole may be skipped
            a, b = frags[-1]
            self.eps[b].append(a)
            if node.lo == 0:
                self.eps[s].append(e)
        else:  # the copies past lo may be skipped
            for k in range(node.lo, len(frags)):
                self.eps[starts[k]].append(e)
        return s, e


def compile_pattern(pattern: str, alphabet: list[str]) -> DFA:
    """The DFA of names (strings over `alphabet`) that the whole pattern matches."""
    parser = _Parser(pattern)
    root = parser.parse()
    cls, accepted = classes_of(parser.atoms, alphabet)
    K = int(cls.max()) + 1
    nfa = _NFA(root, accepted)
    return prune(_subsets(nfa, pattern, K, cls))


def _subsets(nfa: _NFA, pattern: str, K: int, cls: torch.Tensor) -> DFA:
    """Subset construction over the classes, counting its steps."""
    work = 0

    def closure(states) -> frozenset[int]:
        nonlocal work
        stack, seen = list(states), set(states)
        while stack:
            for t in nfa.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        work += len(seen)
        return frozenset(seen)

    first = closure([nfa.start])
    index: dict[frozenset[int], int] = {frozenset(): 0, first: 1}
    rows: list[list[int]] = [[0] * K, [0] * K]
    todo = [first]
    while todo:
        cur = todo.pop()
        q = index[cur]
        targets: dict[int, set[int]] = {}
        for s in cur:
            for k in nfa.move_on[s]:
                targets.setdefault(k, set()).add(nfa.move_to[s])
            work += len(nfa.move_on[s])
        for k, ts in targets.items():
            nxt = closure(ts)
            if nxt not in index:
                if len(index) > MAX_DFA_STATES:
                    raise BigramError(
                        f"--pattern {shown(pattern)}: its automaton passes {MAX_DFA_STATES:,} states; "
                        "use a simpler pattern"
                    )
                index[nxt] = len(rows)
                rows.append([0] * K)
                todo.append(nxt)
            rows[q][k] = index[nxt]
        if work > MAX_WORK:
            raise BigramError(
                f"--pattern {shown(pattern)}: building its automaton takes more than {MAX_WORK:,} steps "
                "(nested or long counted repetitions); use a simpler pattern"
            )
    check_entries(len(rows), K, f"--pattern {shown(pattern)}")
    accept = torch.zeros(len(rows), dtype=torch.bool)
    for states, q in index.items():
        accept[q] = nfa.end in states
    return DFA(torch.tensor(rows, dtype=torch.int32), cls, 1, accept)
