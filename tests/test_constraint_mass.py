"""How big a constraint is (issue 45, item 4): P(the constraints) from a plan's messages
(`plan.log_mass()`), which constrained `sample` prints on stderr and `--json` carries, against
plain-Python enumeration of every name and its probability: bounded lengths exactly, unbounded
ones to the enumeration's tail (below 1e-6 for the tables here)."""

from __future__ import annotations

import itertools
import json
import math
import random
import re

import pytest
import torch

from bigram import sampling
from bigram.exact.constraints import Constraints, Patterns, asked, mass_line
from bigram.vocab import Vocab
from tests.conftest import train_run
from tests.reference import plain_counts

AB = Vocab(("a", "b"))
LONGEST = 16  # enumerated lengths; every table below ends a name with P ≥ 0.55 per step after the first
TAIL = 0.45**15  # so names longer than LONGEST weigh less than this (6.3e-6)


def ending_table(order: int, seed: int) -> list[list[float]]:
    """A random order-N table over (boundary, a, b) whose every context but the first ends a name
    with probability 0.55–0.8 (so names longer than LONGEST weigh < TAIL), the first never."""
    rng = random.Random(seed)
    rows = []
    for h in range(3 ** (order - 1)):
        end = 0.0 if h == 0 else rng.uniform(0.55, 0.8)
        a = rng.uniform(0.05, 0.95) * (1 - end)
        rows.append([end, a, 1 - end - a])
    return rows


def prob(name: str, table: list[list[float]], order: int) -> float:
    """P(name, then the boundary) walked in plain Python: contexts are base-3 digits, boundary 0."""
    h, p, top = 0, 1.0, 3 ** (order - 1)
    for tok in [" ab".index(ch) for ch in name] + [0]:
        p *= table[h][tok]
        h = (h * 3 + tok) % top
    return p


def names(longest: int = LONGEST):
    for n in range(longest + 1):
        yield from ("".join(t) for t in itertools.product("ab", repeat=n))


def meets(w: str, c: Constraints, p: Patterns) -> bool:
    """The constraints read literally, with Python's own string tests and `re`."""
    ok = c.min_len <= len(w) and (c.max_len is None or len(w) <= c.max_len)
    ok = ok and w.startswith(c.start) and w.endswith(c.end)
    ok = ok and all(x in w for x in p.contains) and not any(x in w for x in p.not_contains)
    ok = ok and not any(x in w for x in p.blocklist)
    return ok and (p.pattern is None or re.fullmatch(p.pattern, w) is not None)


CASES = [
    (Constraints(start="a"), Patterns()),
    (Constraints(end="ab", min_len=4), Patterns()),
    (Constraints(start="ab", end="ba", max_len=6), Patterns()),  # "aba": start and end overlap
    (Constraints(max_len=3), Patterns()),
    (Constraints(min_len=0, max_len=2), Patterns()),  # the empty name counted (probability 0 here)
    (Constraints(min_len=5, max_len=5), Patterns()),
    (Constraints(), Patterns(contains=("bb",))),
    (Constraints(start="b"), Patterns(not_contains=("aa",), pattern="(a|b)*b")),
    (Constraints(max_len=7), Patterns(blocklist=("aba", "bbb"))),
    (Constraints(), Patterns(pattern="a+b?")),
]


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize(("c", "p"), CASES)
def test_the_mass_is_the_enumerated_probability_of_the_names_meeting_them(order, c, p):
    table = ending_table(order, seed=order)
    plan = sampling.plan_for(torch.tensor(table, dtype=torch.float64).log(), AB, constraints=c, patterns=p)
    want = math.fsum(prob(w, table, order) for w in names() if meets(w, c, p))
    got = math.exp(plan.log_mass())
    if c.max_len is not None and c.max_len <= LONGEST:  # every such name enumerated
        assert got == pytest.approx(want, rel=1e-9)
    else:  # the names beyond LONGEST: 15 more steps without ending, at most 0.45 each
        assert want * (1 - 1e-12) <= got <= want + TAIL


def test_the_mass_follows_the_temperature_the_names_are_drawn_at():
    """At T = 0.5 every row is p² renormalized: P(constraints) is the adjusted table's, not the model's."""
    table = ending_table(2, seed=7)
    hot = [[x**2 / sum(y**2 for y in row) for x in row] for row in table]
    c = Constraints(start="b", max_len=6)
    plan = sampling.plan_for(
        torch.tensor(table, dtype=torch.float64).log(), AB, temperature=0.5, constraints=c
    )
    want = math.fsum(prob(w, hot, 2) for w in names(6) if meets(w, c, Patterns()))
    assert math.exp(plan.log_mass()) == pytest.approx(want, rel=1e-9)


def test_constraints_in_words():
    assert asked(Constraints(), Patterns()) == ""  # any name: no line to print
    assert asked(Constraints(min_len=0), Patterns()) == ""
    assert asked(Constraints("ka", "a", 6), Patterns()) == "start 'ka', end 'a', length ≥ 6"
    assert asked(Constraints("ka", "a", 2), Patterns()) == "start 'ka', end 'a'"  # implied by the start
    assert asked(Constraints(max_len=5), Patterns()) == "length 1–5"
    assert asked(Constraints(min_len=0, max_len=5), Patterns()) == "length ≤ 5"
    assert asked(Constraints(min_len=4, max_len=4), Patterns()) == "length 4"
    assert asked(Constraints("ab", max_len=5), Patterns()) == "start 'ab', length ≤ 5"  # not empty anyway
    assert asked(Constraints("ab", min_len=4, max_len=5), Patterns()) == "start 'ab', length 4–5"
    assert asked(Constraints(min_len=1, max_len=1), Patterns()) == "length 1"
    assert asked(Constraints(), Patterns(contains=("x",), not_contains=("q",))) == (
        "contains 'x', not containing 'q'"
    )
    assert asked(Constraints(), Patterns(pattern="a.*", blocklist=("x", "y"))) == (
        "length ≥ 1, matching 'a.*', containing none of the 2 blocklisted strings"
    )
    assert asked(Constraints(start="\x1b[31m"), Patterns()) == "start '\\x1b[31m'"  # never raw to a terminal
    # a pattern alone allows the empty name: whether it is counted is said (min-len 1 or 0)
    assert asked(Constraints(), Patterns(pattern="a*")) == "length ≥ 1, matching 'a*'"
    assert asked(Constraints(min_len=0), Patterns(pattern="a*")) == "matching 'a*'"
    many = tuple(f"q{i}" for i in range(600))  # 600 flags: a count, not a 13,000-character line
    assert asked(Constraints(), Patterns(not_contains=many)) == (
        "length ≥ 1, containing none of 600 strings ('q0', …)"
    )
    assert asked(Constraints(), Patterns(contains=many[:4])) == "containing all of 4 strings ('q0', …)"
    assert asked(Constraints(), Patterns(pattern="a" * 5000)) == f"length ≥ 1, matching '{'a' * 59}'…"  # cut


@pytest.mark.parametrize(
    ("p", "shown", "one_in"),
    [(0.0041, "0.0041", "244"), (0.5, "0.5", "2"), (0.98, "0.98", "1.02"), (1e-5, "1e-5", "100,000"),
     (1.94e-13, "1.94e-13", "5.15e12"),
     (3.2e-20, "3.2e-20", "3.12e19")],
)  # fmt: skip
def test_the_line_says_p_and_one_in_how_many(p, shown, one_in):
    line = mass_line(Constraints(end="a"), Patterns(), math.log(p), "the count model")
    assert line == f"P(end 'a') = {shown} under the count model: 1 in {one_in} of its names"


def test_a_mass_below_float64_is_still_said():
    line = mass_line(Constraints(end="a"), Patterns(), -2000 * math.log(10), "the count model")
    assert "= 1e-2000 " in line and "1 in 1e2000 " in line


# --- the command ---------------------------------------------------------------------------------
CORPUS = ["ab", "ba", "a", "abb", "b", "aab", "bba", "ab", "abab", "bab"]


def add_one_table(corpus: list[str]) -> list[list[float]]:
    """The add-1 bigram over (boundary, a, b) from plain counts: (N(x, y) + 1) / (N(x) + 3)."""
    counts = plain_counts(corpus)
    ids = {None: 0, "a": 1, "b": 2}
    n = [[0] * 3 for _ in range(3)]
    for (x, y), k in counts.items():
        n[ids[x]][ids[y]] += k
    return [[(k + 1) / (sum(row) + 3) for k in row] for row in n]


def test_constrained_sample_says_the_exact_mass_on_stderr_and_in_json(invoke, tmp_path):
    data = tmp_path / "ab.txt"
    data.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    run = train_run(invoke, data, tmp_path / "r", "--model", "count", "--smoothing", "1",
                    "--val-frac", "0", "--test-frac", "0")  # fmt: skip
    table = add_one_table(CORPUS)
    want = math.fsum(prob(w, table, 2) for w in names(5) if w.startswith("a") and 1 <= len(w) <= 5)
    r = invoke("sample", run, "-n", "3", "--seed", "1", "--start", "a", "--max-len", "5", "--json")
    assert r.exit_code == 0, r.output
    said = r.stderr.strip().splitlines()[-1]
    assert said == (
        f"P(start 'a', length ≤ 5) = {want:.4g} under the count model: 1 in {1 / want:.3g} of its names"
    )  # P is about 1/2 here: "1 in 2.02", three figures below 100
    entries = json.loads(r.stdout)
    assert len(entries) == 3 and all(e["name"].startswith("a") for e in entries)
    assert all(e["log_p_constraints"] == pytest.approx(math.log(want), rel=1e-12) for e in entries)
    assert all(e["p_constraints"] == pytest.approx(want, rel=1e-12) for e in entries)
    # --most-likely reads the same plan and says the same; an unconstrained request says nothing
    r = invoke("sample", run, "--most-likely", "2", "--start", "a", "--max-len", "5")
    assert said in r.stderr
    r = invoke("sample", run, "-n", "2", "--seed", "1")
    assert r.exit_code == 0 and "P(" not in r.stderr
    r = invoke("sample", run, "-n", "2", "--seed", "1", "--json")
    assert "p_constraints" not in r.stdout


def test_with_white_space_in_the_alphabet_the_line_says_it_counts_walks(invoke, tmp_path):
    """Names with inner spaces: the model also walks into names that begin or end with one, which
    `sample` draws again. P is the model's (every walk meeting the constraints, enumerated here
    from plain add-1 counts), and the line says it counts walks, not the names sample prints."""
    corpus = ["a b", "ab a", "b", "ba b", "a", "bb a"]
    data = tmp_path / "spaced.txt"
    data.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    run = train_run(invoke, data, tmp_path / "r", "--model", "count", "--smoothing", "1",
                    "--val-frac", "0", "--test-frac", "0")  # fmt: skip
    chars = [None, " ", "a", "b"]  # the boundary, then the characters by code point
    counts = plain_counts(corpus)
    n = [[counts[x, y] for y in chars] for x in chars]
    table = [[(k + 1) / (sum(row) + 4) for k in row] for row in n]

    def walk_prob(w: str) -> float:
        ids = [0, *(chars.index(ch) for ch in w), 0]
        return math.prod(table[x][y] for x, y in itertools.pairwise(ids))

    walks = ("".join(t) for L in range(1, 7) for t in itertools.product(" ab", repeat=L))
    want = math.fsum(walk_prob(w) for w in walks if w.startswith("a") and w.endswith("b"))
    r = invoke(
        "sample", run, "-n", "2", "--seed", "0", "--start", "a", "--end", "b", "--max-len", "6", "--json"
    )
    assert r.exit_code == 0, r.output
    assert r.stderr.strip().splitlines()[-1] == (
        f"P(start 'a', end 'b', length ≤ 6) = {want:.4g} under the count model: 1 in {1 / want:.3g} of its "
        "walks (counting those that begin or end with white space, which sample draws again)"
    )
    assert json.loads(r.stdout)[0]["p_constraints"] == pytest.approx(want, rel=1e-12)


def log_p_at_least(table: list[list[float]], L: int) -> float:
    """log P(a name has ≥ L characters) under a bigram table over (boundary, a, b), by a plain
    forward pass over the walks not yet ended, renormalized each step (its log kept): exact far
    below float64's least."""
    f, log = [0.0, table[0][1], table[0][2]], 0.0  # after one character
    for _ in range(L - 1):
        f = [0.0, *(sum(f[x] * table[x][y] for x in (1, 2)) for y in (1, 2))]
        s = sum(f)
        f, log = [v / s for v in f], log + math.log(s)
    return log + math.log(sum(f))  # every walk still going ends some time


@pytest.mark.parametrize("L", [40, 80, 1500])
def test_a_long_min_len_is_exact_however_rare_with_and_without_patterns(L):
    """A rare length: no cancellation of the short names' mass (a pattern every name meets used to
    read P(length ≥ 80) ~ 1e-28 as 1e-16), and no underflow (length ≥ 1500: e^-1200 or so)."""
    table = ending_table(2, seed=3)
    lp = torch.tensor(table, dtype=torch.float64).log()
    want = log_p_at_least(table, L)
    for p in (Patterns(), Patterns(pattern="(a|b)*"), Patterns(not_contains=("c",))):
        if L == 1500 and p:
            continue  # the automaton's messages would run 1,500 steps: the scale is conditioning's
        got = sampling.plan_for(lp, AB, constraints=Constraints(min_len=L), patterns=p).log_mass()
        assert got == pytest.approx(want, rel=1e-9), p


def test_an_empty_substring_is_refused(invoke, tmp_path):
    """Every name contains '': --contains '' would ask nothing and --not-contains '' allow nothing."""
    from tests.conftest import one_line_error

    data = tmp_path / "ab.txt"
    data.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    run = train_run(invoke, data, tmp_path / "r", "--model", "count", "--val-frac", "0", "--test-frac", "0")
    for flag in ("--contains", "--not-contains"):
        one_line_error(invoke("sample", run, flag, ""), f"{flag} ''", "at least one character")
