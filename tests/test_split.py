"""The train/val/test split as the reader streams it: by a hash of each name (reader/counting.py's
split_of), or by torch.randperm's first places (reader/shuffle.py), equal to references made by hand."""

from __future__ import annotations

import pytest
import torch

from bigram.counts import dense
from bigram.data import read_names
from bigram.errors import BigramError
from bigram.reader.corpus import SPLITS, read_counts
from tests.conftest import NAMES
from tests.reference import plain_counts


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
