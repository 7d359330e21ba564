"""Export (formats/export.py): ARPA files read back by KenLM and by a plain-Python ARPA reader, exact
below log10 P = −99, a dense table past the cap refused; JSON (written by blocks) and CSV."""

from __future__ import annotations

import csv
import json
import math
import random
from collections import Counter

import pytest
import torch

from tests.conftest import NAMES, one_line_error, train_run
from tests.reference import LN10, arpa_log10, plain_counts, plain_names, read_arpa


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


def json_prob(doc, ctx: list[int], w: int) -> float:
    """P(w | ctx) read from an exported JSON by the rule its docs state: the longest suffix of
    the full context that is a listed context and lists w; the backoff of each longer one."""
    V, p = len(doc["tokens"]), 1.0
    for level in reversed(doc["levels"]):
        j = level["length"]
        h = ctx[len(ctx) - j :] if j else []
        if h not in level["contexts"]:
            continue
        r = level["contexts"].index(h)
        if w in level["next"][r]:
            return p * level["probs"][r][level["next"][r].index(w)]
        p *= level["backoff"][r]
    return p / V


def test_json_and_csv(invoke, runs, tmp_path):
    """The bigram count model (k = 1), read back from JSON and CSV by their documented layouts,
    against counts of the names in plain Python: P = (n + 1) / (row + 27) everywhere."""
    c = plain_counts(plain_names(NAMES))
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    ids = {None: 0} | {ch: i for i, ch in enumerate(alphabet, 1)}
    rows = Counter()
    for (a, _), n in c.items():
        rows[a] += n
    doc = json.loads(export(invoke, runs["k1"], "json", "count", tmp_path / "m.json").read_text())
    assert doc["tokens"] == [".", *alphabet] and doc["order"] == 2 and doc["root"] == "uniform"
    top = doc["levels"][1]
    assert doc["levels"][0]["contexts"] == [] and len(top["contexts"]) == 27  # add-k: the seen contexts
    assert sum(len(x) for x in top["next"]) == len(c) == 627  # only the seen bigrams are listed
    for a in [None, *alphabet]:
        for b in [None, *alphabet]:
            want = (c[a, b] + 1) / (rows[a] + 27)
            assert json_prob(doc, [ids[a]], ids[b]) == pytest.approx(want, rel=1e-12)
    r = top["contexts"].index([ids["e"]])
    assert top["counts"][r][top["next"][r].index(ids["m"])] == c["e", "m"]
    assert top["backoff"][r] == pytest.approx(27 / (rows["e"] + 27))

    lines = list(csv.DictReader(export(invoke, runs["k1"], "csv", "count", tmp_path / "m.csv").open()))
    assert len(lines) == 627 + 27  # an entry per seen bigram, a backoff per context
    em = next(x for x in lines if x["prev"] == "e" and x["next"] == "m")
    assert int(em["count"]) == c["e", "m"]
    assert float(em["prob"]) == pytest.approx((c["e", "m"] + 1) / (rows["e"] + 27))
    back = next(x for x in lines if x["prev"] == "<s>" and x["next"] == "<backoff>")
    assert float(back["prob"]) == pytest.approx(27 / (rows[None] + 27)) and back["count"] == ""
    assert {x["next"] for x in lines if x["prev"] == "q"} == {"<backoff>"} | {
        "</s>" if b is None else b for (a, b) in c if a == "q"
    }


def test_json_and_csv_at_order_3(invoke, runs, tmp_path):
    trigrams, contexts = Counter(), Counter()
    for w in plain_names(NAMES):
        chs = ["<s>", "<s>", *w, "</s>"]
        for i in range(2, len(chs)):
            trigrams[chs[i - 2], chs[i - 1], chs[i]] += 1
            contexts[chs[i - 2], chs[i - 1]] += 1
    lines = list(csv.DictReader(export(invoke, runs["o3k1"], "csv", "count", tmp_path / "m.csv").open()))
    assert len(lines) == len(trigrams) + len(contexts)  # the seen trigrams, a backoff per seen context
    for r in lines[:: len(lines) // 97]:
        ctx = (r["context1"], r["context2"])
        if r["next"] == "<backoff>":
            assert float(r["prob"]) == pytest.approx(27 / (contexts[ctx] + 27))
            continue
        n = trigrams[(*ctx, r["next"])]
        assert int(r["count"]) == n > 0
        assert float(r["prob"]) == pytest.approx((n + 1) / (contexts[ctx] + 27))
    doc = json.loads(export(invoke, runs["o3k1"], "json", "count", tmp_path / "m.json").read_text())
    assert doc["order"] == 3 and [lv["length"] for lv in doc["levels"]] == [0, 1, 2]
    ids = {"<s>": 0, "</s>": 0} | {ch: i for i, ch in enumerate(doc["tokens"][1:], 1)}
    for ctx in [("e", "m"), ("<s>", "<s>"), ("<s>", "x"), ("q", "x"), ("z", "z")]:  # seen, and never seen
        for nxt in ("m", "a", "</s>", "q"):
            want = (trigrams[(*ctx, nxt)] + 1) / (contexts[ctx] + 27)
            assert json_prob(doc, [ids[t] for t in ctx], ids[nxt]) == pytest.approx(want, rel=1e-12)


def test_json_and_csv_of_kneser_ney_carry_every_level(invoke, runs, tmp_path):
    """Kneser-Ney's shorter contexts are levels of their own: the JSON read by its documented
    rule gives the table's P at every context a name can reach, and the CSV lists the same
    entries (with their training counts: a shorter context's count sums its longer ones)."""
    from bigram.runs import Run

    table = Run.open(runs["kn3"]).log_probs("count")
    doc = json.loads(export(invoke, runs["kn3"], "json", "count", tmp_path / "m.json").read_text())
    assert [len(lv["contexts"]) > 0 for lv in doc["levels"]] == [True, True, True]
    V = len(doc["tokens"])
    for ctx in [[0, 0], [0, 5], [5, 13], [26, 17], [17, 26]]:
        for w in range(V):
            want = float(table.at(torch.tensor([ctx[0] * V + ctx[1]]), torch.tensor([w])).exp())
            assert json_prob(doc, ctx, w) == pytest.approx(want, rel=1e-12)
    lines = list(csv.DictReader(export(invoke, runs["kn3"], "csv", "count", tmp_path / "m.csv").open()))
    entries = sum(len(x) for lv in doc["levels"] for x in lv["next"])
    assert len(lines) == entries + sum(len(lv["contexts"]) for lv in doc["levels"])
    unigram_a = next(x for x in lines if x["context1"] == x["context2"] == "" and x["next"] == "a")
    assert int(unigram_a["count"]) == sum(w.count("a") for w in plain_names(NAMES))


def test_json_export_written_by_blocks_is_what_json_dump_writes(invoke, runs, tmp_path, monkeypatch):
    import bigram.formats.export

    whole = export(invoke, runs["kn3"], "json", "count", tmp_path / "whole.json").read_text(encoding="utf-8")
    original = bigram.formats.export._blocks
    monkeypatch.setattr(bigram.formats.export, "_blocks", lambda level, cells=1: original(level, 1))
    text = export(invoke, runs["kn3"], "json", "count", tmp_path / "rows.json").read_text(encoding="utf-8")
    assert text == whole == json.dumps(json.loads(text), ensure_ascii=False) + "\n"


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


# --- any table: a random backoff model with every kind of context, and lmplz's own files -----------


def random_backoff_model(chars: str, N: int, seed: int):
    """A random model in backoff form as plain dicts, {context tuple: ({token: P}, β)}, over
    tokens 0 (the boundary) and 1 … len(chars), with contexts at every length, padded ones
    included (at order ≥ 4 `..e` and `.e` both), each row summing to one; and the names whose
    contexts it was drawn from."""
    rng = random.Random(seed)
    V = len(chars) + 1
    names = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 6))) for _ in range(12)]
    seen = set()
    for w in names:
        ids = [0] * (N - 1) + [chars.index(c) + 1 for c in w]
        for i in range(N - 1, len(ids) + 1):
            full = tuple(ids[i - N + 1 : i])
            seen |= {full[len(full) - j :] if j else () for j in range(N)}
    model: dict = {}

    def read(h: tuple, w: int) -> float:  # P(w | h) by the backoff rule, on the contexts made so far
        for j in range(len(h), -1, -1):
            s = h[len(h) - j :] if j else ()
            if s in model:
                listed, beta = model[s]
                return listed[w] if w in listed else beta * read(s[1:], w) if s else beta / V
        return 1 / V

    for h in sorted(seen, key=len):
        if rng.random() < 0.3 and h:
            continue  # an unknown context: it reads its suffix
        toks = rng.sample(range(V), rng.randint(1, min(V - 1, 5)))
        weights = [rng.random() + 0.1 for _ in toks]
        keep = rng.uniform(0.3, 0.9)  # the listed tokens' share of the row
        listed = {t: keep * x / sum(weights) for t, x in zip(toks, weights, strict=True)}
        below = sum(read(h[1:], t) if h else 1 / V for t in toks)
        model[h] = (listed, (1 - keep) / (1 - below))
    return model, names, read


def table_of_model(model: dict, V: int, N: int):
    from bigram.backoff import Level, Table

    levels = []
    for j in range(N):
        rows = sorted((sum(t * V ** (j - 1 - i) for i, t in enumerate(h)), h) for h in model if len(h) == j)
        if not rows:
            levels.append(None)
            continue
        listed = [sorted(model[h][0].items()) for _, h in rows]
        tokens, probs = [[t for t, _ in x] for x in listed], [[p for _, p in x] for x in listed]
        levels.append(Level.of_rows([k for k, _ in rows], tokens, probs, [model[h][1] for _, h in rows]))
    return Table(V, N, levels)


@pytest.mark.parametrize("N", [2, 3, 4, 5])
@pytest.mark.parametrize("chars", ["abcd", "".join(chr(0x0410 + i) for i in range(40)) + " é\u4e00"])
def test_any_table_is_written_exactly(tmp_path, N, chars):
    """write_arpa of a table with known contexts at every length, padded ones several times over
    (`..e` and `.e` are both <s> e): the file, read by the format's definition and by KenLM,
    gives every name the log-probability the model's own rule gives, and lists every prefix
    and suffix of its n-grams (what KenLM needs to find them)."""
    from bigram.formats.export import arpa_sentence, write_arpa
    from bigram.vocab import Vocab

    chars = "".join(sorted(chars))  # token i + 1 is chars[i]: the vocabulary's order
    model, names, read = random_backoff_model(chars, N, seed=N)
    vocab = Vocab(tuple(chars))
    table = table_of_model(model, vocab.size, N)
    if N >= 4:  # the case the writer must merge: one history, several padded contexts
        assert any((0, 0, *h[1:]) in model for h in model if len(h) == 2 and h[0] == 0)
    path = tmp_path / "m.arpa"
    with path.open("w", encoding="utf-8") as f:
        write_arpa(f, table, vocab)
    grams = read_arpa(path)
    for g in grams:
        if len(g) > 1 and g[0] != "<s>":
            assert g[1:] in grams and g[:-1] in grams, g
        elif len(g) > 1:
            assert g[:-1] in grams and (g[1:] in grams or len(g) == 2), g
    kenlm = pytest.importorskip("kenlm")
    lm = kenlm.Model(str(path))
    for w in [*names, chars[:3], chars[-2:] * 2]:
        ids = [0] * (N - 1) + [chars.index(c) + 1 for c in w] + [0]
        want = sum(math.log(read(tuple(ids[i - N + 1 : i]), ids[i])) for i in range(N - 1, len(ids)))
        tokens = arpa_sentence(w).split(" ") if w else []
        assert arpa_log10(grams, tokens) * LN10 == pytest.approx(want, abs=1e-6)
        assert lm.score(" ".join(tokens), bos=True, eos=True) * LN10 == pytest.approx(want, abs=1e-4)


def lmplz_binary():
    import os
    import shutil

    found = os.environ.get("LMPLZ") or shutil.which("lmplz") or "/tmp/lmplz/build/bin/lmplz"
    return found if os.access(found, os.X_OK) else None


@pytest.mark.parametrize("run_name", ["kn2", "kn3", "kn5"])
def test_kneser_ney_arpa_is_what_lmplz_writes(invoke, runs, tmp_path, run_name):
    """lmplz (--discount_fallback) on the same names lists the same n-grams, and its numbers,
    renormalized without <unk> (P / (1 − P(<unk> | h)), and backoffs bo·(1 − P(<unk> | h′)) /
    (1 − P(<unk> | h))), are ours to 1e-6. Skipped where no lmplz is built
    (../shared/tools/build-lmplz, or $LMPLZ)."""
    import subprocess

    lmplz = lmplz_binary()
    if lmplz is None:
        pytest.skip("no lmplz binary")
    N = int(run_name[2])
    text = "".join(" ".join(w) + "\n" for w in plain_names(NAMES))
    ref = tmp_path / "lmplz.arpa"
    with ref.open("w") as out:
        subprocess.run([lmplz, "-o", str(N), "--discount_fallback", "-S", "100M", "-T", str(tmp_path)],
                       input=text.encode(), stdout=out, stderr=subprocess.DEVNULL, check=True)  # fmt: skip
    theirs, ours = (
        read_arpa(ref),
        read_arpa(export(invoke, runs[run_name], "arpa", "count", tmp_path / "m.arpa")),
    )
    assert set(theirs) == set(ours)

    def p10(h: tuple, w: str) -> float:
        if (*h, w) in theirs:
            return theirs[(*h, w)][0]
        return theirs.get(h, (0.0, 0.0))[1] + p10(h[1:], w)

    def keep(h: tuple) -> float:
        return math.log10(1 - 10 ** p10(h, "<unk>"))

    for g, (p, bo) in theirs.items():
        if g[-1] not in ("<unk>", "<s>"):
            assert ours[g][0] == pytest.approx(p - keep(g[:-1]), abs=1e-6), g
        if len(g) < N and g[-1] not in ("<unk>", "</s>"):
            assert ours[g][1] == pytest.approx(bo + keep(g[1:]) - keep(g), abs=1e-6), g


def _listed(run) -> list[str]:
    """The files the run's marker lists as bigram's."""
    return json.loads((run / ".bigram-run").read_text())["files"]


def test_without_out_the_export_goes_into_the_run_named_after_model_and_format(invoke, small, tmp_path):
    """No --out: RUN/<model>-model.<format> (arpa unless --format), listed in the marker as
    bigram's, the same bytes as an export to a named file; written again, it is replaced."""
    r = invoke("export", small)
    assert r.exit_code == 0, r.output
    assert r.stdout == f"wrote {small / 'neural-model.arpa'} (neural model, arpa)\n"  # no val: neural
    assert invoke("export", small, "--out", tmp_path / "named.arpa").exit_code == 0
    assert (small / "neural-model.arpa").read_bytes() == (tmp_path / "named.arpa").read_bytes()
    for model, fmt in [("count", "csv"), ("count", "json"), ("neural", "json")]:
        r = invoke("export", small, "--model", model, "--format", fmt)
        assert r.stdout == f"wrote {small / f'{model}-model.{fmt}'} ({model} model, {fmt})\n", r.output
    assert {"neural-model.arpa", "count-model.csv", "count-model.json", "neural-model.json"} <= set(
        _listed(small)
    )
    (small / "count-model.csv").write_text("stale")  # bigram's own file: rewritten, no --overwrite needed
    assert invoke("export", small, "--model", "count", "--format", "csv").exit_code == 0
    assert (small / "count-model.csv").read_text().startswith("prev,next,count,prob,log_prob")
    # bigram's: --overwrite of the run removes it with the rest
    r = invoke("train", "--data", tmp_path / "tiny.txt", "--out", small, "--overwrite", "-q", "--no-figures",
               "--steps", "1", "--val-frac", "0", "--test-frac", "0")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert not (small / "neural-model.arpa").exists() and "neural-model.arpa" not in _listed(small)


def test_without_out_a_name_bigram_did_not_write_is_never_replaced(invoke, small, tmp_path):
    """The default file's name taken by a file of the user's, a link or a directory: refused
    with or without --overwrite, nothing changed; likewise in a run whose marker lists no files."""
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("mine")
    (small / "neural-model.arpa").write_text("mine")
    (small / "count-model.arpa").symlink_to(theirs)
    (small / "neural-model.csv").mkdir()
    for extra in ([], ["--overwrite"]):
        for model, fmt in [("neural", "arpa"), ("count", "arpa"), ("neural", "csv")]:
            r = invoke("export", small, "--model", model, "--format", fmt, *extra)
            taken = small / f"{model}-model.{fmt}"
            one_line_error(r, f"{taken} is already there and bigram did not write it", "--out FILE")
    assert (small / "neural-model.arpa").read_text() == theirs.read_text() == "mine"
    assert (small / "count-model.arpa").is_symlink() and not any((small / "neural-model.csv").iterdir())
    assert not {"neural-model.arpa", "count-model.arpa", "neural-model.csv"} & set(_listed(small))
    marker = json.loads((small / ".bigram-run").read_text())
    del marker["files"]  # a run made before markers listed files
    (small / ".bigram-run").write_text(json.dumps(marker))
    r = invoke("export", small, "--format", "json")
    one_line_error(r, "was made before bigram listed the files it writes into a run", "--out FILE")
    assert not (small / "neural-model.json").exists()


def test_no_default_export_name_is_a_name_bigram_gives_another_file():
    from bigram.safety import layout

    names = [layout.export_file(k, f) for k in layout.MODEL_KINDS for f in layout.EXPORTS]
    assert len(set(names)) == 12 and not set(names) & layout.FILES


def test_an_out_in_the_run_is_its_default_file_or_never_one_the_run_reads(invoke, small, tmp_path):
    """--out naming the default file in the run is that file (claimed, so a plain export rewrites
    it later); --out naming a file the run's commands read (a checkpoint, its metrics, its
    vocabulary) is refused even with --overwrite, for export, plot and explore alike."""
    r = invoke("export", small, "--model", "count", "--out", small / "count-model.arpa")
    assert r.exit_code == 0, r.output
    assert "count-model.arpa" in _listed(small)
    assert invoke("export", small, "--model", "count").exit_code == 0  # bigram's own: rewritten
    before = {p.name: p.read_bytes() for p in small.iterdir() if p.is_file()}
    asks = [(("export", "--format", "arpa"), "count.pt"), (("plot",), "metrics.json"),
            (("explore",), "vocab.json"), (("export", "--format", "json"), "config.toml")]  # fmt: skip
    for cmd, name in asks:
        r = invoke(cmd[0], small, *cmd[1:], "--out", small / name, "--overwrite")
        one_line_error(r, f"--out {small / name} is one of the files bigram wrote into the run")
    assert {p.name: p.read_bytes() for p in small.iterdir() if p.is_file()} == before
