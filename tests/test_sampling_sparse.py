"""Sampling on the sparse table (bigram.backoff): the chain of exact/sparse.py against plain
Python (its states are Markov, each reads its context's row), exact conditioning against brute-
force enumeration on sparse models over 78 characters at orders 3 and 4 (add-k and Kneser-Ney,
the chain held as K×V matrices and as a SparseChain), and the same names from a dense and a
sparse table on names.txt at orders 2–5.

The 78 characters: names.txt's names, each written in one of three scripts (Latin, Greek,
Cyrillic letters, by the name's line number), as a multilingual list is."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import pytest
import torch

from bigram.errors import BigramError
from bigram.exact import chain as chain_module
from bigram.exact.constraints import Constraints, Patterns
from tests.conftest import NAMES
from tests.reference import check_frequencies, plain_names

SCRIPTS = [0x61, 0x3B1, 0x430]  # a…z, α…, а…: 26 letters each


def scripted(name: str, k: int, scripts=SCRIPTS) -> str:
    return "".join(chr(scripts[k % len(scripts)] + ord(ch) - 0x61) for ch in name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("sparse") / "scripts.txt"
    path.write_text(
        "".join(scripted(w, k) + "\n" for k, w in enumerate(plain_names(NAMES))), encoding="utf-8"
    )
    return path


_TABLES: dict = {}


def table_of(corpus, order: int, kind: str):
    """(sparse table, vocabulary) of the corpus: Kneser-Ney or add-0.5, its dense copy dropped."""
    from bigram.estimators.kneser_ney import kneser_ney_table
    from bigram.reader.corpus import read_counts
    from bigram.table import count_table

    key = (str(corpus), order, kind)
    if key not in _TABLES:
        cc = read_counts(corpus, split="random", seed=1, val_frac=0.1, test_frac=0.1, order=order)
        counts = cc.splits["train"]
        t = kneser_ney_table(counts)[0] if kind == "kn" else count_table(counts, 0.5)
        t.dense = None  # the sparse form, whatever its size
        _TABLES[key] = (t, cc.vocab)
    return _TABLES[key]


# --- a plain-Python reading of a backoff table ---------------------------------------------------
def plain_levels(t) -> list[dict[tuple[int, ...], tuple[dict[int, float], float]]]:
    """Each level as {context tokens: ({token: log P listed}, log β)}, from its arrays."""
    out = []
    for j, lv in enumerate(t.levels):
        rows: dict = {}
        if lv is not None:
            keys, ptr, cols, logp = lv.keys.tolist(), lv.ptr.tolist(), lv.cols.tolist(), lv.logp.tolist()
            for r, key in enumerate(keys):
                ctx = tuple((key // t.V ** (j - 1 - i)) % t.V for i in range(j))
                listed = {cols[e]: logp[e] for e in range(ptr[r], ptr[r + 1])}
                rows[ctx] = (listed, float(lv.backoff[r]))
        out.append(rows)
    return out


def plain_logp(levels, V: int, h: tuple[int, ...], w: int) -> float:
    """The ARPA rule: listed at the longest known suffix of h, else its β times the next one's…,
    else 1/V."""
    total = 0.0
    for j in range(len(h), -1, -1):
        row = levels[j].get(h[len(h) - j :])
        if row is not None:
            if w in row[0]:
                return total + row[0][w]
            total += row[1]
    return total - math.log(V)


def plain_name_logp(levels, V: int, order: int, ids: list[int]) -> float:
    toks = [0] * (order - 1) + ids + [0]
    return math.fsum(
        plain_logp(levels, V, tuple(toks[i - order + 1 : i]), toks[i]) for i in range(order - 1, len(toks))
    )


# --- the states: Markov, and each with its context's row -----------------------------------------
@pytest.mark.parametrize("kind", ["kn", "add"])
def test_states_are_the_longest_suffix_in_the_prefix_closure_and_markov(corpus, kind):
    from bigram.exact.sparse import States

    t, vocab = table_of(corpus, 4, kind)
    V, top = t.V, t.order - 1
    levels = plain_levels(t)
    S = {()} | {ctx[:i] for lv in levels for ctx in lv for i in range(len(ctx) + 1)}
    st = States(t)
    assert len(S) == st.K

    def state(h: tuple[int, ...]) -> tuple[int, ...]:
        return next(h[len(h) - m :] for m in range(len(h), -1, -1) if h[len(h) - m :] in S)

    def tokens(s: int) -> tuple[int, ...]:
        n, key = int(st.length[s]), int(st.key[s])
        return tuple((key // V ** (n - 1 - i)) % V for i in range(n))

    g = torch.Generator().manual_seed(0)
    walks = [vocab.encode(w) for w in plain_names(corpus)[:150]]
    walks += [torch.randint(1, V, (6,), generator=g).tolist() for _ in range(50)]  # unseen contexts
    for ids in walks:
        toks = [0] * top + ids
        for i in range(top, len(toks)):
            h = tuple(toks[i - top : i])
            key = sum(c * V ** (top - 1 - k) for k, c in enumerate(h))
            s = int(st.locate(torch.tensor([key]))[0])
            assert tokens(s) == state(h)
            w = toks[i]
            after = int(st.next(torch.tensor([s]), torch.tensor([w]))[0])
            assert tokens(after) == state((*h[1:], w))  # Markov: the state's next is h·w's state
        row = st.block(torch.tensor([s]))[0][0]  # the last context's whole row, as the table reads it
        want = [plain_logp(levels, V, h, w) for w in range(V)]
        assert row.tolist() == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("kind", ["kn", "add"])
def test_the_sparse_products_equal_the_dense_ones(corpus, kind):
    """Q·v, the reachability sweep and P(end) of a SparseChain equal those of the same states
    held as K×V matrices; its max-product is an upper bound of the max."""
    from bigram.exact.sparse import SparseChain, States

    t, _ = table_of(corpus, 4, kind)
    st = States(t)
    lp, succ = st.block(torch.arange(st.K))
    dense = chain_module.Chain(lp.exp(), succ, None, t.V ** (t.order - 1), st.locate)
    for T in (1.0, 0.7):
        sparse = SparseChain(st, lambda rows, T=T: torch.softmax(rows / T, 1), temperature=T)
        dense = chain_module.Chain(torch.softmax(lp / T, 1), succ, None, t.V ** (t.order - 1), st.locate)
        g = torch.Generator().manual_seed(1)
        v = torch.rand(st.K, generator=g, dtype=torch.float64)
        assert torch.allclose(sparse.Qv(v), dense.Qv(v), rtol=0, atol=1e-14)
        assert torch.allclose(sparse.end, dense.end, rtol=1e-12, atol=0)
        assert bool((sparse.Qmax(v.log()) >= dense.Qmax(v.log()) - 1e-12).all())
        can = torch.rand(st.K, generator=g) < 0.002
        assert torch.equal(sparse.reach(can), dense.reach(can))


# --- exact conditioning against enumeration --------------------------------------------------------
def candidates(c: Constraints, alphabet: list[str]):
    """Every name meeting the start, end and lengths (max_len given): S + middle + E, and the
    shorter names where S and E overlap."""
    fixed = len(c.start) + len(c.end)
    for n in range(max(c.min_len, 1), c.max_len + 1):
        if n >= fixed:
            for mid in itertools.product(alphabet, repeat=n - fixed):
                yield c.start + "".join(mid) + c.end
        else:
            w = c.start + c.end[fixed - n :]
            if len(w) == n and w.startswith(c.start) and w.endswith(c.end):
                yield w


def _ok(w: str, p: Patterns) -> bool:
    return (
        (p.pattern is None or re.fullmatch(p.pattern, w) is not None)
        and all(s in w for s in p.contains)
        and not any(s in w for s in p.not_contains + p.blocklist)
    )


LAT, GRK = (lambda s: scripted(s, 0)), (lambda s: scripted(s, 1))
# (constraints, patterns, the characters a name meeting them is made of: None, any)
CASES = [
    (Constraints(start=LAT("an"), end=LAT("a"), min_len=3, max_len=5), Patterns(), None),
    (Constraints(end=GRK("na"), min_len=4, max_len=4), Patterns(), None),
    (Constraints(max_len=5), Patterns(pattern=f"[{LAT('abc')}]+[{LAT('ey')}]"), LAT("abcey")),
    (Constraints(start=LAT("m"), max_len=3), Patterns(blocklist=(LAT("a"), GRK("a"))), None),
    (Constraints(max_len=3), Patterns(contains=(GRK("an"),)), None),
]


_CHAINS: dict = {}


def chain_of(corpus, order: int, kind: str, held: str):
    """The model's chain, made once: as K×V matrices (chain.of_table's choice at this size) or
    as a SparseChain (its choice beyond DENSE_CHAIN)."""
    from bigram.exact.sparse import SparseChain, States

    key = (order, kind, held)
    if key not in _CHAINS:
        t, _ = table_of(corpus, order, kind)
        made = chain_module.of_table(t) if held == "matrices" else SparseChain(States(t), torch.exp)
        assert isinstance(made, chain_module.Chain) == (held == "matrices")
        _CHAINS[key] = made
    return _CHAINS[key]


@pytest.mark.parametrize("held", ["matrices", "sparse"])
@pytest.mark.parametrize("kind", ["kn", "add"])
@pytest.mark.parametrize("order", [3, 4])
@pytest.mark.parametrize(("c", "patterns", "chars"), CASES)
def test_exact_sampling_and_best_names_on_a_sparse_model(corpus, held, kind, order, c, patterns, chars):
    """Every name meeting the constraints enumerated (their probabilities in plain Python): the
    drawn names' frequencies are theirs, conditioned; the best names are the most probable.
    (The plans sampling.sample and most_likely make, on one chain per model.)"""
    from bigram.exact import plans

    t, vocab = table_of(corpus, order, kind)
    levels = plain_levels(t)
    want = {}
    for w in candidates(c, list(chars or vocab.chars)):
        if _ok(w, patterns):
            want[w] = math.exp(plain_name_logp(levels, t.V, order, vocab.encode(w)))
    total = math.fsum(want.values())
    probs = {w: p / total for w, p in want.items() if p > 0}
    plan = plans.plan(chain_of(corpus, order, kind, held), vocab, c, patterns)
    if patterns:  # the messages' mass of every completion from the start: P(constraints) itself
        mass = math.exp(plan.log_mass())
    else:
        mass = math.exp(plan.log_mass_middle()) + math.fsum(math.exp(lp) for _, lp in plan.overlaps)
    assert mass == pytest.approx(total, rel=1e-9)
    check_frequencies(plan.draw(20_000, torch.Generator().manual_seed(5)), probs)
    best = plan.best(6)
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:6]
    assert [lp for _, lp in best] == pytest.approx([math.log(p * total) for _, p in top], abs=1e-9)
    for w, lp in best:
        assert lp == pytest.approx(math.log(want[w]), abs=1e-9)


# --- dense and sparse tables draw the same names --------------------------------------------------
@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_dense_and_sparse_tables_draw_the_same_names_on_names_txt(order, monkeypatch):
    """Same seed, same names: the plain loop (the same rows, so the same draws) at orders 2–5,
    and exact sampling under constraints (messages equal to rounding). The dense table (C·V held
    whole) runs the contexts' chain, merged (chain.merge); the sparse one the states' chain, as
    K×V matrices and as a SparseChain. At order 5 names.txt's table is sparse only: its two
    chains are compared."""
    from bigram.backoff import Table
    from bigram.estimators.kneser_ney import kneser_ney_table
    from bigram.reader.corpus import read_counts
    from bigram.sampling import lecture_names, most_likely, sample, sample_plain

    cc = read_counts(NAMES, split="random", seed=1, val_frac=0.1, test_frac=0.1, order=order)
    sparse, vocab = kneser_ney_table(cc.splits["train"])[0], cc.vocab
    sparse.dense = None
    tables = [sparse]
    if order <= 4:
        tables.append(Table.of_dense(sparse.to_dense()))
    plain = [sample_plain(t, vocab, 300, seed=2, max_len=30) for t in tables]
    assert all(p == plain[0] for p in plain)
    if order <= 3:  # the dense table's P whole, the sparse one's a row at a time: the same floats
        assert list(lecture_names(tables[0], vocab, 20)) == list(lecture_names(tables[1], vocab, 20))
    c = Constraints(start="m", end="a", min_len=4)
    runs = [
        (sample(t, vocab, 500, seed=3, constraints=c), most_likely(t, vocab, 5, constraints=c))
        for t in tables
    ]
    monkeypatch.setattr(chain_module, "DENSE_CHAIN", 0)
    runs.append(
        (sample(sparse, vocab, 500, seed=3, constraints=c), most_likely(sparse, vocab, 5, constraints=c))
    )
    for names, best in runs[1:]:
        assert names == runs[0][0]
        assert [w for w, _ in best] == [w for w, _ in runs[0][1]]
        assert [lp for _, lp in best] == pytest.approx([lp for _, lp in runs[0][1]], abs=1e-9)


@pytest.mark.parametrize(
    "shape", [{"temperature": 0.7}, {"top_k": 4}, {"top_p": 0.8}, {"temperature": 1.3, "top_p": 0.95}]
)
def test_temperature_top_k_top_p_on_a_sparse_chain(corpus, monkeypatch, shape):
    """Rows adjusted alike whether the chain is held as matrices or sparse (temperature keeps
    the backoff form; top-k and top-p list each row whole): the same names."""
    from bigram.sampling import most_likely, sample

    t, vocab = table_of(corpus, 3, "kn")
    c = Constraints(end=LAT("n"), max_len=8)
    want = (
        sample(t, vocab, 2000, seed=4, constraints=c, **shape),
        most_likely(t, vocab, 4, constraints=c, **shape),
    )
    monkeypatch.setattr(chain_module, "DENSE_CHAIN", 0)
    got = (
        sample(t, vocab, 2000, seed=4, constraints=c, **shape),
        most_likely(t, vocab, 4, constraints=c, **shape),
    )
    assert got[0] == want[0]
    assert [w for w, _ in got[1]] == [w for w, _ in want[1]]
    assert [lp for _, lp in got[1]] == pytest.approx([lp for _, lp in want[1]], abs=1e-9)


def test_top_p_that_lists_too_much_is_refused_in_one_line(corpus, monkeypatch):
    from bigram.exact import sparse
    from bigram.sampling import sample

    t, vocab = table_of(corpus, 3, "kn")
    monkeypatch.setattr(chain_module, "DENSE_CHAIN", 0)
    monkeypatch.setattr(sparse, "MAX_LISTED", 1000)
    with pytest.raises(BigramError, match=r"keep more than [\d,]+ entries .* \(limit 1,000\)") as e:
        sample(t, vocab, 5, seed=0, top_p=0.99)
    assert len(str(e.value).splitlines()) == 1


def test_a_large_alphabet_at_order_4_samples_exactly_without_its_contexts(tmp_path):
    """520 characters (20 scripts) at order 4: C = 521³ ≈ 1.4e8 contexts, C·V ≈ 7e10 entries,
    never allocated. Constrained names meet their constraints and the best ones are ordered."""
    from bigram.estimators.kneser_ney import kneser_ney_table
    from bigram.reader.corpus import read_counts
    from bigram.sampling import most_likely, sample

    scripts = [0x4E00 + 26 * k for k in range(20)]
    path = tmp_path / "many.txt"
    path.write_text(
        "".join(scripted(w, k, scripts) + "\n" for k, w in enumerate(plain_names(NAMES))), encoding="utf-8"
    )
    cc = read_counts(path, split="random", seed=1, val_frac=0.1, test_frac=0.1, order=4)
    t, vocab = kneser_ney_table(cc.splits["train"])[0], cc.vocab
    assert t.dense is None and t.V == 521
    chain = chain_module.of_table(t)
    assert not isinstance(chain, chain_module.Chain)  # K·V beyond DENSE_CHAIN: sparse
    start, end = scripted("ma", 3, scripts), scripted("a", 3, scripts)
    c = Constraints(start=start, end=end, min_len=4, max_len=9)
    names = sample(t, vocab, 3000, seed=1, constraints=c)
    assert all(w.startswith(start) and w.endswith(end) and 4 <= len(w) <= 9 for w in names)
    top = Counter(names).most_common(1)[0][0]
    best = most_likely(t, vocab, 5, constraints=c)
    assert best[0][0] == top
    assert [lp for _, lp in best] == sorted((lp for _, lp in best), reverse=True)
    levels = plain_levels(t)
    for w, lp in best:
        assert lp == pytest.approx(plain_name_logp(levels, t.V, 4, vocab.encode(w)), abs=1e-9)
