"""Names as Python lists, for small corpora, tests and notebooks (training itself streams: reader/corpus.py).

>>> split = split_names(["ann", "bob", "cy", "dee"], 0.25, 0.25, seed=0)
>>> split["train"], split["val"], split["test"]   # one of the four each for val and test
(['cy', 'dee'], ['ann'], ['bob'])
"""

from __future__ import annotations

from pathlib import Path

from bigram.errors import BigramError
from bigram.reader.corpus import SPLITS, iter_names, random_labels
from bigram.text import TextRule


def read_names(path: str | Path, normalize: str | None = "NFC", lowercase: bool = False) -> list[str]:
    """Every name of a corpus file by the text rule (bigram.text): UTF-8, one name per line,
    normalized, optionally lowercased, stripped, blank lines skipped. BigramError otherwise."""
    names = list(iter_names(path, TextRule(None if normalize == "none" else normalize, lowercase)))
    if not names:
        raise BigramError(f"data file {path} has no names (it is empty or only blank lines)")
    return names


def split_names(names: list[str], val_frac: float, test_frac: float, seed: int) -> dict[str, list[str]]:
    """A deterministic split of the names by seed: a seeded permutation picks the val and test
    names; every split keeps the corpus order. Sizes are round(frac * number of names). The same
    split the streaming reader makes with split = "random"."""
    labels = random_labels(len(names), val_frac, test_frac, seed)
    return {
        split: [w for w, k in zip(names, labels, strict=True) if k == s] for s, split in enumerate(SPLITS)
    }
