r"""Reading ARPA n-gram models of characters (as KenLM's lmplz, SRILM and `bigram export` write
them) into bigram's table of log P(next | context).

An ARPA file lists, per order k, "log10 P  w₁ … w_k  [log10 backoff]". A query P(w | h) that the
file does not list backs off: log P(w | h) = backoff(h) + log P(w | h without its oldest token),
down to the unigrams. The table is built order by order, densely: row h of order k is
backoff(h) + the order-(k−1) row of h's last k−2 tokens, then every listed k-gram overwrites its
cell. Boundaries follow bigram's convention: `<s>` in a history and `</s>` as the predicted token
are both token 0, so bigram's padded first context (0 … 0) is ARPA's "<s>" once backed off, and a
context with the boundary inside it backs off to the history that starts there.

`<unk>`: bigram's vocabulary is the file's characters; a file that gives `<unk>` probability (as
lmplz does) has rows that sum to 1 − P(<unk> | h) over them. Each row is renormalized over the
real tokens, which is what a model restricted to its own vocabulary must predict (the same choice
the Kneser-Ney comparison with lmplz made); `bigram export` writes `<unk>` at −99, which changes
nothing.

    >>> text = '''\\data\\
    ... ngram 1=4
    ... ngram 2=2
    ...
    ... \\1-grams:
    ... -99\t<s>\t-0.176091
    ... -0.30103\t</s>
    ... -0.60206\ta\t0
    ... -0.60206\tb
    ...
    ... \\2-grams:
    ... -0.30103\t<s> a
    ... -0.30103\ta </s>
    ...
    ... \\end\\
    ... '''
    >>> table, vocab, order = read_arpa_text(text.splitlines())
    >>> vocab.chars, order
    (('a', 'b'), 2)
    >>> [round(x, 4) for x in table[0].exp().tolist()]  # after <s>: a listed; </s>, b backed off
    [0.3333, 0.5, 0.1667]
    >>> [round(x, 4) for x in table[1].exp().tolist()]  # after a: </s> listed, a and b backed off
    [0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable
from pathlib import Path

import torch

from bigram.errors import BigramError
from bigram.reader.corpus import check_table_size
from bigram.vocab import Vocab

__all__ = ["read_arpa", "read_arpa_text"]

_ESCAPE = re.compile(r"<U\+([0-9A-Fa-f]{4,6})>")
_SPECIAL = ("<s>", "</s>", "<unk>")
LN10 = math.log(10.0)


def _char(token: str, where: str) -> str:
    """An ARPA token as a character: itself, or the <U+XXXX> escape `bigram export` writes."""
    m = _ESCAPE.fullmatch(token)
    if m:
        return chr(int(m.group(1), 16))
    if len(token) != 1:
        raise BigramError(
            f"{where}: token {token!r} is not one character: this is a word-level model, and bigram "
            "reads character models (one token per character, <s> and </s> the boundaries)"
        )
    return token


def read_arpa(path: str | Path) -> tuple[torch.Tensor, Vocab, int]:
    """(the C×V table of log P, float64; its vocabulary; its order) of an ARPA file."""
    p = Path(path)
    if not p.is_file():
        raise BigramError(f"ARPA file {p} does not exist")
    try:
        with p.open(encoding="utf-8") as f:
            return read_arpa_text(f, str(p))
    except UnicodeDecodeError as e:
        raise BigramError(f"{p} is not UTF-8 text (byte {e.start}): is it an ARPA file?") from None


def read_arpa_text(lines: Iterable[str], where: str = "the ARPA file") -> tuple[torch.Tensor, Vocab, int]:
    """The table of an ARPA model given as lines (see `read_arpa`). Memory: 20 bytes a listed
    n-gram while reading, then the table (built a block of rows at a time)."""
    counts, grams, ids, vocab = _parse(lines, where)
    order = max(counts)
    check_table_size(vocab.size, order, f" (the tokens of {where})")
    return _table(grams, ids, vocab.size, order), vocab, order


def _parse(lines: Iterable[str], where: str) -> tuple[dict[int, int], dict, dict[str, int], Vocab]:
    """The header's counts; per order, (tokens as strings for order 1 | flat ids, log10 P, log10
    backoff); each token's id and the vocabulary, both from the unigrams."""
    counts: dict[int, int] = {}
    grams: dict = {}
    section, seen, ids, vocab = "start", 0, {}, None
    n = 0
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if section == "start":
            if line == "\\data\\":
                section = "data"
                continue
            raise BigramError(f"{where}: line {n} is not \\data\\: not an ARPA file")
        m = re.fullmatch(r"\\(\d+)-grams:", line)
        if m or line == "\\end\\":
            _check_section(section, seen, counts, where, n)
            if line == "\\end\\":
                section = "end"
                break
            section, seen = int(m.group(1)), 0
            if section not in counts:
                raise BigramError(f"{where}: line {n}: {section}-grams the header does not announce")
            if section == 2:
                ids, vocab = _ids(grams[1][0], where)
            grams[section] = (
                ([], array("d"), array("d")) if section == 1 else (array("q"), array("d"), array("d"))
            )
            continue
        if section == "data":
            m = re.fullmatch(r"ngram (\d+)\s*=\s*(\d+)", line)
            if not m:
                raise BigramError(f"{where}: line {n}: expected 'ngram K=COUNT' in the \\data\\ header")
            counts[int(m.group(1))] = int(m.group(2))
            continue
        if section == "end":
            break
        seen += 1
        _entry(line, section, grams[section], ids, vocab.size if vocab else 0, where, n)
    if section != "end":
        raise BigramError(f"{where}: ends at line {n} without \\end\\: the file is cut short")
    if 1 not in grams:
        raise BigramError(f"{where}: no \\1-grams: section")
    if vocab is None:  # a unigram model
        ids, vocab = _ids(grams[1][0], where)
    return counts, grams, ids, vocab


def _check_section(section, seen: int, counts: dict, where: str, n: int) -> None:
    if isinstance(section, int) and seen != counts[section]:
        raise BigramError(
            f"{where}: the header announces {counts[section]:,} {section}-grams but line {n} ends "
            f"the section after {seen:,}: the file is damaged"
        )


def _ids(tokens: list[str], where: str) -> tuple[dict[str, int], Vocab]:
    """(token → id, the vocabulary): <s> and </s> are 0 (the boundary), the characters 1… in
    code-point order."""
    chars = {t: _char(t, where) for t in tokens if t not in _SPECIAL}
    vocab = Vocab(tuple(sorted(set(chars.values()))))
    return {"<s>": 0, "</s>": 0} | {t: vocab.id(c) for t, c in chars.items()}, vocab


def _entry(line: str, k: int, store, ids: dict, V: int, where: str, n: int) -> None:
    """One "log10 P  w₁ … w_k  [backoff]" line into the order-k store."""
    parts = line.split()
    if len(parts) not in (k + 1, k + 2):
        raise BigramError(f"{where}: line {n} should hold a log-probability, {k} tokens and maybe a backoff")
    try:
        logp = float(parts[0])
        bow = float(parts[k + 1]) if len(parts) == k + 2 else 0.0
    except ValueError:
        raise BigramError(f"{where}: line {n}: {parts[0]!r} is not a number") from None
    if not (math.isfinite(logp) and math.isfinite(bow)) or logp > 1e-6:
        raise BigramError(f"{where}: line {n}: a log10 probability must be finite and ≤ 0")
    tokens, probs, backoffs = store
    if k == 1:
        tokens.append(parts[1])
    else:
        key = 0
        for t in parts[1 : k + 1]:
            i = ids.get(t)
            if i is None:
                if t == "<unk>":
                    return  # an n-gram through <unk>: no context of bigram's vocabulary has it
                raise BigramError(f"{where}: line {n}: token {t!r} has no unigram (or is not a character)")
            key = key * V + i
        tokens.append(key)
    probs.append(logp)
    backoffs.append(bow)


def _table(grams: dict, ids: dict[str, int], V: int, order: int) -> torch.Tensor:
    """log P (natural log) of every (context, next) by ARPA's backoff, rows renormalized."""
    uni_tokens, uni_p, uni_b = grams[1]
    row = torch.full((V,), -99.0, dtype=torch.float64)  # log10 P of order 1; unlisted: the ARPA floor
    back = torch.zeros(V, dtype=torch.float64)  # log10 backoff of each one-token history
    for t, lp, b in zip(uni_tokens, uni_p, uni_b, strict=True):
        if t == "<unk>":
            continue
        if t != "<s>":  # <s> is never predicted: its -99 is no probability of the boundary
            row[ids[t]] = lp
        if t != "</s>":
            back[ids[t]] = b
    table = row.unsqueeze(0)  # 1 × V: the unigram row
    for k in range(2, order + 1):
        keys, probs, backs = grams.get(k, (array("q"), array("d"), array("d")))
        # a k-gram's key is its tokens in base V: history · V + next, its flat index in the order-k
        # table (V^(k−1) rows of V) and in the order-k histories' backoffs: no digits taken apart
        key = torch.frombuffer(keys, dtype=torch.int64) if len(keys) else torch.zeros(0, dtype=torch.int64)
        # row h of order k: backoff(h) + the order k−1 row of h's newest k − 2 tokens, filled a
        # block of rows (one oldest token) at a time: no temporary the size of the new table
        shorter, table = table, torch.empty(V ** (k - 1), V, dtype=torch.float64)
        B = len(shorter)
        for a in range(V):
            torch.add(shorter, back[a * B : (a + 1) * B].unsqueeze(1), out=table[a * B : (a + 1) * B])
        del shorter
        if len(key):
            table.view(-1)[key] = torch.frombuffer(probs, dtype=torch.float64)  # no copy
        if k < order:
            back = torch.zeros(V**k, dtype=torch.float64)
            if len(key):
                back[key] = torch.frombuffer(backs, dtype=torch.float64)
    table.mul_(LN10)
    step = max(1, (1 << 20) // V)  # rows renormalized a block at a time (logsumexp makes a copy)
    for i in range(0, len(table), step):
        block = table[i : i + step]
        block.sub_(torch.logsumexp(block, dim=1, keepdim=True))
    return table
