"""The vocabulary (vocab.py): id 0 is the boundary, never a data character."""

from __future__ import annotations

import json

from hypothesis import given

from bigram.vocab import Vocab
from tests.conftest import train_run
from tests.reference import clean_names


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


def test_names_with_dots_never_collide_with_the_boundary(invoke, tmp_path):
    p = tmp_path / "dots.txt"
    p.write_text("j.r.\na.b\n.x\nc.\n" * 5, encoding="utf-8")
    out = train_run(
        invoke, p, tmp_path / "run", "--val-frac", 0, "--test-frac", 0, "--model", "count", "--smoothing", 0
    )
    vocab = json.loads((out / "vocab.json").read_text())
    assert "." in vocab["chars"] and vocab["boundary_display"] != "."
    names = invoke("sample", out, "-n", 300, "--seed", 1).output.splitlines()
    assert any("." in n for n in names)
    assert all(n[0] in "j.ac" for n in names)  # a name starts as a corpus name starts
    r = json.loads(invoke("score", out, "j.r.", "--json").output)[0]
    assert r["bigrams"][-1]["bigram"] == "." + vocab["boundary_display"]  # the final "." then the end
    assert r["log_likelihood"] > -20


def test_vocab_of_names_txt(names):
    v = Vocab.from_names(names)
    assert v.size == 27
    assert v.tokens() == ["."] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    assert v.id("a") == 1 and v.id("z") == 26


def test_boundary_is_never_a_data_character():
    v = Vocab.from_names(["a.b", "c"])
    assert v.chars == (".", "a", "b", "c")  # "." is data here: id 1
    assert v.id(".") == 1
    assert v.boundary != "." and v.boundary not in v.chars
    assert v.encode_corpus(["a.b"]).tolist() == [0, 2, 1, 3, 0]


def test_vocab_json_round_trip():
    v = Vocab.from_names(["zoë", "émile", "a b"])
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    assert v.decode(v.encode("émile")) == "émile"
