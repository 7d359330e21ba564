"""Names as Python lists (data.py): reading and the random split."""

from __future__ import annotations

import pytest

from bigram.data import read_names, split_names
from bigram.errors import BigramError


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
