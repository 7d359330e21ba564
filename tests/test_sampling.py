"""Sampling (sampling.py): exact conditioning checked against brute-force enumeration on a tiny
vocabulary; only names the text rule can produce; the bounds of --most-likely and --unique."""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bigram.counts import count_bigrams
from bigram.errors import BigramError
from bigram.sampling import Constraints, adjust, most_likely, sample
from bigram.vocab import Vocab
from tests.conftest import ROOT, one_line_error, train_run
from tests.reference import check_frequencies, enumerate_names

VOCAB = Vocab(("a", "b", "c"))
# a hand-written row-stochastic table over (boundary, a, b, c); every entry positive except c→c
P_TABLE = [
    [0.00, 0.50, 0.30, 0.20],  # from the boundary: never an empty name
    [0.30, 0.20, 0.40, 0.10],  # from a
    [0.25, 0.25, 0.25, 0.25],  # from b
    [0.50, 0.30, 0.20, 0.00],  # from c: cc never happens
]
LOGP = torch.tensor(P_TABLE, dtype=torch.float64).log()


def name_prob(name: str, table=P_TABLE) -> float:
    """Plain-Python probability of .name. under the table."""
    ids = [0, *(" abc".index(ch) for ch in name), 0]
    p = 1.0
    for x, y in itertools.pairwise(ids):
        p *= table[x][y]
    return p


def total_mass(c: Constraints, table=P_TABLE, horizon: int = 400) -> float:
    """Probability that a name meets c: a plain-Python forward pass over lengths (to `horizon`
    for an unbounded length; the tail beyond is below 1e-40 for these tables)."""
    idx = {ch: i + 1 for i, ch in enumerate("abc")}
    S, E = [idx[ch] for ch in c.start], [idx[ch] for ch in c.end]
    top = c.max_len if c.max_len is not None else horizon
    z = 0.0
    for L in range(c.min_len, min(len(S) + len(E) - 1, top) + 1):  # overlapping start and end
        for w in {c.start + c.end[len(c.start) + len(c.end) - L :]}:
            if len(w) == L and w.startswith(c.start) and w.endswith(c.end):
                z += name_prob(w, table)
    p_s = name_prob(c.start, table) / table[S[-1]][0] if S else 1.0  # .S without its end
    u = S[-1] if S else 0
    e_path = 1.0
    for x, y in itertools.pairwise([*E, 0]):
        e_path *= table[x][y]
    target = E[0] if E else 0
    fwd = [0.0] * 4
    fwd[u] = 1.0  # mass of walks from u after m middle characters, by current state
    for m in range(0, top - len(S) - len(E) + 1):
        if len(S) + len(E) + m >= max(c.min_len, 0):
            z += p_s * sum(fwd[x] * table[x][target] for x in range(4)) * e_path
        fwd = [0.0] + [sum(fwd[x] * table[x][y] for x in range(4)) for y in range(1, 4)]
    return z


def exact(c: Constraints, shown: int = 8, table=P_TABLE) -> dict[str, float]:
    """Conditional probabilities of every name of length ≤ `shown` meeting c, by enumeration."""
    z = total_mass(c, table)
    ok = {
        w: name_prob(w, table) / z
        for w in enumerate_names(min(shown, c.max_len if c.max_len is not None else shown))
        if len(w) >= c.min_len and w.startswith(c.start) and w.endswith(c.end)
    }
    return {w: p for w, p in ok.items() if p > 0}


N = 100_000


@pytest.mark.parametrize(
    "c",
    [
        Constraints(start="a", end="b", min_len=2, max_len=5),
        Constraints(end="ca", min_len=3, max_len=6),
        Constraints(start="b", min_len=4, max_len=4),
        Constraints(start="ab", end="ba", min_len=1, max_len=5),  # "aba": prefix and suffix overlap
        Constraints(max_len=3),
        Constraints(start="c", end="a", min_len=0, max_len=None),  # unbounded length
    ],
)
def test_constrained_sampling_is_exact(c):
    names = sample(LOGP, VOCAB, N, seed=1, constraints=c)
    probs = exact(c)
    check_frequencies(names, probs)


def test_overlapping_prefix_and_suffix_can_be_the_whole_name():
    probs = exact(Constraints(start="ab", end="ba", max_len=3))
    assert probs == {"aba": 1.0}
    assert set(sample(LOGP, VOCAB, 50, seed=0, constraints=Constraints(start="ab", end="ba", max_len=3))) == {
        "aba"
    }


def test_unconstrained_sampling_matches_the_model_and_is_never_empty():
    names = sample(LOGP, VOCAB, N, seed=2)
    assert "" not in names
    check_frequencies(names, exact(Constraints()))


def test_min_len_zero_allows_the_empty_name():
    table = [[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [1.0, 0, 0, 0], [1.0, 0, 0, 0]]
    lp = torch.tensor(table, dtype=torch.float64).log()
    names = sample(lp, VOCAB, 20_000, seed=0, constraints=Constraints(min_len=0, max_len=2))
    check_frequencies(names, exact(Constraints(min_len=0, max_len=2), table=table))


def test_temperature_top_k_top_p_adjust_rows():
    p = adjust(LOGP, temperature=0.5).numpy()
    row = [x**2 for x in P_TABLE[1]]
    assert p[1] == pytest.approx([x / sum(row) for x in row])
    p = adjust(LOGP, top_k=2).numpy()
    assert p[1] == pytest.approx([0.3 / 0.7, 0.0, 0.4 / 0.7, 0.0])
    p = adjust(LOGP, top_p=0.6).numpy()  # a: 0.4 then 0.3 reach 0.7 ≥ 0.6
    assert p[1] == pytest.approx([0.3 / 0.7, 0.0, 0.4 / 0.7, 0.0])
    p = adjust(LOGP, top_p=0.4).numpy()  # 0.4 alone reaches 0.4
    assert p[1] == pytest.approx([0.0, 0.0, 1.0, 0.0])
    # and the sampler follows the adjusted table: with top-k 1, "." → a → b is forced (b's row is a tie)
    assert all(w.startswith("ab") for w in sample(LOGP, VOCAB, 100, seed=0, top_k=1))


def test_most_likely_matches_enumeration():
    for c in [
        Constraints(),
        Constraints(start="b", end="a", min_len=3),
        Constraints(start="ab", end="ba", max_len=5),
    ]:
        probs = exact(c)
        best = sorted(probs, key=lambda w: -probs[w])[:8]
        got = most_likely(LOGP, VOCAB, 8, constraints=c)
        assert [w for w, _ in got] == best or [round(lp, 9) for _, lp in got] == [
            round(math.log(name_prob(w)), 9) for w in best
        ]
        for w, lp in got:
            assert lp == pytest.approx(math.log(name_prob(w)))


def test_most_likely_excludes_and_orders():
    got = most_likely(LOGP, VOCAB, 3, exclude={"a"})
    assert "a" not in [w for w, _ in got]
    lps = [lp for _, lp in got]
    assert lps == sorted(lps, reverse=True)


def test_novel_and_unique():
    names = sample(
        LOGP, VOCAB, 30, seed=0, exclude={"a", "b"}, unique=True, constraints=Constraints(max_len=4)
    )
    assert len(set(names)) == 30 and not {"a", "b"} & set(names)
    with pytest.raises(BigramError, match="only 1 of 2 unique"):
        sample(LOGP, VOCAB, 2, seed=0, unique=True, constraints=Constraints(start="ab", end="ba", max_len=3))


@pytest.mark.parametrize(
    ("c", "message"),
    [
        (Constraints(start="acc"), "'cc'"),  # a bigram of probability 0
        (Constraints(end="cc"), "'cc'"),
        (Constraints(start="x"), "'x'"),  # outside the vocabulary
        (Constraints(min_len=5, max_len=3), "greater than --max-len"),
        (Constraints(start="ab", end="cb", max_len=3), "shorter than"),
    ],
)
def test_impossible_constraints_are_clear_errors(c, message):
    with pytest.raises(BigramError, match=message):
        sample(LOGP, VOCAB, 5, seed=0, constraints=c)


def test_rare_constraint_on_names_txt(names):
    from bigram.table import count_log_probs

    vocab = Vocab.from_names(names)
    lp = count_log_probs(count_bigrams(names, vocab), 1.0)
    got = sample(lp, vocab, 100, seed=0, constraints=Constraints(start="q", end="x", min_len=12))
    assert len(got) == 100 and all(w[0] == "q" and w[-1] == "x" and len(w) >= 12 for w in got)


def test_batched_sampling_reproduces_the_lecture_loop_distribution(names):
    """Frequencies of first letters and lengths agree with the model's exact marginals."""
    from bigram.table import count_log_probs

    vocab = Vocab.from_names(names)
    lp = count_log_probs(count_bigrams(names, vocab), 1.0)
    P = lp.exp()
    got = sample(lp, vocab, N, seed=5)
    first = Counter(w[0] for w in got)
    p_first = P[0, 1:] / (1 - P[0, 0])  # names are never empty: condition on that
    for i, ch in enumerate(vocab.chars):
        p = float(p_first[i])
        assert abs(first[ch] / N - p) <= 5 * math.sqrt(p * (1 - p) / N) + 1e-4


def test_cli_sample_constraints_and_json(invoke, tmp_path, tiny_corpus):
    out = tmp_path / "run"
    assert invoke("train", "--data", tiny_corpus, "--out", out, "--model", "count", "-q").exit_code == 0
    r = invoke("sample", out, "-n", 20, "--seed", 0, "--start", "a", "--end", "b", "--max-len", 4, "--json")
    rows = json.loads(r.stdout)  # stderr says P(the constraints)
    assert len(rows) == 20 and all(x["name"].startswith("a") and x["name"].endswith("b") for x in rows)
    assert all(x["nll"] == pytest.approx(-x["log_likelihood"] / (len(x["name"]) + 1)) for x in rows)
    r = invoke("sample", out, "--most-likely", 3)
    assert len(r.output.splitlines()) == 3
    r = invoke("sample", out, "--start", "zz")
    assert r.exit_code == 1 and r.output.startswith("error:")
    r = invoke("sample", out, "-n", 2, "--novel", "--unique", "--seed", 0, "--max-len", 3)
    assert r.exit_code == 0 and not set(r.stdout.split()) & {"ab", "b", "ba"}


def test_geometric_sum_by_solve_and_by_doubling_agree(monkeypatch):
    import bigram.exact.conditioning as conditioning

    g = torch.Generator().manual_seed(0)
    V = 300
    P = torch.rand(V, V, generator=g, dtype=torch.float64)
    P[:, 0] *= 20  # leaving is likely enough that walks end
    P /= P.sum(1, keepdim=True)
    Q, t = P.clone(), P[:, 0].clone()
    Q[:, 0] = 0
    solved = conditioning._geometric_sum(Q, t)
    monkeypatch.setattr(conditioning, "_SOLVE_ABOVE", 10**9)
    doubled = conditioning._geometric_sum(Q, t)
    assert torch.allclose(solved, doubled, atol=1e-12)
    assert torch.allclose(solved, torch.ones(V, dtype=torch.float64))  # every walk ends, surely
    # states 1 and 2 only lead to each other: they never leave, and (I − Q) is singular
    monkeypatch.setattr(conditioning, "_SOLVE_ABOVE", 2)
    Q = torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    assert conditioning._geometric_sum(Q, t).tolist() == [0.5, 0.0, 0.0]


def test_gmres_solves_the_end_constraint_like_a_dense_solve():
    """--end c at a large V: (I − Q) h = P[:, c] by GMRES equals numpy's dense solve, for spread
    and for peaked rows (names: a few likely next characters, many unlikely ones)."""
    import numpy as np

    from bigram.exact.conditioning import _gmres

    g = torch.Generator().manual_seed(1)
    V = 400
    for spread in (0.5, 4.0):
        logits = spread * torch.randn(V, V, generator=g, dtype=torch.float64)
        logits[:, 0] += 2.0  # names end
        P = torch.softmax(logits, 1)
        Q, t = P.clone(), P[:, 7].clone()
        Q[:, 0] = 0
        want = np.linalg.solve(np.eye(V) - Q.numpy(), t.numpy())
        got = _gmres(Q.mv, t)
        assert got is not None
        assert np.abs(got.numpy() - want).max() <= 1e-11 * np.abs(want).max()


def test_unconstrained_plans_skip_the_solve_only_when_every_state_can_end():
    """Σ_k Q^k t is all ones when every row can go to the boundary: the shortcut is the identity,
    not an approximation; a row that cannot end (P[c, 0] = 0) keeps the solve."""
    from bigram.exact.chain import of_table
    from bigram.exact.conditioning import Plan, _geometric_sum

    P = torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]], dtype=torch.float64)
    vocab = Vocab(("a", "b"))
    plan = Plan(of_table(P.log()), vocab, Constraints())
    Q = P.clone()
    Q[:, 0] = 0
    assert torch.allclose(_geometric_sum(Q, P[:, 0].clone()), torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert torch.equal(plan.tail, torch.ones(3, dtype=torch.float64))
    P2 = torch.tensor([[0.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], dtype=torch.float64)
    plan2 = Plan(of_table(P2.log()), vocab, Constraints())  # "a" loops for ever: it can never end a name
    assert torch.allclose(plan2.tail, torch.tensor([0.25, 0.0, 0.5], dtype=torch.float64), atol=1e-9)


small_table = st.lists(st.floats(0.05, 1.0), min_size=16, max_size=16)


def _all_names(L: int) -> list[str]:
    out = [""]
    for _ in range(L):
        out = [w + ch for w in out for ch in "abc"]
    return out


def _bigrams(w: str):
    ids = [0, *(" abc".index(ch) for ch in w), 0]
    return itertools.pairwise(ids)


def test_a_huge_max_len_plans_in_closed_form(invoke, run):
    t = time.perf_counter()
    r = invoke("sample", run, "-n", "50", "--seed", "0", "--max-len", "1000000000", "--model", "count")
    assert r.exit_code == 0, r.output
    assert time.perf_counter() - t < 10
    assert len(r.stdout.split()) == 50
    one_line_error(invoke("sample", run, "--min-len", "1000000000"), "--min-len")


def test_sampling_streams_in_blocks_with_the_same_names(monkeypatch):
    from bigram import sampling
    from bigram.vocab import Vocab

    lp = torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.2, 0.3], [0.4, 0.4, 0.2]]).clamp_min(1e-9).log()
    vocab = Vocab(("a", "b"))
    whole = sampling.sample(lp, vocab, 30, seed=3)
    monkeypatch.setattr(sampling, "BLOCK", 7)
    blocks = list(sampling.sample_blocks(lp, vocab, 30, seed=3))
    assert [len(b) for b in blocks] == [7, 7, 7, 7, 2]
    again = [n for b in sampling.sample_blocks(lp, vocab, 30, seed=3) for n in b]
    assert again == [n for b in blocks for n in b]  # deterministic per seed
    assert len(whole) == 30


def test_a_billion_names_stream_in_constant_memory(run):
    """`sample -n 10**9` prints as it goes: read a few hundred thousand lines, check the process
    stays small, stop it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(
        [sys.executable, "-m", "bigram", "sample", str(run), "-n", str(10**9), "--seed", "0"],
        stdout=subprocess.PIPE, env=env, cwd=run.parent,
    )  # fmt: skip
    try:
        for _ in range(400_000):
            assert p.stdout.readline()
        status = Path(f"/proc/{p.pid}/status").read_text()
        rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]) * 1024
        assert rss < 1.5 * 2**30, rss
    finally:
        p.kill()
        p.wait()


def test_most_likely_stops_at_its_bound_and_says_so():
    from bigram.sampling import SearchStopped, most_likely
    from bigram.vocab import Vocab

    lp = torch.full((3, 3), 1 / 3).log()  # every name of a length equally likely: a wide search
    with pytest.raises(SearchStopped, match="stopped") as e:
        most_likely(lp, Vocab(("a", "b")), 10_000, max_queued=500)
    found = e.value.found
    assert 0 < len(found) < 10_000
    assert [lp for _, lp in found] == sorted((lp for _, lp in found), reverse=True)


@given(
    weights=small_table,
    start=st.text("abc", max_size=2),
    end=st.text("abc", max_size=2),
    lo=st.integers(0, 4),
    span=st.one_of(st.none(), st.integers(0, 4)),
    seed=st.integers(0, 2**31),
)
def test_samples_meet_the_constraints(weights, start, end, lo, span, seed):
    P = torch.tensor(weights, dtype=torch.float64).view(4, 4)
    P[0, 0] = 0 if lo > 0 else P[0, 0]
    lp = (P / P.sum(1, keepdim=True)).log()
    vocab = Vocab(("a", "b", "c"))
    c = Constraints(start, end, lo, None if span is None else lo + span)
    try:
        names = sample(lp, vocab, 50, seed=seed, constraints=c)
    except BigramError as e:  # only when no name can meet them: check that by enumeration
        assert c.max_len is not None and "shorter than" in str(e), str(e)
        assert not any(
            w.startswith(start) and w.endswith(end)
            for L in range(c.min_len, c.max_len + 1)
            for w in _all_names(L)
        )
        return
    for w in names:
        assert w.startswith(start) and w.endswith(end)
        assert len(w) >= lo and (c.max_len is None or len(w) <= c.max_len)
        assert not math.isinf(sum(lp[a, b].item() for a, b in _bigrams(w)))


def test_lecture_flag_prints_the_lecture_loops_names(invoke, lecture_runs, names):
    """The lecture's cell, written out here: P = (N + 1) normalized in float32 from a plain count,
    g seeded with 2147483647, one torch.multinomial per character, names one after another."""
    from tests.reference import plain_counts

    alphabet = sorted({ch for w in names for ch in w})
    itos = [".", *alphabet]
    stoi = {ch: i for i, ch in enumerate(itos)}
    N = torch.zeros((27, 27), dtype=torch.int32)
    for (a, b), n in plain_counts(names).items():
        N[0 if a is None else stoi[a], 0 if b is None else stoi[b]] = n
    P = (N + 1).float()
    P /= P.sum(1, keepdims=True)
    g = torch.Generator().manual_seed(2147483647)
    want = []
    for _ in range(20):
        out, ix = [], 0
        while True:
            p = P[ix]
            ix = torch.multinomial(p, num_samples=1, replacement=True, generator=g).item()
            out.append(itos[ix])
            if ix == 0:
                break
        want.append("".join(out))
    assert want[:3] == ["cexze.", "momasurailezitynn.", "konimittain."]  # the lecture's printed names
    r = invoke("sample", lecture_runs[1], "--lecture", "-n", "20", "--model", "count")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == want
    r = invoke("sample", lecture_runs[1], "--lecture", "--top-k", "3", "--json")
    assert r.exit_code == 1
    assert "--lecture is the lecture's plain loop: it takes no --top-k, --json" in r.stderr


def _spaced_corpus(path: Path) -> Path:
    rng = random.Random(1)
    first = ["anna", "bob", "li", "jean", "mo", "x"]
    seps = [" ", "\t", "\u00a0", " "]
    lines = (f"{rng.choice(first)}{rng.choice(seps)}{rng.choice(first)}\n" for _ in range(400))
    path.write_text("".join(lines))
    return path


def test_samples_never_begin_or_end_with_white_space_and_score_as_sampled(invoke, tmp_path):
    run = train_run(invoke, _spaced_corpus(tmp_path / "ws.txt"), tmp_path / "r", "--order", "3",
                    "--smoothing", "kn", "--model", "count")  # fmt: skip
    r = invoke("sample", run, "-n", "2000", "--seed", "1", "--json")
    drawn = json.loads(r.stdout)
    assert len(drawn) == 2000 and all(d["name"] == d["name"].strip() for d in drawn)
    some = [d for d in drawn if d["name"] != d["name"].replace(" ", "")][:40]
    scored = json.loads(invoke("score", run, *[d["name"] for d in some], "--json").stdout)
    want = [d["log_likelihood"] for d in some]
    assert [s["log_likelihood"] for s in scored] == pytest.approx(want, rel=1e-12)
    best = invoke("sample", run, "--most-likely", "300").stdout.splitlines()
    assert len(best) == 300 and all(b == b.strip() for b in best)
    one_line_error(invoke("sample", run, "--start", " an"), "begins with white space")


def test_conditioning_on_producible_names_is_exact():
    """V = 3 (boundary, 'a', ' '): the names' frequencies equal the model's probabilities of the
    names without white space at either end, renormalized (enumerated here in plain Python)."""
    from bigram.sampling import sample
    from bigram.vocab import Vocab

    vocab = Vocab((" ", "a"))  # ids: 0 boundary, 1 ' ', 2 'a'
    P = torch.tensor([[0.0, 0.3, 0.7], [0.2, 0.3, 0.5], [0.4, 0.3, 0.3]], dtype=torch.float64)

    def prob(name: str) -> float:
        ids = [0, *(1 if c == " " else 2 for c in name), 0]
        return math.prod(float(P[a, b]) for a, b in itertools.pairwise(ids))

    names = [""]
    for _ in range(12):
        names += [n + c for n in names if len(n) == max(map(len, names)) for c in " a"]
    ok = {n: prob(n) for n in names if n and n == n.strip()}
    total = sum(ok.values())
    drawn = Counter(sample(P.log(), vocab, 100_000, seed=3))
    assert all(n == n.strip() for n in drawn)
    for n in ("a", "aa", "a a", "a  a", "aaa"):
        p = ok[n] / total
        assert abs(drawn[n] / 100_000 - p) < 4 * math.sqrt(p * (1 - p) / 100_000) + 1e-4, n


def test_most_likely_says_when_fewer_names_exist(invoke, small):
    r = invoke("sample", small, "--most-likely", "1000", "--max-len", "2")
    assert r.exit_code == 0
    found = r.stdout.split()
    assert len(found) == len({"a", "b", "aa", "ab", "ba", "bb"}) and len(found) < 1000
    assert f"only {len(found)} names meet the constraints" in r.stderr


def test_unique_is_bounded_before_anything_is_read(invoke, small):
    one_line_error(invoke("sample", small, "-n", "1000001", "--unique"), "at most 1,000,000")


# --- issue 44: the lecture's loop has a step cap; seeds are checked ------------------------------
def test_the_lecture_loop_stops_a_name_at_10000_characters():
    """After 'a' the boundary has P = 1e-99: no name ends, and the loop (one multinomial call a
    character) used to run for ever. It stops at the plain sampler's cap with a BigramError; a
    table whose names end keeps the loop's own names (the doctest's)."""
    from bigram.options import MAX_STEPS
    from bigram.sampling import lecture_names

    endless = torch.tensor([[0.0, 1.0], [1e-99, 1.0]]).double().log()
    start = time.perf_counter()
    with pytest.raises(BigramError, match=f"name 1 did not end within {MAX_STEPS:,} characters"):
        list(lecture_names(endless, Vocab(("a",)), 3, seed=0))
    assert time.perf_counter() - start < 5
    ends = torch.tensor([[0.0, 1.0], [0.5, 0.5]]).log()
    assert list(lecture_names(ends, Vocab(("a",)), 3, seed=0)) == ["a.", "a.", "aa."]


@pytest.mark.parametrize("seed", ["-1", str(2**64), "-18446744073709551616"])
def test_a_seed_outside_0_to_2_64_is_refused_like_train_refuses_it(invoke, small, seed):
    """train refuses such a seed (config.validate); sample took -1 (torch wrapped it round) and
    failed on 2^64 with a traceback. The library refuses it too."""
    from bigram.sampling import make_generator

    for flags in ((), ("--lecture",)):
        one_line_error(
            invoke("sample", small, "-n", "2", "--seed", seed, *flags), f"--seed {seed}: must be in"
        )
    with pytest.raises(BigramError):
        make_generator(int(seed))
    assert torch.equal(  # the ends of the range are seeds
        torch.rand(3, generator=make_generator(2**64 - 1)),
        torch.rand(3, generator=torch.Generator().manual_seed(2**64 - 1)),
    )
    assert invoke("sample", small, "-n", "2", "--seed", str(2**64 - 1)).exit_code == 0


def test_a_vocabulary_holding_a_line_break_is_refused_not_sampled(invoke, small):
    """Names are decoded with "\\n" standing for the boundary (Vocab.decode_flat), so a line
    break in vocab.json (no corpus or import makes one) would split names: the run is refused."""
    vocab = small / "vocab.json"
    d = json.loads(vocab.read_text(encoding="utf-8"))
    d["chars"] = sorted(["\n", *d["chars"]])
    vocab.write_text(json.dumps(d), encoding="utf-8")
    one_line_error(invoke("sample", small, "-n", "2"), "vocab.json", "must not be line breaks")
    with pytest.raises(ValueError, match="line breaks"):
        Vocab(("\r", "a"))
