"""The one corpus reader: a names file of any size → per-split bigram counts, in bounded memory.

The file is read in ~1 MiB chunks cut at line ends. Each chunk is cleaned by the run's text rule
(bigram.text) and turned into one array of code points with "\\n" between names (an ASCII chunk
stays bytes: one byte per character). From it, with a handful of vectorized numpy operations:
- every name gets its split (0 train, 1 val, 2 test), by one of two methods:
    random: a seeded permutation of the names' *positions* (torch.randperm, as in data.split_names),
            so the split needs one first pass that only counts names; then one byte per name;
    hash:   a seeded hash of the name's text (`split_of`): one pass, any size, duplicates together;
- every bigram is added to its split's counts (`PairCounter`), keyed by code point: a dense block
  for pairs of code points below 256 (all of an ASCII corpus), sorted sparse keys for the rest,
  so memory follows the pairs that occur, not V²; the vocabulary is the code points met, sorted.
Memory is the counts plus a few chunks, whatever the corpus size.

Under torch.distributed each process reads its own byte range (aligned to line starts), and the
count matrices are summed with one all-reduce: counts add up.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bigram.errors import BigramError
from bigram.text import (
    BOM,
    TextRule,
    check_bytes,
    check_data_path,
    decode,
    is_regular,
    line_of,
    unify_line_ends,
)
from bigram.vocab import Vocab

SPLITS = ("train", "val", "test")
CHUNK_BYTES = 1 << 20  # small chunks stay in the CPU caches: 1 MiB measured faster than 4 or 16 MiB
MAX_LINE_BYTES = 16 << 20  # a "name" longer than this means the file is not one name per line
MAX_V = 16_384  # tokens; V×V tables beyond that no longer fit a sane memory budget
STREAM_THRESHOLD = 256 * 2**20  # split = "auto": files larger than this use the one-pass hash split
_NL = ord("\n")
_CP = 0x110000  # code points
# code point → does str.strip() remove it (checked only beside the newlines of a chunk)
_SPACE = np.zeros(0x110000, dtype=bool)
_SPACE[[c for c in range(0x3001) if chr(c).isspace() and c != _NL]] = True


@dataclass
class CorpusCounts:
    vocab: Vocab
    counts: dict[str, torch.Tensor]  # split → V×V int64 (sparse COO when smaller); empty splits left out
    names: dict[str, int]  # split → number of names


# --- reading ------------------------------------------------------------------------------------
def byte_range(path: Path, rank: int, world: int) -> tuple[int, int]:
    """Process `rank`'s share of the file: [start, end) with both ends at line starts."""
    size = path.stat().st_size

    def align(pos: int) -> int:
        if pos <= 0 or pos >= size:
            return min(max(pos, 0), size)
        with path.open("rb") as f:
            f.seek(pos - 1)
            while True:  # the line that straddles pos belongs to the earlier range
                block = f.read(1 << 16)
                if not block:
                    return size
                i = block.find(b"\n")
                if i >= 0:
                    return f.tell() - len(block) + i + 1

    return align(size * rank // world), align(size * (rank + 1) // world)


def iter_chunks(
    path: Path, start: int = 0, end: int | None = None, chunk_bytes: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """(offset in the file, chunk) pairs; every chunk ends at a line end ("\\n" or "\\r") or at
    the range's end. A CRLF cut between two chunks leaves an empty line, which is no name."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    with path.open("rb") as f:
        if start:  # a pipe cannot seek, and is always read whole
            f.seek(start)
        pos, carry, offset = start, b"", start
        while end is None or pos < end:
            block = f.read(chunk_bytes if end is None else min(chunk_bytes, end - pos))
            if not block:
                break
            pos += len(block)
            buf = carry + block
            cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
            if cut == 0:  # no line end yet: one line longer than a chunk
                if len(buf) > MAX_LINE_BYTES:
                    raise BigramError(
                        f"data file {path}: line {line_of(path, offset)} is longer than "
                        f"{MAX_LINE_BYTES >> 20} MiB; a names corpus has one name per line "
                        "(lines end with \\n, \\r\\n or \\r)"
                    )
                carry = buf
                continue
            yield offset, buf[:cut]
            offset += cut
            carry = buf[cut:]
        if carry:
            yield offset, carry


def _raw_lines(buf: bytes, offset: int) -> bytes:
    """A chunk's bytes with the file's BOM dropped (at offset 0) and every line end made "\\n"."""
    return unify_line_ends(buf[3:] if offset == 0 and buf.startswith(BOM) else buf)


def _code_points(buf: bytes, offset: int, path: Path, rule: TextRule) -> tuple[np.ndarray, np.ndarray]:
    """One chunk → its names as code points with "\\n" before, between and after them (uint8 for
    an ASCII chunk, else int32), and the positions of those "\\n". Blank lines are dropped and
    names stripped by the text rule.

    >>> _code_points(b"ann\\n\\n bob\\n", 1, Path("x"), TextRule())
    (array([ 10,  97, 110, 110,  10,  98, 111,  98,  10], dtype=uint8), array([0, 4, 8]))
    """
    raw, buf = buf, _raw_lines(buf, offset)
    check_bytes(buf, path)
    if buf.isascii():  # normalization changes no ASCII text: stay in bytes, one byte a character
        if rule.lowercase:
            buf = buf.lower()
        cps = np.frombuffer(b"\n" + buf.strip(b"\n") + b"\n", dtype=np.uint8)
        nl = np.flatnonzero(cps == _NL)
        if _needs_stripping(cps, nl):
            cps = np.frombuffer(("\n" + rule.lines(buf.decode("ascii")) + "\n").encode(), np.uint8)
            nl = np.flatnonzero(cps == _NL)
        return (cps, nl) if len(cps) > 2 else _no_names(cps)
    text = rule.text(decode(buf, path, offset, raw))
    cps = np.frombuffer(("\n" + text.strip("\n") + "\n").encode("utf-32-le"), dtype=np.int32)
    nl = np.flatnonzero(cps == _NL)
    if _needs_stripping(cps, nl):
        cps = np.frombuffer(("\n" + rule.lines(text) + "\n").encode("utf-32-le"), dtype=np.int32)
        nl = np.flatnonzero(cps == _NL)
    return (cps, nl) if len(cps) > 2 else _no_names(cps)


def _no_names(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A chunk of blank lines: one "\\n", no names."""
    return cps[:1], np.zeros(1, dtype=np.intp)


def _needs_stripping(cps: np.ndarray, nl: np.ndarray) -> bool:
    """False when every line is already stripped and non-blank (the fast path). Only the
    characters beside each newline (at positions `nl`) are looked at, not the whole chunk."""
    if (np.diff(nl) == 1).any():  # a blank line
        return True
    return bool(_SPACE[cps[nl[1:] - 1]].any() or _SPACE[cps[nl[:-1] + 1]].any())


def split_of(cps: np.ndarray, nl: np.ndarray, seed: int, val_frac: float, test_frac: float) -> np.ndarray:
    """The split of each name (0 train, 1 val, 2 test) from a seeded hash of its text.

    cps: code points with "\\n" before, between and after the names; nl: the positions of those
    "\\n". The hash mixes the name's length, first and last characters and the (wrapping) sum of
    its code points, then a 64-bit finalizer; names equal in all four share a split."""
    starts, ends = nl[:-1] + 1, nl[1:]
    # each name's code-point sum (+ its "\n"), wrapping at 32 bits
    total = np.add.reduceat(cps, starts, dtype=np.uint32).astype(np.uint64)
    h = total * np.uint64(0x9E3779B97F4A7C15)
    h ^= cps[starts].astype(np.uint64) << np.uint64(21)
    h ^= cps[ends - 1].astype(np.uint64) << np.uint64(42)
    h += (ends - starts).astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93)
    h ^= np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    for shift, mult in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):  # murmur3 fmix64
        h ^= h >> np.uint64(shift)
        h *= np.uint64(mult)
    h ^= h >> np.uint64(33)
    # h / 2^64 is uniform in [0, 1): compare with the fractions scaled to 64 bits
    t_test, t_val = (np.uint64(min(int(f * 2.0**64), 2**64 - 1)) for f in (test_frac, test_frac + val_frac))
    return (h < t_test).astype(np.uint8) + (h < t_val)


def random_labels(n: int, val_frac: float, test_frac: float, seed: int) -> np.ndarray:
    """The split of each of n names by position (0 train, 1 val, 2 test), one byte each: the first
    round(val_frac·n) positions of a seeded torch.randperm(n) are val, the next round(test_frac·n)
    test. The permutation is the one data.split_names draws, so both give the same split."""
    n_val, n_test = round(val_frac * n), round(test_frac * n)
    if n_val + n_test >= n:
        raise BigramError(
            f"val_frac={val_frac} and test_frac={test_frac} leave no training names out of {n}: lower them"
        )
    labels = np.zeros(n, dtype=np.uint8)
    if n_val + n_test:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed), dtype=torch.int32).numpy()
        labels[perm[:n_val]] = 1
        labels[perm[n_val : n_val + n_test]] = 2
    return labels


# --- counting -----------------------------------------------------------------------------------
class PairCounter:
    """Per-split counts of (previous, next) character pairs, keyed by code point ("\\n", code
    point 10, stands for the boundary until the vocabulary is made at the end).

    Pairs of two code points below 256 (ASCII and Latin-1: all of names.txt, three quarters of a
    multilingual list) go to a dense 3×256×256 block. For an ASCII chunk that is two bincounts of
    the bytes read as 16-bit numbers (bytes i, i+1 form one number, one bin per pair): no lookup,
    no key arithmetic. Any other pair becomes a 64-bit key (split, prev, next), kept sorted and
    unique and merged now and then, so memory follows the pairs that occur, not V².
    Thread-safe: numpy releases the GIL while it works; only the accumulation takes the lock."""

    def __init__(self) -> None:
        self.hot = np.zeros((3, 256 * 256), dtype=np.int64)
        self.cold_keys = np.zeros(0, dtype=np.int64)  # sorted, unique
        self.cold_counts = np.zeros(0, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []  # per-chunk (keys, counts)
        self.pending_size = 0
        self.seen = np.zeros(_CP, dtype=bool)  # code points ≥ 256 met so far
        self.names = np.zeros(3, dtype=np.int64)
        self.lock = threading.Lock()

    def add(self, cps: np.ndarray, nl: np.ndarray, labels: np.ndarray) -> None:
        """Count the bigrams of one chunk: `cps` has "\\n" at the positions `nl`, before, between
        and after the names; `labels` holds each name's split (0 train, 1 val, 2 test)."""
        if cps.dtype == np.uint8:
            hot, cold, new = self._ascii(cps, nl, labels), None, None
        else:
            hot, cold, new = self._general(cps, nl, labels)
        with self.lock:
            self.hot += hot
            self.names += np.bincount(labels, minlength=3)
            if new is not None and len(new):
                self.seen[new] = True
                if int(np.count_nonzero(self.seen)) + 256 > MAX_V:  # checked as it grows
                    raise BigramError(
                        f"the corpus has more than {MAX_V - 256:,} distinct characters beyond Latin-1: "
                        "a V×V model is too big (is the file text, one name per line?)"
                    )
            if cold is not None and len(cold[0]):
                self._add_cold(*cold)

    def _add_cold(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add a chunk's unique keys: those already known in place (a binary search), new ones
        to the pending list, merged once they outnumber a quarter of the known ones."""
        known = self.cold_keys
        if len(known):
            pos = np.minimum(np.searchsorted(known, keys), len(known) - 1)
            found = known[pos] == keys
            self.cold_counts[pos[found]] += counts[found]  # keys are unique: no repeated index
            keys, counts = keys[~found], counts[~found]
        if len(keys):
            self.pending.append((keys, counts))
            self.pending_size += len(keys)
            if self.pending_size > max(1 << 16, len(known) // 4):
                self._merge()

    @staticmethod
    def _ascii(cps: np.ndarray, nl: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The 3×65536 block of an ASCII chunk: all pairs, then those of the val and test names
        (cut out of the chunk), train = all − val − test."""
        block = np.zeros((3, 256 * 256), dtype=np.int64)
        block[0] = _byte_pairs(cps)
        for s in (1, 2):
            names = np.flatnonzero(labels == s)
            if len(names):  # those names' bytes, each with its "\n", after one leading "\n"
                block[s] = _byte_pairs(
                    np.concatenate([cps[:1], cps[_segments(nl[names] + 1, nl[names + 1] + 1)]])
                )
        block[0] -= block[1] + block[2]
        return block

    @staticmethod
    def _general(cps: np.ndarray, nl: np.ndarray, labels: np.ndarray):
        """A chunk with characters beyond ASCII (int32 code points): (hot block, (cold keys,
        counts), code points ≥ 256 in it)."""
        split = np.repeat(labels, np.diff(nl))  # each bigram's split
        prev, nxt = cps[:-1], cps[1:]
        small = cps < 256
        is_hot = small[:-1] & small[1:]
        keys = prev << 8
        keys |= nxt
        keys |= split.astype(np.int32) << 16
        hot = np.bincount(keys[is_hot], minlength=3 * 256 * 256).reshape(3, -1)
        is_cold = ~is_hot
        cold = (split[is_cold].astype(np.int64) * _CP + prev[is_cold]) * _CP + nxt[is_cold]
        return hot, np.unique(cold, return_counts=True), cps[~small]

    def _merge(self) -> None:
        """Fold the pending keys into the sorted unique ones."""
        keys = np.concatenate([self.cold_keys, *(k for k, _ in self.pending)])
        counts = np.concatenate([self.cold_counts, *(c for _, c in self.pending)])
        self.cold_keys, inverse = np.unique(keys, return_inverse=True)
        summed = np.bincount(inverse, weights=counts, minlength=len(self.cold_keys))
        self.cold_counts = summed.astype(np.int64)  # float64 sums are exact below 2^53
        self.pending, self.pending_size = [], 0

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every counted pair as (split, prev, next, count) arrays of code points."""
        self._merge()
        s, ab = np.nonzero(self.hot)
        cs, rest = np.divmod(self.cold_keys, _CP * _CP)
        ca, cb = np.divmod(rest, _CP)
        return (
            np.concatenate([s, cs]),
            np.concatenate([ab >> 8, ca]),
            np.concatenate([ab & 255, cb]),
            np.concatenate([self.hot[s, ab], self.cold_counts]),
        )


def _byte_pairs(b: np.ndarray) -> np.ndarray:
    """Counts of the 65,536 possible (byte, next byte) pairs of a uint8 array, at 256·b[i] + b[i+1]:
    the bytes read as 16-bit numbers from offset 0 and from offset 1.

    >>> _byte_pairs(np.frombuffer(b"abab", np.uint8))[[0x6162, 0x6261]]
    array([2, 1])
    """
    n = len(b) - 1  # pairs
    # read little-endian (native here, no byte swap): 256·b[i+1] + b[i], the transpose, undone below
    even = b[: n + 1 - (n + 1) % 2].view("<u2")  # pairs (0,1), (2,3), …
    odd = b[1 : 1 + n - n % 2].view("<u2")  # pairs (1,2), (3,4), …
    counts = np.bincount(even, minlength=65536) + np.bincount(odd, minlength=65536)
    return counts.reshape(256, 256).T.reshape(-1)


def _segments(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The indices of the half-open ranges [starts[k], ends[k]), concatenated, without a Python loop.

    >>> _segments(np.array([2, 7]), np.array([4, 10]))
    array([2, 3, 7, 8, 9])
    """
    lengths = ends - starts
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(int(lengths.sum())) + shift


def _matrices(vocab: Vocab, ids: np.ndarray, triples, names: np.ndarray) -> dict[str, torch.Tensor]:
    """Per-split V×V int64 count matrices from (split, prev, next, count) in code points (mapped
    by `ids`, sorted code points → token ids); sparse COO when that is smaller than dense
    (24 bytes per counted pair against 8 per cell)."""
    s, a, b, c = triples
    V = vocab.size
    out = {}
    for i, name in enumerate(SPLITS):
        if names[i] == 0:
            continue
        m = s == i
        idx = torch.from_numpy(np.stack([ids(a[m]), ids(b[m])]).astype(np.int64))
        vals = torch.from_numpy(c[m].astype(np.int64))
        t = torch.sparse_coo_tensor(idx, vals, (V, V), check_invariants=False).coalesce()
        out[name] = t if 3 * len(vals) < V * V else t.to_dense()
    return out


# --- the reader ---------------------------------------------------------------------------------
def _run_chunks(
    path: Path, start: int, end: int | None, work: Callable[[int, bytes], None], bar: tqdm | None
) -> None:
    """work(offset, chunk) for every chunk of [start, end), on two threads (numpy releases the
    GIL), at most four chunks in memory."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()
        for offset, buf in iter_chunks(path, start, end):
            pending.append((pool.submit(work, offset, buf), len(buf)))
            if len(pending) >= 4:
                future, size = pending.popleft()
                future.result()
                if bar is not None:
                    bar.update(size)
        for future, size in pending:
            future.result()
            if bar is not None:
                bar.update(size)


# the first byte of a line that may be white space: ASCII white space, or the lead byte of a
# Unicode space (U+0085 and U+00A0: C2; U+1680: E1; U+2000–U+205F: E2; U+3000: E3)
_MAY_BE_SPACE = np.zeros(256, dtype=bool)
_MAY_BE_SPACE[[0x09, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0xC2, 0xE1, 0xE2, 0xE3]] = True


def _count_names(buf: bytes, offset: int, path: Path, rule: TextRule) -> int:
    """How many names a chunk holds: its non-blank lines (no normalization or case folding turns
    a character into white space, so only blankness matters). Bytes only, unless a line starts
    with what may be white space: then the exact rule.

    >>> _count_names(b"ann\\n\\nbob\\ncy", 1, Path("x"), TextRule())
    3
    """
    b = np.frombuffer(_raw_lines(buf, offset), dtype=np.uint8)
    nl = np.flatnonzero(b == _NL)
    starts = np.concatenate([[0], nl + 1])  # where each line starts; the last may be the end
    starts = starts[starts < len(b)]
    if _MAY_BE_SPACE[b[starts]].any():
        return len(_code_points(buf, offset, path, rule)[1]) - 1
    return int(np.count_nonzero(b[starts] != _NL))  # lines that are not empty


def count_names(path: Path, rule: TextRule, progress: bool = False) -> dict[int, int]:
    """The number of names in each chunk, by the chunk's offset: the random split's first pass."""
    out: dict[int, int] = {}

    def work(offset: int, buf: bytes) -> None:
        out[offset] = _count_names(buf, offset, path, rule)

    size = path.stat().st_size
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="names", disable=not progress, leave=False)
    _run_chunks(path, 0, None, work, bar)
    bar.close()
    return out


def read_counts(
    path: str | Path,
    *,
    split: str = "hash",
    seed: int = 0,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    rule: TextRule | None = None,
    rank: int = 0,
    world: int = 1,
    group=None,
    progress: bool = False,
) -> CorpusCounts:
    """Stream a corpus file into per-split bigram counts. `split`: "random" (exact fractions by a
    seeded permutation of positions; two passes) or "hash" (by each name's text; one pass, any
    process count: with world > 1 this process reads its byte range and the counts are summed
    over `group`)."""
    p = check_data_path(path)
    rule = rule or TextRule()
    if split == "random" and (world > 1 or not is_regular(p)):
        raise BigramError(
            "split = 'random' reads the file twice in one process: use split = 'hash' "
            + ("under torchrun" if world > 1 else f"for {p}, which is not a regular file")
        )
    if split == "hash" and not is_regular(p) and world > 1:
        raise BigramError(f"{p} is not a regular file: torchrun's processes need byte ranges of one")
    start, end = byte_range(p, rank, world) if world > 1 else (0, None)
    first_name: dict[int, int] = {}
    labels = None
    if split == "random":
        per_chunk = count_names(p, rule, progress)
        total = 0
        for offset in sorted(per_chunk):
            first_name[offset], total = total, total + per_chunk[offset]
        if total == 0:
            raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
        labels = random_labels(total, val_frac, test_frac, seed)
    counter = PairCounter()
    size = (p.stat().st_size if is_regular(p) else None) if end is None else end - start
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="reading", disable=not progress, leave=False)

    def work(offset: int, buf: bytes) -> None:
        cps, nl = _code_points(buf, offset, p, rule)
        if len(nl) < 2:  # only blank lines
            return
        if labels is not None:
            lab = labels[first_name[offset] : first_name[offset] + len(nl) - 1]
        else:
            lab = split_of(cps, nl, seed, val_frac, test_frac)
        counter.add(cps, nl, lab)

    _run_chunks(p, start, end, work, bar)
    bar.close()
    _release_freed_memory()
    return _result(counter, p, group)


def _result(counter: PairCounter, p: Path, group) -> CorpusCounts:
    """The counts in the sorted vocabulary, summed over processes when given a process group
    (the vocabularies are merged first, then one all-reduce of dense matrices)."""
    names = counter.names.copy()
    s, a, b, c = counter.triples()
    chars = np.union1d(a, b)  # every code point met, "\n" (the boundary) first: it is the smallest
    if group is not None:
        import torch.distributed as dist

        everyone: list[list[int]] = [[] for _ in range(dist.get_world_size(group))]
        dist.all_gather_object(everyone, chars.tolist(), group=group)
        chars = np.unique(np.concatenate([np.asarray(part, dtype=np.int64) for part in everyone]))
    chars = chars[chars != _NL]
    vocab = Vocab(tuple(chr(x) for x in chars.tolist()))

    def ids(cp: np.ndarray) -> np.ndarray:  # code point → token id ("\n" → 0, the boundary)
        return np.where(cp == _NL, 0, np.searchsorted(chars, cp) + 1)

    if group is not None:
        V = vocab.size
        dense = torch.zeros(3, V, V, dtype=torch.long)
        at = (torch.from_numpy(s.astype(np.int64)), torch.from_numpy(ids(a)), torch.from_numpy(ids(b)))
        dense[at] = torch.from_numpy(c)
        n = torch.from_numpy(names)
        # nccl reduces CUDA tensors only; gloo reduces CPU tensors
        dev = torch.device("cuda") if dist.get_backend(group) == "nccl" else torch.device("cpu")
        dense, n = dense.to(dev), n.to(dev)
        dist.all_reduce(dense, group=group)
        dist.all_reduce(n, group=group)
        dense, names = dense.cpu(), n.cpu().numpy()
        s, a, b = (x.numpy() for x in dense.nonzero(as_tuple=True))
        c = dense[s, a, b].numpy()
        a, b = np.where(a == 0, _NL, chars[a - 1]), np.where(b == 0, _NL, chars[b - 1])
    if names.sum() == 0:
        raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
    per_split = {s: int(n) for s, n in zip(SPLITS, names, strict=True)}
    return CorpusCounts(vocab, _matrices(vocab, ids, (s, a, b, c), names), per_split)


def _release_freed_memory() -> None:
    """Hand the chunks' freed heap back to the OS (glibc keeps it per thread arena), so that
    what runs after the counting does not stack on top of it. A no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def default_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def split_method(cfg, path: Path, world: int = 1) -> str:
    """What split = "auto" picks: random (exact fractions, the published numbers) for a regular
    file up to 256 MB; hash beyond (one pass instead of two), under torchrun and for a pipe."""
    if cfg.split != "auto":
        return cfg.split
    if world > 1 or not is_regular(path) or path.stat().st_size > STREAM_THRESHOLD:
        return "hash"
    return "random"


def load_counts(cfg, *, progress: bool = False, rank: int = 0, world: int = 1, group=None) -> CorpusCounts:
    """The per-split counts a run trains on, by the config's split method and text rule."""
    p = check_data_path(cfg.data)
    method = split_method(cfg, p, world)
    result = read_counts(
        p, split=method, seed=cfg.seed, val_frac=cfg.val_frac, test_frac=cfg.test_frac,
        rule=TextRule.of(cfg), rank=rank, world=world, group=group, progress=progress,
    )  # fmt: skip
    if "train" not in result.counts:
        n = sum(result.names.values())
        raise BigramError(
            f"the {method} split of {p} ({n} names) left none for training: lower val_frac and test_frac"
            + (", or use split = 'random'" if method == "hash" else "")
        )
    return result


def iter_names(path: str | Path, rule: TextRule | None = None) -> Iterator[str]:
    """Every name of a corpus file, in order, by the same rule as the counts (one chunk in memory
    at a time): what --novel and `eval --data` read."""
    p = check_data_path(path)
    rule = rule or TextRule()
    for offset, buf in iter_chunks(p):
        cps, nl = _code_points(buf, offset, p, rule)
        if len(nl) >= 2:
            text = cps.tobytes().decode("ascii" if cps.dtype == np.uint8 else "utf-32-le")
            yield from text[1:-1].split("\n")
