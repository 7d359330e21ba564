from __future__ import annotations

import json

import pytest

from bigram.data import read_names, split_names
from bigram.errors import BigramError
from bigram.vocab import Vocab


def test_read_names_strips_crlf_bom_and_blank_lines(tmp_path):
    p = tmp_path / "n.txt"
    p.write_bytes("\ufeffemma\r\n\r\n  olivia \r\n\n\tava\r\n".encode())
    assert read_names(p) == ["emma", "olivia", "ava"]


def test_read_names_keeps_inner_spaces_and_dots(tmp_path):
    p = tmp_path / "n.txt"
    p.write_text("mary ann\nj.r.\n", encoding="utf-8")
    assert read_names(p) == ["mary ann", "j.r."]


def test_read_names_errors(tmp_path):
    with pytest.raises(BigramError, match="does not exist"):
        read_names(tmp_path / "missing.txt")
    with pytest.raises(BigramError, match="directory"):
        read_names(tmp_path)
    (tmp_path / "blank.txt").write_text("\n \n\n", encoding="utf-8")
    with pytest.raises(BigramError, match="no names"):
        read_names(tmp_path / "blank.txt")
    (tmp_path / "bad.txt").write_bytes(b"emma\nol\xffivia\n")
    with pytest.raises(BigramError, match="line 2"):
        read_names(tmp_path / "bad.txt")


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


def test_vocab_round_trip(tmp_path):
    v = Vocab.from_names(["zoë", "émile", "a b"])
    assert Vocab.from_dict(json.loads(json.dumps(v.to_dict()))) == v
    assert v.decode(v.encode("émile")) == "émile"


def test_split_is_deterministic_disjoint_and_sized(names):
    a = split_names(names, 0.1, 0.1, seed=42)
    b = split_names(names, 0.1, 0.1, seed=42)
    c = split_names(names, 0.1, 0.1, seed=43)
    assert a == b
    assert a["val"] != c["val"]
    n = len(names)
    assert len(a["val"]) == round(0.1 * n) == 3203
    assert len(a["test"]) == 3203
    assert len(a["train"]) == n - 2 * 3203
    # a partition of the corpus's positions: multiset union is the corpus
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(names)
    # each split keeps the corpus order
    pos = {}
    for i, w in enumerate(names):
        pos.setdefault(w, i)
    firsts = [pos[w] for w in a["val"]]
    assert firsts == sorted(firsts) or len(set(a["val"])) < len(a["val"])


def test_split_without_holdout_is_the_corpus(names):
    s = split_names(names, 0.0, 0.0, seed=1)
    assert s["train"] == names and s["val"] == [] and s["test"] == []


def test_split_refuses_to_leave_no_training_names():
    with pytest.raises(BigramError, match="no training names"):
        split_names(["a", "b"], 0.5, 0.5, seed=0)
