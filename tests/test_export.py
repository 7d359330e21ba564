"""Export: ARPA files read back by KenLM and by a plain-Python ARPA reader; JSON and CSV."""

from __future__ import annotations

import csv
import itertools
import json
import math

import pytest
import torch

from tests.conftest import NAMES, plain_names

LN10 = math.log(10)


def read_arpa(path) -> tuple[dict, dict]:
    """A minimal ARPA reader written from the format's definition: unigrams (logp, backoff) and
    bigrams (logp), log10."""
    uni, bi, section = {}, {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("\\"):
            section = line
            continue
        if not line.strip() or section in (None, "\\data\\"):
            continue
        parts = line.split("\t")
        if section == "\\1-grams:":
            uni[parts[1]] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
        elif section == "\\2-grams:":
            bi[tuple(parts[1].split(" "))] = float(parts[0])
    return uni, bi


def arpa_log10(uni, bi, tokens: list[str]) -> float:
    seq = ["<s>", *tokens, "</s>"]
    total = 0.0
    for a, b in itertools.pairwise(seq):
        total += bi[a, b] if (a, b) in bi else uni[a][1] + uni[b][0]
    return total


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
    if run_name == "odd":
        return ["mary ann", "j.r.", "ann\u200dmarie", "bob", "anna"]
    return [*plain_names()[::160], "andrejq", "qzx", "a"]  # the last ones: unseen bigrams


@pytest.mark.parametrize("run_name", ["k1", "k0", "odd"])
@pytest.mark.parametrize("model", ["count", "neural"])
def test_arpa_scores_equal_bigram_scores(invoke, runs, tmp_path, run_name, model):
    from bigram.export import arpa_sentence

    run = runs[run_name]
    path = export(invoke, run, "arpa", model, tmp_path / "m.arpa")
    names = names_to_check(run_name)
    scores = json.loads(invoke("score", run, *names, "--model", model, "--json").output)
    uni, bi = read_arpa(path)
    try:
        import kenlm

        lm = kenlm.Model(str(path))
    except ImportError:  # pragma: no cover - kenlm is in requirements-dev.txt
        lm = None
    for s in scores:
        tokens = arpa_sentence(s["name"]).split(" ")
        assert all(t in uni for t in tokens), tokens  # every character has its token
        ours = s["log_likelihood"]
        plain = arpa_log10(uni, bi, tokens) * LN10
        if ours == -math.inf:  # probability 0: the file says "never" (log10 −99)
            assert plain < -99 * LN10 / 2
            continue
        assert plain == pytest.approx(ours, abs=1e-6)
        if lm is not None:
            assert lm.score(" ".join(tokens), bos=True, eos=True) * LN10 == pytest.approx(ours, abs=1e-4)
    if run_name == "k1" and model == "count":
        assert len(bi) == 627  # only the seen bigrams are listed; the rest is backoff
    if model == "neural":
        assert len(bi) == (len(uni) - 2) ** 2  # every bigram (<s>/chars × </s>/chars)


def test_arpa_escapes_white_space_and_invisible_characters():
    from bigram.export import arpa_sentence, arpa_token

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
