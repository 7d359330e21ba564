"""The vocabulary: id 0 is the name boundary, then the data's characters sorted by code point.

The boundary is a special token, never a data character, so names may contain "." (or anything).
It is *displayed* as "." when "." is not in the data, else as the first free symbol below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from bigram.errors import BigramError

BOUNDARY_ID = 0
_DISPLAY_CANDIDATES = ".|#~^$"  # for showing the boundary; the first one not in the data is used


@dataclass(frozen=True)
class Vocab:
    """Data characters in code-point order; character `chars[i]` has id i + 1."""

    chars: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if list(self.chars) != sorted(set(self.chars)):
            raise ValueError("vocabulary characters must be distinct and sorted by code point")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("vocabulary entries must be single characters")
        if "\n" in self.chars or "\r" in self.chars:  # "\n" stands for the boundary in decode_flat
            raise ValueError("vocabulary characters must not be line breaks (\\n, \\r): no name holds one")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.chars)})

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Vocab:
        return cls(tuple(sorted(set("".join(names)))))

    @property
    def size(self) -> int:
        """V: the number of tokens, boundary included."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return self.size

    @property
    def boundary(self) -> str:
        """How the boundary token is shown: "." unless the data uses it."""
        for c in _DISPLAY_CANDIDATES:
            if c not in self._index:
                return c
        return "<>"

    def token(self, i: int) -> str:
        """The display string of token id i."""
        return self.boundary if i == BOUNDARY_ID else self.chars[i - 1]

    def tokens(self) -> list[str]:
        return [self.token(i) for i in range(self.size)]

    def id(self, ch: str) -> int | None:
        """The id of a data character, or None when it is not in the vocabulary."""
        return self._index.get(ch)

    def encode(self, name: str, *, where: str = "") -> list[int]:
        """The ids of a name's characters (no boundaries); an unknown character is a BigramError."""
        ids = []
        for ch in name:
            i = self._index.get(ch)
            if i is None:
                raise BigramError(
                    f"character {ch!r} (U+{ord(ch):04X}) in {name!r}{where} is not in the model's "
                    f"vocabulary ({self.describe()})"
                )
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY_ID)

    def decode_flat(self, ids: torch.Tensor) -> list[str]:
        """Names laid end to end, each followed by a 0, to strings: one gather and one decode.

        >>> Vocab(("a", "b")).decode_flat(torch.tensor([1, 2, 0, 2, 0]))
        ['ab', 'b']
        """
        table = torch.tensor([ord("\n")] + [ord(c) for c in self.chars], dtype=torch.int32)
        return table[ids].numpy().tobytes().decode("utf-32-le").split("\n")[:-1]

    def encode_corpus(self, names: list[str], unknown: int | None = None) -> torch.Tensor:
        """All names as one id sequence with the boundary before, between and after them.

        ".emma.ava." — consecutive pairs of this sequence are exactly the corpus's bigrams,
        because one boundary serves as the end of a name and the start of the next.
        Vectorized: the text is turned into code points with one decode and mapped with one
        searchsorted, so a corpus of millions of characters costs milliseconds.
        """
        if not names:
            return torch.zeros(1, dtype=torch.long)
        text = "\n" + "\n".join(names) + "\n"  # "\n" never occurs inside a name
        cps = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)
        return self.code_points_to_ids(cps, unknown)

    @cached_property
    def _lut(self) -> torch.Tensor:
        """Code point → id lookup table ("\n", the line separator, maps to the boundary)."""
        top = max([ord("\n"), *(ord(c) for c in self.chars)])
        lut = torch.full((top + 1,), -1, dtype=torch.long)
        lut[ord("\n")] = BOUNDARY_ID
        if self.chars:
            lut[torch.tensor([ord(c) for c in self.chars])] = torch.arange(1, self.size)
        return lut

    def code_points_to_ids(self, cps: torch.Tensor, unknown: int | None = None) -> torch.Tensor:
        """Map code points to ids with one table lookup; "\n" becomes the boundary. A character
        outside the vocabulary is an error, or the id `unknown` when one is given."""
        lut = self._lut
        outside = cps >= lut.numel()
        ids = lut[cps.clamp(max=lut.numel() - 1)] if bool(outside.any()) else lut[cps]
        bad = (ids < 0) | outside
        if unknown is not None:
            return ids.masked_fill_(bad, unknown)
        if bool(bad.any()):
            ch = chr(int(cps[bad.nonzero()[0, 0]]))
            raise BigramError(
                f"character {ch!r} (U+{ord(ch):04X}) is not in the model's vocabulary ({self.describe()})"
            )
        return ids

    def describe(self) -> str:
        """A short human description, e.g. "27 tokens: boundary + a-z"."""
        chars = "".join(self.chars)
        if len(chars) > 40:
            chars = chars[:20] + "…" + chars[-10:]
        return f"{self.size} tokens: boundary + {chars!r}"

    # --- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "boundary_id": BOUNDARY_ID,
            "boundary_display": self.boundary,
            "chars": list(self.chars),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        return cls(tuple(d["chars"]))


KEY_LIMIT = 1 << 62  # V^N must stay below it: contexts and n-grams are int64 keys


def check_keys(V: int, order: int, where: str = "") -> None:
    """Refuse an order whose n-grams do not fit an int64 key (V^N < 2^62), in one line."""
    if V**order >= KEY_LIMIT:
        top = max(n for n in range(1, order) if V**n < KEY_LIMIT) if V**1 < KEY_LIMIT else 0
        raise BigramError(
            f"order {order} over V = {V:,} tokens{where}: its n-grams are numbered by 64-bit keys, "
            f"which hold V^N < 2^62 (at most order {top} here): lower --order"
        )
