"""One text rule: line ends, stripping, normalization and case, the same for the corpus and for every
name a user gives a run (score, --start/--end, --novel, eval --data)."""

from __future__ import annotations

import ast
import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import bigram
from bigram.counts import dense
from bigram.data import read_names
from bigram.errors import BigramError
from bigram.reader.corpus import SPLITS, _raw_lines, _utf8, read_counts
from bigram.reader.lines import count_lines, quick_count_lines
from bigram.text import TextRule
from tests.conftest import NAMES, train_run
from tests.reference import line_text, plain_counts

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


@given(lines=st.lists(line_text, max_size=12), ends=st.sampled_from(["\n", "\r\n", "\r"]))
def test_counting_names_from_bytes_agrees_with_the_rule(lines, ends):
    """The random split's first pass counts names from bytes; it must agree with the full rule,
    or every label after the first disagreement would shift."""
    buf = ends.join(lines).encode()
    for rule in (TextRule(), TextRule("NFKC", lowercase=True)):
        want = len(
            [
                s
                for s in rule.text(buf.decode().replace("\r\n", "\n").replace("\r", "\n")).split("\n")
                if s.strip()
            ]
        )
        assert count_lines(np.frombuffer(_raw_lines(buf, 1), np.uint8)) == want
        text = _utf8(buf, 1, Path("x"), rule).decode()
        assert len([s for s in text.split("\n") if s.strip()]) == want
        quick = quick_count_lines(np.frombuffer(buf, np.uint8))  # the first pass's usual path
        lone_cr = b"\r" in buf.replace(b"\r\n", b"") or buf.endswith(b"\r")
        assert quick == (-1 if lone_cr or len(buf) < 3 else want)


@given(
    parts=st.lists(st.sampled_from([b"a", b"\xc3\xa9", b"\r", b"\n", b"\r\n", b" ", b"\r\r"]), max_size=40)
)
def test_the_readers_line_ends_are_the_text_rules(parts):
    """The reader's compiled unify_line_ends makes CRLF and lone CR an LF, as str's line rule does."""
    from bigram.reader.lines import unify_line_ends

    buf = b"".join(parts)
    assert unify_line_ends(buf) == buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def test_lines_that_start_with_white_space_are_read_closely_however_many():
    """count_lines reads each line that starts with white space character by character (up to
    lines.UNSURE of them, else the whole chunk): the count must not depend on how many there are."""
    from bigram.reader.lines import UNSURE

    for unsure in (1, UNSURE - 1, UNSURE, UNSURE + 1, 3 * UNSURE):
        lines = [" ann" if i % 3 else "\u3000 " for i in range(unsure)] + ["bob", "", "cy"] * 50
        buf = np.frombuffer("\n".join(lines[::-1] if unsure % 2 else lines).encode(), np.uint8)
        assert count_lines(buf) == len([w for w in lines if w.strip()]), unsure


def test_the_quick_line_count_looks_closer_at_every_line_start_that_may_be_blank():
    """may_start_blank must hold for every (first byte, second byte) that LINE_START does not
    call a name for sure, or a blank line would be counted as a name; and not hold for the first
    bytes of letters (ASCII, Latin to Cyrillic, Arabic, Indic, CJK), or the quick path would
    read many lines closely. Blank and white-space-only lines are taken off the count."""
    from bigram.reader.lines import LINE_START, NL, may_start_blank

    for b0 in range(256):
        for b1 in range(256):
            kind = LINE_START[b0 << 8 | b1]
            blank = bool(may_start_blank(np.uint8(b0), np.uint8(b1)))
            assert blank or kind == 1, (hex(b0), hex(b1))
            if 0x21 <= b0 < 0x80 or 0xC3 <= b0 <= 0xDF or 0xE4 <= b0 <= 0xEF:
                assert not blank, (hex(b0), hex(b1))
    assert may_start_blank(np.uint8(NL), np.uint8(ord("a")))
    for text in ["anna\nbob\n", "ゆき\n李\nзоя\n", "ab\ncd", "ann\r\nbob\r\n", "ann\nbob\ncy\ndee\n" * 50]:
        buf = np.frombuffer(text.encode(), np.uint8)
        assert quick_count_lines(buf) == count_lines(buf) == len(text.split())
    for text, want in [
        ("anna\n\nbob\n", 2),  # a blank line
        ("anna\n \n\u3000\n \u3000 \r\nbob\n", 2),  # white space only: a space, U+3000, both, CRLF
        ("anna\n bob\n\u3000cy\n", 3),  # names after white space
        ("\nann\n \n", 1),  # the first line (the LF of a CRLF cut by the chunk before)
        ("ann\nb", 2),  # a last line of one byte
        ("ann\n ", 1),
        ("ann\n\n", 1),
        ("an\rna\nbob\n", -1),  # a lone "\r"
        ("ann\nbob\r", -1),  # a "\r" at the end
    ]:
        assert quick_count_lines(np.frombuffer(text.encode(), np.uint8)) == want, text
    import random

    rng = random.Random(0)
    pieces = [b"a", b"\xc3\xa9", b"\xe3\x81\x82", b" ", b"\t", b"\xe3\x80\x80", b"\xc2\xa0", b"\n", b"\r\n"]
    for _ in range(3000):  # LF and CRLF chunks with white space anywhere: the count is exact
        buf = b"".join(rng.choice(pieces) for _ in range(rng.randint(3, 40)))
        want = count_lines(np.frombuffer(_raw_lines(buf, 1), np.uint8))
        assert quick_count_lines(np.frombuffer(buf, np.uint8)) == (-1 if buf.endswith(b"\r") else want), buf


def test_random_split_streams_and_equals_the_in_memory_split(names, monkeypatch):
    """split = random is a seeded permutation of name positions: the same split as
    data.split_names, whatever the chunking."""
    import torch

    import bigram.reader.corpus as corpus

    n = len(names)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(7)).tolist()
    n_val, n_test = round(0.15 * n), round(0.05 * n)
    which = {i: 1 for i in perm[:n_val]} | {i: 2 for i in perm[n_val : n_val + n_test]}
    by_split = {
        s: [w for i, w in enumerate(names) if which.get(i, 0) == k] for k, s in enumerate(corpus.SPLITS)
    }
    for chunk in (corpus.CHUNK_BYTES, 997):
        monkeypatch.setattr(corpus, "CHUNK_BYTES", chunk)
        r = read_counts(NAMES, split="random", seed=7, val_frac=0.15, test_frac=0.05)
        assert r.n_names == {s: len(v) for s, v in by_split.items()}
        for s, ws in by_split.items():
            expect = plain_counts(ws)
            got = dense(r.splits[s])
            for (a, b), c in expect.items():
                assert got[0 if a is None else r.vocab.id(a), 0 if b is None else r.vocab.id(b)] == c
            assert int(got.sum()) == sum(expect.values())


def _split_by_randperm(names: list[str], seed: int, val_frac: float, test_frac: float) -> dict:
    """The random split by hand: torch.randperm's first places are val, then test."""
    perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val, n_test = round(val_frac * len(names)), round(test_frac * len(names))
    which = {i: 1 for i in perm[:n_val]} | {i: 2 for i in perm[n_val : n_val + n_test]}
    return {s: [w for i, w in enumerate(names) if which.get(i, 0) == k] for k, s in enumerate(SPLITS)}


@pytest.mark.parametrize("fracs", [(0.2, 0.1), (0.6, 0.3), (0.01, 0.0), (0.0, 0.05)])
@pytest.mark.parametrize("slow_shuffle", [False, True])
def test_random_split_counts_a_hand_made_split_whatever_the_order_of_the_chunks(
    tmp_path, monkeypatch, fracs, slow_shuffle
):
    """The second pass counts the chunks whose names all lie beyond the permutation's first k
    positions first, while the shuffle for the positions below k runs; the chunks below k (and
    the one across k) wait for it. Counts equal a hand-made split at orders 2 and 3 with tiny
    chunks, k from 1 % to 90 % of the names, a shuffle that ends at once or late, on lines that
    start with white space, CJK, accents, blank and white-space-only lines, CRLF and a BOM."""
    import random
    import time

    import bigram.reader.corpus as corpus
    from bigram.reader.shuffle import FirstPlaces

    rng = random.Random(5)
    pieces = ["anna", " bob", "\u3000yuki", "ゆき", "élodie", "  ", "", "\u00a0zoë ", "李", "o'neil"]
    pieces.append("mary ann")
    lines = [rng.choice(pieces) + rng.choice(["", "x", "ß"]) for _ in range(3000)]
    p = tmp_path / "mixed.txt"
    p.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    names = read_names(p)
    if slow_shuffle:  # the chunks beyond k are all counted before it ends
        shuffle = FirstPlaces.shuffle
        monkeypatch.setattr(FirstPlaces, "shuffle", lambda self: (time.sleep(0.5), shuffle(self)))
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 701)
    val_frac, test_frac = fracs
    for order in (2, 3):
        r = read_counts(p, split="random", seed=3, val_frac=val_frac, test_frac=test_frac, order=order)
        for s, ws in _split_by_randperm(names, 3, val_frac, test_frac).items():
            assert r.n_names[s] == len(ws)
            if not ws:
                assert s not in r.splits
                continue
            got = dense(r.splits[s])
            if order == 2:
                expect = plain_counts(ws)
                for (a, b), c in expect.items():
                    assert got[0 if a is None else r.vocab.id(a), 0 if b is None else r.vocab.id(b)] == c
                assert int(got.sum()) == sum(expect.values())
            else:  # every trigram's count, the context's two ids in base V
                V = r.vocab.size
                want = torch.zeros_like(got)
                for w in ws:
                    ids = [0, 0, *(r.vocab.id(ch) for ch in w), 0]
                    for a, b, c in zip(ids, ids[1:], ids[2:], strict=False):
                        want[a * V + b, c] += 1
                assert torch.equal(got, want)


def test_random_split_reports_the_files_first_error(tmp_path, monkeypatch):
    """The chunks below k are counted last, yet a bad byte there is the one reported when the
    file has another one further on, as one pass in file order would say."""
    import bigram.reader.corpus as corpus

    p = tmp_path / "bad.txt"
    p.write_bytes(b"anna\n" * 20 + b"b\xffd\n" + b"anna\n" * 300 + b"c\xfee\n" + b"carl\n" * 20)
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 64)
    with pytest.raises(BigramError, match="line 21"):
        read_counts(p, split="random", seed=0, val_frac=0.1, test_frac=0.1)
    with pytest.raises(BigramError, match="line 21"):
        read_counts(p, split="hash", seed=0, val_frac=0.1, test_frac=0.1)


def test_a_large_vocabulary_counts_exactly_and_sparsely(tmp_path):
    """Thousands of characters: pairs beyond U+00FF take the sparse path; both split methods
    count the same bigrams, equal to a plain count."""
    import random

    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)] + list("abcdeé ")
    names = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))).strip() or "a" for _ in range(20000)
    ]
    p = tmp_path / "big.txt"
    p.write_text("\n".join(names) + "\n", encoding="utf-8")
    expect = plain_counts(names)
    for split in ("hash", "random"):
        r = read_counts(p, split=split, seed=3, val_frac=0.1, test_frac=0.1)
        assert all(t.is_sparse for t in r.splits.values())  # 3,000² cells, ~100k pairs seen
        total = sum(dense(t) for t in r.splits.values())
        assert int(total.sum()) == sum(expect.values())
        for (a, b), c in list(expect.items())[:2000]:
            assert total[0 if a is None else r.vocab.id(a), 0 if b is None else r.vocab.id(b)] == c


def test_a_line_longer_than_the_cap_is_a_clear_error(tmp_path, monkeypatch):
    import bigram.reader.corpus as corpus

    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 1 << 12)
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 1 << 10)
    p = tmp_path / "one.txt"
    p.write_bytes(b"anna\n" + b"x" * 10_000)
    with pytest.raises(BigramError, match="line 2 is longer than"):
        read_counts(p)


def test_a_pipe_streams_with_the_hash_split_and_is_refused_by_random(tmp_path):
    fifo = tmp_path / "names.fifo"
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the writer
        with open(fifo, "wb") as f:
            f.write(b"anna\nbob\nanna\n")
        os._exit(0)
    try:
        r = read_counts(fifo, split="hash", val_frac=0, test_frac=0)
        assert r.n_names["train"] == 3
    finally:
        os.waitpid(pid, 0)
    with pytest.raises(BigramError, match="not a regular file"):
        read_counts(fifo, split="random")


def test_the_text_module_is_a_leaf_and_nothing_imports_in_a_cycle():
    def bigram_imports(name: str) -> set[str]:
        tree = ast.parse((PKG / f"{name}.py").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bigram."):
                found.add(node.module.removeprefix("bigram."))
        return found

    assert bigram_imports("text") <= {"errors"}
    assert "data" not in bigram_imports("corpus")
    assert "corpus" in bigram_imports("data")  # one way only


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
    assert r.exit_code == 0 and all(n.startswith("e") for n in r.output.split()), r.output


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


@pytest.mark.parametrize("split", ["random", "hash"])
def test_an_invalid_byte_is_named_by_its_line_and_byte_in_the_file(tmp_path, split):
    """The reader drops the BOM and unifies line ends before decoding: the error must still point
    into the file as it is (here a BOM, CRLF line ends and a line starting with a space)."""
    p = tmp_path / "bad.txt"
    data = b"\xef\xbb\xbfanna\r\n bob\r\ncy\xe9\r\n"
    p.write_bytes(data)
    bad = data.index(b"\xe9")  # 16: counted in the file's own bytes
    with pytest.raises(BigramError, match=rf"line 3 \(byte {bad}\)"):
        read_counts(p, split=split)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(line_text, max_size=30),
    ends=st.sampled_from(["\n", "\r\n", "\r"]),
    chunk=st.sampled_from([1, 7, 64, 1 << 20]),
    lowercase=st.booleans(),
)
def test_the_counting_kernel_equals_a_plain_python_count(tmp_path_factory, lines, ends, chunk, lowercase):
    """Messy lines of any script (white space of every kind, combining marks, astral characters),
    any chunk size, both split methods: the compiled counter gives the per-split counts that a
    plain Python loop over rule.name(line) gives."""
    import bigram.reader.corpus as corpus
    from bigram.reader.counting import split_of

    rule = TextRule("NFC", lowercase)
    names = [n for line in ends.join(lines).replace("\r\n", "\n").replace("\r", "\n").split("\n")
             if (n := rule.name(line))]  # fmt: skip
    p = tmp_path_factory.mktemp("k") / "c.txt"
    p.write_bytes(ends.join(lines).encode())
    old = corpus.CHUNK_BYTES
    corpus.CHUNK_BYTES = chunk
    try:
        for method in ("hash", "random"):
            if not names:
                with pytest.raises(BigramError):
                    read_counts(p, split=method, rule=rule, val_frac=0.3, test_frac=0.3)
                continue
            if method == "random" and round(0.3 * len(names)) * 2 >= len(names):
                continue  # no training names left: refused, tested elsewhere
            r = read_counts(p, split=method, seed=5, rule=rule, val_frac=0.3, test_frac=0.3)
            if method == "hash":
                label = [split_of(n, 5, 0.3, 0.3) for n in names]
            else:
                label = [0] * len(names)
                perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(5)).tolist()
                n_val = round(0.3 * len(names))
                for i in perm[:n_val]:
                    label[i] = 1
                for i in perm[n_val : 2 * n_val]:
                    label[i] = 2
            want: dict[tuple[int, str, str], int] = {}
            for name, s in zip(names, label, strict=True):
                for a, b in zip("\n" + name, name + "\n", strict=True):
                    want[s, a, b] = want.get((s, a, b), 0) + 1
            chars = ["\n", *r.vocab.chars]
            got: dict[tuple[int, str, str], int] = {}
            for s, split in enumerate(("train", "val", "test")):
                if split not in r.splits:
                    continue
                m = r.splits[split].to_dense()
                for a, b in m.nonzero().tolist():
                    got[s, chars[a], chars[b]] = int(m[a, b])
            assert got == want
            assert r.n_names == {"train": label.count(0), "val": label.count(1), "test": label.count(2)}
    finally:
        corpus.CHUNK_BYTES = old


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
