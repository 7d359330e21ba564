"""The random split's labels, compiled (numba): `FirstPlaces`, a copy of torch.randperm's CPU
shuffle that finds the first n_val + n_test places of the permutation, and so which names are val
and test, without drawing the whole of it.

The reader draws the places once the first pass (lines.py) has counted the names, and counts
(counting.py) the chunks whose labels are known while a thread runs the shuffle for the rest
(bigram.reader.corpus). It imports counting.py only for its hash tables' free-slot mark and
multiplier (EMPTY, M1), which its own small table uses too: lines < counting < shuffle.
"""

from __future__ import annotations

import mmap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bigram.reader.counting import EMPTY, M1
from bigram.reader.numba_cache import njit


def zeroed(n: int, dtype) -> np.ndarray:
    """np.zeros(n, dtype), its pages mapped at once (MAP_POPULATE) where the OS can: tens of MB
    faulted in one page at a time cost 0.1–0.3 s on a fresh process, against 0.04 s at once, and
    twice that while another thread faults pages in too (the random split's shuffle beside the
    counting)."""
    size = n * np.dtype(dtype).itemsize
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate or size < 1 << 20:
        return np.zeros(n, dtype)
    return np.frombuffer(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate), dtype)


class FirstPlaces:
    """The first k = n_val + n_test places of perm = torch.randperm(n,
    generator=torch.Generator().manual_seed(seed)), n below ~214 million, as a label per index: 1
    for the indices in perm[:n_val] (val), 2 for those in perm[n_val:k] (test), 0 for the rest;
    without drawing the whole permutation (torch draws all n: seconds for tens of millions).

    torch's CPU randperm is a forward Fisher–Yates shuffle driven by its mt19937 generator: step i
    swaps place i with place i + (next 32-bit draw mod (n − i)), so place i is final after step i
    and the first k places after step k − 1. The generator is seeded like std::mt19937 with the
    seed's low 32 bits; numpy's MT19937 gives the same draws from that state. Two stages:

    1. Making it draws every step's target place. An index x ≥ k stays in place x until a step
       targets that place, which takes it for good, so its label is known at once: val if a step
       i < n_val targets place x, else test if any step does. `labels(lo, hi)` for lo ≥ k (four
       fifths of a corpus by default) can be read from then on, by any thread.
    2. `shuffle()` runs the k steps for the indices below k, which may move before a step takes
       them. Only places below k (a dense array) and the few beyond k that two steps target (a
       small hash table) are remembered: a place beyond k that one step alone targets still holds
       its own index then. `labels` below k waits for it.

    At n = 30 million (k = 6 million): 0.035 s to draw (on two threads), 0.06–0.08 s to shuffle,
    ~70 MB, where a whole shuffle of n places took 0.22 s and 150 MB.

    >>> import torch
    >>> places = FirstPlaces(10, 2, 3, seed=7)
    >>> places.shuffle()
    >>> labels = places.labels(0, 10)
    >>> perm = torch.randperm(10, generator=torch.Generator().manual_seed(7)).tolist()
    >>> [sorted(perm.index(i) for i in np.flatnonzero(labels == s)) for s in (1, 2)]  # places in perm
    [[0, 1], [2, 3, 4]]
    """

    def __init__(self, n: int, n_val: int, n_test: int, seed: int) -> None:
        self.n, self.n_val, self.k = n, n_val, n_val + n_test
        self.ready = threading.Event()
        self.front: np.ndarray | None = None  # labels of the indices below k, once shuffled
        self.error: BaseException | None = None
        self.targets = zeroed(self.k, np.int32)  # step i's target place (then what lands in place i)
        # for each place ≥ k, a bit in each of three columns: a step targets it, two steps do, a
        # val step does (side by side: one cache line for the three)
        self.bits = zeroed(3 * ((n - self.k + 7) // 8), np.uint8).reshape(-1, 3)
        draws = _mt19937(seed)
        blocks = [*_blocks(0, n_val), *_blocks(n_val, self.k)]  # a block is val's or test's
        with ThreadPoolExecutor(max_workers=1) as marker:  # marks block b while block b + 1 is drawn
            marked = []
            for lo, hi in blocks:
                _place_targets(self.targets, draws.random_raw(hi - lo), lo, n)
                marked.append(marker.submit(_mark, self.targets, lo, hi, self.k, hi <= n_val, self.bits))
            self.twice = sum(m.result() for m in marked)  # places ≥ k that two steps or more target

    def shuffle(self) -> None:
        """Stage 2: the labels of the indices below k (a thread of its own may run it)."""
        try:
            keys = zeroed(1 << max(4, (2 * self.twice).bit_length()), np.int32)  # at most half full
            keys[:] = EMPTY
            again = np.ascontiguousarray(self.bits[:, 1])  # read at random: a third of the bytes to cache
            _shuffle(self.targets, self.k, again, zeroed(self.k, np.int32), keys, zeroed(len(keys), np.int32))
            front = np.zeros(self.k, dtype=np.uint8)
            _label_front(front, self.targets, self.n_val)
            self.front, self.targets = front, None
        except BaseException as e:  # handed to whoever waits for the labels
            self.error = e
        finally:
            self.ready.set()

    def labels(self, lo: int, hi: int) -> np.ndarray:
        """The labels of indices lo … hi − 1 (below k only once shuffled: waits for it)."""
        out = np.zeros(hi - lo, dtype=np.uint8)
        if hi > self.k:
            at = max(lo, self.k)
            _label_back(out[at - lo :], at - self.k, self.bits, BITS)
        if lo < self.k:
            self.ready.wait()
            if self.error is not None:
                raise self.error
            out[: min(hi, self.k) - lo] = self.front[lo : min(hi, self.k)]
        return out


def _mt19937(seed: int) -> np.random.MT19937:
    """numpy's MT19937 in the state std::mt19937(seed's low 32 bits) starts from."""
    key = np.zeros(624, dtype=np.uint64)
    key[0] = seed & 0xFFFFFFFF
    for j in range(1, 624):  # std::mt19937's seeding
        key[j] = (1812433253 * (int(key[j - 1]) ^ (int(key[j - 1]) >> 30)) + j) & 0xFFFFFFFF
    bits = np.random.MT19937()
    bits.state = {"bit_generator": "MT19937", "state": {"key": key.astype(np.uint32), "pos": 624}}
    return bits


def _blocks(lo: int, hi: int, size: int = 1 << 16) -> list[tuple[int, int]]:
    return [(i, min(i + size, hi)) for i in range(lo, hi, size)]


@njit(cache=True, nogil=True)
def _place_targets(js, draws, first, n):
    """Steps first, first + 1, …'s target places, one per draw."""
    for d in range(draws.shape[0]):
        i = first + d
        js[i] = i + np.int64(np.uint32(draws[d]) % np.uint32(n - i))  # 32-bit: n < 2^32, and twice as quick


@njit(cache=True, nogil=True)
def _mark(js, lo, hi, k, val, bits):
    """Steps lo … hi − 1's target places ≥ k in `bits` (columns: targeted, twice, by val); returns
    how many places two steps now target that did not before."""
    twice = 0
    for i in range(lo, hi):
        b = np.int64(js[i]) - k
        if b >= 0:
            row, bit = b >> 3, np.uint8(1 << (b & 7))
            w = bits[row, 0]
            twice += (w & bit & ~bits[row, 1]) != 0
            bits[row, 1] |= w & bit
            bits[row, 0] = w | bit
            if val:
                bits[row, 2] |= bit
    return twice


@njit(cache=True, nogil=True)
def _shuffle(js, k, again, front, keys, vals):
    """The k Fisher–Yates steps: step i swaps place i with place js[i], and js[i] becomes the index
    that lands in place i. A place's content: front[p] = 1 + index (0 while it holds its own) below
    k; beyond k the hash table `keys`/`vals` for the places two steps target, and none for the rest
    (they hold their own index when a step takes it)."""
    shift = np.uint64(64 - np.log2(keys.shape[0]))  # a slot: the product's top log2(slots) bits
    mask = keys.shape[0] - 1
    for i in range(k):
        j = np.int64(js[i])
        at_i = front[i]
        held = at_i - 1 if at_i != 0 else i  # what place i holds, about to move to place j
        if j < k:
            at_j = front[j]
            js[i] = at_j - 1 if at_j != 0 else j
            front[j] = held + 1
        elif again[(j - k) >> 3] & np.uint8(1 << ((j - k) & 7)):  # two steps target place j
            s = np.int64((np.uint64(j) * M1) >> shift)
            while keys[s] != EMPTY and keys[s] != j:
                s = (s + 1) & mask
            js[i] = vals[s] if keys[s] == j else j
            keys[s] = j
            vals[s] = held
        else:
            js[i] = j


@njit(cache=True, nogil=True)
def _label_front(front, fixed, n_val):
    """The labels of the indices below k that the steps fixed (the first n_val steps are val)."""
    k = front.shape[0]
    for i in range(fixed.shape[0]):
        if fixed[i] < k:
            front[fixed[i]] = 1 if i < n_val else 2


BITS = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.uint8)  # [byte, t]: bit t of the byte


@njit(cache=True, nogil=True)
def _label_back(out, first, bits, eight):
    """out[x] for places first, first + 1, … beyond k: 1 if a val step targets it, else 2 if a
    test step does, else 0 (2·targeted − by val), a byte of each bitmap (8 places) at a time."""
    m = out.shape[0]
    x = min(m, (-first) & 7)  # the places before the first whole byte, then the bytes, then the rest
    for y in range(x):
        out[y] = _label_of(first + y, bits, eight)
    while x + 8 <= m:
        row = (first + x) >> 3
        hit, val = eight[bits[row, 0]], eight[bits[row, 2]]
        for t in range(8):
            out[x + t] = 2 * hit[t] - val[t]
        x += 8
    for y in range(x, m):
        out[y] = _label_of(first + y, bits, eight)


@njit(cache=True, inline="always")
def _label_of(b, bits, eight):
    return 2 * eight[bits[b >> 3, 0], b & 7] - eight[bits[b >> 3, 2], b & 7]
