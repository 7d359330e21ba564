"""Reading a names corpus and splitting it into train/val/test."""

from __future__ import annotations

from pathlib import Path

import torch

from bigram.errors import BigramError

SPLITS = ("train", "val", "test")


def check_data_path(path: str | Path) -> Path:
    """The path of an existing regular file, or a BigramError saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise BigramError(f"data file {p} does not exist: pass --data with a UTF-8 file, one name per line")
    if p.is_dir():
        raise BigramError(f"data path {p} is a directory: pass --data with a file, one name per line")
    return p


def read_names(path: str | Path, normalize: str | None = "NFC", lowercase: bool = False) -> list[str]:
    """One name per line, UTF-8 (a BOM is accepted); Unicode-normalized (NFC unless told
    otherwise), optionally lowercased; surrounding whitespace stripped (so CRLF works); blank
    lines skipped. Raises BigramError for anything that is not such a file."""
    from bigram.corpus import normalize_text

    p = check_data_path(path)
    raw = p.read_bytes()
    if b"\x00" in raw:
        raise BigramError(
            f"data file {p} looks binary (it contains NUL bytes): expected UTF-8 text, one name per line"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise BigramError(
            f"data file {p} is not valid UTF-8 at line {line} (byte {e.start}): re-save it as UTF-8"
        ) from None
    text = normalize_text(text, normalize, lowercase)
    # split on "\n" only: str.splitlines() would also break names at \x1c, \x85, U+2028 and others
    names = [s for line in text.split("\n") if (s := line.strip())]
    if not names:
        raise BigramError(f"data file {p} has no names (it is empty or only blank lines)")
    return names


def split_names(names: list[str], val_frac: float, test_frac: float, seed: int) -> dict[str, list[str]]:
    """A deterministic split of the names by seed: a seeded permutation picks the val and test
    names; every split keeps the corpus order. Sizes are round(frac * number of names)."""
    n = len(names)
    n_val, n_test = round(val_frac * n), round(test_frac * n)
    if n_val + n_test >= n:
        raise BigramError(
            f"val_frac={val_frac} and test_frac={test_frac} leave no training names out of {n}: lower them"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    which = [0] * n  # 0 train, 1 val, 2 test
    for i in perm[:n_val]:
        which[i] = 1
    for i in perm[n_val : n_val + n_test]:
        which[i] = 2
    return {split: [w for w, k in zip(names, which, strict=True) if k == s] for s, split in enumerate(SPLITS)}
