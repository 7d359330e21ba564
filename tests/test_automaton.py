"""Regular constraints (--pattern, --contains, --not-contains, --blocklist): the automata against
Python's `re` and plain substring tests, and the conditioned samples and best names against a
plain-Python enumeration of every name and its probability."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from collections import Counter

import pytest
import torch

from bigram.errors import BigramError
from bigram.exact.automaton import accepts, compile_pattern, prefix, product, substrings, suffix
from bigram.exact.constraints import Constraints, Patterns
from tests.conftest import NAMES, ROOT, one_line_error, train_run
from tests.reference import back_off

ALPHABET = ["a", "b", "c", " "]
WORDS = ["", *("".join(p) for n in range(1, 6) for p in itertools.product(ALPHABET, repeat=n))]


@pytest.mark.parametrize(
    "pattern",
    ["a(b|c)*", "[ab]+c?", "(ab){1,2}", "a{0,2}b", "[^a]*", ".a.", "a|bc|", "(a|b){2,}c", "a?b*",
     "(?:a|b c)+", "[a-c ]{3}", r"a\.?b"],
)  # fmt: skip
def test_patterns_accept_what_re_fullmatch_accepts(pattern):
    dfa = compile_pattern(pattern, ALPHABET)
    for w in WORDS:
        assert accepts(dfa, w, ALPHABET) == (re.fullmatch(pattern, w) is not None), (pattern, w)


def test_substring_prefix_suffix_and_product_automata():
    cases = [
        (substrings(["ab", "ca"], ALPHABET, False), lambda w: "ab" in w or "ca" in w),
        (substrings(["ab", "bab", "c"], ALPHABET, True), lambda w: all(x not in w for x in ("ab", "bab"))
         and "c" not in w),
        (prefix("ab", ALPHABET), lambda w: w.startswith("ab")),
        (suffix("abab", ALPHABET), lambda w: w.endswith("abab")),
        (suffix("aa", ALPHABET), lambda w: w.endswith("aa")),
        (product([prefix("a", ALPHABET), suffix("b", ALPHABET), substrings(["cc"], ALPHABET, True)], 5),
         lambda w: w.startswith("a") and w.endswith("b") and "cc" not in w),
    ]  # fmt: skip
    for dfa, want in cases:
        assert all(accepts(dfa, w, ALPHABET) == want(w) for w in WORDS)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [("a(", "not closed"), ("^a", "anchors"), ("a**", "repeated repetition"), (r"\d", "escape"),
     ("a{3,1}", "{m,n}"), ("(?=a)", "(?:"), ("[a", "not closed"), ("*a", "nothing to repeat")],
)  # fmt: skip
def test_unsupported_regex_syntax_is_named(pattern, why):
    with pytest.raises(BigramError, match=re.escape(why)):
        compile_pattern(pattern, ALPHABET)


def _table(order: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    P = torch.rand(4 ** (order - 1), 4, generator=g, dtype=torch.float64) + 0.05
    P[:, 0] += 0.8  # names end soon: those past 11 characters hold ~1e-4 of the mass
    return P / P.sum(1, keepdim=True)


def _probability(P: torch.Tensor, order: int, word: str) -> float:
    ids = [0] * (order - 1) + [" abc".index(ch) for ch in word] + [0]
    p = 1.0
    for i in range(len(ids) - order + 1):
        row = 0
        for d in ids[i : i + order - 1]:
            row = row * 4 + d
        p *= float(P[row, ids[i + order - 1]])
    return p


CASES = [
    (Patterns(pattern="a[bc]*b?"), Constraints()),
    (Patterns(contains=("ab", "c")), Constraints(min_len=3, max_len=7)),
    (Patterns(blocklist=("aa", "cb")), Constraints(start="b", end="a")),
    (Patterns(not_contains=("b",), pattern="(a|c){2,4}"), Constraints()),
    (Patterns(contains=("a",), blocklist=("bb",)), Constraints(start="c", min_len=4)),
]


@pytest.mark.parametrize("order", [2, 3, 4])
@pytest.mark.parametrize(("patterns", "constraints"), CASES)
def test_samples_and_best_names_are_exact(order, patterns, constraints):
    from bigram.exact.chain import of_table
    from bigram.sampling import most_likely, sample
    from bigram.vocab import Vocab

    vocab = Vocab(("a", "b", "c"))
    P = _table(order, seed=order)
    if order == 4:  # rows repeated as a smoothed model's: the merged chain (chain.py)
        P = torch.tensor(back_off(P.tolist(), seed=4), dtype=torch.float64)
        assert of_table(P.log()).merged
    c = constraints

    def ok(w: str) -> bool:
        return (
            w.startswith(c.start) and w.endswith(c.end) and c.min_len <= len(w) <= (c.max_len or 99)
            and (patterns.pattern is None or re.fullmatch(patterns.pattern, w) is not None)
            and all(s in w for s in patterns.contains)
            and not any(s in w for s in patterns.not_contains + patterns.blocklist)
        )  # fmt: skip

    words = ["".join(t) for n in range(1, 12) for t in itertools.product("abc", repeat=n)]
    want = {w: _probability(P, order, w) for w in words if ok(w)}
    total = sum(want.values())
    drawn = Counter(sample(P.log(), vocab, 100_000, seed=5, constraints=c, patterns=patterns))
    assert all(ok(w) for w in drawn)
    for w, p in want.items():
        p /= total
        if p > 1e-3:
            assert abs(drawn[w] / 100_000 - p) <= 5 * math.sqrt(p * (1 - p) / 100_000), w
    best = most_likely(P.log(), vocab, 5, constraints=c, patterns=patterns)
    top = sorted(want.items(), key=lambda kv: -kv[1])[:5]
    assert [name for name, _ in best] == [w for w, _ in top]
    assert [lp for _, lp in best] == pytest.approx([math.log(p) for _, p in top], abs=1e-9)


@pytest.mark.parametrize("order", [2, 3])
def test_both_plans_answer_draw_and_best_alike(order):
    """A pattern every name matches leaves the automaton's plan the model itself: it and
    conditioning's plan, chosen by plans.plan, answer the same calls with the same best names."""
    from bigram.exact import automaton, conditioning, plans
    from bigram.exact.chain import of_table
    from bigram.vocab import Vocab

    chain, vocab, c = of_table(_table(order, seed=order).log()), Vocab(("a", "b", "c")), Constraints("a")
    plain, regular = plans.plan(chain, vocab, c), plans.plan(chain, vocab, c, Patterns(pattern="[abc]*"))
    assert type(plain) is conditioning.Plan and type(regular) is automaton.Plan
    g = torch.Generator().manual_seed(0)
    assert all(len(p.draw(50, g)) == 50 and p.draw(0, g) == [] for p in (plain, regular))
    want, got = plain.best(6, exclude={"a"}), regular.best(6, exclude={"a"})
    assert [name for name, _ in got] == [name for name, _ in want] and "a" not in dict(got)
    assert [lp for _, lp in got] == pytest.approx([lp for _, lp in want], abs=1e-12)


def test_sampling_imports_the_automaton_only_for_patterns():
    """bigram.sampling (which `train` loads for its TensorBoard samples) compiles no regex: plans.plan
    imports automaton.py when a request first has patterns."""
    code = (
        "import sys, torch, bigram.sampling as s\n"
        "from bigram.exact.constraints import Patterns\n"
        "from bigram.vocab import Vocab\n"
        "lp, vocab = torch.tensor([[0.1, 0.9], [0.5, 0.5]]).log(), Vocab(('a',))\n"
        "print('bigram.exact.automaton' in sys.modules)\n"
        "s.sample(lp, vocab, 3, seed=0)\n"
        "print('bigram.exact.automaton' in sys.modules)\n"
        "s.sample(lp, vocab, 3, seed=0, patterns=Patterns(contains=('aa',)))\n"
        "print('bigram.exact.automaton' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


def test_a_blocklisted_string_never_appears_and_the_cli_reads_the_run_s_rule(invoke, tmp_path, lecture_runs):
    blocked = tmp_path / "block.txt"
    blocked.write_text("an\n\nEL\nmar \n", encoding="utf-8")
    r = invoke(
        "sample", lecture_runs[1], "-n", "1000000", "--seed", "3", "--blocklist", blocked, "--model", "count"
    )
    assert r.exit_code == 0, r.output
    names = r.stdout.split("\n")[:-1]
    assert len(names) == 1_000_000 and not any(("an" in n or "mar" in n) for n in names)
    assert any("el" in n for n in names)  # the run keeps case: EL is not el
    lower = train_run(invoke, NAMES, tmp_path / "low", "--lowercase", "--model", "count")
    r = invoke("sample", lower, "-n", "20000", "--seed", "3", "--blocklist", blocked)
    assert r.exit_code == 0 and not any("el" in n for n in r.stdout.split())  # EL read as el


def test_cli_combinations_and_refusals(invoke, lecture_runs):
    run = lecture_runs[1]
    r = invoke("sample", run, "-n", "200", "--seed", "1", "--contains", "an", "--contains", "ri",
               "--not-contains", "e", "--start", "k", "--max-len", "9", "--model", "count")  # fmt: skip
    assert r.exit_code == 0, r.output
    names = r.stdout.split()
    assert len(names) == 200
    assert all("an" in n and "ri" in n and "e" not in n and n.startswith("k") and len(n) <= 9 for n in names)
    r = invoke("sample", run, "--most-likely", "3", "--pattern", "[kj][aeiou]+n", "--model", "count")
    assert r.exit_code == 0 and all(re.fullmatch("[kj][aeiou]+n", n) for n in r.stdout.split())
    one_line_error(invoke("sample", run, "--pattern", "a("), "--pattern 'a('", "not closed")
    one_line_error(invoke("sample", run, "--contains", "q", "--not-contains", "q"), "no name can match")
    one_line_error(invoke("sample", run, "--blocklist", "nope.txt"), "--blocklist nope.txt does not exist")


def test_an_automaton_too_large_for_the_contexts_is_refused(invoke, lecture_runs, monkeypatch):
    import bigram.exact.automaton

    monkeypatch.setattr(bigram.exact.automaton, "MAX_PRODUCT", 50)
    one_line_error(invoke("sample", lecture_runs[1], "--contains", "anna"), "more than 50")
