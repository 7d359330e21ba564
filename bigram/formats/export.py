"""Writing a model's table (bigram.backoff.Table) in other formats: ARPA (n-gram toolkits), JSON
and CSV. Every writer reads the table through its interface alone, so it works for every model,
at every order, in memory that grows with what the table lists.

ARPA: each character is a token, the boundary is <s> before a name and </s> after it, and <unk>
stands for characters outside the vocabulary. A character that cannot be an ARPA token (white
space, or not printable) is written as <U+XXXX>, its code point in hex: "mary ann" is scored as
`m a r y <U+0020> a n n`. Tokens of the data are single characters, so these never collide.

The table is already in ARPA's form (a row per known context, its listed tokens, one backoff
weight for the rest), so the file is that table, exactly:

- each known context h lists its n-grams h w with log10 P(w | h) and carries log10 β(h) as the
  backoff of its own n-gram. A context padded with boundaries is ARPA's history <s> + the
  name so far; at order ≥ 4 several padded contexts are one history (`..e` and `.e` are both
  `<s> e`), and a query always arrives with the full padded context, so that history lists what
  the full context reads: the tokens any of them lists, with the table's P at the full context,
  and the product of their β as its backoff;
- KenLM finds an n-gram by extending its suffixes, and a history's backoff through its prefix, so
  every prefix and suffix of a listed n-gram is listed too: with the table's own P at that
  shorter context (what a backoff lands on there) and backoff 0 where it is no known context;
- a context that holds the boundary after a character (`a.` in a dense table) is never read by
  a name, and ARPA cannot write it: it is left out.

So a count model lists what it has seen (add-k: the counted n-grams, the rest carried by β onto
the uniform root 1/V; Kneser-Ney: what lmplz lists), and a dense table every n-gram of every
context a name can be in. A probability of 0 is written as log10 −99, the ARPA convention for
"never"; any other is written as it is, however small (add-k with k = 1e-120 gives −120). <s>
and <unk> are unigrams at −99 (never predicted); an n-gram ending in </s> is no history and has
no backoff. KenLM reads no unigram-only model: order 1 is written as order 2, every history alike.

JSON and CSV are the table too, sparse (the layouts: `write_json`, `write_csv`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import TextIO

import torch

from bigram.backoff import Level, Table
from bigram.counts import nonzero
from bigram.mixture import Mixture, backoff_form
from bigram.safety import atomic, layout, rundir
from bigram.vocab import BOUNDARY_ID, Vocab

NEVER = -99.0  # log10 of a probability 0 in ARPA files
LN10 = math.log(10.0)
CHUNK = 1 << 16  # n-grams formatted per write: bounded memory for the strings


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
    x = x.to(torch.float64)
    return torch.where(x == -math.inf, torch.full_like(x, NEVER), x / LN10).tolist()


def _digits(keys: torch.Tensor, V: int, k: int) -> torch.Tensor:
    """Each key's k base-V digits, oldest first: len × k."""
    return (
        torch.stack([keys // V ** (k - 1 - i) % V for i in range(k)], 1)
        if k
        else keys.new_zeros(len(keys), 0)
    )


def _histories(keys: torch.Tensor, V: int, j: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For a level's context keys (j tokens): the length of the ARPA history each one is (j, or
    <s> + its characters: j − leading boundaries + 1), and whether a name can be in it (no
    boundary after a character)."""
    d = _digits(keys, V, j)
    started = (d != 0).cummax(1).values if j else d.bool()
    lead = (~started).sum(1)
    ok = ~(started & (d == 0)).any(1)
    return torch.where(lead > 0, j - lead + 1, torch.full_like(lead, j)), ok


def arpa_ngrams(table: Table) -> dict[int, torch.Tensor]:
    """The n-grams an ARPA file of the table lists, per length L ≥ 2, as sorted keys: the L
    tokens as digits base V, oldest first, a leading <s> being the digit 0 (a padded context's
    key is its history's key: its leading zeros are that digit). Each level's known contexts
    and their entries, then every prefix and suffix (the unigrams are all listed anyway)."""
    V, N = table.V, table.order
    grams: dict[int, list[torch.Tensor]] = {L: [] for L in range(2, N + 1)}
    for j, level in enumerate(table.levels):
        if j == 0 or level is None or not len(level):
            continue
        length, ok = _histories(level.keys, V, j)
        for L in range(2, N):  # the context itself, so that its backoff is read
            grams[L].append(level.keys[ok & (length == L)])
        rows = ok.nonzero().squeeze(1)
        which, pos = level.slices(rows)
        keys = level.keys[rows][which] * V + level.cols[pos]
        size = length[rows][which] + 1
        for L in range(2, N + 1):
            grams[L].append(keys[size == L])
    out = {L: torch.cat(g).unique() if g else torch.zeros(0, dtype=torch.int64) for L, g in grams.items()}
    for L in range(N, 2, -1):  # prefix: drop the newest token; suffix: the oldest (<s> included)
        out[L - 1] = torch.cat([out[L - 1], out[L] // V, out[L] % V ** (L - 1)]).unique()
    return out


def _ngram_logp(table: Table, keys: torch.Tensor, L: int) -> torch.Tensor:
    """log P of each n-gram of length L: read at its history, which is what a query with that
    history reads (a padded one always arrives as the full padded context)."""
    V = table.V
    h, w = keys // V, keys % V
    padded = keys < V ** (L - 1)
    out = torch.empty(len(keys), dtype=torch.float64)
    out[padded] = table.at(h[padded], w[padded])
    out[~padded] = table.at(h[~padded], w[~padded], length=L - 1)
    return out


def _ngram_backoff(table: Table, keys: torch.Tensor, L: int) -> torch.Tensor:
    """log β of each n-gram of length L as a history: its context's at level L (0 where it is
    none), times, for <s> + characters, every longer padded context that is the same history."""
    V, N = table.V, table.order
    out = torch.zeros(len(keys), dtype=torch.float64)
    padded = keys < V ** (L - 1)
    for j in range(L, N):
        level = table.levels[j]
        if level is None or not len(level):
            continue
        idx = torch.arange(len(keys)) if j == L else padded.nonzero().squeeze(1)
        rows, known = level.find(keys[idx])
        out.index_add_(0, idx[known], level.backoff[rows[known]])
    return out


def write_arpa(f: TextIO, table: Table, vocab: Vocab) -> None:
    """The table as an ARPA model of its order (module docstring): exact, n-grams in key order."""
    V, N = table.V, table.order
    names = ["</s>", *(arpa_token(c) for c in vocab.chars)]  # token ids as ARPA tokens (0: </s>)
    zero = torch.zeros(V, dtype=torch.int64)
    unigram = _log10(table.at(zero, torch.arange(V), length=0))
    if N == 1:
        _write_unigram_arpa(f, unigram, names)
        return
    grams = arpa_ngrams(table)
    one = torch.arange(1, V)  # the characters as histories of length 1
    bo = _log10(_ngram_backoff(table, one, 1)) if V > 1 else []
    bos = _log10(_ngram_backoff(table, torch.zeros(1, dtype=torch.int64), 1))[0]  # <s>: key 0
    f.write(f"\\data\\\nngram 1={V + 2}\n")
    f.write("".join(f"ngram {L}={len(grams[L])}\n" for L in range(2, N + 1)))
    f.write(f"\n\\1-grams:\n{NEVER:.6f}\t<unk>\n{NEVER:.6f}\t<s>\t{bos:.9g}\n")
    f.write(f"{unigram[0]:.9g}\t</s>\n")
    f.write(
        "".join(
            f"{p:.9g}\t{names[i]}\t{b:.9g}\n" for i, p, b in zip(range(1, V), unigram[1:], bo, strict=True)
        )
    )
    for L in range(2, N + 1):
        f.write(f"\n\\{L}-grams:\n")
        for keys in grams[L].split(CHUNK):
            _write_ngrams(f, table, keys, L, names)
    f.write("\n\\end\\\n")


def _write_ngrams(f: TextIO, table: Table, keys: torch.Tensor, L: int, names: list[str]) -> None:
    """A block of n-grams of length L: log10 P, the tokens, and below order N the backoff of
    those that can be histories (not ending in </s>)."""
    V, N = table.V, table.order
    logp = _log10(_ngram_logp(table, keys, L))
    words = [
        " ".join(["<s>" if i == 0 and d[0] == 0 else names[t] for i, t in enumerate(d)])
        for d in _digits(keys, V, L).tolist()
    ]
    if L < N:
        bo = _log10(_ngram_backoff(table, keys, L))
        tails = [f"\t{b:.9g}\n" if w else "\n" for b, w in zip(bo, (keys % V).tolist(), strict=True)]
    else:
        tails = ["\n"] * len(keys)
    f.write("".join(f"{p:.9g}\t{w}{t}" for p, w, t in zip(logp, words, tails, strict=True)))


def _write_unigram_arpa(f: TextIO, logp: list[float], names: list[str]) -> None:
    """A unigram table: KenLM reads no unigram-only model, so an order-2 file, every history alike."""
    V = len(names)
    f.write(f"\\data\\\nngram 1={V + 2}\nngram 2={V}\n\n\\1-grams:\n")
    f.write(f"{NEVER:.6f}\t<unk>\n{NEVER:.6f}\t<s>\t0\n")
    f.write("".join(f"{v:.9g}\t{tok}\t0\n" for tok, v in zip(names, logp, strict=True)))
    f.write("\n\\2-grams:\n")
    f.write("".join(f"{v:.9g}\t<s> {tok}\n" for tok, v in zip(names, logp, strict=True)))
    f.write("\n\\end\\\n")


# --- JSON and CSV: the table's levels as they are ----------------------------------------------


def _blocks(level: Level, cells: int = 1 << 20):
    """A level's rows in blocks of about `cells` entries: (rows, which row each entry is, entries)."""
    start = 0
    while start < len(level):
        stop = max(start + 1, int(torch.searchsorted(level.ptr, level.ptr[start] + cells)))
        rows = torch.arange(start, min(stop, len(level)))
        which, pos = level.slices(rows)
        yield rows, which, pos
        start = int(rows[-1]) + 1


class NgramCounts:
    """How often the training names hold each n-gram context + next, for a context of any length
    j: the counts of the full contexts ending in it, summed (a context's leading boundaries can
    only be preceded by boundaries, so a padded context counts where its name starts)."""

    def __init__(self, counts: torch.Tensor, V: int) -> None:
        self.rows, self.cols, self.n = nonzero(counts.coalesce() if counts.is_sparse else counts)
        self.V = V
        self.by_length: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def at(self, j: int, ctx: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        if j not in self.by_length:
            keys, inv = torch.unique((self.rows % self.V**j) * self.V + self.cols, return_inverse=True)
            self.by_length[j] = (
                keys,
                torch.zeros(len(keys), dtype=torch.int64).index_add_(0, inv, self.n.long()),
            )
        keys, sums = self.by_length[j]
        want = ctx * self.V + nxt
        if not len(keys):
            return torch.zeros_like(want)
        pos = torch.searchsorted(keys, want).clamp_(max=len(keys) - 1)
        return torch.where(keys[pos] == want, sums[pos], torch.zeros_like(want))


def write_json(f: TextIO, table: Table, vocab: Vocab, kind: str, counts: torch.Tensor | None) -> None:
    """The table's levels, as bigram.backoff stores them:

        {"model", "order", "boundary_id": 0, "tokens": [".", "a", …], "root": "uniform",
         "levels": [{"length": j, "contexts": [[ids…], …], "backoff": [β, …],
                     "next": [[ids…], …], "probs": [[P…], …], "counts": [[n…], …]}, …]}

    tokens[i] displays id i (0: the boundary). Level j holds the known contexts of j tokens
    (j = 0 … order − 1), each as its token ids, oldest first (a name's first contexts start with
    boundaries); row r of "next" lists the tokens context r has seen, "probs" their P, and a
    count model's "counts" how often the training names hold context r followed by each.
    P(w | h) for a full context h of order − 1 tokens is read as in ARPA: P listed at the longest
    suffix of h that is a context listing w, times the backoff β of each longer context (suffix
    of h) that does not list it; below every level ("root") each token has P = 1/V. Written a
    block of rows at a time, one part after the other: memory stays the table's."""
    V, N = table.V, table.order
    head = {
        "model": kind,
        "order": N,
        "boundary_id": BOUNDARY_ID,
        "tokens": vocab.tokens(),
        "root": "uniform",
    }
    f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "levels": [')
    n = NgramCounts(counts, V) if counts is not None else None
    parts = {
        "contexts": lambda lv, j, rows, which, pos: _digits(lv.keys[rows], V, j).tolist(),
        "backoff": lambda lv, j, rows, which, pos: lv.backoff[rows].exp().tolist(),
        "next": lambda lv, j, rows, which, pos: _split_rows(lv.cols[pos].tolist(), which, len(rows)),
        "probs": lambda lv, j, rows, which, pos: _split_rows(lv.logp[pos].exp().tolist(), which, len(rows)),
    }
    if n is not None:
        parts["counts"] = lambda lv, j, rows, which, pos: _split_rows(
            n.at(j, lv.keys[rows][which], lv.cols[pos]).tolist(), which, len(rows)
        )
    for j, level in enumerate(table.levels):
        f.write((", " if j else "") + f'{{"length": {j}')
        for name, part in parts.items():
            f.write(f', "{name}": [')
            first = True
            for rows, which, pos in _blocks(level) if level is not None else ():
                for item in part(level, j, rows, which, pos):
                    f.write(("" if first else ", ") + json.dumps(item))
                    first = False
            f.write("]")
        f.write("}")
    f.write("]}\n")


def _split_rows(values: list, which: torch.Tensor, rows: int) -> list[list]:
    """Entries in row order as one list per row (`which`: each entry's row, ascending)."""
    ends = torch.bincount(which, minlength=rows).cumsum(0).tolist()
    return [values[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def write_csv(f: TextIO, table: Table, vocab: Vocab, counts: torch.Tensor | None) -> None:
    """One row per entry the table lists: its context, next, (count,) prob, log_prob; after a
    context's entries, a row with next `<backoff>`: its β, by which every token it does not list
    takes P at the next shorter context. The context is one column per token, oldest first
    (`prev` for the bigram, `context1` … for order N), a shorter context filling the last columns
    and leaving the first ones empty (the unigram row: all empty); the boundary is <s> in a
    context and </s> as next (no data character can be either, nor `<backoff>`: characters are
    single). Below every context each token has P = 1/V. A count model's count is how often the
    training names hold that context followed by next."""
    V, N = table.V, table.order
    w = csv.writer(f)
    head = ["prev"] if N == 2 else [f"context{i}" for i in range(1, N)]
    w.writerow([*head, "next", *(["count"] if counts is not None else []), "prob", "log_prob"])
    prev, nxt = ["<s>", *vocab.chars], ["</s>", *vocab.chars]
    n = NgramCounts(counts, V) if counts is not None else None
    for j, level in enumerate(table.levels):
        for rows, which, pos in _blocks(level) if level is not None else ():
            pad = [""] * (N - 1 - j)
            ctx = [pad + [prev[d] for d in row] for row in _digits(level.keys[rows], V, j).tolist()]
            got = n.at(j, level.keys[rows][which], level.cols[pos]).tolist() if n else [None] * len(pos)
            lp = _split_rows(
                list(zip(level.cols[pos].tolist(), level.logp[pos].tolist(), got, strict=True)),
                which,
                len(rows),
            )
            for c, entries, b in zip(ctx, lp, level.backoff[rows].tolist(), strict=True):
                w.writerows(
                    [*c, nxt[t], *([k] if n else []), repr(math.exp(v)), repr(v)] for t, v, k in entries
                )
                w.writerow([*c, "<backoff>", *([""] if n else []), repr(math.exp(b)), repr(b)])


def export(run, fmt: str, out: Path, model: str | None = None) -> str:
    """Write a run's model table to `out` in the given format; returns the model exported."""
    kind = run.pick_model(model)
    counts = run.count_model()[0] if kind == "count" else None
    table = run.log_probs(kind)
    if isinstance(table, Mixture):  # kept as its parts: written as one backoff table, exactly
        table = backoff_form(table, where=f"the mixed model of {run.path}")
    with atomic.replacing(out, "w", encoding="utf-8", newline="" if fmt == "csv" else None) as f:
        if fmt == "arpa":
            write_arpa(f, table, run.vocab)
        elif fmt == "json":
            write_json(f, table, run.vocab, kind, counts)
        else:
            write_csv(f, table, run.vocab, counts)
    return kind


def export_to(run, fmt: str, model: str | None = None, out: Path | None = None) -> tuple[Path, str]:
    """`bigram export`: without --out (or with --out naming it), the table written into the run as
    <model>-model.<format> (layout.export_file), recorded as bigram's (rundir.claim: a file of that
    name that bigram did not write is never replaced); else to --out, never one of the run's own
    files (rundir.target); (the path, the model exported)."""
    elsewhere = "pass --out FILE to write the export elsewhere"
    path = rundir.target(out, run.path, layout.export_file(run.pick_model(model), fmt), elsewhere)
    return path, export(run, fmt, path, model)
