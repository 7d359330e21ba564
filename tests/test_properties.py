"""Property-based tests: the loader, the vocabulary, the counts and the sampling constraints."""

from __future__ import annotations

import itertools
import math
import unicodedata

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigram.corpus import read_counts
from bigram.counts import count_bigrams
from bigram.counts import dense as densify
from bigram.data import read_names
from bigram.errors import BigramError
from bigram.sampling import Constraints, sample
from bigram.vocab import Vocab

# names: any characters but the line separators; surrounding whitespace is the loader's to strip
name_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00")
raw_names = st.lists(st.text(name_chars, min_size=0, max_size=12), min_size=1, max_size=25)
clean_names = st.lists(
    st.text(
        st.characters(min_codepoint=33, max_codepoint=0x24F, blacklist_categories=("Cs", "Zs", "Cc")),
        min_size=1,
        max_size=10,
    ),
    min_size=1,
    max_size=30,
)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("ci")


def expected_names(lines: list[str]) -> list[str]:
    """The loader's contract, spelled out: NFC, split on "\\n" only, strip, drop blank lines."""
    text = unicodedata.normalize("NFC", "\n".join(lines))
    return [s for line in text.split("\n") if (s := line.strip())]


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
    assert torch.equal(densify(streamed.counts["train"]), count_bigrams(want, vocab))


@given(names=clean_names)
def test_vocab_round_trip(names):
    vocab = Vocab.from_names(names)
    assert list(vocab.chars) == sorted(set("".join(names)))
    assert vocab.size == len(vocab.chars) + 1
    for w in names:
        assert vocab.decode(vocab.encode(w)) == w
    assert vocab.boundary not in vocab.chars
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    ids = vocab.encode_corpus(names).tolist()
    assert ids[0] == ids[-1] == 0 and ids.count(0) == len(names) + 1


@given(names=clean_names)
def test_count_sums(names):
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab)
    assert int(N.sum()) == sum(len(w) + 1 for w in names)
    freq = [sum(w.count(c) for w in names) for c in vocab.chars]
    assert N.sum(1).tolist() == [len(names), *freq]  # what follows each token: its frequency
    assert N.sum(0).tolist() == [len(names), *freq]  # what precedes each token: the same
    assert int(N[0, 0]) == 0


small_table = st.lists(st.floats(0.05, 1.0), min_size=16, max_size=16)


@given(
    weights=small_table,
    start=st.text("abc", max_size=2),
    end=st.text("abc", max_size=2),
    lo=st.integers(0, 4),
    span=st.one_of(st.none(), st.integers(0, 4)),
    seed=st.integers(0, 2**31),
)
def test_samples_meet_the_constraints(weights, start, end, lo, span, seed):
    P = torch.tensor(weights, dtype=torch.float64).view(4, 4)
    P[0, 0] = 0 if lo > 0 else P[0, 0]
    lp = (P / P.sum(1, keepdim=True)).log()
    vocab = Vocab(("a", "b", "c"))
    c = Constraints(start, end, lo, None if span is None else lo + span)
    try:
        names = sample(lp, vocab, 50, seed=seed, constraints=c)
    except BigramError as e:  # only when no name can meet them: check that by enumeration
        assert c.max_len is not None and "shorter than" in str(e), str(e)
        assert not any(
            w.startswith(start) and w.endswith(end)
            for L in range(c.min_len, c.max_len + 1)
            for w in _all_names(L)
        )
        return
    for w in names:
        assert w.startswith(start) and w.endswith(end)
        assert len(w) >= lo and (c.max_len is None or len(w) <= c.max_len)
        assert not math.isinf(sum(lp[a, b].item() for a, b in _bigrams(w)))


def _all_names(L: int) -> list[str]:
    out = [""]
    for _ in range(L):
        out = [w + ch for w in out for ch in "abc"]
    return out


def _bigrams(w: str):
    ids = [0, *(" abc".index(ch) for ch in w), 0]
    return itertools.pairwise(ids)
