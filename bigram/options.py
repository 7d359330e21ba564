"""The reading commands' option values, checked with the standard library alone: the CLI checks
them before it imports torch (a refusal answers at once), and the library checks the same way.

    >>> check_sampling(temperature=0.8, top_k=5, top_p=0.9, min_len=3, max_len=8)
    >>> check_sampling(top_p=2)
    Traceback (most recent call last):
    ...
    bigram.errors.BigramError: --top-p must be in (0, 1], got 2
"""

from __future__ import annotations

from bigram.errors import BigramError

MAX_STEPS = 10_000  # a walk that has not ended by then means a broken table
MAX_UNIQUE = 1_000_000  # --unique remembers every name given (~150 MB for a million)
EXPORT_FORMATS = {".arpa": "arpa", ".lm": "arpa", ".json": "json", ".csv": "csv"}  # by file extension
PLOT_WHAT = ("counts", "probs")  # the training split's N, or a model's P
PLOT_MAX_TOP = 100  # a figure of 100 × 100 labelled cells is ~4,600 px square; beyond, unreadable and huge


def check_shape(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> None:
    """How a table may be reshaped before sampling (sampling.adjust)."""
    if not temperature > 0:  # NaN fails too
        raise BigramError(f"--temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise BigramError(f"--top-k must be ≥ 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise BigramError(f"--top-p must be in (0, 1], got {top_p}")


def check_lengths(min_len: int = 1, max_len: int | None = None) -> None:
    """The name lengths a walk may be conditioned on (conditioning.Plan)."""
    if min_len < 0:
        raise BigramError(f"--min-len must be ≥ 0, got {min_len}")
    if max_len is not None and max_len < min_len:
        raise BigramError(f"--min-len {min_len} is greater than --max-len {max_len}")
    if min_len > MAX_STEPS:
        raise BigramError(f"--min-len {min_len}: names are sampled up to {MAX_STEPS:,} characters long")


def check_count(n: int, unique: bool = False, most_likely: int | None = None) -> None:
    """How many names: -n (bounded under --unique, which remembers them all), --most-likely K."""
    if n < 0:
        raise BigramError(f"-n {n}: the number of names must be ≥ 0")
    if unique and n > MAX_UNIQUE:
        raise BigramError(f"-n {n:,} --unique: --unique remembers every name; ask for at most {MAX_UNIQUE:,}")
    if most_likely is not None and most_likely < 0:
        raise BigramError(f"--most-likely {most_likely}: must be ≥ 0")


def check_affixes(start: str = "", end: str = "") -> None:
    """--start/--end: names are stripped by the text rule, so none begins or ends with white space."""
    why = "which no name does (names are stripped)"
    if start[:1].isspace():
        raise BigramError(f"--start {start!r} begins with white space, {why}")
    if end[-1:].isspace():
        raise BigramError(f"--end {end!r} ends with white space, {why}")


def check_sampling(
    n: int = 1,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_len: int = 1,
    max_len: int | None = None,
    unique: bool = False,
    most_likely: int | None = None,
    start: str = "",
    end: str = "",
) -> None:
    """Every option of `bigram sample` that can be checked without the run."""
    check_count(n, unique, most_likely)
    check_shape(temperature, top_k, top_p)
    check_lengths(min_len, max_len)
    check_affixes(start, end)
