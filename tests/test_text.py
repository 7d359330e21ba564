"""The text rule (bigram/text.py): line ends, stripping, normalization and case, the same for the
corpus and for every name a user gives a run (score, --start/--end, --novel, eval --data)."""

from __future__ import annotations

import ast
import json
import unicodedata
from pathlib import Path

import pytest

import bigram
from bigram.data import read_names
from bigram.reader.corpus import read_counts
from bigram.text import TextRule
from tests.conftest import train_run

PKG = Path(bigram.__file__).parent


def test_line_ends_lf_crlf_and_lone_cr(tmp_path):
    p = tmp_path / "n.txt"
    p.write_bytes(b"\xef\xbb\xbfanna\rbob\r\ncy\n\rdee\r")
    assert read_names(p) == ["anna", "bob", "cy", "dee"]
    for split in ("hash", "random"):
        r = read_counts(p, split=split, val_frac=0, test_frac=0)
        assert r.n_names["train"] == 4
        assert "\r" not in r.vocab.chars


def test_the_rule_on_single_names():
    assert TextRule("NFC", lowercase=True).name("  E\u0301mile ") == "émile"
    assert TextRule("NFD").name("é") == "e\u0301"
    assert TextRule(None).name("e\u0301") == "e\u0301"
    assert TextRule("NFC").text(" Ka ") == " Ka "  # --start/--end keep their spaces


def test_text_imports_nothing_of_bigram_but_errors():
    """text.py is the rule every reader and every run applies: it stands on errors.py alone."""
    found = set()
    for node in ast.walk(ast.parse((PKG / "text.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    assert {m for m in found if m.startswith(("bigram", "."))} <= {"bigram.errors"}


# --- the run applies its rule to what users give it ------------------------------------------
def _train(invoke, tmp_path, *flags) -> Path:
    data = tmp_path / "mixed.txt"
    data.write_text("Emma\nemma\nOlivia\nAva\nava\nMia\nÉmile\n", encoding="utf-8")
    out = tmp_path / "run"
    r = invoke("train", "--data", data, "--out", out, "-q", "--no-figures", "--model", "count",
               "--val-frac", "0", "--test-frac", "0", *flags)  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def test_lowercase_run_scores_samples_and_evaluates_by_its_rule(invoke, tmp_path):
    run = _train(invoke, tmp_path, "--lowercase")
    upper = json.loads(invoke("score", run, "Emma", "--json").output)
    lower = json.loads(invoke("score", run, "emma", "--json").output)
    assert upper[0]["log_likelihood"] == lower[0]["log_likelihood"]
    r = invoke("eval", run, "--data", tmp_path / "mixed.txt", "--json")  # capitals in the file
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)["count"][str(tmp_path / "mixed.txt")]
    assert ev["nll"] == pytest.approx(
        json.loads(invoke("eval", run, "--json").output)["count"]["train"]["nll"]
    )
    corpus = {"emma", "olivia", "ava", "mia", "émile"}
    r = invoke("sample", run, "-n", "200", "--novel", "--seed", "1", "--unique")
    assert r.exit_code == 0, r.output
    assert not corpus & set(r.output.split())
    r = invoke("sample", run, "-n", "5", "--start", "E", "--seed", "0")  # folded like the corpus
    assert r.exit_code == 0 and all(n.startswith("e") for n in r.stdout.split()), r.output
    assert "P(start 'e') = " in r.stderr  # the constraint as the run reads it


@pytest.mark.parametrize("form", ["NFD", "none"])
def test_normalization_is_carried_by_the_run(invoke, tmp_path, form):
    run = _train(invoke, tmp_path, "--normalize", form)
    r = invoke("eval", run, "--data", tmp_path / "mixed.txt", "--json")
    assert r.exit_code == 0, r.output
    r = invoke("sample", run, "-n", "100", "--novel", "--seed", "2", "--unique")
    assert r.exit_code == 0, r.output
    trained = {unicodedata.normalize("NFD", w) if form == "NFD" else w for w in ["Émile", "Emma"]}
    assert not trained & set(r.output.split())
    nfc = json.loads(invoke("score", run, "Émile", "--json").output)[0]
    assert nfc["log_likelihood"] > -1e9  # typed in NFC, read by the run's rule


def test_unicode_normalization_and_case(invoke, tmp_path):
    p = tmp_path / "n.txt"
    p.write_text("Ame\u0301lie\nZoe\u0308\n", encoding="utf-8")  # decomposed é and ë
    out = train_run(invoke, p, tmp_path / "nfc", "--val-frac", 0, "--test-frac", 0)
    chars = json.loads((out / "vocab.json").read_text())["chars"]
    assert "é" in chars and "\u0301" not in chars and "A" in chars and "Z" in chars
    out = train_run(
        invoke, p, tmp_path / "asis", "--val-frac", 0, "--test-frac", 0, "--normalize", "none", "--lowercase"
    )
    chars = json.loads((out / "vocab.json").read_text())["chars"]
    assert "\u0301" in chars and "é" not in chars and "A" not in chars and "a" in chars


# --- issue 44: what reaches a terminal ------------------------------------------------------------
def _must_not_reach_a_terminal(c: str) -> bool:
    """By Unicode's own properties, not bigram's list: controls (C0, DEL, C1), the explicit
    bidirectional formatting characters and marks, and the line and paragraph separators."""
    return (
        unicodedata.category(c) in ("Cc", "Zl", "Zp")
        or unicodedata.bidirectional(c) in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI")
        or c in "\u200e\u200f\u061c"  # LRM, RLM, ALM: bidi marks (their class is L, R, AL)
    )


UNSAFE = "".join(c for c in map(chr, range(0x3000)) if _must_not_reach_a_terminal(c) and c != "\n")


def test_escaped_leaves_nothing_that_drives_or_reorders_a_terminal():
    """Over every code point below U+3000 (the bidi and separator characters all lie there):
    none of the unsafe ones survives `escaped` or `escaped_lines` (which keeps only "\\n"), each
    is shown as its \\xNN or \\uNNNN, and JSON output escapes them and reads back the same text."""
    from bigram.text import escaped, escaped_lines, json_safe

    every = "".join(map(chr, range(0x3000)))
    for out in (escaped(every), escaped_lines(every)):
        assert not set(out) & set(UNSAFE), sorted(set(out) & set(UNSAFE))
    assert "\n" not in escaped(every) and escaped_lines(every).count("\n") == 1
    for c in UNSAFE:
        shown = f"\\x{ord(c):02x}" if ord(c) <= 0xFF else f"\\u{ord(c):04x}"
        assert escaped(f"a{c}b") == f"a{shown}b" == escaped_lines(f"a{c}b")
    text = json_safe(json.dumps([every], ensure_ascii=False))
    assert not set(text) & set(UNSAFE) and json.loads(text) == [every]
    assert escaped("plain é ü 名字 \u00a0") == "plain é ü 名字 \u00a0"  # printable text untouched


def test_sampled_scored_and_likely_names_never_print_bidi_or_separators_raw(invoke, tmp_path):
    """A corpus whose names hold right-to-left overrides, isolates, marks and U+2028/U+2029
    (the issue's spoofing case): sample, sample --lecture, --most-likely and score show them
    escaped; --json carries the very names."""
    odd = ["ab\u202ecd\u202c", "x\u2066y\u2069", "\u200eq\u200f", "a\u2028b", "c\u2029d", "e\u202af"]
    corpus = tmp_path / "odd.txt"
    corpus.write_text("\n".join(odd * 20 + ["ab", "cd"] * 20) + "\n", encoding="utf-8")
    run = train_run(invoke, corpus, tmp_path / "r", "--model", "count", "--val-frac", "0", "--test-frac", "0")
    outputs = {
        "sample": invoke("sample", run, "-n", "3000", "--seed", "1"),
        "lecture": invoke("sample", run, "-n", "2000", "--lecture"),
        "likely": invoke("sample", run, "--most-likely", "200"),
        "score": invoke("score", run, *odd),
    }
    for what, r in outputs.items():
        assert r.exit_code == 0, (what, r.output)
        assert not set(r.stdout) & set(UNSAFE), (what, sorted(set(r.stdout) & set(UNSAFE)))
    assert "ab\\u202ecd\\u202c" in outputs["likely"].stdout.split()
    assert "a\\u2028b" in outputs["score"].stdout
    r = invoke("sample", run, "-n", "500", "--seed", "1", "--json")
    assert not set(r.stdout) & set(UNSAFE)
    assert {s["name"] for s in json.loads(r.stdout)} & set(odd)


def test_the_lines_noted_for_a_stream_are_bounded():
    """A pipe's reader notes the line each chunk starts on; a corpus of thousands of chunks keeps
    only the last few (memory grows with the model, never with the corpus)."""
    from bigram import text

    for k in range(5000):
        text.note_chunk(Path("/dev/stdin-test"), k << 20, 1 + 10 * k, False)
    noted = text._STREAM_CHUNKS["/dev/stdin-test"]
    assert len(noted) <= 64 and noted[4999 << 20] == (1 + 10 * 4999, False)
