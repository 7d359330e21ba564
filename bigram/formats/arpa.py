r"""Reading ARPA n-gram models of characters (as KenLM's lmplz, SRILM and `bigram export` write
them) into bigram's table (bigram.backoff.Table), sparse: the file is already that form.

An ARPA file lists, per order k, "log10 P  w₁ … w_k  [log10 backoff]". A query P(w | h) that the
file does not list backs off: log P(w | h) = backoff(h) + log P(w | h without its oldest token),
down to the unigrams. That is the table's read rule, so the n-grams of length k become level
k − 1's entries (history → context, last token → a listed next token) and each history's backoff
its β. Boundaries follow bigram's convention: `<s>` in a history and `</s>` as the predicted token
are both token 0. A history `<s> c₁ … c_m` is stored at level m + 1 under the digits (0, c₁ … c_m):
a name's context at the run's order is padded with boundaries (..c₁ … c_m), and its longest known
suffix is that one, as ARPA reads it. Nothing is ever allocated per context the file does not
list: memory is the file's n-grams.

`<unk>`: bigram's vocabulary is the file's characters; a file that gives `<unk>` probability (as
lmplz does) has rows that sum to 1 − P(<unk> | h) over them. Each row is renormalized over the
real tokens, which is what a model restricted to its own vocabulary must predict (the same choice
the Kneser-Ney comparison with lmplz made): with Z(h) the mass h gives the real tokens, a listed
P becomes P / Z(h) and β(h) becomes β(h) · Z(h′) / Z(h), h′ the next shorter known context,
which is exact for every row. An n-gram through `<unk>` is left out (no context of the
vocabulary holds it), as is one predicting `<s>`. log10 −99 is ARPA's "never", read as
probability 0 (what `bigram export` writes for 0); a unigram the file does not list has
probability 0 too. A row that gives the characters more than 1 + MASS_TOLERANCE (1e-3: the
values are rounded) is damaged; the rows renormalized are checked to sum to one (1e-6) before the
run is written.

Bounded before it is trusted: the file is read a line at a time, each at most LINE_LIMIT bytes
(16 KiB; an order-12 n-gram of escaped tokens is ~150), decoded alone; the header's digits are
compared with the limits train has (order ≤ 12, V ≤ 16,384 tokens, V^N < 2^62) before any
arithmetic on them; an error names its line and quotes at most 40 characters of a token.

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
    >>> [round(x, 4) for x in table.rows(torch.tensor([0]))[0].exp().tolist()]  # after <s>: a listed
    [0.3333, 0.5, 0.1667]
    >>> [round(x, 4) for x in table.rows(torch.tensor([1]))[0].exp().tolist()]  # after a: </s> listed
    [0.5, 0.25, 0.25]
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import torch

from bigram.backoff import Level, Table, row_sum_error
from bigram.config import MAX_ORDER
from bigram.errors import BigramError
from bigram.reader.corpus import MAX_V
from bigram.text import BOM, check_input_file, escaped
from bigram.vocab import KEY_LIMIT, Vocab

__all__ = ["read_arpa", "read_arpa_text"]

_ESCAPE = re.compile(r"<U\+([0-9A-Fa-f]{4,6})>")
_HEADER = re.compile(r"ngram[ \t]+([0-9]{1,40})[ \t]*=[ \t]*([0-9]{1,40})")
_SECTION = re.compile(r"\\([0-9]{1,6})-grams:")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")  # no nan, inf, 1_0, ١
_FIELDS = re.compile(r"[ \t]+")  # ARPA's separators: any other character (U+00A0, U+3000) is a token
_SPECIAL = ("<s>", "</s>", "<unk>")
_NO_NAME_CHAR = {0x0: "NUL", 0xA: "a line break", 0xD: "a line break"}  # what no trained vocabulary holds
LN10 = math.log(10.0)
NEVER = -99.0  # ARPA's log10 of a probability 0
LINE_LIMIT = 1 << 14  # bytes in a line: an order-12 n-gram of escaped tokens holds ~150
VALUE_LIMIT = 1000.0  # |log10| of a probability or backoff: beyond it, no model's number
MASS_TOLERANCE = 1e-3  # a row may give its characters 1 + this (values rounded to ~6 digits), not more
SUM_TOLERANCE = 1e-6  # the renormalized rows sum to one within this (backoff.row_sum_error)


def _show(token: str) -> str:
    """A token from the file, as an error message may quote it: escaped, at most 40 characters."""
    return escaped(repr(token if len(token) <= 40 else token[:40] + "…"))


def _cut(digits: str) -> str:
    """A number from the header as a message shows it: at most 12 digits."""
    return digits if len(digits) <= 12 else digits[:12] + "…"


def _char(token: str) -> str | None:
    """An ARPA token as a character: itself, or the <U+XXXX> escape `bigram export` writes; None
    for a word (more than one character). A code point no name can hold is a BigramError."""
    m = _ESCAPE.fullmatch(token)
    if not m:
        return token if len(token) == 1 else None
    code = int(m.group(1), 16)
    why = (
        "beyond U+10FFFF" if code > 0x10FFFF
        else "a surrogate" if 0xD800 <= code <= 0xDFFF
        else _NO_NAME_CHAR.get(code)
    )  # fmt: skip
    if why:
        raise BigramError(f"token {_show(token)} is no character a name can hold ({why})")
    return chr(code)


def read_arpa(path: str | Path) -> tuple[Table, Vocab, int]:
    """(the table, checked; its vocabulary; its order) of an ARPA file, read a line at a time."""
    p = check_input_file(path, "ARPA file")
    where = escaped(p)
    try:
        with p.open("rb") as f:
            return read_arpa_text(_lines(f, where), where)
    except OSError as e:
        raise BigramError(f"cannot read ARPA file {where}: {e.strerror or e}") from None


def _lines(f: BinaryIO, where: str) -> Iterator[str]:
    """The file's lines as text, each read at most LINE_LIMIT bytes at a time (a file without line
    breaks is refused there, never read whole) and decoded alone, so an error names its line; a BOM
    is dropped; "\\n", "\\r\\n" and a lone "\\r" end a line."""
    n = 0
    while raw := f.readline(LINE_LIMIT + 1):
        if len(raw) > LINE_LIMIT:
            raise BigramError(f"{where}: line {n + 1} is longer than {LINE_LIMIT:,} bytes: not an ARPA file")
        if n == 0 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BigramError(
                f"{where}: line {n + 1} is not UTF-8 text (its byte {e.start + 1}): is it an ARPA file?"
            ) from None
        for line in text.rstrip("\n").rstrip("\r").split("\r"):
            n += 1
            yield line


def read_arpa_text(lines: Iterable[str], where: str = "the ARPA file") -> tuple[Table, Vocab, int]:
    """The table of an ARPA model given as lines (see `read_arpa`). Memory: about 24 bytes a
    listed n-gram while reading, then the table itself."""
    p = _Parse(where)
    ended = False
    for n, raw in enumerate(lines, 1):
        if len(raw) > LINE_LIMIT:
            raise BigramError(f"{where}: line {n} is longer than {LINE_LIMIT:,} characters: not an ARPA file")
        line = raw.strip(" \t\r\n")
        if ended and line:
            raise BigramError(f"{where}: line {n}: text after \\end\\ (is it two files in one?)")
        ended = ended or p.line(line, n)
    p.finish()
    table = _normalized(_raw_levels(p), p)
    worst = row_sum_error(table)
    if not worst <= SUM_TOLERANCE:
        raise BigramError(
            f"{where}: after the backoffs its rows do not sum to one (off by {worst:.3g}): "
            "the file is damaged"
        )
    return table.with_dense(), p.vocab, p.order


class _Parse:
    """The file read line by line: the header's counts, then each order's n-grams in arrays
    (keys: the tokens as digits base V, oldest first, `<s>` and `</s>` the digit 0; log10 P;
    log10 backoff), and where each came from (`line_of`)."""

    def __init__(self, where: str) -> None:
        self.where, self.section, self.seen, self.n = where, "start", 0, 0
        self.counts: dict[int, int] = {}
        self.grams: dict[int, tuple[array, array, array]] = {}
        self.jumps: dict[int, tuple[list[int], list[int]]] = {}  # entry index → line, where not consecutive
        self.last = 0  # the line of the last entry kept
        self.uni: list[str] = []  # the unigrams' tokens, in file order (their values: grams[1])
        self.chars: dict[str, str] = {}  # a character's unigram token → the character
        self.first: dict[str, int] = {}  # a unigram's character (or <s>, </s>, <unk>) → its line
        self.ids: dict[str, int] = {}
        self.vocab: Vocab | None = None
        self.order = 0

    def fail(self, what: str, line: int | None = None) -> BigramError:
        return BigramError(f"{self.where}: line {line or self.n}: {what}")

    def line_of(self, k: int, index: int) -> int:
        """The line of the order-k n-gram kept `index`-th."""
        at, lines = self.jumps[k]
        i = bisect_right(at, index) - 1
        return lines[i] + index - at[i]

    def line(self, line: str, n: int) -> bool:
        """Take one stripped line; True at \\end\\."""
        self.n = n
        if not line:
            return False
        if self.section == "start":
            if line != "\\data\\":
                raise BigramError(f"{self.where}: line {n} is not \\data\\: not an ARPA file")
            self.section = "data"
            return False
        m = _SECTION.fullmatch(line)
        if m or line == "\\end\\":
            return self._section(int(m.group(1)) if m else None)
        if self.section == "data":
            self._header(line)
        else:
            self.seen += 1
            if self.seen > self.counts[self.section]:
                raise self.fail(
                    f"the header announces {self.counts[self.section]:,} {self.section}-grams, and this "
                    "is one more: the file is damaged"
                )
            self._entry(line, self.section)
        return False

    def _header(self, line: str) -> None:
        m = _HEADER.fullmatch(line)
        if not m:
            raise self.fail("expected 'ngram K=COUNT' in the \\data\\ header")
        if len(m.group(1)) > 2 or not 1 <= int(m.group(1)) <= MAX_ORDER:  # compared before any arithmetic
            raise self.fail(f"order {_cut(m.group(1))}: bigram reads orders 1 … {MAX_ORDER}, as train does")
        k, count = int(m.group(1)), int(m.group(2))
        if k in self.counts:
            raise self.fail(f"the header announces {k}-grams twice")
        if k == 1 and count > MAX_V - 1 + len(_SPECIAL):
            raise self.fail(
                f"the header announces {_cut(m.group(2))} 1-grams: bigram reads at most {MAX_V - 1:,} "
                f"characters (V ≤ {MAX_V:,} tokens, as train does)"
            )
        self.counts[k] = count

    def _section(self, k: int | None) -> bool:
        """A section header (k) or \\end\\ (None): the previous section is complete, and the
        sections come in order, 1-grams first, each once."""
        if self.section == "data":
            self.order = max(self.counts, default=0)
            missing = [i for i in range(1, self.order + 1) if i not in self.counts]
            if not self.counts or missing:
                raise self.fail(f"the header announces no {(missing or [1])[0]}-grams: not a whole ARPA file")
        elif isinstance(self.section, int) and self.seen != self.counts[self.section]:
            raise self.fail(
                f"the header announces {self.counts[self.section]:,} {self.section}-grams but this line ends "
                f"the section after {self.seen:,}: the file is damaged"
            )
        expected = self.section + 1 if isinstance(self.section, int) else 1
        if k is None and expected <= self.order:
            raise self.fail(f"\\end\\ before the {expected}-grams the header announces: the file is damaged")
        if k is not None and k != expected:
            raise self.fail(
                f"\\{k}-grams: where the {expected}-grams belong (sections come in order, each once)"
            )
        if expected == 2:
            self._vocabulary()
        self.section, self.seen = (k if k is not None else "end"), 0
        if k is not None:
            self.grams[k], self.jumps[k] = (array("q"), array("d"), array("d")), ([], [])
        return k is None

    def _unigram(self, token: str) -> None:
        """A 1-gram's token, checked at its line: a character (once), or <s>, </s>, <unk> (once)."""
        if token in _SPECIAL:
            ch = token
        else:
            try:
                ch = _char(token)
            except BigramError as e:
                raise self.fail(str(e)) from None
            if ch is None:
                raise self.fail(
                    f"token {_show(token)} is not one character: this is a word-level model, and bigram "
                    "reads character models (one token per character, <s> and </s> the boundaries)"
                )
            self.chars[token] = ch
        if ch in self.first:
            raise self.fail(
                f"the 1-grams list {_show(ch)} twice (first at line {self.first[ch]}; perhaps once "
                "escaped as <U+XXXX>): the file is damaged"
            )
        self.first[ch] = self.n
        if len(self.chars) > MAX_V - 1:
            raise self.fail(
                f"more than {MAX_V - 1:,} characters: bigram reads V ≤ {MAX_V:,} tokens, as train does"
            )
        self.uni.append(token)

    def _vocabulary(self) -> None:
        """Token ids from the unigrams: <s> and </s> are 0 (the boundary), the characters 1… in
        code-point order; then the order's keys must fit 64 bits."""
        if not self.chars:
            raise self.fail("the 1-grams list no character: there is nothing to model")
        self.vocab = Vocab(tuple(sorted(self.chars.values())))
        self.ids = {"<s>": 0, "</s>": 0} | {t: self.vocab.id(c) for t, c in self.chars.items()}
        V = self.vocab.size  # at most MAX_V, and the order at most MAX_ORDER: a small power
        if V**self.order >= KEY_LIMIT:
            top = max(n for n in range(1, self.order) if V**n < KEY_LIMIT)
            raise self.fail(
                f"order {self.order} over V = {V:,} tokens: its n-grams are 64-bit keys, which hold "
                f"V^N < 2^62 (at most order {top} over this vocabulary)"
            )

    def finish(self) -> None:
        if self.section == "start":
            raise BigramError(f"{self.where} has no \\data\\ line (it is empty or blank): not an ARPA file")
        if self.section != "end":
            raise BigramError(f"{self.where}: ends at line {self.n} without \\end\\: the file is cut short")
        if self.vocab is None:  # a unigram model: no 2-grams section set the vocabulary
            self._vocabulary()

    def _entry(self, line: str, k: int) -> None:
        """One "log10 P  w₁ … w_k  [backoff]" line into the order-k arrays."""
        parts = _FIELDS.split(line)
        if len(parts) not in (k + 1, k + 2):
            raise self.fail(f"should hold a log-probability, {k} tokens and maybe a backoff")
        logp = self._number(parts[0], "its log10 probability")
        bow = (
            self._number(parts[-1], f"its backoff (or one of more than {k} tokens)")
            if len(parts) == k + 2
            else 0.0
        )
        if not (-VALUE_LIMIT <= logp <= 1e-6 and -VALUE_LIMIT <= bow <= VALUE_LIMIT):
            raise self.fail(
                f"a log10 probability must be in [−{VALUE_LIMIT:g}, 0], a backoff within ±{VALUE_LIMIT:g}"
            )
        keys, probs, backoffs = self.grams[k]
        if k == 1:
            self._unigram(parts[1])
        else:
            key = self._key(parts[1 : k + 1])
            if key is None:
                return
            keys.append(key)
        at, lines = self.jumps[k]
        if self.n != self.last + 1 or not at:
            at.append(len(probs))
            lines.append(self.n)
        self.last = self.n
        probs.append(min(logp, 0.0))
        backoffs.append(bow)

    def _number(self, text: str, what: str) -> float:
        """A decimal number as ARPA writes one (float() would also take nan, inf, 1_0 and other
        scripts' digits)."""
        if not _NUMBER.fullmatch(text):
            raise self.fail(f"{_show(text)} is not a number: {what}")
        return float(text)

    def _key(self, tokens: list[str]) -> int | None:
        """An n-gram's key, or None for one bigram leaves out (through <unk>, or predicting <s>)."""
        key, V, last = 0, self.vocab.size, len(tokens) - 1
        for i, t in enumerate(tokens):
            if t == "<unk>" or (t == "<s>" and i == last):
                return None
            if (t == "<s>" and i != 0) or (t == "</s>" and i != last):
                raise self.fail(f"{t} inside an n-gram: <s> only begins one and </s> only ends one")
            d = self.ids.get(t)
            if d is None:  # the character spelled otherwise than in its 1-gram (a, <U+0061>)?
                m = _ESCAPE.fullmatch(t)
                d = self.vocab.id(chr(int(m.group(1), 16))) if m and int(m.group(1), 16) <= 0x10FFFF else None
            if d is None:
                raise self.fail(f"token {_show(t)} has no 1-gram (or is not a character)")
            key = key * V + d
        return key


def _tensor(a: array, dtype: torch.dtype) -> torch.Tensor:
    return torch.frombuffer(a, dtype=dtype).clone() if len(a) else torch.zeros(0, dtype=dtype)


def _natural(log10: torch.Tensor) -> torch.Tensor:
    """log10 values as natural logs; −99 (ARPA's "never") as −inf."""
    return torch.where(log10 == NEVER, torch.full_like(log10, -math.inf), log10 * LN10)


def _raw_levels(p: _Parse) -> list[Level]:
    """The file's levels as it gives them (natural logs, not yet renormalized): level j holds
    the histories of the (j + 1)-grams and the j-grams with a backoff, level 0 the unigrams."""
    V, N = p.vocab.size, p.order
    _, uni_p, uni_b = p.grams[1]
    uni_p, uni_b = _natural(_tensor(uni_p, torch.float64)), _natural(_tensor(uni_b, torch.float64))
    ids = torch.tensor([p.ids.get(t, -1) for t in p.uni], dtype=torch.int64)
    real = torch.tensor([t not in ("<s>", "<unk>") for t in p.uni], dtype=torch.bool)
    history = torch.tensor([t not in ("</s>", "<unk>") for t in p.uni], dtype=torch.bool)
    levels = [_level(V, ids[real], uni_p[real], ids[:0], uni_b[:0], p, 0)]  # one row: key 0
    below = (ids[history], uni_b[history])  # the 1-grams as histories: <s> is key 0
    for k in range(2, N + 1):
        keys, probs, backs = (
            _tensor(a, t)
            for a, t in zip(p.grams[k], (torch.int64, torch.float64, torch.float64), strict=True)
        )
        levels.append(_level(V, keys, _natural(probs), *below, p, k - 1))
        history = keys % V != 0  # an n-gram ending in </s> is no history
        below = (keys[history], _natural(backs[history]))
    return levels


def _level(
    V: int, grams: torch.Tensor, logp: torch.Tensor, hist: torch.Tensor, bo: torch.Tensor, p: _Parse, j: int
) -> Level:
    """Level j from the (j + 1)-grams (keys, log P) and the j-grams' backoffs (keys, log bo):
    a context for every history of an n-gram and every j-gram whose backoff is not 1."""
    grams, order = grams.sort(stable=True)  # stable: of two equal n-grams, the later line is second
    logp = logp[order]
    twice = (grams[1:] == grams[:-1]).nonzero()
    if len(twice):
        i = int(twice[0])
        first, again = (p.line_of(j + 1, int(order[x])) for x in (i, i + 1))
        raise p.fail(f"this {j + 1}-gram was listed already (line {first}): the file is damaged", again)
    keep = bo != 0
    contexts = torch.cat([grams // V, hist[keep]]).unique()
    per = torch.bincount(torch.searchsorted(contexts, grams // V), minlength=len(contexts))
    backoff = torch.zeros(len(contexts), dtype=torch.float64)
    backoff[torch.searchsorted(contexts, hist[keep])] = bo[keep]
    ptr = torch.cat([torch.zeros(1, dtype=torch.int64), per.cumsum(0)])
    return Level(contexts, ptr, grams % V, logp, backoff)


def _context_line(p: _Parse, j: int, context: int) -> int:
    """Where the file gives the row of a j-token context: its first (j + 1)-gram, else the j-gram
    whose backoff made it a context."""
    V = p.vocab.size
    if j == 0:
        return p.line_of(1, 0)
    grams = _tensor(p.grams[j + 1][0], torch.int64) if j + 1 <= p.order else torch.zeros(0, dtype=torch.int64)
    hit = (grams // V == context).nonzero()
    if len(hit):
        return p.line_of(j + 1, int(hit[0]))
    if j == 1:
        hist = [i for i, t in enumerate(p.uni) if p.ids.get(t) == context and t not in ("</s>", "<unk>")]
        return p.line_of(1, hist[0]) if hist else p.n
    hit = (_tensor(p.grams[j][0], torch.int64) == context).nonzero()
    return p.line_of(j, int(hit[0])) if len(hit) else p.n


def _normalized(raw: list[Level], p: _Parse) -> Table:
    """The levels renormalized over the real tokens, shortest first, in log space (any finite
    value of the file stays finite): log Z(h) = log(Σ_listed P + bo(h)·Z(h′)·(1 − Σ_listed P̃(·|h′))),
    P̃ = P / Z(h), β = bo(h)·Z(h′)/Z(h). Level 0 lists every unigram; nothing lies below it.
    Z(h) is what the file gives h's real tokens: above 1 (+ MASS_TOLERANCE), the file is damaged."""
    V, N = p.vocab.size, p.order
    table = Table(V, N, [None] * N)
    logz: list[torch.Tensor] = []
    for j, lv in enumerate(raw):
        which = torch.repeat_interleave(torch.arange(len(lv)), lv.ptr.diff())
        top = torch.full((len(lv),), -math.inf, dtype=torch.float64).scatter_reduce_(
            0, which, lv.logp, "amax"
        )
        safe = torch.where(top.isfinite(), top, torch.zeros_like(top))
        listed = (
            torch.zeros(len(lv), dtype=torch.float64)
            .index_add_(0, which, (lv.logp - safe[which]).exp())
            .log_()
            + safe
        )
        if j == 0:
            lz, beta = listed, torch.full_like(listed, -math.inf)
        else:
            shorter = lv.keys % V ** (j - 1)
            below = table.at(shorter[which], lv.cols, length=j - 1).exp()
            s = torch.zeros(len(lv), dtype=torch.float64).index_add_(0, which, below)
            lzp = _suffix_logz(table, logz, shorter, j - 1)
            lz = torch.logaddexp(listed, lv.backoff + lzp + torch.log1p(-s.clamp(max=1.0)))
            beta = lv.backoff + lzp - lz
        _check_mass(lz, lv, p, j)
        table.levels[j] = Level(lv.keys, lv.ptr, lv.cols, lv.logp - lz[which], beta)
        logz.append(lz)
    return table


def _check_mass(lz: torch.Tensor, lv: Level, p: _Parse, j: int) -> None:
    """Each row's mass on the real tokens, log Z(h), is finite, above 0 and at most 1 + MASS_TOLERANCE."""
    bad = ~lz.isfinite() | (lz > math.log1p(MASS_TOLERANCE))
    if not bool(bad.any()):
        return
    r = int(bad.nonzero()[0])
    line = _context_line(p, j, int(lv.keys[r]))
    if not bool(lz[r].isfinite()):
        raise p.fail(
            f"a history of {j} tokens (its row begins here) gives its real tokens no probability (or an "
            "infinite one): the file is damaged",
            line,
        )
    x = float(lz[r])
    mass = f"{math.exp(x):.6g}" if x < 700 else f"about 10^{x / LN10:.0f}"  # exp overflows past 709
    raise p.fail(
        f"a history of {j} tokens (its row begins here) gives its characters probability {mass} in all, "
        f"above 1 (+{MASS_TOLERANCE:g}) after its backoff: the file is damaged",
        line,
    )


def _suffix_logz(table: Table, logz: list[torch.Tensor], keys: torch.Tensor, length: int) -> torch.Tensor:
    """log Z of each context's longest known suffix (contexts of `length` tokens): what an
    unknown context reads is its suffix's row, so its mass is that row's."""
    out = torch.zeros(len(keys), dtype=torch.float64)
    for i in range(length + 1):
        level = table.levels[i]
        if level is not None and len(level):
            rows, known = level.find(keys % table.V**i)
            out[known] = logz[i][rows[known]]
    return out
