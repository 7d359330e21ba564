"""What a request asks of the names, in the words both plans share: the length and affix
constraints (`Constraints`), the regular ones (`Patterns`), and the error a search for the K
most likely names stops with (`SearchStopped`).

Plain frozen dataclasses, safe as default arguments, and nothing heavier than bigram.errors:
sampling.py names them in its signatures without loading either plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from bigram.errors import BigramError


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
