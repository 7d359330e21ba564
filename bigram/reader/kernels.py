"""The corpus reader's inner loops, compiled (numba): one pass over a chunk's UTF-8 bytes.

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
points are below 256 and N ≤ 7, else as a row of N+1 integers in a second table. Order 3 first
tries a dense block like order 2's, over small ids given to the first 64 code points a thread meets.
"""

from __future__ import annotations

import mmap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bigram.reader.numba_cache import njit

NL = 10  # "\n": the boundary while counting, token 0 once the vocabulary is made
CR = 13  # "\r": a line end the reader makes "\n" first
EMPTY = -1  # a free slot of the hash table
SKIP = 255  # a label that leaves its name out of the counts
TRI_BITS = 6  # order 3's dense block: 2^6 code points, 3 · 2^18 counts (6 MiB)
TRI_IDS = 1 << TRI_BITS
BLOCK = 1 << 16  # code points decoded before they are counted: the block stays in cache
MAX_PACKED = 7  # orders whose n-grams of code points < 256 pack into one key: split, then 8 bits each
# code point → does str.strip() remove it (white space lies below U+3001); "\n" never inside a line
SPACE = np.zeros(0x3001, dtype=np.bool_)
SPACE[[c for c in range(0x3001) if chr(c).isspace() and c != NL]] = True
# the hash split's and the hash table's multipliers, and murmur3's finalizer constants
_M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD6E8FEB86659FD93)
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
        # order ≠ 2: rows (split, context…, next), EMPTY in column 0 where free
        self.grams = np.full((1 << 12 if order != 2 else 1, order + 1), EMPTY, dtype=np.int64)
        self.gram_vals = np.zeros(len(self.grams), dtype=np.int64)
        self.grams_used = 0
        self.names = np.zeros(3, dtype=np.int64)
        self.seen = np.zeros(0x110000, dtype=np.bool_) if seen is None else seen
        self.scratch = np.zeros(0, dtype=np.int32)  # a block of names' code points, "\n" after each
        self.splits = np.zeros(0, dtype=np.uint8)  # the split of each name of the block
        self.context = np.zeros(max(order - 1, 1), dtype=np.int64)
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
            rows = self.grams[:, 0] != EMPTY
            g = self.grams[rows]
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
                np.concatenate([self.gram_vals[rows], n, self.tri[at]]),
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
    t_test, t_val = thresholds(val_frac, test_frac)
    acc.keys, acc.vals, acc.used, acc.grams, acc.gram_vals, acc.grams_used, k = _count(
        buf, labels, by_hash, np.uint64(seed & 0xFFFFFFFFFFFFFFFF), t_test, t_val, SPACE,
        acc.hot, acc.keys, acc.vals, acc.used, acc.names, acc.seen, acc.scratch, acc.splits,
        acc.order, acc.grams, acc.gram_vals, acc.grams_used, acc.context,
        acc.tri, acc.tri_ids, acc.tri_cps, acc.tri_used,
    )  # fmt: skip
    return k


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
    h = (total & np.uint64(0xFFFFFFFF)) * _M1
    h ^= np.uint64(cps[0]) << np.uint64(21)
    h ^= np.uint64(cps[n - 1]) << np.uint64(42)
    h += np.uint64(n) * _M2
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
def _decode_one(b, i, n):
    """The code point starting at byte i, and the index after it. The input is valid UTF-8, except
    in `count_lines`' first pass: a sequence cut by the end is then taken byte by byte."""
    c = np.int64(b[i])
    if c < 0x80:
        return c, i + 1
    if c < 0xE0 and i + 1 < n:
        return ((c & 0x1F) << 6) | (np.int64(b[i + 1]) & 0x3F), i + 2
    if c < 0xF0 and i + 2 < n:
        return ((c & 0x0F) << 12) | ((np.int64(b[i + 1]) & 0x3F) << 6) | (np.int64(b[i + 2]) & 0x3F), i + 3
    if i + 3 < n:
        return (
            ((c & 0x07) << 18)
            | ((np.int64(b[i + 1]) & 0x3F) << 12)
            | ((np.int64(b[i + 2]) & 0x3F) << 6)
            | (np.int64(b[i + 3]) & 0x3F)
        ), i + 4
    return c, i + 1


@njit(cache=True, nogil=True)
def _is_space(c, space):
    return c < space.shape[0] and space[c]


@njit(cache=True, nogil=True)
def _count(
    buf, labels, by_hash, seed, t_test, t_val, space, hot, keys, vals, used, names, seen, name, splits,
    order, grams, gram_vals, grams_used, context, tri, tri_ids, tri_cps, tri_used,
):  # fmt: skip
    """count_chunk's loop, a block of names at a time: decode, strip and split them, then count."""
    n = buf.shape[0]
    i, k = 0, 0  # where in buf; names so far in this chunk
    while i < n:
        i, k, m = _read_names(buf, i, k, labels, by_hash, seed, t_test, t_val, space, names, name, splits)
        if order == 2:
            keys, vals, used = _count_pairs(name, m, splits, hot, keys, vals, used, seen)
        else:
            keys, used, grams, gram_vals, grams_used = _count_ngrams(
                name, m, splits, order, keys, used, grams, gram_vals, grams_used, context, seen,
                tri, tri_ids, tri_cps, tri_used,
            )  # fmt: skip
    return keys, vals, used, grams, gram_vals, grams_used, k


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
        at = m  # one line's code points, up to "\n" or the end of the chunk
        while i < n:
            c = np.int64(buf[i])
            if c < 0x80:
                i += 1
                if c == NL:
                    break
            else:
                c, i = _decode_one(buf, i, n)
            name[at] = c
            at += 1
        lo, hi = m, at
        while lo < hi and _is_space(name[lo], space):
            lo += 1
        while hi > lo and _is_space(name[hi - 1], space):
            hi -= 1
        if lo == hi:
            continue
        if by_hash:
            s = _split_by_hash(name[lo:hi], hi - lo, seed, t_test, t_val)
        else:  # past the labels only if the first pass counted differently: the caller checks k
            s = labels[k] if k < labels.shape[0] else 0
        k += 1
        if s == SKIP:
            continue
        names[s] += 1
        for j in range(lo, hi):  # to the block's end (a copy only after leading white space)
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
            used += _add(keys, vals, (np.int64(splits[q]) << 42) | (prev << 21) | nxt)
        prev = nxt
        if nxt == NL:  # the next name
            q += 1
            base = np.int64(splits[q]) * 65536
    return keys, vals, used


@njit(cache=True, nogil=True)
def _count_ngrams(
    name, m, splits, order, keys, used, grams, gram_vals, grams_used, context, seen,
    tri, tri_ids, tri_cps, tri_used,
):  # fmt: skip
    """Another order: in each name the context slides along, starting as order − 1 boundaries.
    Order 3 counts into its dense block while the three code points have small ids; else the
    context is read off the name as one packed key (every code point below 256), or as a row."""
    lo, q = 0, 0  # the name's start in the block; its index
    tri_ctx, no_id = np.int64(0), 0  # order 3: the context's two ids; steps it holds one without
    for j in range(m):
        nxt, s = np.int64(name[j]), np.int64(splits[q])
        dense = False
        if order == 3:
            nid = np.int64(tri_ids[nxt])
            if nid == EMPTY and tri_used[0] < TRI_IDS:  # first met: the next id
                nid = tri_used[0]
                tri_ids[nxt] = nid
                tri_cps[nid] = nxt
                tri_used[0] += 1
                if nxt >= 256:  # the vocabulary's size check reads `seen`
                    seen[nxt] = True
            dense, tri_ctx_was = nid != EMPTY and no_id == 0, tri_ctx  # all three have ids
            tri_ctx = ((tri_ctx << TRI_BITS) | (nid & (TRI_IDS - 1))) & ((1 << 2 * TRI_BITS) - 1)
            no_id = 2 if nid == EMPTY else max(no_id - 1, 0)
        if dense:
            tri[np.uint64((s << (3 * TRI_BITS)) | (tri_ctx_was << TRI_BITS) | nid)] += 1
        else:  # the context, as one key while every code point is below 256, else as a row
            packed = np.int64(0)
            narrow = nxt < 256 and order <= MAX_PACKED
            for t in range(order - 1):
                at = j - (order - 1) + t
                c = np.int64(name[at]) if at >= lo else np.int64(NL)
                context[t] = c
                packed = (packed << 8) | (c & 255)
                narrow = narrow and c < 256
            if narrow:
                if 4 * (used + 1) > keys.shape[0]:
                    keys = _grow_pairs(keys)
                used += _add_pair(keys, (s << (8 * order)) | (packed << 8) | nxt)
            else:
                if nxt >= 256:
                    seen[nxt] = True
                if 2 * (grams_used + 1) > grams.shape[0]:
                    grams, gram_vals = _grow_rows(grams, gram_vals)
                grams_used += _add_row(grams, gram_vals, s, context, order - 1, nxt)
        if nxt == NL:  # the next name: its context starts as boundaries again
            lo, q, tri_ctx, no_id = j + 1, q + 1, np.int64(0), 0
    return keys, used, grams, gram_vals, grams_used


@njit(cache=True, nogil=True)
def _slot(keys, key):
    """Where `key` is in the table, or the free slot where it goes (linear probing)."""
    mask = keys.shape[0] - 1
    h = np.int64((np.uint64(key) * _M1) >> np.uint64(40)) & mask
    while keys[h] != key and keys[h] != EMPTY:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _add(keys, vals, key):
    """Count one more of `key`; 1 if it is new to the table."""
    h = _slot(keys, key)
    vals[h] += 1
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
def _pair_slot(table, key):
    """Where `key` is in a table of (key, count) pairs side by side, or the free slot for it."""
    mask = (table.shape[0] >> 1) - 1
    h = np.int64((np.uint64(key) * _M1) >> np.uint64(32)) & mask
    while table[2 * h] != key and table[2 * h] != EMPTY:
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _add_pair(table, key):
    """`_add` for the pair table: one cache line per probe, which pays at orders above 2, where
    every character probes a table too big for the fastest cache."""
    h = _pair_slot(table, key)
    table[2 * h + 1] += 1
    if table[2 * h] == EMPTY:
        table[2 * h] = key
        return 1
    return 0


@njit(cache=True, nogil=True)
def _grow_pairs(table):
    """The pair table at twice the size."""
    new = np.full(2 * table.shape[0], EMPTY, dtype=np.int64)
    new[1::2] = 0
    for j in range(0, table.shape[0], 2):
        if table[j] != EMPTY:
            h = _pair_slot(new, table[j])
            new[2 * h] = table[j]
            new[2 * h + 1] = table[j + 1]
    return new


@njit(cache=True, nogil=True)
def _row_slot(grams, s, context, m, nxt):
    """Where the row (s, context[:m], nxt) is in the table, or the free slot where it goes."""
    mask = grams.shape[0] - 1
    h = np.uint64(s) * _M1 + np.uint64(nxt)
    for t in range(m):
        h = (h ^ np.uint64(context[t])) * _M2
    h = np.int64((h * _M1) >> np.uint64(40)) & mask
    while grams[h, 0] != EMPTY:
        same = grams[h, 0] == s and grams[h, m + 1] == nxt
        for t in range(m):
            same = same and grams[h, t + 1] == context[t]
        if same:
            break
        h = (h + 1) & mask
    return h


@njit(cache=True, nogil=True)
def _add_row(grams, gram_vals, s, context, m, nxt):
    """Count one more (s, context[:m], nxt); 1 if it is new to the table."""
    h = _row_slot(grams, s, context, m, nxt)
    gram_vals[h] += 1
    if grams[h, 0] == EMPTY:
        grams[h, 0] = s
        for t in range(m):
            grams[h, t + 1] = context[t]
        grams[h, m + 1] = nxt
        return 1
    return 0


@njit(cache=True, nogil=True)
def _grow_rows(grams, gram_vals):
    """The n-gram table at twice the size."""
    m = grams.shape[1] - 2
    new = np.full((2 * grams.shape[0], grams.shape[1]), EMPTY, dtype=np.int64)
    new_vals = np.zeros(2 * grams.shape[0], dtype=np.int64)
    for j in range(grams.shape[0]):
        if grams[j, 0] != EMPTY:
            h = _row_slot(new, grams[j, 0], grams[j, 1 : m + 1], m, grams[j, m + 1])
            new[h] = grams[j]
            new_vals[h] = gram_vals[j]
    return new, new_vals


def _line_start_kinds() -> np.ndarray:
    """What a line's first two bytes say about it, by (first << 8 | second): 0 an empty line, 1 a
    name (its first character is not white space), 2 unsure (it starts with a white space
    character, or with the first two bytes of one: the exact scan decides)."""
    kinds = np.ones(1 << 16, dtype=np.uint8)
    kinds[NL << 8 : (NL + 1) << 8] = 0
    for c in np.flatnonzero(SPACE):
        b = chr(c).encode()
        if len(b) == 1:
            kinds[b[0] << 8 : (b[0] + 1) << 8] = 2
        else:
            kinds[b[0] << 8 | b[1]] = 2
    return kinds


LINE_START = _line_start_kinds()


def count_lines(buf: np.ndarray) -> int:
    """How many names a chunk of UTF-8 bytes holds, before any normalization: its lines with a
    character that is not white space (no normalization or case folding turns a character into
    white space or back). The random split's first pass: a line's first two bytes decide, in a
    loop without branches; the lines that start with white space (the loop notes where, up to
    UNSURE of them) are then read character by character, or the whole chunk if there are more.

    >>> count_lines(np.frombuffer("ann\\n\\n \\u3000\\n bob".encode(), np.uint8))
    2
    """
    at = np.empty(UNSURE, dtype=np.int64)
    names, unsure = _count_line_starts(buf, LINE_START, at)
    if unsure == 0:
        return int(names)
    if unsure >= UNSURE:  # `at` is full (its last place written over): the whole chunk closely
        return int(_count_lines(buf, SPACE))
    return int(names) + int(_names_at(buf, at[:unsure], SPACE))


UNSURE = 1 << 12  # line starts that count_lines reads closely, at most


@njit(cache=True, nogil=True)
def _names_at(buf, starts, space):
    """How many of the lines starting at `starts` hold a character that is not white space."""
    n, count = buf.shape[0], 0
    for i in starts:
        c = np.int64(NL)
        while i < n:
            c, i = _decode_one(buf, i, n)
            if c == NL or not _is_space(c, space):
                break
        count += c != NL and not _is_space(c, space)
    return count


def unify_line_ends(buf: bytes) -> bytes:
    """CRLF and lone CR become LF, in one compiled pass (bytes.replace takes ~3 ms a MiB of CRLF
    lines, this ~0.3).

    >>> unify_line_ends(b"ann\\r\\nbob\\rcy\\n")
    b'ann\\nbob\\ncy\\n'
    """
    src = np.frombuffer(buf, np.uint8)
    out = np.empty(len(src), dtype=np.uint8)
    return out[: _unify_line_ends(src, out)].tobytes()


@njit(cache=True, nogil=True)
def _unify_line_ends(buf, out):
    m, prev = 0, np.uint8(0)
    for i in range(buf.shape[0]):
        c = buf[i]
        out[m] = NL if c == CR else c
        m += not (c == NL and prev == CR)  # the LF of a CRLF: its CR already ended the line
        prev = c
    return m


def quick_count_lines(buf: np.ndarray) -> int:
    """`count_lines` of a chunk as it lies in the file (line ends LF or CRLF), or -1 where a lone
    "\\r" makes lines that only `count_lines` (after the reader's unify) reads right. A chunk holds
    a name per "\\n", which numpy counts at memory speed, less its blank and white-space-only
    lines: a loop that LLVM turns into vector instructions (≥ 5 GB/s against ~1.2 for
    `count_lines`) looks for lines that may start with white space, 512 bytes at a time, and only
    those lines are read character by character.

    >>> chunks = b"ann\\nbob\\ncy", b"ann\\n\\n \\nbob\\r\\n", b"a\\rb\\n"  # blank lines; a lone "\\r"
    >>> [quick_count_lines(np.frombuffer(b, np.uint8)) for b in chunks]
    [3, 2, -1]
    """
    n = buf.shape[0]
    if n < 3 or buf[n - 1] == CR:
        return -1
    blank = _blank_lines(buf, SPACE)
    if blank < 0:
        return -1
    if buf[n - 2] == NL:  # a last line of one byte (or empty): the loop looks at none that short
        blank += _is_blank(buf, n - 1, SPACE)
    return int(np.count_nonzero(buf == NL)) + int(buf[n - 1] != NL) - int(blank)


@njit(cache=True, nogil=True)
def _blank_lines(buf, space):
    """How many lines (but a last one of one byte) are blank or white space only, or -1 if a "\\r"
    is not a CRLF's. Each LOOK bytes are first checked by an OR without branches, which
    vectorizes; only a block where it finds something is read line start by line start."""
    n = buf.shape[0]
    blank = _is_blank(buf, 0, space) if may_start_blank(buf[0], buf[1]) else 0
    for lo in range(0, n - 2, LOOK):
        seg = buf[lo : min(lo + LOOK, n - 2) + 2]  # a view: with buf[lo + i] the loop does not vectorize
        look = False
        for i in range(seg.shape[0] - 2):
            b0, b1 = seg[i + 1], seg[i + 2]
            look |= ((seg[i] == NL) & may_start_blank(b0, b1)) | ((b0 == CR) & (b1 != NL))
        if not look:
            continue
        for i in range(seg.shape[0] - 2):
            b0, b1 = seg[i + 1], seg[i + 2]
            if b0 == CR and b1 != NL:
                return -1
            if seg[i] == NL and may_start_blank(b0, b1):
                blank += _is_blank(buf, lo + i + 1, space)
    return blank


LOOK = 1 << 9  # bytes that _blank_lines checks at once: a blank line costs a close look at these


@njit(cache=True, nogil=True)
def _is_blank(buf, i, space):
    """Whether the line that starts at byte i holds white space only (str.strip() leaves nothing)."""
    n = buf.shape[0]
    while i < n:
        c, i = _decode_one(buf, i, n)
        if c == NL:
            return True
        if not _is_space(c, space):
            return False
    return True


@njit(cache=True, inline="always")
def may_start_blank(b0, b1):
    """Whether a line that starts with the bytes b0 b1 may be blank: b0 a control character, a
    space or "\\n", or b0 b1 the first two bytes of U+0085, U+00A0, U+1680, U+2000–U+205F or U+3000
    (every white space character str.strip() removes; tested against LINE_START)."""
    return (
        (b0 <= 0x20)
        | ((b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0)))
        | ((b0 == 0xE1) & (b1 == 0x9A))
        | ((b0 == 0xE2) & ((b1 == 0x80) | (b1 == 0x81)))
        | ((b0 == 0xE3) & (b1 == 0x80))
    )


@njit(cache=True, nogil=True)
def _count_line_starts(buf, kinds, at):
    """(lines that surely hold a name, lines that start with white space), by LINE_START; where
    the latter start goes to `at` (the first len(at) of them)."""
    n = buf.shape[0]
    names = 0
    unsure = 0
    last = at.shape[0] - 1
    prev = np.uint8(NL)  # the chunk starts a line
    for i in range(n - 1):
        b = buf[i]
        kind = kinds[(np.int64(b) << 8) | np.int64(buf[i + 1])]
        start = prev == NL
        names += start & (kind == 1)
        at[min(unsure, last)] = i  # written always, kept only where unsure moves on: no branch
        unsure += start & (kind == 2)
        prev = b
    if n > 0 and prev == NL:  # a last line of one byte, without its "\n"
        kind = kinds[np.int64(buf[n - 1]) << 8]
        names += kind == 1
        at[min(unsure, last)] = n - 1
        unsure += kind == 2
    return names, unsure


@njit(cache=True, nogil=True)
def _count_lines(buf, space):
    n = buf.shape[0]
    count = 0
    i = 0
    while i < n:  # at a line's start: skip white space; a name if a character is left before "\n"
        c, i = _decode_one(buf, i, n)
        while c != NL and _is_space(c, space) and i < n:
            c, i = _decode_one(buf, i, n)
        if c != NL and not _is_space(c, space):
            count += 1
            while i < n and buf[i] != NL:  # the rest of the line: bytes only
                i += 1
            i += 1
    return count


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
            s = np.int64((np.uint64(j) * _M1) >> shift)
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
