"""What a request asks of the names, in the words both plans share: the length and affix
constraints (`Constraints`), the regular ones (`Patterns`), the error a search for the K
most likely names stops with (`SearchStopped`), and how big a request is, in words
(`mass_line`: the probability the model gives its constraints).

Plain frozen dataclasses, safe as default arguments, and nothing heavier than bigram.errors:
sampling.py names them in its signatures without loading either plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bigram.errors import BigramError
from bigram.text import escaped


@dataclass(frozen=True)
class Constraints:
    """--start, --end, --min-len and --max-len."""

    start: str = ""
    end: str = ""
    min_len: int = 1  # names are never empty unless asked (min_len = 0)
    max_len: int | None = None  # None: unbounded


@dataclass(frozen=True)
class Patterns:
    """The regular constraints: each may be empty."""

    pattern: str | None = None
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    blocklist: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pattern is not None or self.contains or self.not_contains or self.blocklist)


class SearchStopped(BigramError):
    """A plan's `best` stopped at its bound; `found` holds the names it had found, most probable first."""

    def __init__(self, message: str, found: list[tuple[str, float]]):
        super().__init__(message)
        self.found = found

    @classmethod
    def bound(cls, k: int, max_queued: int, found: list[tuple[str, float]]) -> SearchStopped:
        """The search queued `max_queued` partial names before finding all k."""
        return cls(
            f"--most-likely {k}: stopped after queueing {max_queued:,} partial names, with "
            f"{len(found):,} of {k:,} found (printed above): ask for fewer, or constrain them",
            found,
        )


def asked(c: Constraints, p: Patterns) -> str:
    """The constraints in words, as `mass_line` names them; "" when they ask nothing (a name is
    then any name of at least one character: --min-len 1, the default).

    >>> asked(Constraints("ka", "a", 6), Patterns())
    "start 'ka', end 'a', length ≥ 6"
    >>> asked(Constraints(max_len=5), Patterns(not_contains=("q",)))
    "length 1–5, not containing 'q'"
    """
    words = [f"start {_quoted(c.start)}"] if c.start else []
    words += [f"end {_quoted(c.end)}"] if c.end else []
    # the least length the other constraints imply: a --min-len at or below it goes unsaid (and
    # the default 1 too when they imply a character; else "length 1–5" keeps the empty name out)
    implied = max([len(c.start), len(c.end), *map(len, p.contains)])
    low = c.min_len if c.min_len > implied or (c.min_len == 1 and implied == 0) else None
    if c.max_len is None:
        # a pattern, --not-contains or --blocklist alone may allow the empty name: say it is out
        words += [f"length ≥ {c.min_len}"] if c.min_len > max(implied, 1) or (low == 1 and p) else []
    elif low == c.max_len:
        words.append(f"length {low}")
    else:
        words.append(f"length {low}–{c.max_len}" if low else f"length ≤ {c.max_len}")
    words += _strings("contains", "containing all of", p.contains)
    words += _strings("not containing", "containing none of", p.not_contains)
    words += [f"matching {_quoted(p.pattern)}"] if p.pattern is not None else []
    if p.blocklist:
        n = len(p.blocklist)
        words.append(f"containing none of the {n:,} blocklisted strings" if n > 1 else
                     "not containing the blocklisted string")  # fmt: skip
    return ", ".join(words)


def _strings(verb: str, many: str, strings: tuple[str, ...]) -> list[str]:
    """--contains or --not-contains in words: each string, or for many the count and the first
    (600 of them must not make a line of 13,000 characters)."""
    if len(strings) <= 3:
        return [f"{verb} {_quoted(x)}" for x in strings]
    return [f"{many} {len(strings):,} strings ({_quoted(strings[0])}, …)"]


def mass_line(c: Constraints, p: Patterns, log_p: float, model: str, walks: bool = False) -> str:
    """What `sample` says on stderr of a constrained request: P(the constraints) under `model`
    (its words: "the count model", with any --temperature/--top-k/--top-p), and how rare that is.
    `walks`: the alphabet holds white space, so some of the model's walks (those that begin or end
    with it) are no name by the text rule, and `sample` draws them again: P counts them, said so.

    >>> mass_line(Constraints("ka", "a", 6), Patterns(), math.log(0.0041), "the count model")
    "P(start 'ka', end 'a', length ≥ 6) = 0.0041 under the count model: 1 in 244 of its names"
    >>> mass_line(Constraints(end="zz"), Patterns(), -1000.0, "the neural model")
    "P(end 'zz') = 5.08e-435 under the neural model: 1 in 1.97e434 of its names"
    """
    rare = _number(-log_p, whole=True)
    if walks:
        return (f"P({asked(c, p)}) = {_number(log_p)} under {model}: 1 in {rare} of its walks (counting "
                "those that begin or end with white space, which sample draws again)")  # fmt: skip
    return f"P({asked(c, p)}) = {_number(log_p)} under {model}: 1 in {rare} of its names"


def _quoted(text: str, most: int = 60) -> str:
    """repr's quotes and escapes, then what a terminal must not be sent; a long string cut, as
    every echo of user input is (a --pattern may be thousands of characters)."""
    return escaped(repr(text) if len(text) <= most else repr(text[: most - 1]) + "…")


def _number(log_x: float, whole: bool = False) -> str:
    """exp(log_x) in 4 significant figures, in scientific notation (3 figures) below 1e-4 and from
    1e15, its exponent computed from the log so that no float64 underflow or overflow turns it to
    0 or ∞; `whole`: how many in "1 in …", 244 not 243.9, 2.02 below 100, 5.16e12 from 1e6."""
    if log_x == -math.inf:
        return "0"
    if log_x == math.inf:
        return "∞"
    x = log_x / math.log(10)
    if -4 <= x < (6 if whole else 15):
        value = math.exp(log_x)
        if whole:  # "1 in 244", "1 in 2.02", "1 in 267,832"; from a million on as P is, in figures
            return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        return f"{value:.4g}"
    e = math.floor(x)
    m = round(10 ** (x - e), 2)
    if m >= 10:
        m, e = m / 10, e + 1
    return f"{m:.3g}e{e}"
