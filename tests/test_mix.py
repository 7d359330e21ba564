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
    names = invoke("sample", out, "-n", "5", "--start", "ka", "--end", "a", "--seed", "1").output.split()
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
