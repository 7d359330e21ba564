"""The one corpus reader: a names file of any size → per-split bigram counts, in bounded memory.

The file is read in ~1 MiB chunks cut at line ends, on two threads. Each chunk is checked and
made canonical by the run's text rule (bigram.text: BOM, line ends, UTF-8, normalization, case),
then counted by one compiled pass over its bytes (bigram.reader.counting), which strips each name, gives
it its split (0 train, 1 val, 2 test) and counts its bigrams. Two split methods:
    random: a seeded permutation of the names' *positions* (torch.randperm's, as in
            data.split_names), so the split needs one first pass that only counts names; the
            chunks whose labels are known once the permutation's targets are drawn are counted
            first (shuffle.FirstPlaces), the rest after its shuffle;
    hash:   a seeded hash of the name's text (`counting.split_of`): one pass, any size, every copy
            of a name in one split.
Counts are keyed by code point (a dense block for pairs below 256, a hash table for the rest), so
memory follows the pairs that occur, not V²; the vocabulary is the code points met, sorted.
Memory is the counts plus a few chunks, whatever the corpus size.

Under torch.distributed each process reads its own byte range (aligned to line starts), and the
count matrices are summed with one all-reduce: counts add up.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from tqdm import tqdm

from bigram.errors import BigramError
from bigram.heap import release_freed_memory
from bigram.reader import numba_cache
from bigram.safety.interrupt import held_ctrl_c
from bigram.text import (
    BOM,
    TextRule,
    check_bytes,
    check_data_path,
    decode,
    is_regular,
    line_ends,
    line_of,
    note_chunk,
)
from bigram.vocab import Vocab, check_keys

SPLITS = ("train", "val", "test")
CHUNK_BYTES = 1 << 20  # small enough to stay in the CPU caches while the kernel reads it
MAX_LINE_BYTES = 16 << 20  # a "name" longer than this means the file is not one name per line
# torch.randperm(n) on the CPU is a plain forward Fisher–Yates shuffle below this n (another
# algorithm above): shuffle.FirstPlaces draws the same permutation's first places
_RANDPERM_SHUFFLE_LIMIT = (2**32 - 1) // 20
MAX_V = 16_384  # tokens; V×V tables beyond that no longer fit a sane memory budget
STREAM_THRESHOLD = 256 * 2**20  # split = "auto": files larger than this use the one-pass hash split
_NL = ord("\n")
_CR = ord("\r")
_CP = 0x110000  # code points


@dataclass
class CorpusCounts:
    vocab: Vocab
    splits: dict[str, torch.Tensor]  # split → C×V int64 counts (sparse COO when smaller); empty ones left out
    n_names: dict[str, int]  # split → number of names
    order: int = 2  # n-gram order N: each row is a context of N − 1 tokens (C = V^(N−1) rows)


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
    the range's end. A CRLF cut between two chunks leaves an empty line, which is no name. A
    regular file is cut where `chunk_spans` says (the random split's two passes cut it alike)."""
    with path.open("rb") as f:
        if is_regular(path):
            if start:
                f.seek(start)
            for a, b in chunk_spans(f.fileno(), start, os.fstat(f.fileno()).st_size if end is None else end,
                                    chunk_bytes, path):  # fmt: skip
                yield a, f.read(b - a)
            return
        # a pipe cannot seek and is read whole, in blocks, each cut after its last line end; it
        # cannot be read again either, so the line each chunk starts on is noted for error messages
        chunk_bytes = chunk_bytes or CHUNK_BYTES
        carry, offset, line, after_cr = b"", 0, 1, False
        while block := f.read(chunk_bytes):
            buf = carry + block
            cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
            if cut == 0:  # no line end yet: one line longer than a chunk
                _check_line_length(len(buf), path, offset, line)
                carry = buf
                continue
            note_chunk(path, offset, line, after_cr)
            yield offset, buf[:cut]
            line += line_ends(buf[:cut], after_cr)
            after_cr, offset, carry = buf[cut - 1] == _CR, offset + cut, buf[cut:]
        if carry:
            note_chunk(path, offset, line, after_cr)
            yield offset, carry


def chunk_spans(
    fd: int, start: int, end: int, chunk_bytes: int | None = None, path: Path | None = None
) -> Iterator[tuple[int, int]]:
    """[a, b) byte spans of a regular file's range [start, end): windows of `chunk_bytes`, each
    cut after the last line end it holds (a line longer than a window joins the next). Only the
    bytes before each cut are read (os.pread), so the spans cost next to nothing.

    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     _ = f.write(b"ann\\nbob\\r\\ncy\\ndee")
    ...     f.flush()
    ...     list(chunk_spans(f.fileno(), 0, 16, chunk_bytes=6))  # windows end at 6, 12, 16
    [(0, 4), (4, 12), (12, 16)]
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    offset = pos = lo = start  # spans so far end at offset; [offset, lo) holds no line end
    while pos < end:
        pos = min(pos + chunk_bytes, end)  # windows end at start + m·chunk_bytes, wherever the cuts fall
        cut = _last_line_end(fd, lo, pos)
        if cut is None:  # no line end yet: one line longer than a window
            _check_line_length(pos - offset, path, offset)
            lo = pos
            continue
        yield offset, cut
        offset = lo = cut
    if offset < end:
        yield offset, end


def _last_line_end(fd: int, lo: int, hi: int) -> int | None:
    """The index after the last "\\n" or "\\r" in bytes [lo, hi) of the file, read backwards in
    small blocks; None if there is none."""
    while hi > lo:
        at = max(lo, hi - (1 << 12))
        block = os.pread(fd, hi - at, at)
        cut = max(block.rfind(b"\n"), block.rfind(b"\r"))
        if cut >= 0:
            return at + cut + 1
        hi = at
    return None


def _check_line_length(length: int, path: Path | None, offset: int, line: int | None = None) -> None:
    """A line of `length` bytes so far, starting at byte `offset` (on `line`, where a pipe's reader
    knows it; a regular file's is counted), is refused beyond MAX_LINE_BYTES."""
    if length > MAX_LINE_BYTES:
        raise BigramError(
            f"data file {path}: line {line or line_of(path, offset)} is longer than "
            f"{MAX_LINE_BYTES >> 20} MiB; a names corpus has one name per line "
            "(lines end with \\n, \\r\\n or \\r)"
        )


def _raw_lines(buf: bytes, offset: int) -> bytes:
    """A chunk's bytes with the file's BOM dropped (at offset 0) and every line end made "\\n"."""
    buf = buf[3:] if offset == 0 and buf.startswith(BOM) else buf
    return _kernels().unify_line_ends(buf) if b"\r" in buf else buf


def random_labels(n: int, val_frac: float, test_frac: float, seed: int) -> np.ndarray:
    """The split of each of n names by position (0 train, 1 val, 2 test), one byte each: the first
    round(val_frac·n) positions of a seeded torch.randperm(n) are val, the next round(test_frac·n)
    test. The permutation is the one data.split_names draws, so both give the same split."""
    places = _first_places(n, *split_sizes(n, val_frac, test_frac), seed)
    places.shuffle()
    return places.labels(0, n)


def split_sizes(n: int, val_frac: float, test_frac: float) -> tuple[int, int]:
    """(val, test) names of the random split of n names, once they leave some for training."""
    n_val, n_test = round(val_frac * n), round(test_frac * n)
    if n_val + n_test >= n:
        raise BigramError(
            f"val_frac={val_frac} and test_frac={test_frac} leave no training names out of {n}: lower them"
        )
    return n_val, n_test


def _first_places(n: int, n_val: int, n_test: int, seed: int):
    """The labels of torch.randperm(n)'s first n_val + n_test places (`shuffle.FirstPlaces`; past
    the n where torch's CPU randperm stops being a plain shuffle, drawn by torch whole)."""
    if n < _RANDPERM_SHUFFLE_LIMIT:
        return _kernels().FirstPlaces(n, n_val, n_test, seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed), dtype=torch.int32).numpy()
    labels = np.zeros(n, dtype=np.uint8)
    labels[perm[:n_val]] = 1
    labels[perm[n_val : n_val + n_test]] = 2
    return _Drawn(labels)


@dataclass
class _Drawn:
    """Labels drawn whole, read like shuffle.FirstPlaces."""

    all: np.ndarray

    def shuffle(self) -> None:
        pass

    def labels(self, lo: int, hi: int) -> np.ndarray:
        return self.all[lo:hi]


@functools.cache
def _kernels() -> SimpleNamespace:
    """The reader's compiled modules (bigram.reader.lines, counting and shuffle), imported and
    compiled (or loaded from numba_cache's cache) on first use, in the calling thread: numba costs
    ~1 s, which only the commands that read a corpus should pay. Ctrl-C is held meanwhile (numba
    and LLVM are not safe to interrupt halfway). Returns their names in one namespace."""
    with held_ctrl_c():
        numba_cache.compile_all_once()
        from bigram.reader import counting, lines, shuffle

        one = np.frombuffer(b"a\n", dtype=np.uint8)
        counting.count_chunk(one, counting.Accumulator())  # by hash
        counting.count_chunk(one, counting.Accumulator(), np.zeros(1, np.uint8))  # by label
        lines.count_lines(one)
        lines.count_lines(np.frombuffer(b" a\n", dtype=np.uint8))  # a line read closely
        lines._count_lines(one, lines.SPACE)  # a chunk read closely
        lines.quick_count_lines(np.frombuffer(b"ab\ncd\n", dtype=np.uint8))
        lines.unify_line_ends(b"a\r\n")
        places = shuffle.FirstPlaces(2, 1, 0, 0)
        places.shuffle()
        places.labels(0, 2)
    # every name of the three (the compiled functions among them), as callers reach for one or another
    names = {k: v for m in (lines, counting, shuffle) for k, v in vars(m).items() if not k.startswith("__")}
    return SimpleNamespace(**names)


# --- counting -----------------------------------------------------------------------------------
def _utf8(buf: bytes, offset: int, path: Path, rule: TextRule) -> bytes:
    """One chunk as the counting kernel takes it: UTF-8 bytes, checked, BOM dropped, line ends
    "\\n", normalized and case-folded by the rule (stripping and blank lines are the kernel's).
    An ASCII chunk stays as it is (normalization changes no ASCII text); any other is decoded once
    to check it and to see whether the rule changes it, and encoded again only if it does."""
    raw, buf = buf, _raw_lines(buf, offset)
    check_bytes(buf, path)
    if buf.isascii():
        if rule.lowercase:
            buf = buf.lower()
    else:
        text = decode(buf, path, offset, raw)
        ruled = rule.text(text)
        if ruled is not text:
            buf = ruled.encode()
    return buf


class PairCounter:
    """Per-split counts of (context, next) character n-grams, keyed by code point ("\\n", code
    point 10, stands for the boundary until the vocabulary is made at the end). Each thread counts
    into its own `counting.Accumulator`; they are summed once, at the end."""

    def __init__(self, order: int = 2) -> None:
        self.order = order
        self.seen = np.zeros(_CP, dtype=bool)  # code points ≥ 256 met so far, by any thread
        self.accumulators: list = []
        self.local = threading.local()
        self.lock = threading.Lock()

    def add(
        self,
        buf: np.ndarray,
        labels: np.ndarray | None,
        seed: int,
        val_frac: float,
        test_frac: float,
        path: Path | str = "the corpus",
    ) -> int:
        """Count the names of one chunk (see `counting.count_chunk`); returns how many it held."""
        kernels = _kernels()
        acc = getattr(self.local, "acc", None)
        if acc is None:
            acc = self.local.acc = kernels.Accumulator(self.seen, self.order)
            with self.lock:
                self.accumulators.append(acc)
        k = kernels.count_chunk(buf, acc, labels, seed, val_frac, test_frac)
        beyond = int(np.count_nonzero(self.seen))  # characters ≥ U+0100 so far: V is at least this + 1
        if beyond + 256 > MAX_V:  # checked as it grows
            raise BigramError(
                f"the corpus has more than {MAX_V - 256:,} distinct characters beyond Latin-1: "
                "a V×V model is too big (is the file text, one name per line?)"
            )
        if self.order != 2:  # fail as soon as the table is sure to be too big, not after the file
            check_table_size(beyond + 1, self.order, f" (at least, in {path})")
        return k

    @property
    def names(self) -> np.ndarray:
        return sum((acc.names for acc in self.accumulators), np.zeros(3, dtype=np.int64))


def check_table_size(V: int, order: int, where: str = "") -> int:
    """The number of contexts C = V^(order − 1) an order addresses (most never seen: the tables
    are sparse), once its n-grams are known to fit int64 keys."""
    check_keys(V, order, where)
    return V ** (order - 1)


def _matrices(shape: tuple[int, int], grams, names: np.ndarray) -> dict[str, torch.Tensor]:
    """Per-split C×V int64 count matrices from (split, key = row · V + column, count) in token ids
    (a key may repeat, once per thread and process: repeats add up); sparse COO when that is
    smaller than dense (24 bytes per counted pair against 8 per cell). `grams` is emptied."""
    out = {}
    for i, (keys, counts) in enumerate(_by_split(grams, shape[0] * shape[1])):
        if names[i] == 0:
            continue
        idx = np.empty((2, len(keys)), dtype=np.int64)
        np.divmod(keys, shape[1], out=(idx[0], idx[1]))
        t = torch.sparse_coo_tensor(
            torch.from_numpy(idx), torch.from_numpy(counts), shape, check_invariants=False, is_coalesced=True
        )
        out[SPLITS[i]] = t if 3 * len(keys) < shape[0] * shape[1] else t.to_dense()
    return out


def _by_split(grams: list[np.ndarray], limit: int) -> list:
    """Each split's (keys, counts), sorted and summed (`_sorted_sums`), from grams = [split, key,
    count], which it empties and reuses: all in one sort, by split then key, when split · limit +
    key leaves a bit free in an int64; else a sort per split."""
    s, keys, counts = grams
    grams.clear()
    if 3 * limit > 1 << 62:
        return [_sorted_sums(keys[s == i], counts[s == i], limit) for i in range(len(SPLITS))]
    s *= limit  # in place (so are the sums): the arrays are not read again
    s += keys
    del keys
    both, counts = _sorted_sums(s, counts, 3 * limit)
    cuts = [0, *np.searchsorted(both, [limit, 2 * limit]), len(both)]
    return [(both[a:b] - i * limit, counts[a:b]) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


def _sorted_sums(keys: np.ndarray, counts: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys (each below `limit`) sorted, each once, with their counts summed: a coalesced
    sparse tensor's indices. Each key is sorted with its count in the int64's bits beside it
    (numpy sorts plain integers several times faster than it argsorts); a count too big for
    them leaves a mark there instead, and those few are argsorted apart: both lists are then in
    key order (the counts of one key may trade places: they are summed)."""
    if len(keys) == 0:
        return keys, counts
    free = 63 - (limit - 1).bit_length()  # ≥ 1: keys are below 2^62 (vocab.check_keys)
    cap = (1 << free) - 1
    big = counts >= cap
    exact = counts[big][np.argsort(keys[big])]
    both = keys  # in place, as the caller's arrays are not read again: at a high order they are
    both <<= free  # the largest the reader holds
    both |= np.minimum(counts, cap, out=counts)
    both.sort()
    counts = np.bitwise_and(both, cap, out=counts)
    counts[counts == cap] = exact
    both >>= free
    keys = both
    new = keys[1:] != keys[:-1]
    if not new.all():  # the same n-gram from two threads
        starts = np.flatnonzero(np.concatenate([[True], new]))
        keys, counts = keys[starts], np.add.reduceat(counts, starts)
    return keys, counts


# --- the reader ---------------------------------------------------------------------------------
def _run_chunks(
    chunks: Iterable[tuple[int, bytes]], work: Callable[[int, bytes], None], bar: tqdm | None
) -> None:
    """work(offset, chunk) for every (offset, chunk), on two threads (numpy releases the GIL), at
    most four chunks in memory."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()
        for offset, buf in chunks:
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


def count_names(path: Path, progress: bool = False) -> list[tuple[int, int, int]]:
    """(start, end, names) of each chunk (iter_chunks' chunks) in file order: the random split's
    first pass. Each thread reads its chunks into one buffer of its own (os.preadv), and
    most chunks are counted by `lines.quick_count_lines`; a chunk it cannot vouch for (a "\\r",
    a blank line, a line that starts with white space, the file's BOM) is counted exactly."""
    kernels = _kernels()
    buffers = threading.local()
    bar = tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc="names", disable=not progress, leave=False
    )

    def work(span: tuple[int, int]) -> tuple[int, int, int]:
        a, b = span
        buf = getattr(buffers, "buf", None)
        if buf is None or len(buf) < b - a:
            buf = buffers.buf = bytearray(max(b - a, CHUNK_BYTES))
        view = memoryview(buf)[: b - a]
        got = os.preadv(fd, [view], a)
        if got != b - a:
            raise BigramError(f"data file {path} changed while it was read: read it again")
        k = kernels.quick_count_lines(np.frombuffer(view, np.uint8)) if a or view[:3] != BOM else -1
        if k < 0:
            k = kernels.count_lines(np.frombuffer(_raw_lines(bytes(view), a), dtype=np.uint8))
        view.release()
        return a, b, k

    out = []
    with path.open("rb") as f, ThreadPoolExecutor(max_workers=2) as pool:
        fd = f.fileno()
        for a, b, k in pool.map(work, chunk_spans(fd, 0, os.fstat(fd).st_size, None, path)):
            bar.update(b - a)  # in this thread: the workers only count
            out.append((a, b, k))
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
    order: int = 2,
    rank: int = 0,
    world: int = 1,
    group=None,
    progress: bool = False,
) -> CorpusCounts:
    """Stream a corpus file into per-split n-gram counts (`order` 2: bigrams). `split`: "random"
    (exact fractions by a seeded permutation of positions; two passes) or "hash" (by each name's
    text; one pass, any process count: with world > 1 this process reads its byte range and the
    counts are summed over `group`)."""
    p = check_data_path(path)
    rule = rule or TextRule()
    _kernels()  # compiled (or loaded from numba's cache) here, in the main thread
    _check_split(p, split, world)
    start, end = byte_range(p, rank, world) if world > 1 else (0, None)
    counter = PairCounter(order)
    if split == "random":
        _count_by_position(counter, p, seed, val_frac, test_frac, rule, progress)
    else:
        size = (p.stat().st_size if is_regular(p) else None) if end is None else end - start
        bar = tqdm(total=size, unit="B", unit_scale=True, desc="reading", disable=not progress, leave=False)

        def work(offset: int, buf: bytes) -> None:
            _count_chunk(counter, p, offset, buf, None, rule, seed, val_frac, test_frac)

        _run_chunks(iter_chunks(p, start, end), work, bar)
        bar.close()
    release_freed_memory()
    result = _result(counter, p, group)
    counter = None  # its tables, and what _result sorted them in, go back to the OS before estimation
    release_freed_memory()
    return result


def _count_by_position(
    counter: PairCounter,
    p: Path,
    seed: int,
    val_frac: float,
    test_frac: float,
    rule: TextRule,
    progress: bool,
) -> None:
    """The random split: count the names (first pass), draw the permutation's target places, and
    count the chunks whose names all lie at positions ≥ k first (their labels are known then)
    while a thread shuffles for the positions below k, whose chunks come last."""
    spans, total = _name_positions(p, progress)
    n_val, n_test = split_sizes(total, val_frac, test_frac)
    places = _first_places(total, n_val, n_test, seed)
    shuffling = threading.Thread(target=places.shuffle, daemon=True)
    shuffling.start()
    first = [span for span in spans if span[2].start >= n_val + n_test]  # file order within each part
    last = [span for span in spans if span[2].start < n_val + n_test]
    bar = tqdm(
        total=p.stat().st_size, unit="B", unit_scale=True, desc="reading", disable=not progress, leave=False
    )

    def work(offset: int, buf: bytes) -> None:
        at = positions[offset]
        _count_chunk(counter, p, offset, buf, places.labels(at.start, at.stop), rule, seed, 0.0, 0.0)

    positions = {a: at for a, _, at in spans}
    with p.open("rb") as f:
        try:
            _run_chunks(((a, os.pread(f.fileno(), b - a, a)) for a, b, _ in first + last), work, bar)
        except BigramError as late:  # the file's first error, as one pass in file order would say
            for a, b, _ in last:
                _utf8(os.pread(f.fileno(), b - a, a), a, p, rule)
            raise late from None
    bar.close()
    shuffling.join()


def _check_split(p: Path, split: str, world: int) -> None:
    """The random split reads a regular file twice in one process; torchrun needs byte ranges."""
    if split == "random" and (world > 1 or not is_regular(p)):
        raise BigramError(
            "split = 'random' reads the file twice in one process: use split = 'hash' "
            + ("under torchrun" if world > 1 else f"for {p}, which is not a regular file")
        )
    if split == "hash" and not is_regular(p) and world > 1:
        raise BigramError(f"{p} is not a regular file: torchrun's processes need byte ranges of one")


def _name_positions(p: Path, progress: bool) -> tuple[list[tuple[int, int, slice]], int]:
    """The random split's first pass: each chunk's (start, end, the positions of its names in the
    file), and how many names the file holds."""
    spans, total = [], 0
    for a, b, k in count_names(p, progress):
        spans.append((a, b, slice(total, total + k)))
        total += k
    if total == 0:
        raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
    return spans, total


def _count_chunk(
    counter: PairCounter,
    p: Path,
    offset: int,
    buf: bytes,
    lab: np.ndarray | None,
    rule: TextRule,
    seed: int,
    val_frac: float,
    test_frac: float,
) -> None:
    """Count one chunk: by the labels of its names when given, else by hash."""
    k = counter.add(np.frombuffer(_utf8(buf, offset, p, rule), np.uint8), lab, seed, val_frac, test_frac, p)
    if lab is not None and k != len(lab):  # never seen: rather stop than shift every label after it
        raise BigramError(
            f"the random split's two passes over {p} disagree on the names at byte {offset} "
            f"({len(lab)}, then {k}): use --split hash, and please report this"
        )


def _result(counter: PairCounter, p: Path, group) -> CorpusCounts:
    """The counts in the sorted vocabulary, summed over processes when given a process group
    (the vocabularies are merged first, then every rank's n-grams gathered: `_merge_ranks`)."""
    names = counter.names.copy()
    order = counter.order
    kernels = _kernels()
    accs = counter.accumulators or [kernels.Accumulator(counter.seen, order)]
    met = np.zeros(_CP, dtype=bool)
    for acc in accs:
        kernels.mark_met(acc, met)
    del acc  # no name may hold a thread's tables: each goes as soon as it is read out (below)

    chars = np.flatnonzero(met)  # every code point met, "\n" (the boundary) among them
    if group is not None:
        import torch.distributed as dist

        everyone: list[list[int]] = [[] for _ in range(dist.get_world_size(group))]
        dist.all_gather_object(everyone, chars.tolist(), group=group)
        chars = np.unique(np.concatenate([np.asarray(part, dtype=np.int64) for part in everyone]))
    chars = chars[chars != _NL]
    vocab = Vocab(tuple(chr(x) for x in chars.tolist()))
    V = vocab.size
    C = check_table_size(V, order, f" (the tokens of {p})")

    token = np.zeros(_CP, dtype=np.int32)  # code point → token id ("\n" → 0, the boundary)
    token[chars] = np.arange(1, V, dtype=np.int32)

    parts = []  # (split, row · V + column, count); one n-gram: once a thread
    while accs:  # each thread's tables go as soon as they are read out
        parts.append(list(kernels.token_ngrams(accs.pop(), token, V)))
    grams = []
    for i in range(3):  # one array at a time, each part's going as it is copied
        grams.append(np.concatenate([part[i] for part in parts]) if len(parts) > 1 else parts[0][i])
        for part in parts:
            part[i] = None
    del parts
    if group is not None:  # every rank's n-grams gathered and summed: sparse, never C×V
        *grams, names = _merge_ranks(group, grams, names)
    if names.sum() == 0:
        raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
    per_split = {s: int(n) for s, n in zip(SPLITS, names, strict=True)}
    return CorpusCounts(vocab, _matrices((C, V), grams, names), per_split, order)


def _merge_ranks(group, grams, names: np.ndarray):
    """(split, key, count) of every rank's n-grams laid end to end (repeats add up in
    `_matrices`), and the names per split summed: what one process would have counted."""
    import torch.distributed as dist

    everyone: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(
        everyone, (tuple(np.asarray(x, dtype=np.int64) for x in grams), names), group=group
    )
    parts = [p[0] for p in everyone]
    merged = tuple(np.concatenate([p[i] for p in parts]) for i in range(3))
    return (*merged, np.sum([p[1] for p in everyone], axis=0))


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
        rule=TextRule.of(cfg), order=cfg.order, rank=rank, world=world, group=group, progress=progress,
    )  # fmt: skip
    if "train" not in result.splits:
        n = sum(result.n_names.values())
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
        text = _utf8(buf, offset, p, rule).decode("utf-8")
        yield from (name for line in text.split("\n") if (name := line.strip()))
