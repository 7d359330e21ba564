"""Plain-Python references that the tests compare bigram against, and the inputs several tests share.

The rule: everything here is written from a definition in plain Python (math, collections,
itertools) and never imports bigram, so that a reference cannot share a bug with the code it
checks. Beside the references: hypothesis strategies that make inputs, and torch's seeded
generator where a test's random table must be the same every time (random_table, back_off).

A test file imports its shared references from here and its fixtures, paths and CLI helpers from
tests.conftest, never from another test file; a reference written for one file's cases alone (the
n-gram counts of test_order.py, Kneser-Ney's estimate in test_kneser_ney.py) stays beside them.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from itertools import pairwise
from pathlib import Path

from hypothesis import strategies as st


# --- names and the lecture's bigram counts -------------------------------------------------------
def plain_names(path: Path) -> list[str]:
    """The names of a file, one a line: each line stripped, blank lines left out."""
    return [w for w in (line.strip() for line in path.read_text(encoding="utf-8").splitlines()) if w]


def wide_names(names: list[str]) -> list[str]:
    """names over ~520 letters from five scripts (Latin, Cyrillic, Greek, Devanagari, Hangul):
    each letter of the i-th name written as one of 20 variants (the variant a hash of i), so that
    contexts are many and sparse, as in a world-sized list of names. The letters are ones the
    text rule keeps as they are (NFC, printable, not combining)."""
    import unicodedata

    blocks = ((0xC0, 0x24F), (0x400, 0x4FF), (0x391, 0x3CE), (0x905, 0x939), (0xAC00, 0xAC80))
    pool = [chr(c) for a, b in blocks for c in range(a, b + 1)]
    letters = [c for c in pool if unicodedata.category(c).startswith("L") and c.lower() == c
               and unicodedata.is_normalized("NFC", c) and c.isprintable()]  # fmt: skip
    out = []
    for i, w in enumerate(names):
        v = (i * 7919) % 20
        out.append("".join(letters[(v * 26 + ord(c) - ord("a")) % len(letters)] for c in w))
    return out


def plain_counts(names: list[str]) -> Counter:
    """The lecture's loop: every bigram of .name. counted in a dict (None is the boundary)."""
    c: Counter = Counter()
    for w in names:
        chs = [None, *w, None]
        for a, b in pairwise(chs):
            c[a, b] += 1
    return c


def plain_nll(names: list[str], k: float) -> float:
    """Mean −log P over all bigrams of the add-k count model, in plain Python floats."""
    c = plain_counts(names)
    alphabet = sorted({ch for w in names for ch in w})
    V = len(alphabet) + 1
    rows: Counter = Counter()
    for (a, _), n in c.items():
        rows[a] += n
    total = sum(c.values())
    return -math.fsum(n * math.log((n + k) / (rows[a] + k * V)) for (a, _), n in c.items()) / total


# --- sampling: names by enumeration, frequencies against exact probabilities ----------------------
def enumerate_names(max_len: int):
    """Every name over a, b, c of at most max_len characters, the shortest first."""
    for L in range(0, max_len + 1):
        for chars in itertools.product("abc", repeat=L):
            yield "".join(chars)


def check_frequencies(names: list[str], probs: dict[str, float]) -> None:
    """Every enumerated outcome's frequency within 5 standard errors (+1e-4) of its exact
    probability, and the names beyond the enumeration no more frequent than their mass allows."""
    n = len(names)
    freq = Counter(names)
    for w, p in probs.items():
        bound = 5 * math.sqrt(p * (1 - p) / n) + 1e-4
        assert abs(freq[w] / n - p) <= bound, (w, freq[w] / n, p)
    rest = 1 - sum(probs.values())
    other = sum(f for w, f in freq.items() if w not in probs) / n
    assert abs(other - rest) <= 5 * math.sqrt(max(rest, 1e-12) * (1 - rest) / n) + 1e-4
    longest = max(len(w) for w in probs)
    assert all(len(w) > longest for w in freq if w not in probs)  # nothing unexpected


# --- tables over (boundary, a, b, c) at any order ------------------------------------------------
def random_table(order: int, seed: int) -> list[list[float]]:
    """A row-stochastic order-N table over (boundary, a, b, c) with a few zeros: no empty name,
    "ccc" never (at order ≥ 3), and some contexts that cannot end a name."""
    import torch  # its seeded generator only, and only here: the tests' tables must stay as they were

    g = torch.Generator().manual_seed(seed)
    P = torch.rand(4 ** (order - 1), 4, generator=g, dtype=torch.float64) + 0.05
    if order >= 2:
        P[0, 0] = 0  # the all-boundary context never ends: no empty names
    if order >= 3:
        P[-1, 3] = 0  # context "cc" never continues with c
        P[5, 0] = 0  # context "aa" (row 1·4 + 1) cannot end a name
    return (P / P.sum(1, keepdim=True)).tolist()


def backed_off_table(order: int, seed: int) -> list[list[float]]:
    """random_table with its rows repeated as a smoothed model's are (back_off)."""
    return back_off(random_table(order, seed), seed)


def back_off(table: list[list[float]], seed: int) -> list[list[float]]:
    """The table with rows repeated as a smoothed model's do: about a quarter of the contexts
    ("seen") keep their rows, and every other context has exactly the row of the context without
    its oldest token (that token replaced by a boundary), as Kneser-Ney gives an unseen context
    its suffix's row. chain.py merges such contexts, which no walk can tell apart."""
    import torch  # its seeded generator only, as in random_table

    g = torch.Generator().manual_seed(seed)
    C = len(table)
    seen = (torch.rand(C, generator=g) < 0.25).tolist()
    seen[0] = True

    def row(h: int) -> list[float]:
        if seen[h]:
            return table[h]
        top = 4 ** (len(f"{h:b}") - 1 >> 1)  # the place of the oldest token that is no boundary
        return row(h % top)  # that token becomes a boundary

    return [list(row(h)) for h in range(C)]


# --- ARPA files, read from the format's definition ------------------------------------------------
LN10 = math.log(10)


def read_arpa(path) -> dict[tuple[str, ...], tuple[float, float]]:
    """A minimal ARPA reader written from the format's definition: every n-gram's (log10 p,
    log10 backoff), backoff 0 where the line has none."""
    grams, section = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("\\"):
            section = line
            continue
        if not line.strip() or section in (None, "\\data\\"):
            continue
        parts = line.split("\t")
        grams[tuple(parts[1].split(" "))] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return grams


def arpa_log10(grams, tokens: list[str]) -> float:
    """log10 P(<s> tokens </s>) by the backoff rule: p(w | h) is the listed n-gram's, else
    backoff(h) · p(w | h without its oldest token)."""
    order = max(len(g) for g in grams)
    seq = ["<s>", *tokens, "</s>"]

    def p(h: tuple[str, ...], w: str) -> float:
        if (*h, w) in grams:
            return grams[(*h, w)][0]
        return grams.get(h, (0.0, 0.0))[1] + p(h[1:], w)

    return sum(p(tuple(seq[max(0, i - order + 1) : i]), seq[i]) for i in range(1, len(seq)))


# --- hypothesis strategies: inputs, not references ------------------------------------------------
# names of 1–10 printable characters up to U+024F, no white space: what survives the loader as is
clean_names = st.lists(
    st.text(
        st.characters(min_codepoint=33, max_codepoint=0x24F, blacklist_categories=("Cs", "Zs", "Cc")),
        min_size=1,
        max_size=10,
    ),
    min_size=1,
    max_size=30,
)

# lines: any characters but NUL; white space of several kinds, CR and blank lines included
line_text = st.text(
    st.one_of(
        st.sampled_from(list(" \t\u00a0\u3000\u2028\x1cabé\u0301Σ漢")),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=8,
).filter(lambda s: "\x00" not in s)
