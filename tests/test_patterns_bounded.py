"""Patterns and blocklists against hostile input: every cost bounded before it is paid (a refused
pattern answers in well under a second, a blocklist is read a block at a time under stated caps),
automata by character class whatever the vocabulary, and exact sampling where the constraint's
probability is far below float64's reach from the start (backward messages in each pair's scale).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from bigram.errors import BigramError
from bigram.exact.constraints import Constraints, Patterns
from bigram.exact.dfa import accepts, substrings, suffix
from bigram.exact.regex import MAX_NFA, compile_pattern
from bigram.options import MAX_BLOCK_LINE, read_blocklist
from tests.conftest import one_line_error

SMALL = ["a", "b", "c", " "]


def _timed_refusal(pattern: str, alphabet: list[str], *needles: str, limit: float) -> None:
    t = time.perf_counter()
    with pytest.raises(BigramError) as e:
        compile_pattern(pattern, alphabet)
    assert time.perf_counter() - t < limit, pattern
    message = str(e.value)
    assert "\n" not in message and len(message) < 400
    for n in needles:
        assert n in message, (n, message)


def test_a_pattern_whose_computed_size_passes_the_cap_is_refused_before_it_is_built():
    # 100^4 copies of `a`: the bound is known from the parse, nothing is expanded
    _timed_refusal("(((a{100}){100}){100}){100}", SMALL, f"{MAX_NFA:,}", "counted repetitions", limit=0.5)
    _timed_refusal("(a{100}){100}" * 5, SMALL, f"{MAX_NFA:,}", limit=0.5)  # each 20,303 states, the sum more


def test_subset_construction_is_bounded():
    # small NFA, but every one of its 10,001 DFA states is a set of thousands of NFA states
    _timed_refusal("(.{0,100}){0,100}", SMALL, "steps", limit=5)


def test_deeply_nested_groups_parse_without_recursion():
    for depth in (300, 495):  # the recursive parser ended in RecursionError at 300
        dfa = compile_pattern("(" * depth + "a|b" + ")" * depth + "c", SMALL)
        got = [accepts(dfa, w, SMALL) for w in ("ac", "bc", "c", "abc", "a")]
        assert got == [True, True, False, False, False]
    assert accepts(compile_pattern("(?:" * 199 + "ab" + ")*" * 199, SMALL), "ababab", SMALL)
    _timed_refusal("(" * 300 + "a", SMALL, "not closed", "at character 300", limit=0.5)
    _timed_refusal("x" * 5000, SMALL, "more than 1,000", limit=0.5)


WIDE = [chr(c) for c in range(0x3B1, 0x3B1 + 25)] + [chr(c) for c in range(0x4E00, 0x4E00 + 2000)]


def test_patterns_over_a_wide_alphabet_match_re_and_their_classes_stay_few():
    """2,025 characters (Greek and CJK): the automaton's width is the classes the pattern's sets
    tell apart, not the vocabulary; every answer agrees with re.fullmatch."""
    rng = random.Random(0)
    greek = WIDE[:25]
    cases = {"[α-γ]+一.*": 4, "[^α-ω]{2}": 2, "(α|β一)*[一-丁]?": 5, ".*ζ.*": 2, "[α-δ][^一]+": 4}
    for pattern, classes in cases.items():
        dfa = compile_pattern(pattern, WIDE)
        assert dfa.delta.shape[1] <= classes, (pattern, dfa.delta.shape)
        pool = greek[:6] + WIDE[25:28]
        words = [
            "".join(rng.choice([*pool, rng.choice(WIDE)]) for _ in range(rng.randint(0, 5)))
            for _ in range(500)
        ]
        for w in words:
            assert accepts(dfa, w, WIDE) == (re.fullmatch(pattern, w) is not None), (pattern, w)
    assert substrings(["Jo"], [*WIDE, "J", "o"], avoid=False).delta.shape[1] == 3  # J, o, the rest
    assert suffix("α" * 50, WIDE).delta.shape == (52, 2)  # 50 + 2 states, 2 classes: O(n · classes)


def test_a_long_suffix_builds_in_linear_time():
    t = time.perf_counter()
    dfa = suffix("ab" * 5000, SMALL)
    assert time.perf_counter() - t < 2
    assert accepts(dfa, "c" + "ab" * 5000, SMALL) and not accepts(dfa, "ab" * 4999, SMALL)


def test_a_hundred_thousand_blocked_strings_build_in_about_a_second():
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(4, 8))) for _ in range(100_000)]
    t = time.perf_counter()
    dfa = substrings(words, list(letters), avoid=True, what="--blocklist")
    assert time.perf_counter() - t < 4  # ~0.6 s alone; the bound leaves room for a loaded machine
    blocked = set(words)
    for _ in range(300):  # names with and without a blocked string inside, against plain Python
        w = "".join(rng.choices(letters, k=rng.randint(0, 6))) + rng.choice(words) * rng.randint(0, 1)
        w += "".join(rng.choices(letters, k=rng.randint(0, 6)))
        has = any(w[i:j] in blocked for i in range(len(w)) for j in range(i + 4, min(len(w), i + 8) + 1))
        assert accepts(dfa, w, list(letters)) == (not has), w


def _model():
    """A bigram over a, b, c where a follows a with probability 0.1: a name ending in 20 a's has
    probability ~1e-20, below the 1e-17 at which the messages used to stop."""
    rows = {"": [0.1, 0.3, 0.3, 0.3], "a": [0.3, 0.1, 0.3, 0.3], "b": [0.6, 0.3, 0.05, 0.05],
            "c": [0.6, 0.3, 0.05, 0.05]}  # fmt: skip  # P(end, a, b, c | previous)
    P = torch.tensor([rows[k] for k in ("", "a", "b", "c")], dtype=torch.float64)
    return P, rows


def _prob(rows, word: str) -> float:
    p, prev = 1.0, ""
    for ch in word:
        p *= rows[prev][" abc".index(ch)]
        prev = ch
    return p * rows[prev][0]


def test_a_suffix_of_twenty_rare_letters_with_a_contains_is_sampled_exactly():
    from bigram.exact import plans
    from bigram.exact.chain import of_table
    from bigram.vocab import Vocab

    P, rows = _model()
    end = "a" * 20
    # Z = Σ_{u with a b} P(u) · P(a | last u) · 0.1^19 · P(end | a): the sum over u by a plain DP
    # over (last letter, b seen), every term of which is far from underflow
    prefix = {("", False): 1.0}
    z = 0.0
    for _ in range(400):
        nxt: dict = {}
        for (last, seen), p in prefix.items():
            for i, ch in enumerate("abc", start=1):
                key = (ch, seen or ch == "b")
                nxt[key] = nxt.get(key, 0.0) + p * rows[last][i]
        prefix = nxt
        z += sum(p * rows[last][1] for (last, seen), p in prefix.items() if seen)
    z *= 0.1**19 * rows["a"][0]
    plan = plans.plan(
        of_table(P.log()), Vocab(("a", "b", "c")), Constraints(end=end), Patterns(contains=("b",))
    )
    assert plan.log_mass() == pytest.approx(math.log(z), rel=1e-9)
    drawn = Counter(plan.draw(20_000, torch.Generator().manual_seed(0)))
    assert all(w.endswith(end) and "b" in w for w in drawn)
    for u in ("b", "ab", "bb", "cb", "ba", "bc", "bab"):
        p = _prob(rows, u + end) / z
        assert abs(drawn[u + end] / 20_000 - p) <= 5 * math.sqrt(p * (1 - p) / 20_000) + 1e-4, u
    best = plan.best(3)
    assert best[0][0] == "b" + end and best[0][1] == pytest.approx(math.log(_prob(rows, "b" + end)), abs=1e-9)


def test_read_blocklist_caps(tmp_path, monkeypatch):
    import bigram.options as options

    def refused(path: Path, *needles: str) -> None:
        t = time.perf_counter()
        with pytest.raises(BigramError) as e:
            read_blocklist(path)
        assert time.perf_counter() - t < 2 and "\n" not in str(e.value)
        for n in needles:
            assert n in str(e.value), (n, str(e.value))

    if Path("/dev/zero").exists():
        refused(Path("/dev/zero"), "line 1", f"{MAX_BLOCK_LINE:,} characters")
    long = tmp_path / "long.txt"
    long.write_text("ok\n" + "a" * (10 * MAX_BLOCK_LINE) + "\n", encoding="utf-8")
    refused(long, "line 2", "longer than")
    last = tmp_path / "last.txt"
    last.write_text("ok\n" * 3 + "b" * (MAX_BLOCK_LINE + 1), encoding="utf-8")  # no final newline
    refused(last, "line 4")
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"w{i}" for i in range(60)), encoding="utf-8")
    monkeypatch.setattr(options, "MAX_BLOCK_STRINGS", 50)
    refused(many, "more than 50 strings")
    monkeypatch.setattr(options, "MAX_BLOCK_READ", 100)
    refused(tmp_path / "many.txt", "more than 100 characters")
    monkeypatch.undo()
    refused(tmp_path, "is a directory")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"an\n\xff\xfe\n")
    refused(bad, "not UTF-8")
    ok = tmp_path / "ok.txt"
    ok.write_text("\ufeffan\r\n EL \n\n\nan\nx", encoding="utf-8")
    assert read_blocklist(ok) == ("an", "EL", "x")


def test_the_cli_refuses_each_hostile_pattern_and_blocklist_in_one_line(invoke, lecture_runs, tmp_path):
    run = lecture_runs[1]
    one_line_error(invoke("sample", run, "--pattern", "(((a{100}){100}){100}){100}"), "100,000")
    one_line_error(invoke("sample", run, "--pattern", "(" * 300 + "a"), "not closed")
    one_line_error(invoke("sample", run, "--end", "a" * 30_000, "--contains", "b"), "10,000 characters")
    if Path("/dev/zero").exists():
        one_line_error(invoke("sample", run, "--blocklist", "/dev/zero"), "longer than")
    r = invoke("sample", run, "-n", "5", "--seed", "1", "--pattern", "(" * 300 + "[aeiou]n" + ")" * 300)
    assert r.exit_code == 0 and all(re.fullmatch("[aeiou]n", n) for n in r.stdout.split()), r.output
