"""Linear interpolation of tables (bigram.formats.mix): union vocabularies, lifted orders, EM weights."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections import Counter

import pytest
import torch

from bigram.errors import BigramError
from bigram.formats.mix import event_probs, fit_weights, heldout_events, mix_tables
from bigram.vocab import Vocab
from tests.conftest import NAMES


def add_one_table(names: list[str], vocab: Vocab, order: int) -> torch.Tensor:
    """log P of an add-one n-gram model, counted in plain Python (contexts padded with boundaries)."""
    V = vocab.size
    counts: Counter = Counter()
    for w in names:
        ids = [0] * (order - 1) + [vocab.id(ch) for ch in w] + [0]
        for j in range(order - 1, len(ids)):
            row = 0
            for t in ids[j - order + 1 : j]:
                row = row * V + t
            counts[row, ids[j]] += 1
    N = torch.ones(V ** (order - 1), V, dtype=torch.float64)
    for (r, c), n in counts.items():
        N[r, c] += n
    return (N / N.sum(1, keepdim=True)).log()


def test_the_union_vocabulary_gives_a_missing_character_zero_and_renormalizes_missing_contexts():
    """A over {a, b}, B over {b, c}: after b (both have it) the mix is λ·P_A + (1−λ)·P_B with
    P_A(c | b) = 0 and P_B(a | b) = 0; after a (only A has it) it is P_A's row; every row sums to 1."""
    va, vb = Vocab(("a", "b")), Vocab(("b", "c"))
    pa = torch.tensor([[0.0, 0.6, 0.4], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]], dtype=torch.float64)  # . a b
    pb = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.25, 0.25, 0.5]], dtype=torch.float64)  # . b c
    mixed, union = mix_tables([pa.log(), pb.log()], [va, vb], [0.7, 0.3])
    assert union.chars == ("a", "b", "c")
    P = mixed.to_dense().exp()
    a, b, c = 1, 2, 3
    # after b: A's row b is [. a b] = [0.1, 0.1, 0.8]; B's row b is [. b c] = [0.6, 0.1, 0.3]
    want_b = [0.7 * 0.1 + 0.3 * 0.6, 0.7 * 0.1, 0.7 * 0.8 + 0.3 * 0.1, 0.3 * 0.3]
    assert P[b].tolist() == pytest.approx(want_b, abs=1e-12)
    assert P[a].tolist() == pytest.approx([0.5, 0.2, 0.3, 0.0], abs=1e-12)  # only A knows a
    assert P[c].tolist() == pytest.approx([0.25, 0.0, 0.25, 0.5], abs=1e-12)  # only B knows c
    assert torch.allclose(P.sum(1), torch.ones(4, dtype=torch.float64))


def test_a_lower_order_model_is_lifted_exactly():
    """A unigram mixed with a trigram: every trigram context's row is λ·u + (1 − λ)·P(· | context),
    the unigram the same in every row; a bigram lifted to order 3 reads only the last token."""
    v = Vocab(("a", "b"))
    g = torch.Generator().manual_seed(0)
    uni = torch.rand(1, 3, generator=g, dtype=torch.float64)
    bi = torch.rand(3, 3, generator=g, dtype=torch.float64)
    tri = torch.rand(9, 3, generator=g, dtype=torch.float64)
    uni, bi, tri = (t / t.sum(1, keepdim=True) for t in (uni, bi, tri))
    mixed, _ = mix_tables([uni.log(), bi.log(), tri.log()], [v, v, v], [0.2, 0.3, 0.5])
    for row in range(9):
        last = row % 3
        want = 0.2 * uni[0] + 0.3 * bi[last] + 0.5 * tri[row]
        assert torch.allclose(mixed.rows(torch.tensor([row]))[0].exp(), want, atol=1e-12)


def test_weights_must_be_a_distribution():
    v = Vocab(("a",))
    t = torch.full((2, 2), 0.5, dtype=torch.float64).log()
    for bad in ([0.5, 0.6], [-0.1, 1.1], [float("nan"), 1.0]):
        with pytest.raises(BigramError, match="sum to 1"):
            mix_tables([t, t], [v, v], bad)


def test_em_never_raises_the_heldout_nll_and_stops_at_the_optimum():
    """names.txt split 80/10/10 by a seeded shuffle; add-one unigram, bigram and trigram tables
    counted in plain Python on the 80 %. EM on the 10 % val: the NLL never rises, the weights sum to
    one, and at the end they meet the optimum's condition (for a weight > 0, the mean over held-out
    events of Pᵢ / P_mix is 1), checked here from the tables directly."""
    names = [w for w in NAMES.read_text().split("\n") if w]
    random.Random(42).shuffle(names)
    n = len(names)
    train, val = names[: int(0.8 * n)], names[int(0.8 * n) : int(0.9 * n)]
    vocab = Vocab.from_names(names)
    tables = [add_one_table(train, vocab, order) for order in (1, 2, 3)]
    events = heldout_events(val, vocab, 3)
    probs = event_probs(mix_tables(tables, [vocab] * 3, [1 / 3] * 3)[0], events)
    fit = fit_weights(probs, events[2], tol=1e-10, max_iter=500)
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(fit.nll))
    assert len(fit.nll) > 3 and fit.nll[0] - fit.nll[-1] > 1e-3
    assert math.isclose(sum(fit.weights), 1.0)
    V = vocab.size
    ratios = torch.zeros(3, dtype=torch.float64)
    events = 0
    for w in val:
        ids = [0, 0] + [vocab.id(ch) for ch in w] + [0]
        for j in range(2, len(ids)):
            p = [tables[0][0, ids[j]].exp(), tables[1][ids[j - 1], ids[j]].exp()]
            p.append(tables[2][ids[j - 2] * V + ids[j - 1], ids[j]].exp())
            mixed = sum(lam * pi for lam, pi in zip(fit.weights, p, strict=True))
            ratios += torch.stack([pi / mixed for pi in p])
            events += 1
    ratios /= events
    for lam, r in zip(fit.weights, ratios.tolist(), strict=True):
        if lam > 1e-3:
            assert r == pytest.approx(1.0, abs=1e-4)
    # the printed NLL is the mixed table's own held-out NLL
    mixed_table, _ = mix_tables(tables, [vocab] * 3, fit.weights)
    nll = 0.0
    for w in val:
        ids = [0, 0] + [vocab.id(ch) for ch in w] + [0]
        nll -= sum(float(mixed_table.at(ids[j - 2] * V + ids[j - 1], ids[j])) for j in range(2, len(ids)))
    assert nll / events == pytest.approx(fit.nll[-1], abs=1e-9)


def _table(run, model):
    from bigram.runs import Run

    return Run.open(run).log_probs(model)


@pytest.fixture(scope="module")
def order_runs(tmp_path_factory):
    """names.txt (the default random split), count models of orders 1, 2 and 3."""
    from typer.testing import CliRunner

    from bigram.cli import app

    root = tmp_path_factory.mktemp("mix-runs")
    out = {}
    for order in (1, 2, 3):
        out[order] = root / f"o{order}"
        args = ["train", "--data", str(NAMES), "--out", str(out[order]), "--order", str(order),
                "--model", "count", "-q", "--no-figures"]  # fmt: skip
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
    return out


def test_mix_with_given_weights_writes_a_run_every_command_reads(invoke, order_runs, tmp_path):
    out = tmp_path / "m"
    parents = [f"{order_runs[2]}:count", str(order_runs[3])]
    r = invoke("mix", *parents, "--weights", "0.25,0.75", "--out", out)
    assert r.exit_code == 0, r.output
    got = _table(out, "mix").to_dense()
    b, t = _table(order_runs[2], "count").to_dense(), _table(order_runs[3], "count").to_dense()
    V = b.shape[0]
    want = (0.25 * b.exp()[torch.arange(V * V) % V] + 0.75 * t.exp()).log()  # the bigram reads the last token
    assert torch.allclose(got, want, atol=1e-12)
    recipe = __import__("json").loads((out / "mix.json").read_text())
    assert [p["weight"] for p in recipe["parents"]] == [0.25, 0.75]
    assert [p["model"] for p in recipe["parents"]] == ["count", "count"]
    commands = [
        ["sample", out, "-n", "5", "--start", "ka", "--end", "a", "--seed", "1"],
        ["score", out, "emma"],
        ["eval", out, "--data", NAMES],
        ["export", out, "--out", tmp_path / "m.arpa"],
        ["plot", out, "--out", tmp_path / "m.png"],
    ]
    for cmd in commands:
        res = invoke(*cmd)
        assert res.exit_code == 0, (cmd, res.output)
    names = invoke("sample", out, "-n", "5", "--start", "ka", "--end", "a", "--seed", "1").stdout.split()
    assert len(names) == 5 and all(w.startswith("ka") and w.endswith("a") for w in names)


def test_mix_auto_prints_a_falling_nll_and_beats_each_model_on_test(invoke, order_runs, tmp_path):
    """The classic lesson: unigram + bigram + trigram fitted on the shared val split; the
    printed NLL never rises, and the mix's test NLL is below each model's own."""
    out = tmp_path / "auto"
    r = invoke("mix", *(str(order_runs[o]) for o in (1, 2, 3)), "--out", out)
    assert r.exit_code == 0, r.output
    rows = [line.split(":", 1)[1] for line in r.output.splitlines() if re.match(r" +\d+: ", line)]
    nll = [float(x) for row in rows for x in row.split()]
    assert len(nll) > 2 and all(b <= a for a, b in itertools.pairwise(nll))
    from bigram.runs import Run

    test = {o: Run.open(order_runs[o]).evaluate("count")["count"]["test"]["nll"] for o in (1, 2, 3)}
    mixed = Run.open(out).evaluate("mix")["mix"]["test"]["nll"]
    assert mixed < min(test.values())
    printed = r.output.split("test NLL: ")[1].splitlines()[0]
    assert printed.endswith(f"mix {mixed:.6f}") and f"{order_runs[3]}:count {test[3]:.6f}" in printed


def test_an_exported_mix_is_one_backoff_table_that_scores_as_the_mix(invoke, order_runs, tmp_path):
    """`bigram export` writes the mix (kept as its parts) as one ARPA table; imported back, it
    scores names as the mix does, to the ARPA file's precision."""
    out = tmp_path / "m"
    assert invoke("mix", order_runs[2], order_runs[3], "--weights", "0.4,0.6", "--out", out).exit_code == 0
    r = invoke("export", out, "--out", tmp_path / "m.arpa")
    assert r.exit_code == 0, r.output
    assert "nan" not in (tmp_path / "m.arpa").read_text()
    assert invoke("import", tmp_path / "m.arpa", "--out", tmp_path / "back").exit_code == 0
    names = ["emma", "zoe", "xavier", "qqq"]
    want = json.loads(invoke("score", out, *names, "--json").stdout)
    got = json.loads(invoke("score", tmp_path / "back", *names, "--json").stdout)
    for g, w in zip(got, want, strict=True):
        assert g["log_likelihood"] == pytest.approx(w["log_likelihood"], abs=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ONE"], "two or more runs"),
        (["A", "B", "--weights", "0.5"], "1 weights for 2 runs"),
        (["A", "B", "--weights", "0.5,x"], "comma-separated numbers"),
        (["A", "B", "--weights", "0.6,0.6"], "sum to 1"),
    ],
)
def test_mix_refusals_are_one_line(invoke, order_runs, tmp_path, args, message):
    args = [str(order_runs[2]) if a in ("ONE", "A") else str(order_runs[3]) if a == "B" else a for a in args]
    r = invoke("mix", *args, "--out", tmp_path / "x")
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x").exists()


def test_mix_auto_needs_heldout_names_for_runs_of_different_corpora(invoke, order_runs, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(["anna", "bob", "cy", "dora", "eve"] * 40) + "\n")
    run = tmp_path / "o"
    assert (
        invoke("train", "--data", other, "--out", run, "-q", "--no-figures", "--model", "count").exit_code
        == 0
    )
    r = invoke("mix", order_runs[2], run, "--out", tmp_path / "x")
    assert r.exit_code == 1 and "--val FILE" in r.output, r.output
    val = tmp_path / "val.txt"
    val.write_text("anna\nemma\nbob\n")
    r = invoke("mix", order_runs[2], run, "--val", val, "--out", tmp_path / "x")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tol", "nan"], "--tol nan: must be a finite number ≥ 0"),
        (["--tol", "inf"], "--tol inf: must be a finite number ≥ 0"),
        (["--tol", "-1"], "--tol -1.0: must be a finite number ≥ 0"),
        (["--val", "EMPTY"], "has no names (it is empty or only blank lines)"),
        (["--val", "BLANK"], "has no names (it is empty or only blank lines)"),
    ],
)
def test_mix_tol_and_an_empty_val_are_refused_for_what_they_are(invoke, order_runs, tmp_path, args, message):
    """issue 44: --tol nan ran EM with a NaN stopping rule; an empty --val file was said to hold a
    name no model gives any probability."""
    (tmp_path / "EMPTY").write_text("")
    (tmp_path / "BLANK").write_text("\n  \n\n")
    args = [str(tmp_path / a) if a in ("EMPTY", "BLANK") else a for a in args]
    r = invoke("mix", order_runs[2], order_runs[3], *args, "--out", tmp_path / "x")
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x").exists()


# --- bounded by its parts (issue 44) ---------------------------------------------------------------
def one_line_refusal(r, *needles: str) -> None:
    assert r.exit_code == 1 and r.output.startswith("error:"), r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in r.output, (n, r.output)


@pytest.fixture(scope="module")
def disjoint_runs(tmp_path_factory):
    """Count runs over disjoint alphabets of 600 characters each (CJK ideographs, Hangul
    syllables), each character in two names: the issue's case, scaled down (V = 1,201: past the
    dense fast path's 2^20 entries, so the mix is read as its parts)."""
    from typer.testing import CliRunner

    from bigram.cli import app

    root = tmp_path_factory.mktemp("disjoint")
    out = []
    for i, base in enumerate((0x4E00, 0xAC00)):
        chars = [chr(base + k) for k in range(600)]
        r = random.Random(i)
        names = []
        for _ in range(2):
            r.shuffle(chars)
            names += ["".join(chars[k : k + 3]) for k in range(0, 600, 3)]
        data = root / f"{i}.txt"
        data.write_text("\n".join(names) + "\n", encoding="utf-8")
        run = root / f"run{i}"
        args = ["train", "--data", str(data), "--out", str(run), "--model", "count", "--smoothing", "0.01",
                "-q", "--no-figures"]  # fmt: skip
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        out.append(run)
    return out


def test_a_mix_of_disjoint_alphabets_is_written_and_sampled_in_its_parts_size(
    invoke, disjoint_runs, tmp_path, monkeypatch
):
    """The mixed run stores its parts (mix.pt about the size of the parents' count.pt, never the
    V² table: 1,201² float64 is 11.5 MB); sampled through its parts' chains (K×V matrices turned
    off here: they would be allowed at this size), every name is of one alphabet: after a
    character of one run the other sits out. As one ARPA table it would list V² entries: refused
    in one line, no file written."""
    import bigram.mixture as mixture
    from bigram.exact import chain as chain_module
    from bigram.exact import mixed

    a, b = disjoint_runs
    out = tmp_path / "m"
    assert invoke("mix", a, b, "--weights", "0.5,0.5", "--out", out).exit_code == 0
    parents = sum((p / "count.pt").stat().st_size for p in (a, b))
    assert (out / "mix.pt").stat().st_size < 4 * parents < 1201 * 1201 * 8 / 20
    monkeypatch.setattr(chain_module, "DENSE_CHAIN", 0)
    made = []

    class Seen(mixed.MixChain):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(mixed, "MixChain", Seen)
    r = invoke("sample", out, "-n", "200", "--seed", "3", "--max-len", "12")
    assert r.exit_code == 0, r.output
    assert len(made) == 1 and made[0].K <= 1202  # the root and each character: no V² anywhere
    names = r.stdout.split()
    assert len(names) == 200 and {n[0] < "\uac00" for n in names} == {True, False}
    assert all(len({ch < "\uac00" for ch in n.rstrip("…")}) == 1 for n in names)
    monkeypatch.setattr(mixture, "BACKOFF_LIMIT", 100_000)
    one_line_refusal(invoke("export", out, "--out", tmp_path / "m.arpa"), "more than 100,000 entries")
    assert not (tmp_path / "m.arpa").exists()


def test_a_union_beyond_trains_limit_is_refused_before_any_table_is_read(
    invoke, disjoint_runs, tmp_path, monkeypatch
):
    """train refuses a corpus of more than MAX_V − 256 characters beyond Latin-1; so does mix for
    the union of its runs' vocabularies (here with the limit lowered to 1,000: 1,200 > 1,000), in
    one line naming the limit, before a table is read, and nothing is written."""
    import bigram.reader.corpus as corpus
    from bigram.runs import Run

    monkeypatch.setattr(corpus, "MAX_V", 256 + 1000)

    def read(*args, **kwargs):
        raise AssertionError("a table was read")

    monkeypatch.setattr(Run, "log_probs", read)
    r = invoke("mix", *disjoint_runs, "--weights", "0.5,0.5", "--out", tmp_path / "x")
    one_line_refusal(r, "1,200 distinct characters beyond Latin-1", "train's limit of 1,000")
    assert not (tmp_path / "x").exists()


def test_hostile_mix_inputs_are_refused_in_one_line_and_leave_the_runs_whole(invoke, order_runs, tmp_path):
    """--tol NaN or negative, --out inside a parent, --out a parent with --overwrite, more runs
    than the cap, an empty --val, weights that are no distribution: each one line, exit 1,
    nothing written, the parents unchanged."""
    import shutil

    from bigram.combine import MAX_PARENTS

    two, three = str(order_runs[2]), str(order_runs[3])
    parent = tmp_path / "parent"
    shutil.copytree(order_runs[2], parent)
    before = {p: p.read_bytes() for p in parent.rglob("*") if p.is_file()}  # its event directories too
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    cases = [
        (["--tol", "nan"], "--tol nan"),
        (["--tol", "-1"], "--tol -1"),
        (["--weights", "nan,0.5"], "sum to 1"),
        (["--weights", "1e300,1e300"], "sum to 1"),
        (["--weights", "inf,0"], "sum to 1"),
        (["--weights", "0,0"], "sum to 1"),
        (["--val", empty], "has no names"),
    ]
    for extra, needle in cases:
        one_line_refusal(invoke("mix", two, three, *extra, "--out", tmp_path / "x"), needle)
        assert not (tmp_path / "x").exists()
    inside = parent / "sub"
    one_line_refusal(
        invoke("mix", parent, three, "--weights", "0.5,0.5", "--out", inside), "lies inside the run"
    )
    one_line_refusal(
        invoke("mix", parent, three, "--weights", "0.5,0.5", "--out", parent, "--overwrite"), "is the run"
    )
    assert {p: p.read_bytes() for p in parent.rglob("*") if p.is_file()} == before
    many = [two] * (MAX_PARENTS + 1)
    one_line_refusal(invoke("mix", *many, "--out", tmp_path / "x"), f"at most {MAX_PARENTS}")
    assert not (tmp_path / "x").exists()


def test_an_imported_run_mixes_with_a_trained_run_of_its_order_and_is_refused_alone(
    invoke, order_runs, tmp_path
):
    """An imported run has no splits: mixed with a trained run of the same order, the mix takes
    that run's (whichever is named first); as the only run of the highest order it is refused up
    front, in one line."""
    arpa = tmp_path / "tri.arpa"
    assert invoke("export", order_runs[3], "--out", arpa).exit_code == 0
    assert invoke("import", arpa, "--out", tmp_path / "imp").exit_code == 0
    r = invoke("mix", tmp_path / "imp", order_runs[3], "--weights", "0.5,0.5", "--out", tmp_path / "m")
    assert r.exit_code == 0, r.output
    assert invoke("eval", tmp_path / "m").exit_code == 0
    r = invoke("mix", tmp_path / "imp", order_runs[2], "--weights", "0.5,0.5", "--out", tmp_path / "x")
    one_line_refusal(r, "imported from an ARPA file", "add a trained run of order 3")
    assert not (tmp_path / "x").exists()


def test_without_out_the_mix_is_a_new_run_under_runs(invoke, order_runs, tmp_path):
    """No --out: a new runs/<date>_<time>, as train and import make, the newest run, so that the
    commands that read the newest read it; the same table as a mix written to a named --out."""
    parents = [f"{order_runs[2]}:count", f"{order_runs[3]}:count"]
    r = invoke("mix", *parents, "--weights", "0.4,0.6")
    assert r.exit_code == 0, r.output
    made = [p for p in (tmp_path / "runs").iterdir()]
    assert len(made) == 1 and r.stdout.endswith(f"wrote runs/{made[0].name}\n")
    assert invoke("mix", *parents, "--weights", "0.4,0.6", "--out", tmp_path / "named").exit_code == 0
    assert torch.equal(_table(made[0], "mix").to_dense(), _table(tmp_path / "named", "mix").to_dense())
    r = invoke("sample", "-n", "1", "--seed", "0")
    assert r.exit_code == 0 and f"using run runs/{made[0].name}" in r.stderr
