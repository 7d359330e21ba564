"""Streaming a corpus of any size into bigram counts, in one pass and bounded memory.

The file is read in ~1 MiB chunks cut at line ends. Each chunk becomes one int32 array of code
points with "\\n" between names; from it, with a handful of vectorized numpy operations:
- the vocabulary grows as new characters appear (a code point → id table, ids in order of
  first appearance, sorted by code point at the end);
- every name gets its split from a hash of its text (`split_of`), so the split needs no list of
  names and is the same whichever process reads the name, and duplicates never straddle splits;
- every bigram is added to its split's count matrix.
Memory is the count matrices plus one chunk, whatever the corpus size.

Under torch.distributed each process reads its own byte range (aligned to line starts), and the
count matrices are summed with one all-reduce: counts add up.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bigram.errors import BigramError
from bigram.vocab import Vocab

CHUNK_BYTES = 1 << 20  # small chunks stay in cache: 1 MiB measured faster than 4 or 16 MiB
_NL = ord("\n")
_MAX_V = 16_384  # 3 V² counters beyond that no longer fit a sane memory budget
# characters str.strip() removes, as UTF-8 (a chunk containing one takes the exact slow path)
_WS = [chr(c) for c in range(0x3001) if chr(c).isspace() and c != _NL]


@dataclass
class CorpusCounts:
    vocab: Vocab
    counts: dict[str, torch.Tensor]  # split → V×V int64; empty splits left out
    names: dict[str, int]  # split → number of names


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
    path: Path, start: int, end: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[tuple[bytes, int]]:
    """(chunk, bytes read for it) pairs; every chunk ends at a line end (or the range's end)."""
    with path.open("rb") as f:
        f.seek(start)
        pos, carry, read = start, b"", 0
        while pos < end:
            block = f.read(min(chunk_bytes, end - pos))
            if not block:
                break
            pos += len(block)
            read += len(block)
            buf = carry + block
            cut = len(buf) if pos >= end else buf.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk: keep reading
                carry = buf
                continue
            buf, carry = buf[:cut], buf[cut:]
            yield buf, read
            read = 0
        if carry:
            yield carry, read


def strip_lines(text: str) -> str:
    """The per-line rule of data.read_names: surrounding whitespace stripped, blank lines dropped."""
    return "\n".join(s for line in text.split("\n") if (s := line.strip()))


def normalize_text(text: str, normalize: str | None, lowercase: bool) -> str:
    """Unicode normalization (NFC by default: é typed as e + ◌́ becomes one character), then
    optional lowercasing. Whole-text operations, so a chunk costs one C call each."""
    if normalize and not text.isascii() and not unicodedata.is_normalized(normalize, text):
        text = unicodedata.normalize(normalize, text)
    return text.lower() if lowercase else text


_SPACE = np.zeros(0x110000, dtype=bool)  # code point → does str.strip() remove it
_SPACE[[ord(c) for c in _WS]] = True


def _code_points(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The text as int32 code points with "\n" before and after, and the newlines' positions."""
    cps = np.frombuffer(bytearray(("\n" + text.rstrip("\n") + "\n").encode("utf-32-le")), dtype=np.int32)
    return cps, np.flatnonzero(cps == _NL)


def _needs_stripping(cps: np.ndarray, nl: np.ndarray) -> bool:
    """False when every line is already stripped and non-blank (the fast path). Only the
    characters next to each newline are looked at, not the whole chunk."""
    if (np.diff(nl) == 1).any():  # a blank line
        return True
    return bool(_SPACE[cps[nl[1:] - 1]].any() or _SPACE[cps[nl[:-1] + 1]].any())


def split_of(cps: np.ndarray, nl: np.ndarray, seed: int, val_frac: float, test_frac: float) -> np.ndarray:
    """The split of each name (0 train, 1 val, 2 test) from a seeded hash of its text.

    cps: int32 code points with "\\n" before, between and after the names; nl: the positions of
    those "\\n". The hash mixes the name's length, first and last characters and the (wrapping)
    sum of its code points, then a 64-bit finalizer; names equal in all four share a split."""
    starts, ends = nl[:-1] + 1, nl[1:]
    # each name's code-point sum (+ its "\n"), wrapping at 32 bits: differences of a wrapped
    # cumulative sum are exact modulo 2^32, whatever the chunk (torch's cumsum: 3x numpy's here)
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
    return (h < t_test).astype(np.int32) + (h < t_val)


class StreamCounter:
    """Accumulates bigram counts of chunks, per split, growing the vocabulary as it goes."""

    def __init__(self, seed: int, val_frac: float, test_frac: float):
        self.seed, self.val_frac, self.test_frac = seed, val_frac, test_frac
        self.lut = np.full(0x110000, -1, dtype=np.int32)  # code point → id in order of arrival
        self.lut[_NL] = 0
        self.code_points = [_NL]  # arrival id → code point (id 0: the boundary)
        self.cap = 32
        self.acc = torch.zeros(3 * self.cap * self.cap, dtype=torch.int32)
        self.total = 0
        self.names = np.zeros(3, dtype=np.int64)
        self.lock = threading.Lock()

    def add(self, text: str) -> None:
        """Count one chunk of text, one name per line (stripped here if any line needs it).
        Thread-safe: only the vocabulary lookup and the accumulation hold the lock."""
        cps, nl = _code_points(text)
        if _needs_stripping(cps, nl):  # the exact per-line rule, only for chunks that need it
            text = strip_lines(text)
            if not text:  # only blank lines
                return
            cps, nl = _code_points(text)
        with self.lock:
            ids = np.take(self.lut, cps)  # faster than fancy indexing here
            if (ids < 0).any():
                self._grow(np.unique(cps[ids < 0]))
                ids = np.take(self.lut, cps)
            cap = self.cap
        labels = split_of(cps, nl, self.seed, self.val_frac, self.test_frac)
        lengths = np.diff(nl)  # each name's bigrams: its length + 1
        while True:
            keys = np.repeat(labels * (cap * cap), lengths)  # each bigram's split offset
            keys += ids[1:]
            keys += ids[:-1] * cap
            with self.lock:
                if cap != self.cap:  # another thread grew the matrices meanwhile: ids still hold
                    cap = self.cap
                    continue
                self.names += np.bincount(labels, minlength=3)
                if self.total + len(keys) >= 2**31 - 1 and self.acc.dtype == torch.int32:
                    self.acc = self.acc.long()  # a bigram could pass 2^31 occurrences
                self.total += len(keys)
                k = torch.from_numpy(keys)
                self.acc.index_add_(0, k, torch.ones(1, dtype=self.acc.dtype).expand(len(k)))
                return

    def _grow(self, new: np.ndarray) -> None:
        V = len(self.code_points) + len(new)
        if V > _MAX_V:
            raise BigramError(
                f"the corpus has more than {_MAX_V} distinct characters: a V×V model is too big"
            )
        self.lut[new] = np.arange(len(self.code_points), V, dtype=np.int32)
        self.code_points.extend(int(c) for c in new)
        if self.cap < V:
            cap = self.cap
            while cap < V:
                cap *= 2
            old = self.acc.view(3, self.cap, self.cap)
            acc = torch.zeros(3, cap, cap, dtype=self.acc.dtype)
            acc[:, : self.cap, : self.cap] = old
            self.cap, self.acc = cap, acc.flatten()

    def result(self, group=None) -> CorpusCounts:
        """The per-split V×V matrices in the sorted vocabulary (summed over processes if given
        a process group: the vocabularies are merged first, then one all-reduce)."""
        cps = self.code_points
        if group is not None:
            import torch.distributed as dist

            everyone: list[list[int]] = [[] for _ in range(dist.get_world_size(group))]
            dist.all_gather_object(everyone, cps, group=group)
            all_cps = sorted({c for part in everyone for c in part} - {_NL})
        else:
            all_cps = sorted(set(cps) - {_NL})
        vocab = Vocab(tuple(chr(c) for c in all_cps))
        V = vocab.size
        # arrival id → sorted id
        order = torch.tensor([0 if c == _NL else vocab.id(chr(c)) for c in cps], dtype=torch.long)
        n = len(cps)
        local = self.acc.view(3, self.cap, self.cap)[:, :n, :n].long()
        counts = torch.zeros(3, V, V, dtype=torch.long)
        counts[:, order[:, None], order[None, :]] = local
        names = torch.from_numpy(self.names.copy())
        if group is not None:
            import torch.distributed as dist

            # nccl reduces CUDA tensors only; gloo reduces CPU tensors
            dev = torch.device("cuda") if dist.get_backend(group) == "nccl" else torch.device("cpu")
            counts, names = counts.to(dev), names.to(dev)
            dist.all_reduce(counts, group=group)
            dist.all_reduce(names, group=group)
            counts, names = counts.cpu(), names.cpu()
        split_names = ("train", "val", "test")
        return CorpusCounts(
            vocab,
            {s: counts[i] for i, s in enumerate(split_names) if names[i] > 0},
            {s: int(names[i]) for i, s in enumerate(split_names)},
        )


def count_file(
    path: str | Path,
    *,
    seed: int,
    val_frac: float,
    test_frac: float,
    normalize: str | None = "NFC",
    lowercase: bool = False,
    rank: int = 0,
    world: int = 1,
    group=None,
    progress: bool = False,
) -> CorpusCounts:
    """Stream a corpus file into per-split bigram counts (hash split). With world > 1, this
    process reads its byte range and the counts are all-reduced over `group`."""
    from bigram.data import check_data_path

    p = check_data_path(path)
    start, end = byte_range(p, rank, world)
    counter = StreamCounter(seed, val_frac, test_frac)
    bar = tqdm(
        total=end - start, unit="B", unit_scale=True, desc="reading", disable=not progress, leave=False
    )

    def process(buf: bytes, chunk_start: int) -> None:
        if chunk_start == 0 and buf.startswith(b"\xef\xbb\xbf"):
            buf, chunk_start = buf[3:], 3
        if b"\r" in buf:  # CRLF: one C call here keeps the chunk on the fast path
            buf = buf.replace(b"\r\n", b"\n")
        if b"\x00" in buf:
            raise BigramError(
                f"data file {p} looks binary (it contains NUL bytes): expected UTF-8 text, one name per line"
            )
        try:
            text = buf.decode("utf-8")
        except UnicodeDecodeError:
            line = _bad_utf8_line(p, chunk_start)
            raise BigramError(
                f"data file {p} is not valid UTF-8 at line {line}: re-save it as UTF-8"
            ) from None
        counter.add(normalize_text(text, normalize, lowercase))

    # two workers: numpy releases the GIL, so chunks are processed on both cores
    offset = start
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()
        for buf, read in iter_chunks(p, start, end):
            pending.append((pool.submit(process, buf, offset), read))
            offset += len(buf)
            if len(pending) >= 4:  # bounded: at most four chunks in memory
                future, done = pending.popleft()
                future.result()
                bar.update(done)
        for future, done in pending:
            future.result()
            bar.update(done)
    bar.close()
    _release_freed_memory()
    result = counter.result(group)
    if not any(result.names.values()):
        raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
    return result


def _release_freed_memory() -> None:
    """Hand the chunks' freed heap back to the OS (glibc keeps it per thread arena), so that
    what runs after the counting does not stack on top of it. A no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _bad_utf8_line(path: Path, chunk_start: int) -> int:
    """The line number of the first invalid UTF-8 byte at or after chunk_start (the error path
    only: counting lines of every chunk would cost the fast path ~5 %)."""
    with path.open("rb") as f:
        head = f.read(chunk_start)
        rest = b""
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            rest += block
            try:
                rest.decode("utf-8")
            except UnicodeDecodeError as e:
                if e.end < len(rest) or e.reason != "unexpected end of data":
                    return head.count(b"\n") + rest[: e.start].count(b"\n") + 1
    return head.count(b"\n") + rest.count(b"\n") + 1


def default_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


STREAM_THRESHOLD = 256 * 2**20  # split = "auto": files larger than this stream with the hash split


def load_counts(cfg, *, progress: bool = False, rank: int = 0, world: int = 1, group=None) -> CorpusCounts:
    """The per-split counts a run trains on, by the config's split method.

    random: read all names, split by a seeded permutation (exact fractions), count in memory.
    hash:   stream the file; each name's split comes from a hash of its text.
    auto:   random for files up to 256 MB, hash beyond, and always hash under torchrun."""
    from bigram.counts import count_bigrams
    from bigram.data import SPLITS, check_data_path, read_names, split_names

    p = check_data_path(cfg.data)
    normalize = None if cfg.normalize == "none" else cfg.normalize
    method = cfg.split
    if method == "auto":
        method = "hash" if world > 1 or p.stat().st_size > STREAM_THRESHOLD else "random"
    if method == "random":
        if world > 1:
            raise BigramError(
                "split = 'random' needs every name in one process: use split = 'hash' under torchrun"
            )
        names = read_names(p, normalize, cfg.lowercase)
        vocab = Vocab.from_names(names)  # from the whole corpus, so every split is encodable
        splits = split_names(names, cfg.val_frac, cfg.test_frac, cfg.seed)
        counts = {s: count_bigrams(splits[s], vocab) for s in SPLITS if splits[s]}
        return CorpusCounts(vocab, counts, {s: len(splits[s]) for s in SPLITS})
    result = count_file(
        p, seed=cfg.seed, val_frac=cfg.val_frac, test_frac=cfg.test_frac, normalize=normalize,
        lowercase=cfg.lowercase, rank=rank, world=world, group=group, progress=progress,
    )  # fmt: skip
    if "train" not in result.counts:
        n = sum(result.names.values())
        raise BigramError(
            f"the hash split of {p} ({n} names) left none for training: lower val_frac and test_frac, "
            "or use split = 'random'"
        )
    return result
