"""The one corpus reader: a names file of any size → per-split bigram counts, in bounded memory.

The file is read in ~1 MiB chunks cut at line ends. Each chunk is cleaned by the run's text rule
(bigram.text) and turned into one array of code points with "\\n" between names (an ASCII chunk
stays bytes: one byte per character). From it, with a handful of vectorized numpy operations:
- the vocabulary grows as new characters appear (ids in order of arrival; sorted at the end);
- every name gets its split (0 train, 1 val, 2 test), by one of two methods:
    random: a seeded permutation of the names' *positions* (torch.randperm, as in data.split_names),
            so the split needs one first pass that only counts names; then one byte per name;
    hash:   a seeded hash of the name's text (`split_of`): one pass, any size, duplicates together;
- every bigram is added to its split's counts (`PairCounter`): a dense block for the first 256
  characters to arrive (in practice the frequent ones: all of an ASCII corpus), sorted sparse keys
  for pairs with rarer characters, so memory follows the pairs that occur, not V².
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
HOT = 256  # the first HOT tokens to arrive are counted in a dense 3×HOT×HOT block
STREAM_THRESHOLD = 256 * 2**20  # split = "auto": files larger than this use the one-pass hash split
_NL = ord("\n")
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


def _code_points(buf: bytes, offset: int, path: Path, rule: TextRule) -> np.ndarray:
    """One chunk → its names as code points with "\\n" before, between and after them (uint8 for
    an ASCII chunk, else int32). Blank lines are dropped and names stripped by the text rule."""
    if offset == 0 and buf.startswith(BOM):
        buf = buf[3:]
    buf = unify_line_ends(buf)
    check_bytes(buf, path)
    if buf.isascii():  # normalization changes no ASCII text: stay in bytes
        if rule.lowercase:
            buf = buf.lower()
        cps = np.frombuffer(bytearray(b"\n" + buf.strip(b"\n") + b"\n"), dtype=np.uint8)
        if _needs_stripping(cps):
            cps = np.frombuffer(bytearray(("\n" + rule.lines(buf.decode("ascii")) + "\n").encode()), np.uint8)
        return cps
    text = rule.text(decode(buf, path, offset))
    cps = np.frombuffer(bytearray(("\n" + text.strip("\n") + "\n").encode("utf-32-le")), dtype=np.int32)
    if _needs_stripping(cps):
        cps = np.frombuffer(bytearray(("\n" + rule.lines(text) + "\n").encode("utf-32-le")), dtype=np.int32)
    return cps


def _needs_stripping(cps: np.ndarray) -> bool:
    """False when every line is already stripped and non-blank (the fast path). Only the
    characters beside each newline are looked at, not the whole chunk.

    >>> _needs_stripping(np.frombuffer(b"\\nann\\nbob\\n", np.uint8))
    False
    >>> _needs_stripping(np.frombuffer(b"\\nann \\n\\nbob\\n", np.uint8))
    True
    """
    nl = np.flatnonzero(cps == _NL)
    if (np.diff(nl) == 1).any():  # a blank line
        return True
    return bool(_SPACE[cps[nl[1:] - 1]].any() or _SPACE[cps[nl[:-1] + 1]].any())


def split_of(cps: np.ndarray, nl: np.ndarray, seed: int, val_frac: float, test_frac: float) -> np.ndarray:
    """The split of each name (0 train, 1 val, 2 test) from a seeded hash of its text.

    cps: code points with "\\n" before, between and after the names; nl: the positions of those
    "\\n". The hash mixes the name's length, first and last characters and the (wrapping) sum of
    its code points, then a 64-bit finalizer; names equal in all four share a split."""
    starts, ends = nl[:-1] + 1, nl[1:]
    # each name's code-point sum (+ its "\n"), wrapping at 32 bits: differences of a wrapped
    # cumulative sum are exact modulo 2^32, whatever the chunk
    cum = torch.from_numpy(cps).cumsum(0, dtype=torch.int32).numpy()
    total = (cum[nl[1:]] - cum[nl[:-1]]).view(np.uint32).astype(np.uint64)
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
    """Per-split counts of (previous, next) token pairs, growing the vocabulary as chunks arrive.

    Token ids are given in order of arrival (0 is the boundary, "\\n" in the text). A pair of two
    of the first HOT ids is counted in a dense block with one bincount per chunk; any other pair
    becomes a 64-bit key (split, prev, next) kept sorted and unique, merged now and then. So an
    ASCII corpus costs a 1.5 MB block, and a corpus of thousands of characters costs memory in
    proportion to the pairs that occur. Thread-safe: numpy releases the GIL while it works."""

    def __init__(self) -> None:
        self.lut = np.full(0x110000, -1, dtype=np.int32)  # code point → arrival id
        self.lut[_NL] = 0
        self.code_points = [_NL]  # arrival id → code point
        self.hot = np.zeros(3 * HOT * HOT, dtype=np.int64)
        self.cold_keys = np.zeros(0, dtype=np.int64)  # sorted, unique
        self.cold_counts = np.zeros(0, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []  # per-chunk (keys, counts)
        self.pending_size = 0
        self.names = np.zeros(3, dtype=np.int64)
        self.lock = threading.Lock()

    def ids(self, cps: np.ndarray) -> np.ndarray:
        """The ids of the code points, giving new ones to characters seen for the first time."""
        ids = np.take(self.lut, cps)
        if (ids < 0).any():
            with self.lock:
                new = np.unique(cps[np.take(self.lut, cps) < 0])
                if len(self.code_points) + len(new) > MAX_V:
                    raise BigramError(
                        f"the corpus has more than {MAX_V - 1:,} distinct characters: a V×V model is too "
                        "big (is the file text, one name per line?)"
                    )
                first = len(self.code_points)
                # the list first: an id another thread can see is always counted in len(code_points)
                self.code_points.extend(int(c) for c in new)
                self.lut[new] = np.arange(first, first + len(new))
            ids = np.take(self.lut, cps)
        return ids

    def add(self, ids: np.ndarray, labels: np.ndarray) -> None:
        """Count the bigrams of one chunk: `ids` has the boundary (0) before, between and after
        the names, `labels` holds each name's split."""
        nl = np.flatnonzero(ids == 0)
        split = np.repeat(labels.astype(np.int64), np.diff(nl))  # each bigram's split
        prev, nxt = ids[:-1], ids[1:]
        if len(self.code_points) <= HOT:  # every id is a hot one (all of an ASCII corpus)
            hot_block, cold = np.bincount((split * HOT + prev) * HOT + nxt, minlength=3 * HOT * HOT), None
        else:
            is_hot = (prev < HOT) & (nxt < HOT)
            keys = (split * HOT + prev) * HOT + nxt
            hot_block = np.bincount(keys[is_hot], minlength=3 * HOT * HOT)
            cold = (split * MAX_V + prev) * MAX_V + nxt
            cold = np.unique(cold[~is_hot], return_counts=True)
        counts = np.bincount(labels, minlength=3)
        with self.lock:
            self.hot += hot_block
            self.names += counts
            if cold is not None and len(cold[0]):
                self.pending.append(cold)
                self.pending_size += len(cold[0])
                if self.pending_size > max(1 << 22, len(self.cold_keys)):
                    self._merge()

    def _merge(self) -> None:
        """Fold the pending per-chunk keys into the sorted unique ones (amortized: it runs when
        the pending keys outnumber the merged ones)."""
        keys = np.concatenate([self.cold_keys, *(k for k, _ in self.pending)])
        counts = np.concatenate([self.cold_counts, *(c for _, c in self.pending)])
        self.cold_keys, inverse = np.unique(keys, return_inverse=True)
        summed = np.bincount(inverse, weights=counts, minlength=len(self.cold_keys))
        self.cold_counts = summed.astype(np.int64)  # float64 sums are exact below 2^53
        self.pending, self.pending_size = [], 0

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every counted pair as (split, prev, next, count) arrays, ids in arrival order."""
        self._merge()
        hot = self.hot.reshape(3, HOT, HOT)
        s, a, b = np.nonzero(hot)
        cs, rest = np.divmod(self.cold_keys, MAX_V * MAX_V)
        ca, cb = np.divmod(rest, MAX_V)
        return (
            np.concatenate([s, cs]),
            np.concatenate([a, ca]),
            np.concatenate([b, cb]),
            np.concatenate([hot[s, a, b], self.cold_counts]),
        )


def _matrices(vocab: Vocab, order: np.ndarray, triples, names: np.ndarray) -> dict[str, torch.Tensor]:
    """Per-split V×V int64 count matrices from (split, prev, next, count) in arrival ids; sparse
    COO when that is smaller than dense (24 bytes per counted pair against 8 per cell)."""
    s, a, b, c = triples
    V = vocab.size
    out = {}
    for i, name in enumerate(SPLITS):
        if names[i] == 0:
            continue
        m = s == i
        idx = torch.from_numpy(np.stack([order[a[m]], order[b[m]]]).astype(np.int64))
        vals = torch.from_numpy(c[m].astype(np.int64))
        t = torch.sparse_coo_tensor(idx, vals, (V, V), check_invariants=False).coalesce()
        out[name] = t if 3 * len(vals) < V * V else t.to_dense()
    return out


# --- the reader ---------------------------------------------------------------------------------
def _n_names(cps: np.ndarray) -> int:
    """How many names a chunk's code points hold ("\n" before, between and after them)."""
    return int((cps == _NL).sum()) - 1 if len(cps) > 2 else 0


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


def count_names(path: Path, rule: TextRule, start: int = 0, end: int | None = None) -> dict[int, int]:
    """The number of names in each chunk, by the chunk's offset: the random split's first pass."""
    out: dict[int, int] = {}

    def work(offset: int, buf: bytes) -> None:
        out[offset] = _n_names(_code_points(buf, offset, path, rule))

    _run_chunks(path, start, end, work, None)
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
        per_chunk = count_names(p, rule)
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
        cps = _code_points(buf, offset, p, rule)
        if len(cps) <= 2:  # only blank lines
            return
        if labels is not None:
            lab = labels[first_name[offset] : first_name[offset] + _n_names(cps)]
        else:
            lab = split_of(cps, np.flatnonzero(cps == _NL), seed, val_frac, test_frac)
        counter.add(counter.ids(cps), lab)

    _run_chunks(p, start, end, work, bar)
    bar.close()
    _release_freed_memory()
    return _result(counter, p, group)


def _result(counter: PairCounter, p: Path, group) -> CorpusCounts:
    """The counts in the sorted vocabulary, summed over processes when given a process group
    (the vocabularies are merged first, then one all-reduce of dense matrices)."""
    cps = counter.code_points
    if group is not None:
        import torch.distributed as dist

        everyone: list[list[int]] = [[] for _ in range(dist.get_world_size(group))]
        dist.all_gather_object(everyone, cps, group=group)
        all_cps = sorted({c for part in everyone for c in part} - {_NL})
    else:
        all_cps = sorted(set(cps) - {_NL})
    vocab = Vocab(tuple(chr(c) for c in all_cps))
    position = {c: i + 1 for i, c in enumerate(all_cps)}
    order = np.array([0 if c == _NL else position[c] for c in cps], dtype=np.int64)  # arrival → sorted id
    names = counter.names.copy()
    triples = counter.triples()
    if group is not None:
        import torch.distributed as dist

        V = vocab.size
        s, a, b, c = triples
        dense = torch.zeros(3, V, V, dtype=torch.long)
        at = (torch.from_numpy(s.astype(np.int64)), torch.from_numpy(order[a]), torch.from_numpy(order[b]))
        dense[at] = torch.from_numpy(c)
        n = torch.from_numpy(names)
        # nccl reduces CUDA tensors only; gloo reduces CPU tensors
        dev = torch.device("cuda") if dist.get_backend(group) == "nccl" else torch.device("cpu")
        dense, n = dense.to(dev), n.to(dev)
        dist.all_reduce(dense, group=group)
        dist.all_reduce(n, group=group)
        dense, names = dense.cpu(), n.cpu().numpy()
        s, a, b = (x.numpy() for x in dense.nonzero(as_tuple=True))
        triples, order = (s, a, b, dense[s, a, b].numpy()), np.arange(V)
    if names.sum() == 0:
        raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
    per_split = {s: int(n) for s, n in zip(SPLITS, names, strict=True)}
    return CorpusCounts(vocab, _matrices(vocab, order, triples, names), per_split)


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
        cps = _code_points(buf, offset, p, rule)
        if len(cps) > 2:
            text = cps.tobytes().decode("ascii" if cps.dtype == np.uint8 else "utf-32-le")
            yield from text[1:-1].split("\n")
