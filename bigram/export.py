"""Writing a model's V×V table in other formats: ARPA (n-gram toolkits), JSON and CSV.

ARPA: each character is a token, the boundary is <s> before a name and </s> after it, and <unk>
stands for characters outside the vocabulary. A character that cannot be an ARPA token (white
space, or not printable) is written as <U+XXXX>, its code point in hex: "mary ann" is scored as
`m a r y <U+0020> a n n`. Tokens of the data are single characters, so these never collide.

P(next | prev) is stored exactly: a bigram listed in the 2-grams section is read as is, an
unlisted one as backoff(prev) · P_unigram(next). The unigram distribution is uniform over the
V predictable tokens (the characters and </s>), so a row whose unlisted entries share one value b
(add-k smoothing: every unseen bigram of a row has k / (row count + kV)) stores just its seen
bigrams and backoff = b · V. A table without that structure (the neural model) lists every
bigram. A probability of 0 is written as log10 −99, the ARPA convention for "never".
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TextIO

import torch

from bigram import atomic
from bigram.counts import dense
from bigram.vocab import BOUNDARY_ID, Vocab

FORMATS = ("arpa", "json", "csv")
NEVER = -99.0  # log10 of a probability 0 in ARPA files


def arpa_token(ch: str) -> str:
    """A character as an ARPA token: itself, or <U+XXXX> when it is white space or invisible."""
    return ch if ch.isprintable() and not ch.isspace() else f"<U+{ord(ch):04X}>"


def arpa_sentence(name: str) -> str:
    """A name as the space-separated tokens an ARPA reader scores (without <s> and </s>).

    >>> arpa_sentence("Jean Luc")
    'J e a n <U+0020> L u c'
    """
    return " ".join(arpa_token(ch) for ch in name)


def _log10(x: torch.Tensor) -> list[float]:
    return [NEVER if v == -math.inf else max(v / math.log(10), NEVER) for v in x.tolist()]


def write_arpa(
    f: TextIO,
    log_probs: torch.Tensor,
    vocab: Vocab,
    counts: torch.Tensor | None = None,
    smoothing: float = 0.0,
) -> None:
    """The table as an ARPA bigram model. With a count model's `counts` and `smoothing`, only the
    counted bigrams are listed and the rest is carried by the backoff weights (exact)."""
    lp = log_probs.to(torch.float64).cpu()
    V = vocab.size
    chars = [arpa_token(c) for c in vocab.chars]
    context = ["<s>", *chars]  # row i's name
    target = ["</s>", *chars]  # column j's name
    if counts is not None:
        listed = counts.cpu() > 0
        # every unlisted entry of row i is k / (r_i + kV); a row never seen with k = 0 is uniform
        totals = counts.cpu().sum(1).to(torch.float64) + smoothing * V
        background = torch.where(
            totals > 0, math.log(smoothing) - totals.log() if smoothing > 0 else -math.inf, -math.log(V)
        )
    else:
        listed = torch.ones(V, V, dtype=torch.bool)
        background = torch.full((V,), -math.inf, dtype=torch.float64)
    backoff = _log10(background + math.log(V))  # log10 (b_i · V): times the uniform 1/V below
    n_bigrams = int(listed.sum())
    uniform = -math.log10(V)

    f.write(f"\\data\\\nngram 1={V + 2}\nngram 2={n_bigrams}\n\n\\1-grams:\n")
    f.write(f"{NEVER:.6f}\t<unk>\n")
    f.write(f"{NEVER:.6f}\t<s>\t{backoff[0]:.9g}\n")  # <s> is never predicted
    f.write(f"{uniform:.9g}\t</s>\n")
    for i, tok in enumerate(chars, start=1):
        f.write(f"{uniform:.9g}\t{tok}\t{backoff[i]:.9g}\n")
    f.write("\n\\2-grams:\n")
    for i in range(V):
        cols = listed[i].nonzero().squeeze(1)
        for j, v in zip(cols.tolist(), _log10(lp[i, cols]), strict=True):
            f.write(f"{v:.9g}\t{context[i]} {target[j]}\n")
    f.write("\n\\end\\\n")


def write_json(
    f: TextIO, log_probs: torch.Tensor, vocab: Vocab, kind: str, counts: torch.Tensor | None
) -> None:
    """{"model", "boundary_id", "tokens", "probs": V×V, "counts": V×V (count model)}: tokens[0]
    is the boundary's display; probs[i][j] = P(tokens[j] | tokens[i])."""
    doc = {
        "model": kind,
        "boundary_id": BOUNDARY_ID,
        "tokens": vocab.tokens(),
        "probs": log_probs.to(torch.float64).exp().cpu().tolist(),
    }
    if counts is not None:
        doc["counts"] = counts.cpu().tolist()
    json.dump(doc, f, ensure_ascii=False)
    f.write("\n")


def write_csv(f: TextIO, log_probs: torch.Tensor, vocab: Vocab, counts: torch.Tensor | None) -> None:
    """One row per bigram: prev, next, (count,) prob, log_prob; the boundary is <s> as prev and
    </s> as next (no data character can be either: characters are single)."""
    lp = log_probs.to(torch.float64).cpu()
    w = csv.writer(f)
    w.writerow(["prev", "next", *(["count"] if counts is not None else []), "prob", "log_prob"])
    prev = ["<s>", *vocab.chars]
    nxt = ["</s>", *vocab.chars]
    for i in range(vocab.size):
        row_lp = lp[i].tolist()
        row_n = counts[i].tolist() if counts is not None else None
        for j in range(vocab.size):
            n = [row_n[j]] if row_n is not None else []
            w.writerow([prev[i], nxt[j], *n, repr(math.exp(row_lp[j])), repr(row_lp[j])])


def export(run, fmt: str, out: Path, model: str | None = None) -> str:
    """Write a run's model table to `out` in the given format; returns the model exported."""
    run.require_bigram("export")
    kind = run.pick_model(model)
    lp = run.log_probs(kind)
    counts, smoothing = None, 0.0
    if kind == "count":
        counts, smoothing = run.count_model()
        counts = dense(counts)
    with atomic.replacing(out, "w", encoding="utf-8", newline="" if fmt == "csv" else None) as f:
        if fmt == "arpa":
            write_arpa(f, lp, run.vocab, counts, smoothing)
        elif fmt == "json":
            write_json(f, lp, run.vocab, kind, counts)
        else:
            write_csv(f, lp, run.vocab, counts)
    return kind
