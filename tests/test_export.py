"""Export (formats/export.py): ARPA files read back by KenLM and by a plain-Python ARPA reader, exact
below log10 P = −99, a dense table past the cap refused; JSON (written by blocks) and CSV."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from tests.conftest import NAMES, one_line_error, train_run
from tests.reference import LN10, arpa_log10, plain_names, read_arpa


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from typer.testing import CliRunner

    from bigram.cli import app

    root = tmp_path_factory.mktemp("export")
    odd = root / "odd.txt"  # spaces inside names, a dot, a tab-like invisible character
    odd.write_text("mary ann\nj.r.\nanna\nann\u200dmarie\nbob\n" * 3, encoding="utf-8")
    made = {}
    for name, data, extra in [
        ("k1", NAMES, ["--smoothing", "1"]),
        ("k0", NAMES, ["--smoothing", "0"]),
        ("odd", odd, ["--smoothing", "0.5"]),
        ("o3k1", NAMES, ["--smoothing", "1", "--order", "3"]),
        ("o3k0", NAMES, ["--smoothing", "0", "--order", "3"]),
        ("o4", NAMES, ["--smoothing", "0.1", "--order", "4"]),
        ("o1", NAMES, ["--smoothing", "0", "--order", "1"]),
        ("odd3", odd, ["--smoothing", "0.5", "--order", "3"]),
        ("kn1", NAMES, ["--smoothing", "kn", "--order", "1", "--model", "count"]),
        ("kn2", NAMES, ["--smoothing", "kn", "--model", "count"]),
        ("kn3", NAMES, ["--smoothing", "kn", "--order", "3", "--model", "count"]),
        ("kn5", NAMES, ["--smoothing", "kn", "--order", "5", "--model", "count"]),
        ("oddkn4", odd, ["--smoothing", "kn", "--order", "4", "--model", "count"]),  # every length falls back
    ]:
        out = root / name
        args = ["train", "--data", str(data), "--out", str(out), "--val-frac", "0", "--test-frac", "0",
                "--steps", "30", "--optimizer", "lbfgs", "-q", *extra]  # fmt: skip
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        made[name] = out
    return made


def export(invoke, run, fmt, model, out):
    r = invoke("export", run, "--format", fmt, "--model", model, "--out", out)
    assert r.exit_code == 0, r.output
    return out


def names_to_check(run_name: str) -> list[str]:
    if run_name.startswith("odd"):
        return ["mary ann", "j.r.", "ann\u200dmarie", "bob", "anna"]
    return [*plain_names(NAMES)[::160], "andrejq", "qzx", "a"]  # the last ones: unseen bigrams


KN_RUNS = ["kn1", "kn2", "kn3", "kn5", "oddkn4"]


@pytest.mark.parametrize("run_name", ["k1", "k0", "odd", "o3k1", "o3k0", "o4", "o1", "odd3", *KN_RUNS])
@pytest.mark.parametrize("model", ["count", "neural"])
def test_arpa_scores_equal_bigram_scores(invoke, runs, tmp_path, run_name, model):
    from bigram.formats.export import arpa_sentence

    run = runs[run_name]
    if model == "neural" and run_name in ("o4", "odd3", *KN_RUNS):
        pytest.skip("the count model covers these (Kneser-Ney runs train only it)")
    path = export(invoke, run, "arpa", model, tmp_path / "m.arpa")
    names = names_to_check(run_name)
    scores = json.loads(invoke("score", run, *names, "--model", model, "--json").output)
    grams = read_arpa(path)
    try:
        import kenlm

        lm = kenlm.Model(str(path))
    except ImportError:  # pragma: no cover - kenlm is in requirements-dev.txt
        lm = None
    for s in scores:
        tokens = arpa_sentence(s["name"]).split(" ")
        assert all((t,) in grams for t in tokens), tokens  # every character has its token
        ours = s["log_likelihood"]
        plain = arpa_log10(grams, tokens) * LN10
        if ours == -math.inf:  # probability 0: the file says "never" (log10 −99)
            assert plain < -99 * LN10 / 2
            continue
        assert plain == pytest.approx(ours, abs=1e-6)
        if lm is not None:
            assert lm.score(" ".join(tokens), bos=True, eos=True) * LN10 == pytest.approx(ours, abs=1e-4)
    bigrams = [g for g in grams if len(g) == 2]
    if run_name == "k1" and model == "count":
        assert len(bigrams) == 627  # only the seen bigrams are listed; the rest is backoff
    if run_name in ("k1", "k0", "odd") and model == "neural":
        unigrams = [g for g in grams if len(g) == 1]
        assert len(bigrams) == (len(unigrams) - 2) ** 2  # every bigram (<s>/chars × </s>/chars)
    if run_name == "o3k1" and model == "count":  # the seen trigrams are listed, as ARPA n-grams
        seen = set()
        for w in plain_names(NAMES):
            chs = ["<s>", *w, "</s>"]
            seen |= {(*chs[max(0, i - 2) : i], chs[i]) for i in range(1, len(chs))}  # "<s> a" is ". . a"
        real = {g for g in grams if len(g) == 3 or (g[0] == "<s>" and len(g) == 2)}
        assert real == seen
    if run_name in ("kn3", "kn5") and model == "count":  # compact: exactly the n-grams seen in the text
        order = int(run_name[2])
        seen = set()
        for w in plain_names(NAMES):
            chs = ["<s>", *w, "</s>"]
            seen |= {tuple(chs[i : i + k]) for k in range(2, order + 1) for i in range(len(chs) - k + 1)}
        assert {g for g in grams if len(g) > 1} == seen
        assert sum(b != 0 for p, b in grams.values()) > 0 and grams[("<unk>",)][0] == -99


def test_arpa_escapes_white_space_and_invisible_characters():
    from bigram.formats.export import arpa_sentence, arpa_token

    assert arpa_token(" ") == "<U+0020>" and arpa_token("\u200d") == "<U+200D>" and arpa_token("é") == "é"
    assert arpa_sentence("mary ann") == "m a r y <U+0020> a n n"


def test_json_and_csv(invoke, runs, tmp_path):
    import bigram

    run = bigram.load_run(runs["k1"])
    doc = json.loads(export(invoke, runs["k1"], "json", "count", tmp_path / "m.json").read_text())
    P = torch.tensor(doc["probs"], dtype=torch.float64)
    assert doc["tokens"][0] == "." and doc["tokens"][1:] == list("abcdefghijklmnopqrstuvwxyz")
    assert torch.allclose(P, run.log_probs("count").exp()) and torch.allclose(
        P.sum(1), torch.ones(27, dtype=torch.float64)
    )
    assert torch.equal(torch.tensor(doc["counts"]), run.counts("train"))

    rows = list(csv.DictReader(export(invoke, runs["k1"], "csv", "count", tmp_path / "m.csv").open()))
    assert len(rows) == 27 * 27
    em = next(r for r in rows if r["prev"] == "e" and r["next"] == "m")
    N = run.counts("train")
    assert int(em["count"]) == int(N[5, 13])
    assert float(em["prob"]) == pytest.approx((int(N[5, 13]) + 1) / (int(N[5].sum()) + 27))
    assert {r["prev"] for r in rows} >= {"<s>"} and {r["next"] for r in rows} >= {"</s>"}


def test_json_and_csv_at_order_3(invoke, runs, tmp_path):
    from collections import Counter

    trigrams, contexts = Counter(), Counter()
    for w in plain_names(NAMES):
        chs = ["<s>", "<s>", *w, "</s>"]
        for i in range(2, len(chs)):
            trigrams[chs[i - 2], chs[i - 1], chs[i]] += 1
            contexts[chs[i - 2], chs[i - 1]] += 1
    rows = list(csv.DictReader(export(invoke, runs["o3k1"], "csv", "count", tmp_path / "m.csv").open()))
    assert len(rows) == (1 + 26 + 26 * 26) * 27  # contexts a name can be in: .. .a ab (never a.b)
    for r in rows[:: len(rows) // 97]:
        ctx = (r["context1"], r["context2"])
        n = trigrams[(*ctx, r["next"])]
        assert int(r["count"]) == n
        assert float(r["prob"]) == pytest.approx((n + 1) / (contexts[ctx] + 27))
    doc = json.loads(export(invoke, runs["o3k1"], "json", "count", tmp_path / "m.json").read_text())
    em = 5 * 27 + 13  # row "em": ids 5 and 13, oldest most significant
    assert doc["order"] == 3 and len(doc["probs"]) == 27 * 27
    assert doc["counts"][em][13] == trigrams["e", "m", "m"]
    assert doc["probs"][em][13] == pytest.approx((trigrams["e", "m", "m"] + 1) / (contexts["e", "m"] + 27))


def test_export_refuses_to_overwrite(invoke, runs, tmp_path):
    out = tmp_path / "m.arpa"
    out.write_text("mine")
    r = invoke("export", runs["k1"], "--out", out)
    assert r.exit_code == 1 and "--overwrite" in r.output and out.read_text() == "mine"
    r = invoke("export", runs["k1"], "--out", tmp_path / "x", "--format", "yaml")
    assert r.exit_code == 1 and "arpa, json, csv" in r.output


def test_export_format_comes_from_the_extension_and_a_mismatch_is_refused(invoke, runs, tmp_path):
    r = invoke("export", runs["k1"], "--out", tmp_path / "t.json")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "t.json").read_text())["tokens"][0] == "."
    r = invoke("export", runs["k1"], "--out", tmp_path / "t.csv", "--format", "arpa")
    assert r.exit_code == 1 and "does not match" in r.output and not (tmp_path / "t.csv").exists()
    r = invoke("export", runs["k1"], "--out", tmp_path / "t.txt")
    assert r.exit_code == 1 and ".arpa, .json or .csv" in r.output
    r = invoke("export", runs["k1"], "--out", tmp_path / "t.txt", "--format", "csv")
    assert r.exit_code == 0 and (tmp_path / "t.txt").read_text().startswith("prev,next")


def test_arpa_of_a_dense_table_beyond_the_cap_is_refused(invoke, small, tmp_path, monkeypatch):
    import bigram.formats.export

    monkeypatch.setattr(bigram.formats.export, "ARPA_MAX_NGRAMS", 8)  # the neural table lists 3 × 3 = 9
    one_line_error(invoke("export", small, "--model", "neural", "--out", tmp_path / "m.arpa"), "more than 8")
    assert not (tmp_path / "m.arpa").exists()
    r = invoke("export", small, "--model", "count", "--out", tmp_path / "c.arpa")  # lists only seen n-grams
    assert r.exit_code == 0, r.output


def test_json_export_written_by_blocks_is_what_json_dump_writes(invoke, small, tmp_path, monkeypatch):
    import bigram.formats.export
    from bigram.runs import Run

    original = bigram.formats.export._row_blocks
    monkeypatch.setattr(
        bigram.formats.export, "_row_blocks", lambda t, cells=1: original(t, 1)
    )  # a row per block
    assert invoke("export", small, "--model", "count", "--out", tmp_path / "m.json").exit_code == 0
    run = Run.open(small)
    doc = {
        "model": "count", "order": 2, "boundary_id": 0, "tokens": run.vocab.tokens(),
        "probs": run.log_probs("count").exp().tolist(), "counts": run.counts("train").to_dense().tolist(),
    }  # fmt: skip
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == json.dumps(doc, ensure_ascii=False) + "\n"


def test_arpa_keeps_log_probabilities_below_minus_99(invoke, tmp_path):
    """add-k with k = 1e-120 at order 4: unseen n-grams have log10 P ≈ −120, not "never" (−99)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("anna\nanne\nbob\nbobby\nann\n")
    no_split = ("--val-frac", "0", "--test-frac", "0")
    run = train_run(
        invoke, corpus, tmp_path / "r", "--order", "4", "--smoothing", "1e-120", "--model", "count", *no_split
    )
    assert invoke("export", run, "--out", tmp_path / "m.arpa").exit_code == 0
    grams = read_arpa(tmp_path / "m.arpa")
    names = ["anna", "bob", "nab", "yyy", "abba"]
    scores = json.loads(invoke("score", run, *names, "--json").output)
    import kenlm

    lm = kenlm.Model(str(tmp_path / "m.arpa"))
    for s in scores:
        tokens = " ".join(s["name"])
        assert arpa_log10(grams, tokens.split(" ")) * LN10 == pytest.approx(s["log_likelihood"], rel=1e-8)
        assert lm.score(tokens, bos=True, eos=True) * LN10 == pytest.approx(s["log_likelihood"], rel=1e-6)
    assert min(s["log_likelihood"] for s in scores) < -99 * LN10  # below what the clamp to −99 let through
