"""Generate synthetic names corpora for the scale benchmarks (deterministic by --seed).

    python scripts/make_corpus.py multilingual --out /tmp/multi.txt            # ~700k names, ~4,000 chars
    python scripts/make_corpus.py names --out /tmp/big.txt --size-mb 512        # names.txt-like, 512 MB

multilingual: shaped like public multilingual name lists: ~74 % ASCII names, the rest Latin with
diacritics, Cyrillic, Greek, Arabic, Devanagari, Hangul and CJK (each script drawn from its own
random sparse bigram table), ~4,400 characters, a fifth of the names with a space inside.
names: drawn from the count model of data/names.txt.
--size-mb repeats the generated names until the file reaches that size (for streaming tests).
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bigram.sampling import sample  # noqa: E402
from bigram.vocab import Vocab  # noqa: E402


def _range(a: int, b: int) -> list[str]:
    """Printable characters of a block that NFC keeps as they are (real text is NFC: no U+0929,
    which NFC writes as U+0928 U+093C)."""
    chars = (chr(c) for c in range(a, b + 1))
    return [c for c in chars if c.isprintable() and not c.isspace() and unicodedata.is_normalized("NFC", c)]


def scripts(g: torch.Generator) -> list[tuple[str, list[str], float, float]]:
    """(name, alphabet, share of names, P(end)) for each non-ASCII script. The shares add up to
    0.26: with the ASCII names (0.74), about a quarter of the lines are non-ASCII, as in public
    multilingual name lists."""

    def pick(a: int, b: int, k: int) -> list[str]:
        pool = _range(a, b)
        idx = torch.randperm(len(pool), generator=g)[:k].sort().values
        return [pool[i] for i in idx.tolist()]

    latin = _range(0x41, 0x5A) + _range(0x61, 0x7A) + _range(0xC0, 0x17F)
    latin = [c for c in latin if c not in "×÷"]
    return [
        ("latin", latin, 0.06, 0.16),
        ("cyrillic", _range(0x400, 0x45F), 0.06, 0.16),
        ("greek", _range(0x386, 0x3CE), 0.02, 0.18),
        ("arabic", _range(0x621, 0x64A), 0.03, 0.2),
        ("devanagari", _range(0x905, 0x939), 0.02, 0.2),
        ("hangul", pick(0xAC00, 0xD7A3, 2000), 0.035, 0.38),
        ("cjk", pick(0x4E00, 0x9FFF, 2000), 0.035, 0.40),
    ]


def script_table(alphabet: list[str], p_end: float, g: torch.Generator) -> tuple[Vocab, torch.Tensor]:
    """A random sparse bigram table over the alphabet: each character has 24 successors, and ends
    a name with probability p_end (spaces are added between whole names, in multilingual())."""
    vocab = Vocab(tuple(sorted(set(alphabet))))
    V = vocab.size
    k = min(V - 1, 24)  # successors per character
    P = torch.zeros(V, V, dtype=torch.float64)
    for row in range(V):
        succ = torch.randperm(V - 1, generator=g)[:k] + 1
        w = torch.empty(k, dtype=torch.float64).exponential_(generator=g)
        P[row, succ] = w
    P[0] = torch.rand(V, generator=g, dtype=torch.float64) + 0.05  # any character can start a name
    P[0, 0] = 0
    P[1:, 0] = 0
    P[1:] = P[1:] / P[1:].sum(1, keepdim=True) * (1 - p_end)
    P[1:, 0] = p_end
    P = P / P.sum(1, keepdim=True)
    return vocab, P.log()


def multilingual(n: int, seed: int) -> list[str]:
    """The shape of a real multilingual names list: ~74 % ASCII names (capitalized, from
    names.txt's model), the rest in seven scripts, ~4,400 distinct characters, a fifth of the
    names two words with a space, ~7.4 characters a name, scripts interleaved (not sorted)."""
    g = torch.Generator().manual_seed(seed)
    groups = [[w.capitalize() for w in names_like(round(n * 0.74), seed)]]
    for i, (_, alphabet, share, p_end) in enumerate(scripts(g)):
        vocab, lp = script_table(alphabet, p_end, g)
        groups.append(sample(lp, vocab, round(n * share), seed=seed + i + 1))
    out: list[str] = []
    for names in groups:  # a fifth get a second word of their own script: "Anna Maria", "김 민준"
        two = (torch.rand(len(names), generator=g) < 0.2).tolist()
        out += [f"{w} {names[i - 1]}" if t else w for i, (w, t) in enumerate(zip(names, two, strict=True))]
    perm = torch.randperm(len(out), generator=g).tolist()
    return [out[i] for i in perm]


def names_like(n: int, seed: int) -> list[str]:
    from bigram.counts import count_bigrams
    from bigram.data import read_names
    from bigram.table import count_log_probs

    names = read_names(ROOT / "data" / "names.txt")
    vocab = Vocab.from_names(names)
    return sample(count_log_probs(count_bigrams(names, vocab), 1.0), vocab, n, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["multilingual", "names"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--names", type=int, default=700_000, help="distinct draws (default 700,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size-mb", type=float, default=0, help="repeat the names up to this size")
    args = ap.parse_args()
    names = (multilingual if args.kind == "multilingual" else names_like)(args.names, args.seed)
    block = ("\n".join(names) + "\n").encode("utf-8")
    repeats = max(1, int(args.size_mb * 2**20 // len(block)) + (1 if args.size_mb else 0))
    with args.out.open("wb") as f:
        for _ in range(repeats):
            f.write(block)
    chars = len(set("".join(names)))
    print(
        f"{args.out}: {len(names) * repeats:,} names, {chars:,} distinct characters, "
        f"{len(block) * repeats / 2**20:,.1f} MiB"
    )


if __name__ == "__main__":
    main()
