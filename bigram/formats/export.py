"""Writing a model's C×V table in other formats: ARPA (n-gram toolkits), JSON and CSV.

ARPA: each character is a token, the boundary is <s> before a name and </s> after it, and <unk>
stands for characters outside the vocabulary. A character that cannot be an ARPA token (white
space, or not printable) is written as <U+XXXX>, its code point in hex: "mary ann" is scored as
`m a r y <U+0020> a n n`. Tokens of the data are single characters, so these never collide.

P(next | context) is stored exactly. ARPA starts a sentence with a single <s>, so our context of
N−1 tokens becomes the history <s> + the name so far while the name is shorter than N−1 (at
order 4, `..e` is `<s> e`), then the last N−1 characters. A reader takes the longest listed
n-gram ending in the next token and multiplies in the backoff weights of the longer histories:

- the n-grams of those histories (the *real* ones) carry the table's log P; an unlisted one is
  read as backoff(history) · P(next | a shorter history);
- every shorter n-gram made of characters only (never a real history at order ≥ 3) stands for
  the uniform distribution 1/V over the V predictable tokens (the characters and </s>), with no
  backoff, so what a backoff lands on is always 1/V;
- so a row whose unlisted entries share one value b (add-k smoothing: every unseen n-gram of a
  row has k / (row count + kV)) lists just its seen n-grams, with backoff = b · V. A table
  without that structure (the neural model) lists every n-gram of every real history.

The file also lists every prefix and suffix of a listed n-gram (KenLM finds an n-gram by
extending its suffixes, and a history's backoff by its prefix). A probability of 0 is written
as log10 −99, the ARPA convention for "never"; any other is written as it is, however small
(add-k with k = 1e-120 gives −120). At order 2 the uniform n-grams are the unigrams. A table
that would list more than 2^24 n-grams (a large neural one) is refused: JSON and CSV take it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TextIO

import torch

from bigram.counts import (
    context_ids,
    context_tokens,
    dense,
    digits,
    leading_boundaries,
    nonzero,
    order_of,
    row_sums,
)
from bigram.errors import BigramError
from bigram.estimators.kneser_ney import kneser_ney_probs
from bigram.safety import atomic
from bigram.vocab import BOUNDARY_ID, Vocab

NEVER = -99.0  # log10 of a probability 0 in ARPA files
ARPA_MAX_NGRAMS = 1 << 24  # a table that would list more (a neural one, every n-gram) is refused


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
    """Natural logs as ARPA's log10, exactly (a tiny probability is no "never": 1e-120 is −120);
    only a probability of 0 is written as −99."""
    return [NEVER if v == -math.inf else v / math.log(10) for v in x.tolist()]


def write_arpa(
    f: TextIO,
    log_probs: torch.Tensor,
    vocab: Vocab,
    counts: torch.Tensor | None = None,
    smoothing: float = 0.0,
) -> None:
    """The C×V table as an ARPA model of its order. With a count model's `counts` and
    `smoothing`, only the counted n-grams (and their prefixes and suffixes) are listed and the
    rest is carried by the backoff weights (exact)."""
    lp = log_probs.to(torch.float64).cpu()
    C, V = lp.shape
    N = order_of((C, V))
    names = ["</s>", *(arpa_token(c) for c in vocab.chars)]  # token ids as ARPA tokens (0: </s>)
    if N == 1:
        _write_unigram_arpa(f, lp[0], names)
        return
    if counts is not None:
        backoff, pairs = _counted_ngrams(counts, smoothing, V)
    else:
        backoff, pairs = {}, _every_ngram(C, V, N)
    real_keys, uni_keys = [], []
    for r, c in pairs:  # bounded chunks: memory is the model's, not n-grams × N
        real_keys.append(r * V + c)
        uni_keys.append(_character_substrings(r, c, C, V, N))
    real = torch.cat(real_keys).unique() if real_keys else torch.zeros(0, dtype=torch.long)  # sorted
    short = torch.cat(uni_keys).unique() if uni_keys else torch.zeros(0, dtype=torch.long)
    short_k = short // C  # a run of k characters: key k·C + its value in base V
    # the real n-grams, by history row: <s> + the row's characters (short rows), or the N−1 characters
    urows, per = torch.unique_consecutive(real // V, return_counts=True)
    lead = leading_boundaries(urows, C, V)
    tokens_of = N - lead + (lead > 0)  # k: <s>, the N − 1 − lead characters, the next token
    uniform = -math.log10(V)
    f.write(f"\\data\\\nngram 1={V + 2}\n")
    for k in range(2, N + 1):
        f.write(f"ngram {k}={int(per[tokens_of == k].sum()) + int((short_k == k).sum())}\n")
    f.write(f"\n\\1-grams:\n{NEVER:.6f}\t<unk>\n{NEVER:.6f}\t<s>\t{backoff.get(0, 0.0):.9g}\n")
    f.write(f"{uniform:.9g}\t</s>\n")
    for i in range(1, V):  # at order 2 a character is a real history
        f.write(f"{uniform:.9g}\t{names[i]}\t{backoff.get(i, 0.0) if N == 2 else 0.0:.9g}\n")
    for k in range(2, N + 1):
        f.write(f"\n\\{k}-grams:\n")
        for value in (short[short_k == k] % C).tolist():  # uniform: characters only
            bo = backoff.get(value, 0.0) if k == N - 1 else 0.0  # N − 1 characters: a real history
            f.write(f"{uniform:.9g}\t{' '.join(names[d] for d in digits(value, V, k))}\t{bo:.9g}\n")
        listed = (tokens_of == k).nonzero().squeeze(1).tolist()
        _write_table_ngrams(f, lp, real, urows, per, lead, listed, names, backoff, with_backoff=k < N)
    f.write("\n\\end\\\n")


def _write_unigram_arpa(f: TextIO, row: torch.Tensor, names: list[str]) -> None:
    """A unigram table: KenLM reads no unigram-only model, so an order-2 file, every history alike."""
    logp, V = _log10(row), len(names)
    f.write(f"\\data\\\nngram 1={V + 2}\nngram 2={V}\n\n\\1-grams:\n")
    f.write(f"{NEVER:.6f}\t<unk>\n{NEVER:.6f}\t<s>\t0\n")
    f.write("".join(f"{v:.9g}\t{tok}\t0\n" for tok, v in zip(names, logp, strict=True)))
    f.write("\n\\2-grams:\n")
    f.write("".join(f"{v:.9g}\t<s> {tok}\n" for tok, v in zip(names, logp, strict=True)))
    f.write("\n\\end\\\n")


def _counted_ngrams(counts: torch.Tensor, smoothing: float, V: int) -> tuple[dict[int, float], list]:
    """A count model's listed n-grams (its counted ones, as (rows, cols)) and each counted row's
    backoff weight log10(b · V): every unlisted entry of the row is k / (r + kV), b times 1/V."""
    rows, cols, _ = nonzero(counts.cpu())
    totals = row_sums(counts.cpu()).to(torch.float64)
    seen = totals.nonzero().squeeze(1)
    b = math.log(smoothing) - (totals[seen] + smoothing * V).log() if smoothing > 0 else None
    bo = _log10(b + math.log(V)) if b is not None else [NEVER] * len(seen)
    return dict(zip(seen.tolist(), bo, strict=True)), [(rows, cols)]


def _every_ngram(C: int, V: int, N: int):
    """Every n-gram of every real history, as bounded chunks of (rows, cols); refused beyond
    ARPA_MAX_NGRAMS lines."""
    real = _real_rows(C, V, N)
    if len(real) * V > ARPA_MAX_NGRAMS:
        raise BigramError(
            f"an ARPA file of this {N}-gram table lists every n-gram of every history: "
            f"{len(real) * V:,} lines, more than {ARPA_MAX_NGRAMS:,}; export --format json or csv, "
            "or the count model (its ARPA file lists only the n-grams seen)"
        )
    return (
        (chunk.repeat_interleave(V), torch.arange(V).repeat(len(chunk)))
        for chunk in real.split(max(1, (1 << 22) // V))
    )


def _write_table_ngrams(f: TextIO, lp, real, urows, per, lead, listed, names, backoff, with_backoff) -> None:
    """The listed n-grams of the history rows `listed` (indices into urows), each with log10 P from
    the table; below order N each is also a history (<s> and fewer than N − 1 characters), so
    `with_backoff` adds its backoff weight."""
    C, V = lp.shape
    flat, ends = lp.view(-1), per.cumsum(0)
    for r in listed:
        row, b, e = int(urows[r]), int(ends[r]), int(ends[r] - per[r])
        lead_r = int(lead[r])
        chars = context_ids(row, C, V)[lead_r:]
        prefix = ("<s> " if lead_r else "") + "".join(names[d] + " " for d in chars)
        keys = real[e:b]
        ws, vals = (keys % V).tolist(), _log10(flat[keys])
        tails = (
            [f"\t{backoff.get(x, 0.0):.9g}\n" for x in keys.tolist()] if with_backoff else ["\n"] * len(ws)
        )
        f.write("".join(f"{v:.9g}\t{prefix}{names[w]}{t}" for v, w, t in zip(vals, ws, tails, strict=True)))


def write_kneser_ney_arpa(f: TextIO, counts: torch.Tensor, vocab: Vocab) -> None:
    """A Kneser-Ney count model as lmplz lays it out: at each length the n-grams with a count
    a(·) > 0 and, for those that are histories, a backoff weight; <unk> at −99. Exact for the
    renormalized table: with P̃(w | h) = P(w | h) / (1 − P(<unk> | h)) listed, an unlisted n-gram
    is γ(h)·P(w | h′) = bo(h)·P̃(w | h′) with bo(h) = γ(h)·(1 − P(<unk> | h′)) / (1 − P(<unk> | h)),
    h′ = h without its oldest token (a history never seen: γ = 1, bo = 1)."""
    V = counts.shape[1]
    N = order_of(tuple(counts.shape))
    if N == 1:  # KenLM reads no unigram-only model: write_arpa's order-2 form of the one row
        write_arpa(f, kneser_ney_probs(counts)[0].log(), vocab)
        return
    levels, _ = kneser_ney_levels(counts)
    names = ["</s>", *(arpa_token(c) for c in vocab.chars)]
    keys = [torch.arange(V), *(lv.keys for lv in levels[1:])]
    f.write(f"\\data\\\nngram 1={V + 2}\n")
    f.write("".join(f"ngram {k}={len(keys[k - 1])}\n" for k in range(2, N + 1)))

    def backoffs(k: int, g: torch.Tensor) -> list[float]:
        """log10 bo of the length-k n-grams g as histories of length k + 1's level."""
        up, low = levels[k], levels[k - 1]  # the level they are histories of, and their own
        bo = up.gamma[g] * (1 - low.unk[g % V ** (k - 1)]) / (1 - up.unk[g])
        return _log10(bo.log())

    bos = backoffs(1, torch.zeros(1, dtype=torch.long))[0]  # <s> is history 0 of the bigrams
    f.write(f"\n\\1-grams:\n{NEVER:.6f}\t<unk>\n{NEVER:.6f}\t<s>\t{bos:.9g}\n")
    for k, (level, g) in enumerate(zip(levels, keys, strict=True), 1):
        h = g // V
        lp = _log10((level.probs.view(-1)[g] / (1 - level.unk[h])).log())
        # an n-gram ending in </s> is no history; below order N the others carry a backoff
        tails = ["\n"] * len(g)
        if k < N:
            has = g % V != 0
            bo = iter(backoffs(k, g[has]))
            tails = [f"\t{next(bo):.9g}\n" if x else "\n" for x in has.tolist()]
        if k > 1:
            f.write(f"\n\\{k}-grams:\n")
        for value, v, tail in zip(g.tolist(), lp, tails, strict=True):
            toks = digits(value, V, k)
            words = (
                ["<s>" if i == 0 and t == 0 else names[t] for i, t in enumerate(toks)]
                if k > 1
                else [names[value]]
            )
            f.write(f"{v:.9g}\t{' '.join(words)}{tail}")
    f.write("\n\\end\\\n")


def _real_rows(C: int, V: int, N: int) -> torch.Tensor:
    """The contexts a name can be in: some boundaries, then characters (never a boundary after
    a character). Rows of `..e` form, `.em`, `emm`; not `e.m`."""
    rows = torch.arange(C)
    toks = context_tokens(rows, C, V)
    started = (toks != 0).cummax(1).values
    return rows[~(started & (toks == 0)).any(1)]


def _character_substrings(rows: torch.Tensor, cols: torch.Tensor, C: int, V: int, N: int) -> torch.Tensor:
    """Keys k·C + value of every run of k < N consecutive tokens without <s> inside the n-grams
    (rows, cols): the uniform n-grams the file lists so that every listed n-gram has its
    prefixes and suffixes."""
    toks = torch.cat([context_tokens(rows, C, V), cols.unsqueeze(1)], 1)  # n × N
    is_data = (toks[:, :-1] != 0).cummax(1).values  # after the leading boundaries
    is_data = torch.cat([is_data, torch.ones(len(toks), 1, dtype=torch.bool)], 1)
    out = []
    for k in range(1, N):
        for i in range(N - k + 1):
            ok = is_data[:, i]  # the run starts on a character, so all of it is data
            value = torch.zeros(int(ok.sum()), dtype=torch.long)
            for t in range(i, i + k):
                value = value * V + toks[ok, t]
            out.append((k * C + value).unique())
    return torch.cat(out).unique()


def write_json(
    f: TextIO, log_probs: torch.Tensor, vocab: Vocab, kind: str, counts: torch.Tensor | None
) -> None:
    """{"model", "order", "boundary_id", "tokens", "probs": C×V, "counts": C×V (count model)}:
    tokens[0] is the boundary's display; probs[i][j] = P(tokens[j] | context i), where context i
    is the N−1 tokens whose ids are i's digits in base V, oldest first (the bigram: tokens[i]).
    Written a block of rows at a time (what json.dump writes), so memory stays the table's."""
    head = {
        "model": kind,
        "order": order_of(tuple(log_probs.shape)),
        "boundary_id": BOUNDARY_ID,
        "tokens": vocab.tokens(),
    }
    f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "probs": ')
    _json_rows(f, (block.to(torch.float64).exp() for block in _row_blocks(log_probs.cpu())))
    if counts is not None:
        f.write(', "counts": ')
        _json_rows(f, (dense(block) for block in _row_blocks(counts.cpu())))
    f.write("}\n")


def _row_blocks(t: torch.Tensor, cells: int = 1 << 20):
    """A C×V table (dense or sparse) as dense blocks of whole rows, about `cells` entries each."""
    C, V = t.shape
    step = max(1, cells // V)
    for start in range(0, C, step):
        rows = torch.arange(start, min(start + step, C))
        yield t.index_select(0, rows) if t.is_sparse else t[start : start + step]


def _json_rows(f: TextIO, blocks) -> None:
    """A list of lists from blocks of rows, as json.dump would write it."""
    f.write("[")
    first = True
    for block in blocks:
        for row in block.tolist():
            f.write(("" if first else ", ") + json.dumps(row))
            first = False
    f.write("]")


def write_csv(f: TextIO, log_probs: torch.Tensor, vocab: Vocab, counts: torch.Tensor | None) -> None:
    """One row per n-gram a name can contain: its context, next, (count,) prob, log_prob. The
    context is one column per token, oldest first (`prev` for the bigram, `context1` … for
    order N); the boundary is <s> in a context and </s> as next (no data character can be
    either: characters are single)."""
    lp = log_probs.to(torch.float64).cpu()
    C, V = lp.shape
    N = order_of((C, V))
    w = csv.writer(f)
    head = ["prev"] if N == 2 else [f"context{i}" for i in range(1, N)]
    w.writerow([*head, "next", *(["count"] if counts is not None else []), "prob", "log_prob"])
    prev = ["<s>", *vocab.chars]
    nxt = ["</s>", *vocab.chars]
    counts = counts.cpu() if counts is not None else None
    for ids in _real_rows(C, V, N).split(max(1, (1 << 20) // V)):  # blocks of rows: bounded memory
        block_lp = lp[ids].tolist()
        block_n = dense(counts.index_select(0, ids)).tolist() if counts is not None else None
        for r, i in enumerate(ids.tolist()):
            context = [prev[d] for d in context_ids(i, C, V)]
            row_lp = block_lp[r]
            for j in range(V):
                n = [block_n[r][j]] if block_n is not None else []
                w.writerow([*context, nxt[j], *n, repr(math.exp(row_lp[j])), repr(row_lp[j])])


def export(run, fmt: str, out: Path, model: str | None = None) -> str:
    """Write a run's model table to `out` in the given format; returns the model exported."""
    kind = run.pick_model(model)
    counts, smoothing = None, 0.0
    if kind == "count":
        counts, smoothing = run.count_model()
    kneser_ney_arpa = fmt == "arpa" and smoothing == "kn"  # written from the counts, not the table
    lp = None if kneser_ney_arpa else run.log_probs(kind)
    with atomic.replacing(out, "w", encoding="utf-8", newline="" if fmt == "csv" else None) as f:
        if kneser_ney_arpa:
            write_kneser_ney_arpa(f, counts, run.vocab)
        elif fmt == "arpa":
            write_arpa(f, lp, run.vocab, counts, smoothing)
        elif fmt == "json":
            write_json(f, lp, run.vocab, kind, counts)
        else:
            write_csv(f, lp, run.vocab, counts)
    return kind
