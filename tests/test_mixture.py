"""A mix kept as its parts (bigram.mixture): every P equals Σ λᵢ Pᵢ computed from each part alone,
at orders 2–4 on names.txt and over a large alphabet; merged vocabularies follow the rule as
written out here in plain Python; a walk's state is its longest known suffix; a stored mix reads
back the same, and a damaged one is refused."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
import torch

from bigram.backoff import Table
from bigram.errors import BigramError
from bigram.formats.mix import mix_tables
from bigram.mixture import MAX_DEPTH, Mixture, lift
from bigram.reader.corpus import read_counts
from bigram.table import count_table
from bigram.vocab import Vocab
from tests.conftest import NAMES
from tests.reference import plain_names, wide_names


def counted(path: Path, order: int):
    c = read_counts(path, split="random", val_frac=0, test_frac=0, order=order)
    return c.splits["train"], c.vocab


def neural_like(V: int, seed: int) -> Table:
    """A dense order-2 table, as a trained neural model's softmax rows."""
    g = torch.Generator().manual_seed(seed)
    return Table.of_dense(torch.log_softmax(torch.randn(V, V, generator=g, dtype=torch.float64), 1))


def weighted_sum(parts, weights, ctx: torch.Tensor, V: int) -> torch.Tensor:
    """Σ λᵢ Pᵢ(· | ctx), each part reading the newest order − 1 tokens in its own table."""
    return sum(w * p.rows(ctx % V ** (p.order - 1)).exp() for p, w in zip(parts, weights, strict=True))


@pytest.fixture(scope="module")
def names_parts():
    out = {}
    for order in (2, 3, 4):
        counts, vocab = counted(NAMES, order)
        out[order] = (count_table(counts, 0.5), count_table(counts, "kn"), vocab)
    return out


@pytest.mark.parametrize("N", [2, 3, 4])
def test_add_k_kneser_ney_and_a_neural_table_mix_to_their_weighted_sum(names_parts, N):
    add_k, kn, vocab = names_parts[N]
    parts = [add_k, kn, names_parts[2][1], neural_like(vocab.size, N)]  # orders N, N, 2, 2
    weights = [0.1, 0.4, 0.2, 0.3]
    V = vocab.size
    mixed, union = mix_tables(parts, [vocab] * 4, weights)
    assert union == vocab and mixed.order == N and mixed.shape == (V ** (N - 1), V)
    every = torch.arange(V ** (N - 1))
    want = weighted_sum(parts, weights, every, V)
    assert torch.allclose(mixed.to_dense().exp(), want, rtol=0, atol=1e-12)
    sparse = Mixture(parts, weights)  # no dense copy: every read goes through the parts
    assert sparse.dense is None
    assert torch.allclose(sparse.rows(every).exp(), want, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(N)
    ctx, nxt = torch.randint(0, V ** (N - 1), (5000,), generator=g), torch.randint(0, V, (5000,), generator=g)
    assert torch.allclose(sparse.at(ctx, nxt).exp(), want[ctx, nxt], rtol=0, atol=1e-12)
    for j in range(N - 1):  # a shorter context: each part reads as much of it as it can
        short = ctx % V**j
        got = sparse.at(short, nxt, length=j).exp()
        ref = sum(w * p.at(short % V ** min(j, p.order - 1), nxt, length=min(j, p.order - 1)).exp()
                  for p, w in zip(parts, weights, strict=True))  # fmt: skip
        assert torch.allclose(got, ref, rtol=0, atol=1e-12)
    assert torch.allclose(want.sum(1), torch.ones(len(every), dtype=torch.float64), atol=1e-12)


def wide_corpus(path: Path) -> Path:
    path.write_text("\n".join(wide_names(plain_names(NAMES))) + "\n", encoding="utf-8")
    return path


def test_a_mix_over_a_large_alphabet_is_the_weighted_sum_of_its_parts(tmp_path):
    corpus = wide_corpus(tmp_path / "wide.txt")
    c3, vocab = counted(corpus, 3)
    c2, _ = counted(corpus, 2)
    V = vocab.size
    assert V > 500
    parts = [count_table(c3, 0.1), count_table(c3, "kn"), count_table(c2, "kn")]
    weights = [0.3, 0.5, 0.2]
    mixed, _ = mix_tables(parts, [vocab] * 3, weights)
    assert mixed.dense is None  # 540³ entries: never made
    seen = c3.coalesce().indices()[0].unique()
    g = torch.Generator().manual_seed(1)
    ctx = torch.cat(
        [seen[torch.randperm(len(seen), generator=g)[:1500]], torch.randint(0, V**2, (500,), generator=g)]
    )
    assert torch.allclose(mixed.rows(ctx).exp(), weighted_sum(parts, weights, ctx, V), rtol=0, atol=1e-12)
    assert mixed.entries == sum(p.entries for p in parts)  # its memory is its parts'


# --- vocabularies merged: the rule in plain Python --------------------------------------------
def add_k_counts(names: list[str], order: int) -> Counter:
    c: Counter = Counter()
    for w in names:
        s = (".",) * (order - 1) + tuple(w) + (".",)
        for i in range(order - 1, len(s)):
            c[s[i - order + 1 : i], s[i]] += 1
    return c


def plain_mix(h: tuple, w: str, models: list[dict]) -> float:
    """P(w | h) of the mix: the known suffix is the longest one some model saw, and at least the
    newest token (the vocabularies differ); a model sits out where that suffix holds, among the
    tokens it reads, a character it lacks; an add-k model reads a context it never saw (a
    character it lacks makes one) as uniform over its own tokens."""
    known = max([1] + [len(h[len(h) - m["order"] + 1 :]) for m in models
                       if h[len(h) - m["order"] + 1 :] in m["seen"]])  # fmt: skip
    num = den = 0.0
    for m in models:
        reads = h[len(h) - m["order"] + 1 :] if m["order"] > 1 else ()
        if any(t not in m["chars"] for t in reads[len(reads) - min(known, len(reads)) :]):
            continue
        V = len(m["chars"])
        if w not in m["chars"]:
            p = 0.0
        elif reads in m["seen"]:
            p = (m["counts"].get((reads, w), 0) + m["k"]) / (m["seen"][reads] + m["k"] * V)
        else:
            p = 1 / V
        num, den = num + m["weight"] * p, den + m["weight"]
    return num / den


def test_runs_of_different_alphabets_mix_by_the_rule(tmp_path):
    names = [w for w in NAMES.read_text().split("\n") if w]
    a = [w for w in names if set(w) <= set("abcdefghijklmnop")][:3000]
    b = [w for w in names if set(w) <= set("ehijklmnorstuvwyz")][:3000]
    models, tables, vocabs = [], [], []
    for data, order, k, weight in ((a, 3, 0.5, 0.5), (b, 2, 0.2, 0.3), (b, 3, 1.0, 0.2)):
        path = tmp_path / f"{len(models)}.txt"
        path.write_text("\n".join(data) + "\n")
        counts, vocab = counted(path, order)
        tables.append(count_table(counts, k))
        vocabs.append(vocab)
        c = add_k_counts(data, order)
        seen: Counter = Counter()
        for (ctx, _), n in c.items():
            seen[ctx] += n
        chars = {".", *vocab.chars}
        models.append({"order": order, "k": k, "weight": weight, "counts": c, "seen": seen, "chars": chars})
    mixed, union = mix_tables(tables, vocabs, [m["weight"] for m in models])
    U = union.size
    tokens = [".", *union.chars]
    got = mixed.to_dense().exp()
    for r in range(U * U):
        h = (tokens[r // U], tokens[r % U])
        want = [plain_mix(h, w, models) for w in tokens]
        assert got[r].tolist() == pytest.approx(want, abs=1e-12), h
    # a walk's state is its longest known suffix: contexts that share it share their row
    ctx = torch.arange(U * U)
    ell = mixed.known(ctx)
    groups: dict = {}
    for r, j in zip(ctx.tolist(), ell.tolist(), strict=True):
        groups.setdefault((j, r % U ** max(j, 0)), []).append(r)
    for rows in groups.values():
        assert torch.allclose(got[rows], got[rows[0]].expand(len(rows), -1), rtol=0, atol=1e-15)


def test_where_only_a_part_of_weight_zero_takes_part_the_row_is_uniform():
    va, vb = Vocab(("a",)), Vocab(("a", "b"))
    pa = Table.of_dense(torch.tensor([[0.5, 0.5], [0.25, 0.75]], dtype=torch.float64).log())
    pb = Table.of_dense(torch.full((3, 3), 1 / 3, dtype=torch.float64).log())
    mixed, _ = mix_tables([pa, pb], [va, vb], [1.0, 0.0])
    P = mixed.to_dense().exp()
    assert P[0].tolist() == pytest.approx([0.5, 0.5, 0.0], abs=1e-15)
    assert P[1].tolist() == pytest.approx([0.25, 0.75, 0.0], abs=1e-15)
    assert P[2].tolist() == pytest.approx([1 / 3] * 3, abs=1e-15)  # after b only B, of weight 0


def test_a_token_a_part_lacks_reads_zero_and_a_lower_order_part_its_own_context():
    v, union = Vocab(("a",)), Vocab(("a", "b"))
    uni = Table.of_dense(torch.tensor([[0.25, 0.75]], dtype=torch.float64).log())
    lifted = lift(uni, v, union)
    assert lifted.to_dense().exp().tolist() == [[0.25, 0.75, 0.0]]


def test_a_mix_of_a_mix_is_exact(names_parts):
    add_k, kn, vocab = names_parts[3]
    inner, _ = mix_tables([add_k, kn], [vocab, vocab], [0.25, 0.75])
    outer, _ = mix_tables([inner, names_parts[2][0]], [vocab, vocab], [0.6, 0.4])
    every = torch.arange(vocab.size**2)
    want = 0.6 * (0.25 * add_k.rows(every).exp() + 0.75 * kn.rows(every).exp())
    want += 0.4 * names_parts[2][0].rows(every % vocab.size).exp()
    assert torch.allclose(outer.to_dense().exp(), want, rtol=0, atol=1e-12)


# --- stored -----------------------------------------------------------------------------------
def stored(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_a_stored_mix_reads_back_the_same(names_parts, tmp_path):
    add_k, kn, vocab = names_parts[3]
    other = Vocab((*vocab.chars, "é"))
    inner, _ = mix_tables([add_k, kn], [vocab, vocab], [0.5, 0.5])
    mixed, union = mix_tables([inner, neural_like(other.size, 5)], [vocab, other], [0.7, 0.3])
    back = Mixture.of_state(stored(mixed.state()), union.size, "mix.pt")
    every = torch.arange(union.size**2)
    assert torch.equal(back.rows(every), mixed.rows(every))


def test_a_damaged_mix_is_refused(names_parts):
    add_k, kn, vocab = names_parts[2]
    mixed, _ = mix_tables([add_k, kn], [vocab, vocab], [0.5, 0.5])
    V = vocab.size

    def damaged(change) -> str:
        state = stored(mixed.state())
        change(state)
        with pytest.raises(BigramError) as e:
            Mixture.of_state(state, V, "mix.pt")
        return str(e.value)

    assert "weights" in damaged(lambda s: s.update(weights=torch.tensor([0.5, 0.6], dtype=torch.float64)))
    assert "tokens" in damaged(lambda s: s["own"].__setitem__(0, torch.tensor([1, 2])))
    assert "parts" in damaged(lambda s: s.pop("parts"))
    assert "sum to one" in damaged(lambda s: s["parts"][0]["table"]["levels"][1]["logp"].add_(0.1))
    deep = stored(mixed.state())
    for _ in range(MAX_DEPTH + 1):
        deep = {"order": 2, "weights": torch.ones(1, dtype=torch.float64), "parts": [{"mixture": deep}],
                "own": [torch.arange(V)]}  # fmt: skip
    with pytest.raises(BigramError, match="nest"):
        Mixture.of_state(deep, V, "mix.pt")


# --- one backoff table (what an ARPA file of the mix holds) --------------------------------------
def test_the_mix_in_backoff_form_gives_every_row_the_mix_gives(names_parts, tmp_path):
    """At orders 2–4 (add-k, Kneser-Ney, a dense table), over two alphabets, and a mix of a mix:
    one table in backoff form whose rows are the mix's, which reads back from its stored state."""
    from bigram.backoff import row_sum_error, table_of_state, table_state
    from bigram.mixture import backoff_form

    mixes = []
    for N in (2, 3, 4):
        add_k, kn, vocab = names_parts[N]
        mixes.append(mix_tables([add_k, kn, neural_like(vocab.size, N)], [vocab] * 3, [0.2, 0.5, 0.3])[0])
        mixes.append(mix_tables([add_k, names_parts[2][0]], [vocab] * 2, [0.7, 0.3])[0])
    add_k, kn, vocab = names_parts[3]
    other = Vocab(tuple("aeiouèò"))
    inner, _ = mix_tables([kn, add_k], [vocab, vocab], [0.5, 0.5])
    mixes.append(mix_tables([inner, neural_like(other.size, 1)], [vocab, other], [0.8, 0.2])[0])
    for mixed in mixes:
        table = backoff_form(mixed)
        every = torch.arange(mixed.shape[0])
        assert torch.allclose(table.rows(every).exp(), mixed.rows(every).exp(), rtol=0, atol=1e-12)
        assert row_sum_error(table) < 1e-12
        back = table_of_state(stored(table_state(table)), mixed.V, "x")
        assert torch.equal(back.rows(every), table.rows(every))
    with pytest.raises(BigramError, match="more than 100 entries"):
        backoff_form(mixes[0], limit=100)


def test_a_mix_of_add_k_models_lists_only_what_its_parts_have_seen(names_parts):
    """Add-k parts back off straight to the uniform root: the mix's rows list the tokens seen after
    each context (by either part), not V tokens."""
    from bigram.mixture import backoff_form

    (tri, _, vocab), bi = names_parts[3], names_parts[2][0]
    table = backoff_form(mix_tables([tri, bi], [vocab, vocab], [0.6, 0.4])[0])

    def listed(level) -> dict[int, set[int]]:
        return {
            int(h): set(level.cols[level.ptr[r] : level.ptr[r + 1]].tolist())
            for r, h in enumerate(level.keys)
        }

    seen3, seen2 = listed(tri.levels[2]), listed(bi.levels[1])
    assert listed(table.levels[1]) == seen2
    assert listed(table.levels[2]) == {
        h: cols | seen2.get(h % vocab.size, set()) for h, cols in seen3.items()
    }
    assert table.levels[0] is None


# --- the chain of a mix: its parts' chains summed (bigram.exact.mixed) ---------------------------
def random_names(chars: str, n: int, seed: int) -> list[str]:
    import random

    r = random.Random(seed)
    return ["".join(r.choice(chars) for _ in range(r.randint(1, 4))) for _ in range(n)]


@pytest.fixture(scope="module")
def small_mix(tmp_path_factory):
    """Over {a, b, c} (order 3, add-k), {c, d} (order 2, Kneser-Ney, and add-k of weight 0, mixed
    first), a mix of a mix over two vocabularies: every way a part reads, sits out or weighs 0."""
    from bigram.estimators.kneser_ney import kneser_ney_table

    root = tmp_path_factory.mktemp("small-mix")
    made = []
    for i, (chars, order) in enumerate((("abc", 3), ("cd", 2))):
        path = root / f"{i}.txt"
        path.write_text("\n".join(random_names(chars, 60, i)) + "\n", encoding="utf-8")
        made.append(counted(path, order))
    (abc, va), (cd, vc) = made
    inner, vi = mix_tables([kneser_ney_table(cd)[0], count_table(cd, 0.3)], [vc, vc], [1.0, 0.0])
    mixed, union = mix_tables([count_table(abc, 0.5), inner], [va, vi], [0.6, 0.4])
    mixed.dense = None  # read as a large mix is: its parts
    return mixed, union


def state_rows(mixed, st) -> torch.Tensor:
    """Each state's row, read from the mix at its context (Mixture.at), not from any chain."""
    rows = torch.empty(st.K, st.V, dtype=torch.float64)
    for s in range(st.K):
        key = torch.full((st.V,), int(st.key[s]))
        rows[s] = mixed.at(key, torch.arange(st.V), length=int(st.length[s])).exp()
    return rows


def test_the_chain_of_a_mix_is_the_mix_read_at_its_states(small_mix):
    """A MixChain's rows are the mix's at each state's context (and at every full context the
    state stands for); its products equal those of the same rows held as K×V matrices."""
    from bigram.exact import chain as chain_module
    from bigram.exact.mixed import MixChain

    mixed, _ = small_mix
    mc = MixChain(mixed)
    st = mc.states
    want = state_rows(mixed, st)
    P, succ = mc.rows(torch.arange(st.K))
    assert torch.allclose(P, want, rtol=0, atol=1e-15)
    every = torch.arange(mc.C)
    assert torch.allclose(mixed.rows(every).exp(), want[st.locate(every)], rtol=0, atol=1e-15)
    dense = chain_module.Chain(want, succ, None, mc.C, st.locate)
    g = torch.Generator().manual_seed(2)
    v = torch.rand(st.K, generator=g, dtype=torch.float64)
    assert torch.allclose(mc.Qv(v), dense.Qv(v), rtol=0, atol=1e-15)
    assert torch.allclose(mc.end, dense.end, rtol=0, atol=1e-15)
    assert torch.allclose(mc.prob_all(2), want[:, 2], rtol=0, atol=1e-15)
    assert bool((mc.Qmax(v.log()) >= dense.Qmax(v.log()) - 1e-12).all())
    for _ in range(5):
        can = torch.rand(st.K, generator=g) < 0.05
        assert torch.equal(mc.reach(can), dense.reach(can))


@pytest.mark.parametrize(
    ("c", "pattern"),
    [({"start": "a", "max_len": 4}, None), ({"end": "c", "min_len": 2, "max_len": 4}, None),
     ({"max_len": 4}, None), ({"max_len": 4}, "[ab]*c")],
)  # fmt: skip
def test_names_drawn_from_a_mix_by_its_parts_chains_are_exact(small_mix, c, pattern):
    """Every name meeting the constraints enumerated, its probability the product of the mix's
    P along it: the drawn names' frequencies, the total mass and the best names are theirs (a
    pattern's plan reads the mix as one backoff table)."""
    import itertools
    import math
    import re

    from bigram.exact import plans
    from bigram.exact.constraints import Constraints, Patterns
    from bigram.exact.mixed import MixChain
    from tests.reference import check_frequencies

    mixed, union = small_mix
    cons, pats = Constraints(**c), Patterns(pattern=pattern)
    V, N = union.size, mixed.order

    def logp(name: str) -> float:
        ids = [0] * (N - 1) + union.encode(name) + [0]
        ctx = [
            sum(ids[j - N + 1 + i] * V ** (N - 2 - i) for i in range(N - 1)) for j in range(N - 1, len(ids))
        ]
        return float(mixed.at(torch.tensor(ctx), torch.tensor(ids[N - 1 :])).sum())

    want = {}
    for n in range(max(cons.min_len, 1), cons.max_len + 1):
        for t in itertools.product(union.chars, repeat=n):
            w = "".join(t)
            if (
                w.startswith(cons.start)
                and w.endswith(cons.end)
                and (not pattern or re.fullmatch(pattern, w))
            ):
                want[w] = math.exp(logp(w))
    total = math.fsum(want.values())
    probs = {w: p / total for w, p in want.items() if p > 0}
    plan = plans.plan(MixChain(mixed), union, cons, pats)
    if pattern:
        mass = math.exp(plan.log_mass())  # the messages are kept in each pair's scale
    else:
        mass = math.exp(plan.log_mass_middle()) + math.fsum(math.exp(lp) for _, lp in plan.overlaps)
    assert mass == pytest.approx(total, rel=1e-9)
    check_frequencies(plan.draw(20_000, torch.Generator().manual_seed(5)), probs)
    top = sorted(want.values(), reverse=True)[:5]
    assert [lp for _, lp in plan.best(5)] == pytest.approx([math.log(p) for p in top], abs=1e-9)


def disjoint_parts(tmp_path: Path, n: int):
    """Two add-k bigram tables over disjoint alphabets of n characters each (CJK, Hangul), each
    character in a few names: (tables, vocabularies)."""
    import random

    tables, vocabs = [], []
    for i, base in enumerate((0x4E00, 0xAC00)):
        chars = [chr(base + k) for k in range(n)]
        r = random.Random(i)
        names = []
        for _ in range(2):
            r.shuffle(chars)
            names += ["".join(chars[k : k + 4]) for k in range(0, n, 4)]
        path = tmp_path / f"{i}.txt"
        path.write_text("\n".join(names) + "\n", encoding="utf-8")
        counts, vocab = counted(path, 2)
        tables.append(count_table(counts, 0.01))
        vocabs.append(vocab)
    return tables, vocabs


def test_a_mix_over_disjoint_alphabets_is_the_size_of_its_parts(tmp_path, monkeypatch):
    """Two parts over 600 characters each (V = 1,201: beyond the dense fast path's 2^20 entries):
    what the mix stores, and its chain (the states and the pairs its products read), grow with
    the parts' entries plus V, not with V²; as one backoff table it would list V² entries, and
    that is refused before a row is listed."""
    import bigram.mixture as mixture
    from bigram.exact.mixed import MixChain

    tables, vocabs = disjoint_parts(tmp_path, 600)
    mixed, union = mix_tables(tables, vocabs, [0.5, 0.5])
    U = union.size
    assert U == 1201 and mixed.dense is None
    parts = sum(lv.entries for t in tables for lv in t.levels if lv is not None)  # what they list
    stored = sum(x.numel() for x in torch.utils._pytree.tree_leaves(mixed.state()) if torch.is_tensor(x))
    assert stored <= 6 * (parts + U)  # keys, ptr, cols, logp, backoff a row or entry, own
    mc = MixChain(mixed)
    mc.Qv(torch.ones(mc.K, dtype=torch.float64))  # every part's pairs made
    assert mc.K <= U + 1
    pairs = sum(len(ch.s) for _, ch in mc.parts)
    assert pairs <= parts + 2 * mc.K < U * U // 20

    def listed(*args):
        raise AssertionError("a row was listed")

    monkeypatch.setattr(mixture, "_listed_on_chains", listed)
    with pytest.raises(BigramError, match=r"more than 100,000 entries \(at least 72[0-9,]+: its parts' voc"):
        mixture.backoff_form(mixed, limit=100_000)


def test_the_backoff_form_is_refused_as_soon_as_it_passes_its_cap(names_parts):
    """A mix whose backoff form lists E entries is written under a cap of E and refused under
    E − 1: the count is exact, and checked before the level that passes it is kept."""
    from bigram.mixture import backoff_form

    add_k, _, vocab = names_parts[3]
    mixed, _ = mix_tables([add_k, names_parts[2][0]], [vocab, vocab], [0.6, 0.4])

    def listed(t) -> int:
        return sum(lv.entries for lv in t.levels if lv is not None)

    E = listed(backoff_form(mixed))
    assert listed(backoff_form(mixed, limit=E)) == E
    with pytest.raises(BigramError, match=f"more than {E - 1:,} entries"):
        backoff_form(mixed, limit=E - 1)


def test_a_mix_nests_only_as_deep_as_a_stored_mix_is_read():
    """Mixing a mix again and again: up to MAX_DEPTH nested mixes it is made and reads back;
    one more is refused when it is made (no command could read it), in one line."""
    v = Vocab(("a",))
    t = Table.of_dense(torch.tensor([[0.5, 0.5], [0.25, 0.75]], dtype=torch.float64).log())
    mixed, _ = mix_tables([t, t], [v, v], [0.5, 0.5])
    for _ in range(MAX_DEPTH):
        mixed, _ = mix_tables([mixed, t], [v, v], [0.5, 0.5])
    back = Mixture.of_state(stored(mixed.state()), v.size, "mix.pt")
    assert torch.allclose(back.to_dense(), t.to_dense(), rtol=0, atol=1e-12)  # a mix of one table is it
    with pytest.raises(BigramError, match=f"nest mixes {MAX_DEPTH + 1} deep"):
        mix_tables([mixed, t], [v, v], [0.5, 0.5])
