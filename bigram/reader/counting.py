"""N-gram counting, compiled (numba): one pass over a chunk's UTF-8 bytes counts its names' n-grams
per split.

Read this as plain Python; numba turns it into machine code that runs without the GIL, so the
reader's two threads count two chunks at once. Per name (one line):

    decode its code points, strip white space (a blank line is no name),
    pick its split (the name's position in a seeded permutation, or a hash of its text),
    count each (previous, next) pair, the boundary "\\n" before the first character and after the last.

    >>> acc, chunk = Accumulator(), np.frombuffer("ab\\n\\n b \\nbé".encode(), np.uint8)
    >>> count_chunk(chunk, acc, labels=np.array([0, 1, 2], np.uint8))  # names: ab, b, bé
    3
    >>> s, ctx, nxt, n = acc.ngrams()
    >>> sorted((int(s), chr(a), chr(b), int(n)) for s, a, b, n in zip(s, ctx[:, 0], nxt, n))[:4]
    [(0, '\\n', 'a', 1), (0, 'a', 'b', 1), (0, 'b', '\\n', 1), (1, '\\n', 'b', 1)]

Pairs of two code points below 256 (all of an ASCII corpus, most of a Latin one) are counted in a
dense 3×65536 block; any other pair in an open-addressing hash table keyed by (split, prev, next),
so memory follows the pairs that occur, not V². At another order N (`--order`), each name is
padded with N−1 boundaries and every (split, context of N−1 code points, next) is counted in a
hash table: packed into one integer key (the split, then 8 bits a code point) when all its code
points are below 256 and N ≤ 7, else as a row of a few integers (21 bits a code point) in a
second table. Order 3 first tries a dense block like order 2's, over small ids given to the first
64 code points a thread meets.

At order N every character probes a table of millions of n-grams, far bigger than the fast caches:
a cache miss each, which once made order 5 six times slower than order 2. So a block of names'
n-grams is gathered first (its keys kept up to date as the n-gram slides: a shift and an or), then
counted in a loop of its own that asks the CPU for the slot of the key 16 places ahead while it
probes this one (`_prefetch`): the misses overlap instead of coming one after another. The tables
grow in Python, between blocks, where numpy's large arrays get the OS's huge pages (fewer TLB
misses per probe); no table is replaced inside a compiled loop (numba then reloads it at every
step). The two threads' tables are read out apart and their repeats summed after one sort
(bigram.reader.corpus).

The decoding and the white space come from lines.py; the random split's labels are handed in by
the caller (bigram.reader.corpus, from shuffle.py, which this module does not import).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from bigram.reader.lines import NL, SPACE, decode_one, is_space
from bigram.reader.numba_cache import njit

EMPTY = -1  # a free slot of a hash table (shuffle.py's too)
SKIP = 255  # a label that leaves its name out of the counts
TRI_BITS = 6  # order 3's dense block: 2^6 code points, 3 · 2^18 counts (6 MiB)
TRI_IDS = 1 << TRI_BITS
BLOCK = 1 << 16  # code points decoded before they are counted: the block stays in cache
RING = 64  # rows made ahead of their probe: a power of two above AHEAD
AHEAD = 32  # keys between a table slot's prefetch and its probe: ~a memory latency of probes
MAX_PACKED = 7  # orders whose n-grams of code points < 256 pack into one key: split, then 8 bits each
# the hash split's and the hash tables' multipliers (shuffle.py's table uses M1 too), and murmur3's
# finalizer constants
M1, M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD6E8FEB86659FD93)
_F1, _F2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)


class Accumulator:
    """One thread's counts: the dense block, the hash table of the other pairs, names per split,
    and which code points ≥ 256 were met (shared between threads: setting True twice is harmless)."""

    def __init__(self, seen: np.ndarray | None = None, order: int = 2) -> None:
        self.order = order
        self.hot = np.zeros(3 * 256 * 256, dtype=np.int64)  # [65536·split + 256·prev + next]
        self.keys = np.full(1 << 12, EMPTY, dtype=np.int64)  # split << 42 | prev << 21 | next
        self.vals = np.zeros(1 << 12, dtype=np.int64)
        if order != 2:  # (key, count) pairs of packed n-grams: split, then 8 bits a code point
            self.keys[1::2] = 0
        self.used = 0
        # order ≠ 2: rows of the n-grams that do not pack into one key: their words (`_ref_key`),
        # then their count; EMPTY in column 0 where free
        self.grams = np.full((1 << 12 if order != 2 else 1, row_words(order) + 1), EMPTY, dtype=np.int64)
        self.grams_used = 0
        self.names = np.zeros(3, dtype=np.int64)
        self.seen = np.zeros(0x110000, dtype=np.bool_) if seen is None else seen
        self.scratch = np.zeros(0, dtype=np.int32)  # a block of names' code points, "\n" after each
        self.splits = np.zeros(0, dtype=np.uint8)  # the split of each name of the block
        self.ring = np.zeros((RING, row_words(order) + 1), dtype=np.int64)  # rows about to be counted
        # order ≠ 2: a block's n-grams, gathered before they are counted (`_gather_ngrams`)
        self.kbuf = self.rbuf = np.zeros(0, dtype=np.int64)
        # order 3: trigrams of the first TRI_IDS code points met (a names list in one script has
        # fewer) in a dense block [split, id, id, id], as order 2's pairs are: a counter, not a probe
        self.tri = np.zeros(3 << (3 * TRI_BITS) if order == 3 else 1, dtype=np.int64)
        # code point → its id, EMPTY: none yet
        self.tri_ids = np.full(0x110000 if order == 3 else 256, EMPTY, dtype=np.int16)
        self.tri_ids[NL] = 0
        self.tri_cps = np.zeros(TRI_IDS, dtype=np.int64)  # id → code point
        self.tri_cps[0] = NL
        self.tri_used = np.ones(1, dtype=np.int64)  # ids given so far

    def ngrams(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every counted n-gram as (split, context, next, count) arrays of code points; the
        context is an (n, order − 1) array, oldest code point first."""
        if self.order != 2:  # the rows, the packed keys unpacked, then the dense trigrams
            g, counts = row_digits(self.grams, self.order)
            pairs = self.keys.reshape(-1, 2)  # (key, count) side by side at this order
            full = pairs[:, 0] != EMPTY
            k, n = pairs[full, 0], pairs[full, 1]
            shifts = 8 * np.arange(self.order - 1, 0, -1)  # the oldest code point highest
            ctx = (k[:, None] >> shifts) & 255
            at = np.flatnonzero(self.tri)  # order 3 only: [split, id, id, id], TRI_BITS each
            ids = (at[:, None] >> (TRI_BITS * np.arange(2, 0, -1))) & (TRI_IDS - 1)
            tri_ctx = self.tri_cps[ids] if self.order == 3 else np.zeros((0, self.order - 1), np.int64)
            return (
                np.concatenate([g[:, 0], k >> (8 * self.order), at >> 3 * TRI_BITS]),
                np.concatenate([g[:, 1:-1], ctx.reshape(len(k), self.order - 1), tri_ctx]),
                np.concatenate([g[:, -1], k & 255, self.tri_cps[at & (TRI_IDS - 1)]]),
                np.concatenate([counts, n, self.tri[at]]),
            )
        at = np.flatnonzero(self.hot)
        full = self.keys != EMPTY
        k = self.keys[full]
        return (
            np.concatenate([at >> 16, k >> 42]),
            np.concatenate([(at >> 8) & 255, (k >> 21) & 0x1FFFFF])[:, None],
            np.concatenate([at & 255, k & 0x1FFFFF]),
            np.concatenate([self.hot[at], self.vals[full]]),
        )


def count_chunk(
    buf: np.ndarray,
    acc: Accumulator,
    labels: np.ndarray | None = None,
    seed: int = 0,
    val_frac: float = 0.0,
    test_frac: float = 0.0,
) -> int:
    """Add the names of `buf` (UTF-8 bytes, lines ending in "\\n", already checked, normalized and
    case-folded) to `acc`; returns how many names it held. A name's split is `labels[k]` for the
    chunk's k-th name when labels are given (SKIP: not counted), else the seeded hash of its text
    (`split_of`)."""
    by_hash = labels is None
    if by_hash:
        labels = np.zeros(0, dtype=np.uint8)
    if len(acc.scratch) <= len(buf) + BLOCK:  # a block, and the longest line that may start it
        acc.scratch = np.zeros(len(buf) + BLOCK + 1, dtype=np.int32)
        acc.splits = np.zeros(BLOCK + 1, dtype=np.uint8)  # a name has a code point and its "\n"
        if acc.order != 2:  # a block's n-grams: a few pages of these are ever touched
            acc.kbuf, acc.rbuf = np.zeros(len(acc.scratch), np.int64), np.zeros(len(acc.scratch), np.int64)
    t_test, t_val = thresholds(val_frac, test_frac)
    i = k = 0
    while True:  # _count stops where a table is full; grown here, it goes on
        i, k, acc.keys, acc.vals, acc.used, acc.grams_used, keys_at, nk, rows_at, nr = _count(
            buf, i, k, labels, by_hash, np.uint64(seed & 0xFFFFFFFFFFFFFFFF), t_test, t_val, SPACE,
            acc.hot, acc.keys, acc.vals, acc.used, acc.names, acc.seen, acc.scratch, acc.splits,
            acc.order, acc.grams, acc.grams_used, acc.ring,
            acc.tri, acc.tri_ids, acc.tri_cps, acc.tri_used, acc.kbuf, acc.rbuf,
        )  # fmt: skip
        if keys_at == nk and rows_at == nr:
            return k
        _add_keys(acc, acc.kbuf[keys_at:nk], acc.kbuf[:0])
        _add_rows(acc, rows_at, nr)


def _add_keys(acc: Accumulator, keys: np.ndarray, counts: np.ndarray) -> None:
    """Count packed n-grams into acc's pair table, counts[i] each (none given: 1). The table grows
    here, whenever it is half full, not in compiled code: numpy asks the OS for huge pages for a
    large array, and the probes' address lookups then stay in the TLB (~25% faster at order 5)."""
    i = 0
    while True:
        i, acc.used = _add_keys_while_room(acc.keys, acc.used, keys, counts, i)
        if i == len(keys):
            return
        new = np.full(2 * len(acc.keys), EMPTY, dtype=np.int64)
        new[1::2] = 0
        acc.keys = _rehash_pairs(acc.keys, new)


def _add_rows(acc: Accumulator, r: int, n: int) -> None:
    """Count the n-grams acc.rbuf[r:n] (`_row_ref`) of the block in acc.scratch into the row
    table, grown here whenever it is half full (`_add_keys`)."""
    while True:
        r, acc.grams_used = _add_rows_while_room(
            acc.grams, acc.grams_used, acc.scratch, acc.rbuf, r, n, acc.order, acc.ring
        )
        if r == n:
            return
        _grow_rows(acc)


def _grow_rows(acc: Accumulator) -> None:
    """acc's row table at twice the size."""
    acc.grams = _rehash_rows(
        acc.grams, np.full((2 * len(acc.grams), acc.grams.shape[1]), EMPTY, dtype=np.int64)
    )


def row_words(order: int) -> int:
    """int64 words a row's key takes: its order + 1 digits (the split, then the code points, 21
    bits each) three to a word."""
    return (order + 3) // 3


def row_digits(grams: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """The row table's n-grams as (n, order + 1) digits (split, context…, next) and their counts."""
    g = grams[grams[:, 0] != EMPTY]
    pad = 3 * (g.shape[1] - 1) - (order + 1)  # the first word's leading zero digits
    digits = np.empty((len(g), order + 1), dtype=np.int64)
    for i in range(order + 1):
        p = i + pad
        digits[:, i] = (g[:, p // 3] >> (21 * (2 - p % 3))) & 0x1FFFFF
    return digits, g[:, -1].copy()


def mark_met(acc: Accumulator, met: np.ndarray) -> None:
    """Mark in `met` (a mask over all code points) the code points `acc` counted: every code point
    of a name is the next of one of its n-grams (the boundary "\\n" too), so the nexts say."""
    if acc.order == 2:
        met[np.flatnonzero(acc.hot) & 255] = True
        met[acc.keys[acc.keys != EMPTY] & 0x1FFFFF] = True
        return
    _mark_nexts(acc.keys, acc.grams, met)
    met[acc.tri_cps[np.flatnonzero(acc.tri) & (TRI_IDS - 1)]] = True


def token_ngrams(acc: Accumulator, token: np.ndarray, V: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """acc's n-grams as (split, key, count) arrays, each (split, n-gram) once: key = row · V +
    column in token ids (`token`: code point → id; row = the context's ids as digits base V,
    oldest first), below V^order. (Another thread's accumulator may list the same n-grams.)"""
    if acc.order == 2:  # the dense block [65536·split + 256·prev + next], then the table
        at, full = np.flatnonzero(acc.hot), acc.keys != EMPTY
        k = acc.keys[full]
        prev = np.concatenate([(at >> 8) & 255, (k >> 21) & 0x1FFFFF])
        nxt = np.concatenate([at & 255, k & 0x1FFFFF])
        keys = token[prev].astype(np.int64) * V + token[nxt]
        return np.concatenate([at >> 16, k >> 42]), keys, np.concatenate([acc.hot[at], acc.vals[full]])
    parts = [
        _pair_ngrams(acc.keys, acc.order, token, V),
        _row_table_ngrams(acc.grams, acc.order, token, V),
    ]
    at = np.flatnonzero(acc.tri)  # order 3's dense block: [split, id, id, id], TRI_BITS each
    if len(at):
        ids = (at[:, None] >> (TRI_BITS * np.arange(2, -1, -1))) & (TRI_IDS - 1)
        rows = np.column_stack([at >> (3 * TRI_BITS), acc.tri_cps[ids]])  # (split, c₁, c₂, next)
        parts.append(_row_ngrams(rows, acc.tri[at], token, V))
    parts = [part for part in parts if len(part[0])] or parts[:1]  # most often one part: no copy
    return (
        parts[0] if len(parts) == 1 else tuple(np.concatenate([part[i] for part in parts]) for i in range(3))
    )


def thresholds(val_frac: float, test_frac: float) -> tuple[np.uint64, np.uint64]:
    """A name is test if its 64-bit hash h < t_test, val if t_test ≤ h < t_val: h / 2^64 is
    uniform in [0, 1), so these are the fractions scaled to 64 bits."""
    t_test, t_val = (min(int(f * 2.0**64), 2**64 - 1) for f in (test_frac, test_frac + val_frac))
    return np.uint64(t_test), np.uint64(t_val)


def split_of(name: str, seed: int, val_frac: float, test_frac: float) -> int:
    """The hash split of one name (0 train, 1 val, 2 test), as the reader computes it.

    >>> [split_of("emma", seed, 0.4, 0.4) for seed in range(6)]
    [0, 0, 0, 2, 1, 1]
    """
    cps = np.frombuffer(name.encode("utf-32-le"), dtype=np.int32)
    t_test, t_val = thresholds(val_frac, test_frac)
    return int(_split_by_hash(cps, len(cps), np.uint64(seed & 0xFFFFFFFFFFFFFFFF), t_test, t_val))


@njit(cache=True, nogil=True)
def _split_by_hash(cps, n, seed, t_test, t_val):
    """The hash mixes the name's length, first and last code points and the sum of its code points
    plus its "\\n" (wrapping at 32 bits), then murmur3's 64-bit finalizer: names equal in all four
    share a split, so a name repeated anywhere in the corpus stays on one side."""
    total = np.uint64(NL)
    for j in range(n):
        total += np.uint64(cps[j])
    return _split_of_sum(total, cps[0], cps[n - 1], n, seed, t_test, t_val)


@njit(cache=True, nogil=True)
def _split_of_sum(total, first, last, n, seed, t_test, t_val):
    """`_split_by_hash` once the sum is known (the reader sums as it decodes)."""
    h = (total & np.uint64(0xFFFFFFFF)) * M1
    h ^= np.uint64(first) << np.uint64(21)
    h ^= np.uint64(last) << np.uint64(42)
    h += np.uint64(n) * M2
    h ^= seed
    h ^= h >> np.uint64(33)
    h *= _F1
    h ^= h >> np.uint64(33)
    h *= _F2
    h ^= h >> np.uint64(33)
    if h < t_test:
        return 2
    return 1 if h < t_val else 0


@njit(cache=True, nogil=True)
def _count(
    buf, i, k, labels, by_hash, seed, t_test, t_val, space, hot, keys, vals, used, names, seen, name,
    splits, order, grams, grams_used, ring, tri, tri_ids, tri_cps, tri_used, kbuf, rbuf,
):  # fmt: skip
    """count_chunk's loop from buf[i] (the chunk's k-th name), a block of names at a time: decode,
    strip and split them, then count. Returns (i, k, the tables, used, grams_used, then where
    the block's keys and rows stopped and how many it has): at order ≠ 2 it returns early, with
    the block's n-grams counted up to there, when a table must grow."""
    n = buf.shape[0]
    while i < n:
        i, k, m = _read_names(buf, i, k, labels, by_hash, seed, t_test, t_val, space, names, name, splits)
        if order == 2:
            keys, vals, used = _count_pairs(name, m, splits, hot, keys, vals, used, seen)
            continue
        nk, nr = _gather_ngrams(name, m, splits, order, seen, tri, tri_ids, tri_cps, tri_used, kbuf, rbuf)
        keys_at, used = _add_keys_while_room(keys, used, kbuf[:nk], kbuf[:0], 0)
        rows_at, grams_used = _add_rows_while_room(grams, grams_used, name, rbuf, 0, nr, order, ring)
        if keys_at < nk or rows_at < nr:
            return i, k, keys, vals, used, grams_used, keys_at, nk, rows_at, nr
    return i, k, keys, vals, used, grams_used, 0, 0, 0, 0


@njit(cache=True, nogil=True)
def _read_names(buf, i, k, labels, by_hash, seed, t_test, t_val, space, names, name, splits):
    """From buf[i:], names into `name` until it holds BLOCK code points: each one's code points
    stripped of white space (str.strip), then "\n"; its split into `splits` (a blank line is no
    name; a name of split SKIP is not kept). Returns (i after, names read so far, m code points)."""
    n = buf.shape[0]
    m, q = 0, 0  # code points in `name`; names in the block
    while i < n and m < BLOCK:
        if not by_hash and k < labels.shape[0] and labels[k] == SKIP and 0x20 < buf[i] < 0x80:
            k += 1  # a name (it starts with a visible ASCII character) left out: to its line's end
            while i < n and buf[i] != NL:
                i += 1
            i += 1
            continue
        at, total = m, np.uint64(NL)  # one line's code points, up to "\n" or the chunk's end; their sum
        while i < n:
            c = np.int64(buf[i])
            if c < 0x80:
                i += 1
                if c == NL:
                    break
            else:
                c, i = decode_one(buf, i, n)
            name[at] = c
            total += np.uint64(c)
            at += 1
        lo, hi = m, at  # str.strip(); a visible ASCII character needs no look at the table
        while lo < hi and (name[lo] <= 0x20 or name[lo] >= 0x7F) and is_space(name[lo], space):
            total -= np.uint64(name[lo])
            lo += 1
        while hi > lo and (name[hi - 1] <= 0x20 or name[hi - 1] >= 0x7F) and is_space(name[hi - 1], space):
            total -= np.uint64(name[hi - 1])
            hi -= 1
        if lo == hi:
            continue
        if by_hash:
            s = _split_of_sum(total, name[lo], name[hi - 1], hi - lo, seed, t_test, t_val)
        else:  # past the labels only if the first pass counted differently: the caller checks k
            s = labels[k] if k < labels.shape[0] else 0
        k += 1
        if s == SKIP:
            continue
        names[s] += 1
        if lo == m:  # in place already
            m = hi
        else:  # after leading white space: moved to the block's end
            for j in range(lo, hi):
                name[m] = name[j]
                m += 1
        name[m] = NL
        m += 1
        splits[q] = s
        q += 1
    return i, k, m


@njit(cache=True, nogil=True)
def _count_pairs(name, m, splits, hot, keys, vals, used, seen):
    """Order 2: each (prev, next) of the block's names, the boundary before each and its "\n"
    after, into the dense block when both are below 256, else into the hash table (may grow)."""
    prev, q = np.int64(NL), 0
    base = np.int64(splits[0]) * 65536
    for j in range(m):
        nxt = np.int64(name[j])
        if (prev | nxt) < 256:  # both below 256
            hot[np.uint64(base + (prev << 8) + nxt)] += 1  # unsigned: no negative-index check
        else:
            if nxt >= 256:
                seen[nxt] = True
            if 2 * (used + 1) > keys.shape[0]:
                keys, vals = _grow(keys, vals)
            used += _add(keys, vals, (np.int64(splits[q]) << 42) | (prev << 21) | nxt, 1)
        prev = nxt
        if nxt == NL:  # the next name
            q += 1
            base = np.int64(splits[q]) * 65536
    return keys, vals, used


@njit(cache=True, nogil=True)
def _gather_ngrams(name, m, splits, order, seen, tri, tri_ids, tri_cps, tri_used, kbuf, rbuf):
    """Another order: in each name the n-gram slides along, its context starting as order − 1
    boundaries. Order 3 counts into its dense block while the three code points have small ids;
    an n-gram of code points all below 256 goes to `kbuf` as one packed key (kept up to date as
    it slides: a shift and an or), any other to `rbuf` as where it ends (`_row_ref`). They are
    counted afterwards, a block at a time: the tables' probes then run back to back, and no table
    grows in this loop. Returns how many of each."""
    lo, q, nk, nr = 0, 0, 0, 0  # the name's start in the block; its index; keys; rows
    width = 8 * order if order <= MAX_PACKED else 0  # the packed n-gram's bits (0: never packed)
    full = (np.int64(1) << width) - 1
    boundary = np.int64(0)  # `order` boundaries, packed
    for _ in range(order):
        boundary = (boundary << 8) | NL
    packed, wide = boundary & full, np.int64(-1)  # the latest code point ≥ 256 (< lo: none)
    tri_ctx, no_id = np.int64(0), 0  # order 3: the context's two ids; steps it holds one without
    for j in range(m):
        nxt, s = np.int64(name[j]), np.int64(splits[q])
        packed = ((packed << 8) | (nxt & 255)) & full
        if nxt >= 256:
            wide = np.int64(j)
            seen[nxt] = True
        dense = False
        if order == 3:
            nid = np.int64(tri_ids[nxt])
            if nid == EMPTY and tri_used[0] < TRI_IDS:  # first met: the next id
                nid = _new_id(nxt, tri_ids, tri_cps, tri_used)
            dense, tri_ctx_was = nid != EMPTY and no_id == 0, tri_ctx  # all three have ids
            tri_ctx = ((tri_ctx << TRI_BITS) | (nid & (TRI_IDS - 1))) & ((1 << 2 * TRI_BITS) - 1)
            no_id = 2 if nid == EMPTY else max(no_id - 1, 0)
        if dense:
            tri[np.uint64((s << (3 * TRI_BITS)) | (tri_ctx_was << TRI_BITS) | nid)] += 1
        elif width and (wide < lo or j - wide >= order):  # every code point of it below 256
            kbuf[nk] = (s << width) | packed
            nk += 1
        else:
            rbuf[nr] = _row_ref(j, lo, s)
            nr += 1
        if nxt == NL:  # the next name: its context starts as boundaries again
            lo, q, tri_ctx, no_id, packed = j + 1, q + 1, np.int64(0), 0, boundary & full
    return nk, nr


@njit(cache=True, nogil=True)
def _row_ref(j, lo, s):
    """An n-gram counted as a row, by where it ends in the block: (j, j − its name's start, capped
    at 255, split) in one integer."""
    return (np.int64(j) << 10) | (min(j - lo, 255) << 2) | s


@njit(cache=True, nogil=True)
def _new_id(cp, tri_ids, tri_cps, tri_used):
    """Order 3: the next small id, to code point `cp`, met for the first time."""
    nid = tri_used[0]
    tri_ids[cp] = nid
    tri_cps[nid] = cp
    tri_used[0] += 1
    return nid


@njit(cache=True, nogil=True)
def _add_keys_while_room(table, used, keys, counts, i):
    """From keys[i], count keys until the table must grow (a loop of its own: a table that may be
    replaced in a loop costs that loop several times its probes). Returns (i after, used)."""
    n, room = keys.shape[0], (table.shape[0] >> 2) - 1  # used may reach room
    mask, ones = (table.shape[0] >> 1) - 1, counts.shape[0] == 0
    while i < n and used <= room:
        if i + AHEAD < n:
            _prefetch(table, 2 * (_pair_hash(keys[i + AHEAD]) & mask))
        used += _add_pair(table, keys[i], 1 if ones else counts[i])
        i += 1
    return i, used


@intrinsic
def _prefetch(typingctx, array, index):
    """Ask the CPU to fetch array[index]'s cache line (LLVM's prefetch: for reading and writing,
    kept in every cache level) and go on: the probe that reads it comes AHEAD keys later."""

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        byte = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), byte), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, types.intp), codegen


@njit(cache=True, nogil=True)
def _add_rows_while_room(grams, used, name, rbuf, r, n, order, ring):
    """`_add_keys_while_room` for rows: from rbuf[r] until the table must grow. Each row's words
    are made once, AHEAD rows before its probe, into a ring of RING rows (its hash in the last
    column), and its slot prefetched then. The probe is written out here, not called: numba's
    call with arrays costs more than the probe itself."""
    room, mask, words = (grams.shape[0] >> 1) - 1, grams.shape[0] - 1, grams.shape[1] - 1
    for x in range(r, min(r + AHEAD, n)):
        _ref_key(name, rbuf[x], order, ring, x & (RING - 1))
    while r < n and used <= room:
        if r + AHEAD < n:
            at = (r + AHEAD) & (RING - 1)
            _ref_key(name, rbuf[r + AHEAD], order, ring, at)
            _prefetch(grams, (ring[at, words] & mask) * (words + 1))
        at = r & (RING - 1)
        h = ring[at, words] & mask
        while grams[h, 0] != EMPTY:
            same = True
            for w in range(words):
                same = same and grams[h, w] == ring[at, w]
            if same:
                break
            h = (h + 1) & mask
        if grams[h, 0] == EMPTY:
            for w in range(words):
                grams[h, w] = ring[at, w]
            grams[h, words] = 0
            used += 1
        grams[h, words] += 1
        r += 1
    return r, used


@njit(cache=True, nogil=True)
def _ref_key(name, ref, order, ring, at):
    """The n-gram `ref` (`_row_ref`) as a row's words into ring[at], its hash (`_row_hash`) in
    the last column: its digits (split, context…, next: boundaries before its name's start), 21
    bits each, three to a word, oldest highest; the first word holds fewer when order + 1 is not
    a multiple of three."""
    j, back = ref >> 10, (ref >> 2) & 255
    words = ring.shape[1] - 1
    pad = 3 * words - (order + 1)
    for w in range(words):
        ring[at, w] = 0
    for p in range(pad, 3 * words):  # digit p − pad: the split, then code point p − pad − 1
        t = p - pad - 1
        d = (
            ref & 3
            if t < 0
            else (np.int64(name[j - order + 1 + t]) if order - 1 - t <= back else np.int64(NL))
        )
        ring[at, p // 3] = (ring[at, p // 3] << 21) | d
    ring[at, words] = _row_hash(ring, at)


@njit(cache=True, nogil=True)
def _mark_nexts(table, grams, met):
    """`mark_met` for the pair table (the low byte of each key) and the row table."""
    for j in range(0, table.shape[0], 2):
        if table[j] != EMPTY:
            met[table[j] & 255] = True
    for j in range(grams.shape[0]):
        if grams[j, 0] != EMPTY:  # the next: the last word's lowest digit
            met[grams[j, -2] & 0x1FFFFF] = True


@njit(cache=True, nogil=True)
def _row_ngrams(digits, counts, token, V):
    """n-grams given as digits (split, context…, next) as (split, key, count) arrays
    (`token_ngrams`)."""
    keys = np.empty(digits.shape[0], np.int64)
    for j in range(digits.shape[0]):
        k = np.int64(0)
        for t in range(1, digits.shape[1]):  # the context's code points, then the next
            k = k * V + token[digits[j, t]]
        keys[j] = k
    return digits[:, 0].copy(), keys, counts


@njit(cache=True, nogil=True)
def _row_table_ngrams(grams, order, token, V):
    """The row table's n-grams as (split, key, count) arrays (`token_ngrams`), read from its
    packed words directly: row_digits' (n, order + 1) digits would take 8 bytes a digit."""
    words = grams.shape[1] - 1
    pad = 3 * words - (order + 1)  # the first word's leading zero digits
    n = 0
    for j in range(grams.shape[0]):
        n += grams[j, 0] != EMPTY
    s, keys, counts = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    i = 0
    for j in range(grams.shape[0]):
        if grams[j, 0] == EMPTY:
            continue
        k = np.int64(0)
        for d in range(order + 1):  # the split, then the context's code points, then the next
            p = d + pad
            digit = (grams[j, p // 3] >> (21 * (2 - p % 3))) & 0x1FFFFF
            if d == 0:
                s[i] = digit
            else:
                k = k * V + token[digit]
        keys[i], counts[i] = k, grams[j, words]
        i += 1
    return s, keys, counts


@njit(cache=True, nogil=True)
def _pair_ngrams(table, order, token, V):
    """The pair table's n-grams as (split, key, count) arrays (`token_ngrams`)."""
    n = 0
    for j in range(0, table.shape[0], 2):
        n += table[j] != EMPTY
    s, keys, counts = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    i = 0
    for j in range(0, table.shape[0], 2):
        key = table[j]
        if key == EMPTY:
            continue
        k = np.int64(0)
        for t in range(order - 1, -1, -1):  # the oldest code point highest
            k = k * V + token[(key >> (8 * t)) & 255]
        s[i], keys[i], counts[i] = key >> (8 * order), k, table[j + 1]
        i += 1
    return s, keys, counts


@njit(cache=True, nogil=True)
def _slot(keys, key):
    """Where `key` is in the table, or the free slot where it goes (linear probing)."""
    mask = keys.shape[0] - 1
    h = np.int64((np.uint64(key) * M1) >> np.uint64(40)) & mask
    while keys[h] != key and keys[h] != EMPTY:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _add(keys, vals, key, count):
    """Count `count` more of `key`; 1 if it is new to the table."""
    h = _slot(keys, key)
    vals[h] += count
    if keys[h] == EMPTY:
        keys[h] = key
        return 1
    return 0


@njit(cache=True, nogil=True)
def _grow(keys, vals):
    """The table at twice the size (kept at most half full, so probes stay short)."""
    new_keys = np.full(2 * keys.shape[0], EMPTY, dtype=np.int64)
    new_vals = np.zeros(2 * keys.shape[0], dtype=np.int64)
    for j in range(keys.shape[0]):
        if keys[j] != EMPTY:
            h = _slot(new_keys, keys[j])
            new_keys[h] = keys[j]
            new_vals[h] = vals[j]
    return new_keys, new_vals


@njit(cache=True, nogil=True)
def _pair_hash(key):
    """A packed n-gram's hash: its slot in a pair table is this & mask."""
    return np.int64((np.uint64(key) * M1) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _pair_slot(table, key):
    """Where `key` is in a table of (key, count) pairs side by side, or the free slot for it."""
    mask = (table.shape[0] >> 1) - 1
    h = _pair_hash(key) & mask
    while table[2 * h] != key and table[2 * h] != EMPTY:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _add_pair(table, key, count):
    """`_add` for the pair table: one cache line per probe, which pays at orders above 2, where
    every character probes a table too big for the fastest cache."""
    h = _pair_slot(table, key)
    table[2 * h + 1] += count
    if table[2 * h] == EMPTY:
        table[2 * h] = key
        return 1
    return 0


@njit(cache=True, nogil=True)
def _rehash_pairs(table, new):
    """The pair table's entries into `new` (empty, twice its size); returns new."""
    for j in range(0, table.shape[0], 2):
        if table[j] != EMPTY:
            h = _pair_slot(new, table[j])
            new[2 * h] = table[j]
            new[2 * h + 1] = table[j + 1]
    return new


@njit(cache=True, nogil=True)
def _row_hash(rows, j):
    """The hash of rows[j]'s words (the last column, its count, left out): its slot in the row
    table is this & mask. (Rows are read by index: a slice in a hot loop costs more than a probe.)"""
    h = np.uint64(0)
    for w in range(rows.shape[1] - 1):
        h = (h ^ np.uint64(rows[j, w])) * M2
    return np.int64((h * M1) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _row_slot(grams, rows, j):
    """Where the words of rows[j] are in the table, or the free slot where they go."""
    mask, words = grams.shape[0] - 1, grams.shape[1] - 1
    h = _row_hash(rows, j) & mask
    while grams[h, 0] != EMPTY:
        same = True
        for w in range(words):
            same = same and grams[h, w] == rows[j, w]
        if same:
            break
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _rehash_rows(grams, new):
    """The row table's entries into `new` (empty, twice its size); returns it."""
    mask, width = new.shape[0] - 1, new.shape[1]
    for j in range(grams.shape[0]):
        if j + AHEAD < grams.shape[0]:  # a slot ahead (an empty row's prefetch does no harm)
            _prefetch(new, (_row_hash(grams, j + AHEAD) & mask) * width)
        if grams[j, 0] != EMPTY:
            h = _row_slot(new, grams, j)
            for w in range(width):
                new[h, w] = grams[j, w]
    return new
