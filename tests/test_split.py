"""The train/val/test split as the reader streams it (reader/corpus.py, counting.py's split_of,
shuffle.py): by a hash of each name, or at random by torch.randperm's first places, each equal to a
reference made by hand; and the default split keeps the published numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import bigram.reader.corpus as corpus
from bigram.config import TrainConfig
from bigram.counts import count_bigrams, dense
from bigram.data import read_names
from bigram.errors import BigramError
from bigram.reader.corpus import SPLITS, load_counts, read_counts
from bigram.reader.counting import split_of
from bigram.vocab import Vocab
from tests.conftest import NAMES
from tests.reference import plain_counts


# --- by a hash of the name: every copy of a name in one split -------------------------------------
def test_hash_split_is_by_name_seeded_and_close_to_the_fractions(names):
    r = read_counts(NAMES, seed=3, val_frac=0.2, test_frac=0.1)
    n = len(names)
    distinct = len(set(names))
    # each distinct name lands in one split; fractions within 5 standard errors over distinct names
    for split, frac in (("val", 0.2), ("test", 0.1)):
        assert abs(r.n_names[split] / n - frac) < 5 * (frac * (1 - frac) / distinct) ** 0.5 + 0.01
    other = read_counts(NAMES, seed=4, val_frac=0.2, test_frac=0.1)
    assert other.n_names != r.n_names


def _hash_split_reference(name: str, seed: int, val_frac: float, test_frac: float) -> int:
    """The hash split written out in plain Python integers (64-bit wrapping by masks)."""
    m = (1 << 64) - 1
    cps = [ord(c) for c in name]
    h = ((sum(cps) + 10) % 2**32) * 0x9E3779B97F4A7C15 & m
    h ^= cps[0] << 21
    h ^= (cps[-1] << 42) & m
    h = (h + len(cps) * 0xD6E8FEB86659FD93) & m
    h ^= seed
    for mult in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h ^= h >> 33
        h = h * mult & m
    h ^= h >> 33
    t_test = min(int(test_frac * 2.0**64), m)
    t_val = min(int((test_frac + val_frac) * 2.0**64), m)
    return 2 if h < t_test else 1 if h < t_val else 0


def test_hash_split_equals_a_plain_python_reference():
    names = ["emma", "olivia", "a", "zoë", "Søren Kierkegaard", "王小明", "Ωμέγα", "x" * 300, "😀ok"]
    for seed in (0, 11, 2**64 - 1):
        for name in names:
            assert split_of(name, seed, 0.3, 0.2) == _hash_split_reference(name, seed, 0.3, 0.2)


def test_same_name_same_split_wherever_it_is(tmp_path):
    """With hash splitting every copy of a name lands in one split, wherever it is in the file."""
    p = tmp_path / "dups.txt"
    names = ["emma", "olivia", "ava", "zoë", "王小明"] * 200
    p.write_text("\n".join(names) + "\n", encoding="utf-8")
    r = read_counts(p, seed=11, val_frac=0.3, test_frac=0.3)
    want = {s: 0 for s in ("train", "val", "test")}
    for name in names:
        want[("train", "val", "test")[_hash_split_reference(name, 11, 0.3, 0.3)]] += 1
    assert r.n_names == {s: n for s, n in want.items() if n} | {s: 0 for s, n in want.items() if not n}


# --- at random: torch.randperm's first places, streamed -------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 10, 997, 32_033, 250_001])
def test_random_labels_are_torch_randperms_first_places(n):
    """The random split draws only the first places of torch.randperm's shuffle; they must be the
    places torch.randperm itself gives, for any n and seed (seeds beyond 32 bits included)."""
    for seed in (0, 1, 2147483647, 2**40 + 7, 2**64 - 1):
        n_val, n_test = max(1, n // 10), n // 7
        if n_val + n_test >= n:
            n_val, n_test = 1, 0
        labels = corpus.random_labels(n, n_val / n, n_test / n, seed)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        want = np.zeros(n, dtype=np.uint8)
        want[perm[:n_val]] = 1
        want[perm[n_val : n_val + n_test]] = 2
        assert np.array_equal(labels, want)


@pytest.mark.parametrize(
    ("n", "n_val", "n_test"), [(2, 1, 0), (50, 20, 25), (1000, 0, 100), (250_001, 25_000, 25_000)]
)
def test_first_places_beyond_k_are_known_before_the_shuffle(n, n_val, n_test):
    """An index at or beyond k = n_val + n_test is taken by the first step that targets its place,
    so its label is read before the shuffle: it must be torch.randperm's; the shuffle then gives
    the indices below k theirs."""
    k = n_val + n_test
    for seed in (0, 3, 2**40 + 7):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
        want = np.zeros(n, dtype=np.uint8)
        want[perm[:n_val]] = 1
        want[perm[n_val:k]] = 2
        places = corpus._kernels().FirstPlaces(n, n_val, n_test, seed)
        assert np.array_equal(places.labels(k, n), want[k:])  # before the shuffle
        for lo, hi in ((k + 3, n - 5), (k + 1, k + 4), (k + 9, n)):  # bytes of the bitmaps cut anywhere
            if lo <= hi <= n:
                assert np.array_equal(places.labels(lo, hi), want[lo:hi])
        places.shuffle()
        assert np.array_equal(places.labels(0, n), want)
        assert np.array_equal(places.labels(k // 2, min(k + 7, n)), want[k // 2 : k + 7])  # across k


def test_past_the_plain_shuffles_limit_torch_draws_the_whole_permutation(monkeypatch):
    """Beyond ~214 million names torch's CPU randperm is another algorithm: the split then takes
    torch.randperm itself, read the same way (labels by position ranges)."""
    n, n_val, n_test = 5000, 400, 300
    fast = corpus._first_places(n, n_val, n_test, 9)
    fast.shuffle()
    monkeypatch.setattr(corpus, "_RANDPERM_SHUFFLE_LIMIT", 0)
    whole = corpus._first_places(n, n_val, n_test, 9)
    assert isinstance(whole, corpus._Drawn)
    whole.shuffle()
    assert np.array_equal(whole.labels(0, n), fast.labels(0, n))
    assert np.array_equal(whole.labels(100, 900), fast.labels(100, 900))
    assert np.bincount(whole.labels(0, n), minlength=3).tolist() == [n - n_val - n_test, n_val, n_test]


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


# --- the two methods side by side, and the default ------------------------------------------------
def test_load_counts_methods(names):
    random = load_counts(TrainConfig(data=str(NAMES), split="random"))
    auto = load_counts(TrainConfig(data=str(NAMES)))  # a small file: random
    hashed = load_counts(TrainConfig(data=str(NAMES), split="hash"))
    assert random.n_names == auto.n_names == {"train": 25627, "val": 3203, "test": 3203}
    assert hashed.n_names != random.n_names and sum(hashed.n_names.values()) == len(names)
    assert torch.equal(
        sum(random.splits.values()), sum(hashed.splits.values())
    )  # the same bigrams, split differently
    vocab = Vocab.from_names(names)
    assert torch.equal(sum(hashed.splits.values()), count_bigrams(names, vocab))


def test_default_split_keeps_the_published_numbers(names):
    """The default split with add-one counts (README: val NLL 2.462444, test 2.462226).
    Recomputed here in plain Python from the seeded permutation of name positions."""

    from bigram.metrics import evaluate
    from bigram.table import count_log_probs

    n = len(names)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(2147483647)).tolist()
    label = dict.fromkeys(perm[:3203], "val") | dict.fromkeys(perm[3203:6406], "test")
    parts = {
        s: [w for i, w in enumerate(names) if label.get(i, "train") == s] for s in ("train", "val", "test")
    }
    train = plain_counts(parts["train"])
    V = len({c for w in names for c in w}) + 1
    rows: dict = {}
    for (a, _), c in train.items():
        rows[a] = rows.get(a, 0) + c

    def plain(split: str) -> float:
        held = plain_counts(parts[split])
        ll = math.fsum(
            c * math.log((train.get(ab, 0) + 1) / (rows.get(ab[0], 0) + V)) for ab, c in held.items()
        )
        return -ll / sum(held.values())

    r = load_counts(TrainConfig(data=str(NAMES)))
    lp = count_log_probs(r.splits["train"], 1.0)
    for split, published in (("val", 2.462444), ("test", 2.462226)):
        assert round(plain(split), 6) == published
        assert evaluate(lp, r.splits[split])["nll"] == pytest.approx(plain(split), abs=1e-12)
