"""The streaming reader (bigram/reader/corpus.py): counts equal to the in-memory path and to a plain
count, whatever the chunks and byte ranges; bad data, overlong lines and pipes answered clearly."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import bigram.reader.corpus as corpus
from bigram.counts import count_bigrams
from bigram.counts import dense as densify
from bigram.data import read_names
from bigram.errors import BigramError
from bigram.reader.corpus import byte_range, read_counts
from bigram.vocab import Vocab
from tests.conftest import NAMES, one_line_error, train_run
from tests.reference import plain_counts


def dense(names: list[str], vocab: Vocab) -> torch.Tensor:
    """Counts of the names by the plain-Python loop, laid out in the vocabulary's order."""
    N = torch.zeros(vocab.size, vocab.size, dtype=torch.long)
    for (a, b), n in plain_counts(names).items():
        N[0 if a is None else vocab.id(a), 0 if b is None else vocab.id(b)] = n
    return N


def test_streaming_equals_plain_count(names):
    r = read_counts(NAMES, seed=1, val_frac=0, test_frac=0)
    assert r.n_names == {"train": len(names), "val": 0, "test": 0}
    assert set(r.splits) == {"train"}
    assert r.vocab == Vocab.from_names(names)
    assert torch.equal(densify(r.splits["train"]), dense(names, r.vocab))


def test_streaming_is_independent_of_chunking_and_byte_ranges(monkeypatch, names):
    whole = read_counts(NAMES, seed=5, val_frac=0.1, test_frac=0.1)
    original = corpus.iter_chunks
    monkeypatch.setattr(corpus, "iter_chunks", lambda p, s, e: original(p, s, e, chunk_bytes=997))
    small = read_counts(NAMES, seed=5, val_frac=0.1, test_frac=0.1)
    assert small.n_names == whole.n_names
    for s in whole.splits:
        assert torch.equal(densify(small.splits[s]), whole.splits[s])
    # three "processes" each reading their byte range add up to the whole
    parts = [read_counts(NAMES, seed=5, val_frac=0.1, test_frac=0.1, rank=r, world=3) for r in range(3)]
    for s in whole.splits:
        total = torch.zeros_like(whole.splits[s])
        for part in parts:
            idx = torch.tensor([0] + [whole.vocab.id(c) for c in part.vocab.chars])
            total[idx[:, None], idx[None, :]] += part.splits[s]
        assert torch.equal(total, whole.splits[s])


def test_byte_ranges_start_at_lines(tmp_path):
    p = tmp_path / "n.txt"
    p.write_bytes(b"anna\nbob\ncarla\ndave\n")
    ranges = [byte_range(p, r, 3) for r in range(3)]
    assert ranges[0][0] == 0 and ranges[-1][1] == p.stat().st_size
    data = p.read_bytes()
    for (s, e), (s2, _) in itertools.pairwise(ranges):
        assert e == s2 and (s == 0 or data[s - 1 : s] == b"\n")
    assert b"".join(data[s:e] for s, e in ranges) == data


def test_streaming_cleans_like_read_names(tmp_path):
    p = tmp_path / "messy.txt"
    lines = ["\ufeffemma  ", "", "  olivia\t", "a b", "\u00a0zoë\u3000", "   ", "e\u0301mile", "x"]
    p.write_bytes("\r\n".join(lines).encode())
    names = read_names(p)
    assert names == ["emma", "olivia", "a b", "zoë", "émile", "x"]  # NFC: e + ◌́ → é
    r = read_counts(p, seed=0, val_frac=0, test_frac=0)
    assert r.vocab == Vocab.from_names(names)
    assert torch.equal(densify(r.splits["train"]), dense(names, r.vocab))


def test_streaming_errors(tmp_path, monkeypatch):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"anna\n" * 300 + b"b\xffd\n" + b"carl\n")
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 64)  # the bad byte is many chunks in
    with pytest.raises(BigramError, match="line 301"):
        read_counts(p, seed=0, val_frac=0, test_frac=0)
    p.write_bytes(b"anna\n\x00\x01\n")
    with pytest.raises(BigramError, match="NUL"):
        read_counts(p, seed=0, val_frac=0, test_frac=0)
    p.write_bytes(b"\n \n\r\n")
    with pytest.raises(BigramError, match="no names"):
        read_counts(p, seed=0, val_frac=0, test_frac=0)


def _cut_as_one_stream(data: bytes, chunk: int) -> list[tuple[int, bytes]]:
    """Chunks as a reader of one stream cuts them: blocks of `chunk` bytes, each cut after its
    last line end, the rest carried into the next."""
    out, carry, offset = [], b"", 0
    for i in range(0, len(data), chunk):
        buf = carry + data[i : i + chunk]
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        if cut == 0:
            carry = buf
            continue
        out.append((offset, buf[:cut]))
        offset, carry = offset + cut, buf[cut:]
    return out + ([(offset, carry)] if carry else [])


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 13])
def test_a_file_is_cut_into_the_chunks_one_stream_would_give(tmp_path, chunk):
    """iter_chunks cuts a regular file where `chunk_spans` says, reading only near each cut: the
    chunks must be those of one stream read block by block (CR, CRLF across a cut, lines longer
    than a block and a 4 KiB read, no final line end, an empty file)."""
    import random

    rng = random.Random(chunk)
    p = tmp_path / "n.txt"
    bodies = [b"", b"a", b"\n", b"anna\r\nbob\rcy\n\n\r\n dee", b"x" * 9000 + b"\nyy\r" + b"z" * 5000]
    bodies.append(
        b"".join(rng.choice([b"ann", b"\r", b"\n", b"\r\n", b"z\xc3\xa9", b" "]) for _ in range(3000))
    )
    for data in bodies:
        p.write_bytes(data)
        got = list(corpus.iter_chunks(p, chunk_bytes=chunk))
        assert got == _cut_as_one_stream(data, chunk)
        with p.open("rb") as f:  # a byte range: the windows count from its start
            s, e = byte_range(p, 1, 3)
            spans = list(corpus.chunk_spans(f.fileno(), s, e, chunk))
        assert [(a, data[a:b]) for a, b in spans] == [
            (s + a, c) for a, c in _cut_as_one_stream(data[s:e], chunk)
        ]


# names: any characters but the line separators; surrounding whitespace is the loader's to strip
name_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00")


raw_names = st.lists(st.text(name_chars, min_size=0, max_size=12), min_size=1, max_size=25)


def expected_names(lines: list[str]) -> list[str]:
    """The loader's contract, spelled out: NFC, split on "\\n" only, strip, drop blank lines."""
    text = unicodedata.normalize("NFC", "\n".join(lines))
    return [s for line in text.split("\n") if (s := line.strip())]


@pytest.mark.parametrize("split", ["random", "hash"])
def test_a_vocabulary_over_the_cap_is_refused_while_counting(invoke, tmp_path, split):
    p = tmp_path / "many.txt"
    p.write_text("\n".join(chr(c) for c in range(0x4E00, 0x4E00 + 16_500)) + "\n", encoding="utf-8")
    t = time.perf_counter()
    one_line_error(
        invoke("train", "--data", p, "--split", split, "--out", tmp_path / "r"), "distinct characters"
    )
    assert time.perf_counter() - t < 20 and not (tmp_path / "r").exists()


@given(lines=raw_names, crlf=st.booleans(), bom=st.booleans())
def test_loader_contract(tmp_path_factory, lines, crlf, bom):
    p = tmp_path_factory.mktemp("c") / "names.txt"
    text = ("\r\n" if crlf else "\n").join(lines)
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    want = expected_names(lines)
    if not want:
        try:
            read_names(p)
        except BigramError as e:
            assert "no names" in str(e)
        else:
            raise AssertionError("an empty corpus must be refused")
        return
    assert read_names(p) == want
    # the streaming reader sees the same names: the same counts
    vocab = Vocab.from_names(want)
    streamed = read_counts(p, seed=0, val_frac=0, test_frac=0)
    assert streamed.vocab == vocab
    assert torch.equal(densify(streamed.splits["train"]), count_bigrams(want, vocab))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        (b"", "no names"),
        (b"\n  \n\t\n", "no names"),
        (b"anna\x00\x01\x02bob\n", "binary"),
        (b"anna\nbob\nc\xe9line\n", "line 3"),
    ],
)
@pytest.mark.parametrize("split", ["random", "hash"])
def test_bad_data_is_refused(invoke, tmp_path, content, needle, split):
    p = tmp_path / "data.txt"
    if content is not None:
        p.write_bytes(content)
    one_line_error(invoke("train", "--data", p, "--split", split), needle)


def test_data_directory_is_refused(invoke, tmp_path):
    one_line_error(invoke("train", "--data", tmp_path), "directory")


def test_unusual_corpora_work(invoke, tmp_path):
    cases = {
        "one_name": b"anna\n",
        "crlf_bom": b"\xef\xbb\xbfanna\r\nbob\r\n\r\nzoe\r\n",
        "one_char_names": b"a\nb\nc\na\n",
        "long_line": b"anna\n" + b"ab" * 5000 + b"\nbob\n",
    }
    for name, content in cases.items():
        p = tmp_path / f"{name}.txt"
        p.write_bytes(content)
        for split in ("auto",) if name == "one_name" else ("random", "hash"):  # one name may hash to val
            out = train_run(invoke, p, tmp_path / f"run-{name}-{split}", "--split", split, "--steps", 5)
            assert invoke("sample", out, "-n", 5, "--seed", 0, "--max-len", 30).exit_code == 0


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


def _line_of_byte(data: bytes, pos: int) -> int:
    """The 1-based line of byte `pos`, by a regular expression over the bytes before it (CRLF, CR
    and LF each end a line): a reference independent of the reader's counting."""
    return 1 + len(re.findall(rb"\r\n|\r|\n", data[:pos]))


def _bad_corpus(line: int, ends: tuple[bytes, ...] = (b"\n",)) -> tuple[bytes, int]:
    """Names whose line `line` holds an invalid UTF-8 byte (after "ab"), line ends cycling through
    `ends`; (the bytes, the bad byte's position)."""
    lines = [b"ab\xff" if i == line else b"n%d" % i for i in range(1, line + 3)]
    data = b"".join(x + ends[i % len(ends)] for i, x in enumerate(lines))
    return data, data.index(b"\xff")


def _read_fifo(tmp_path, data: bytes, **kwargs):
    """read_counts of `data` written into a named pipe by a child process; at most 60 s (a reader
    that opens the FIFO again to count lines would wait for a writer forever)."""
    fifo = tmp_path / "names.fifo"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    pid = os.fork()
    if pid == 0:  # the writer
        with open(fifo, "wb") as f:
            f.write(data)
        os._exit(0)

    def stuck(*_):
        raise TimeoutError("the reader of a FIFO hangs")

    old = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        return read_counts(fifo, split="hash", val_frac=0, test_frac=0, **kwargs)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.waitpid(pid, 0)


@pytest.mark.parametrize("chunk", [5, 7, 64, 1 << 20])
@pytest.mark.parametrize("line", [1, 2, 3, 17])
@pytest.mark.parametrize("ends", [(b"\n",), (b"\r\n",), (b"\r\n", b"\r", b"\n")])
def test_a_pipe_names_the_line_of_an_invalid_byte_as_a_file_does(tmp_path, monkeypatch, chunk, line, ends):
    """A pipe cannot be read again to count lines: the line is counted as it streams, over chunks
    cut anywhere (a CRLF split between two chunks among them); the file of the same bytes agrees."""
    monkeypatch.setattr(corpus, "CHUNK_BYTES", chunk)
    data, bad = _bad_corpus(line, ends)
    want = rf"at line {_line_of_byte(data, bad)} \(byte {bad}\)"
    assert _line_of_byte(data, bad) == line
    with pytest.raises(BigramError, match=want):
        _read_fifo(tmp_path, data)
    (tmp_path / "bad.txt").write_bytes(data)
    with pytest.raises(BigramError, match=want):
        read_counts(tmp_path / "bad.txt", split="hash", val_frac=0, test_frac=0)


def test_a_pipe_names_a_line_longer_than_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", 1 << 12)
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 1 << 10)
    with pytest.raises(BigramError, match="line 4 is longer than"):
        _read_fifo(tmp_path, b"anna\r\nbob\rcy\n" + b"x" * 10_000)


def test_standard_input_names_the_line_of_an_invalid_byte(tmp_path, run):
    """Real pipes into `python -m bigram`: train --data /dev/stdin, on a line in the first chunk
    and one past the first MiB; score --file - the same way. (Lines 1 and 5, and every line end,
    are read through a real FIFO in-process above: each process here costs ~3 s of imports.)"""
    cases = [("train", 2), ("train", 300_000), ("score", 3)]
    for command, line in cases:
        data, bad = _bad_corpus(line)
        args = (
            ["train", "--data", "/dev/stdin", "--out", str(tmp_path / "r"), "--split", "hash", "-q"]
            if command == "train"
            else ["score", str(run), "--file", "-"]
        )
        r = subprocess.run([sys.executable, "-m", "bigram", *args], input=data, capture_output=True,
                           cwd=tmp_path, timeout=120, check=False)  # fmt: skip
        err = r.stderr.decode()
        assert r.returncode == 1 and err.count("\n") == 1, err
        want = f"is not valid UTF-8 at line {_line_of_byte(data, bad)} (byte {bad})"
        assert want in err, (command, line, err)
