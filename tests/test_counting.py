"""The n-gram counting kernels (bigram/reader/counting.py): per-split counts equal to a plain-Python
count, for messy lines, any chunk size, both split methods, dense and sparse tables, and tables
that grow many times at order 5."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigram.counts import dense
from bigram.errors import BigramError
from bigram.reader.corpus import read_counts
from bigram.text import TextRule
from tests.reference import line_text, plain_counts


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


@pytest.mark.parametrize(("cjk", "split"), [(2990, "hash"), (4990, "random")])
def test_big_tables_of_a_large_alphabet_at_order_5_count_exactly(tmp_path, cjk, split):
    """Tens of thousands of names at order 5, some of Latin letters only (packed keys), others
    with thousands of CJK characters (rows): both tables grow many times in mid-block. With V ≈
    3,000 the sort packs counts below 8 beside their keys and sorts bigger ones apart; with V ≈
    5,000 each split is sorted on its own (split · V^5 no longer fits). Equal to a plain count."""
    import random

    from bigram.reader.counting import split_of

    rng = random.Random(cjk)
    wide = [chr(c) for c in range(0x4E00, 0x4E00 + cjk)]
    latin = list("abcdefghijklmnopqrstuvwxyz")
    names = []
    for i in range(40_000):
        alphabet = latin if i % 2 else latin + wide  # half the names pack into one key at order 5
        names.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))))
    p = tmp_path / "big.txt"
    p.write_text("\n".join(names) + "\n", encoding="utf-8")
    r = read_counts(p, split=split, seed=3, val_frac=0.1, test_frac=0.1, order=5)
    assert r.vocab.size > cjk
    if split == "hash":
        label = [split_of(n, 3, 0.1, 0.1) for n in names]
    else:
        label = [0] * len(names)
        perm = torch.randperm(len(names), generator=torch.Generator().manual_seed(3)).tolist()
        for place, i in enumerate(perm[:8_000]):
            label[i] = 1 if place < 4_000 else 2
    want: dict[tuple[int, tuple[str, ...]], int] = {}
    for name, s in zip(names, label, strict=True):
        padded = ["\n"] * 4 + list(name) + ["\n"]
        for j in range(4, len(padded)):
            key = (s, tuple(padded[j - 4 : j + 1]))
            want[key] = want.get(key, 0) + 1
    chars, V = ["\n", *r.vocab.chars], r.vocab.size
    got = {}
    for s, part in enumerate(("train", "val", "test")):
        t = r.splits[part].coalesce()
        for (row, col), n in zip(t.indices().t().tolist(), t.values().tolist(), strict=True):
            ctx = [chars[row // V**k % V] for k in (3, 2, 1, 0)]
            got[s, (*ctx, chars[col])] = n
    assert got == want


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
