"""Line counting, compiled (numba): how many names a chunk of UTF-8 bytes holds, without reading
every character, and its line ends made "\\n".

The random split labels a name by its position in the file, so its first pass counts each chunk's
names before any is counted (bigram.reader.corpus.count_names):

    quick_count_lines  a chunk as it lies in the file (LF or CRLF line ends), at memory speed:
                       numpy counts the "\\n"s, a vectorized loop finds the lines that may be blank
    count_lines        any chunk, its line ends made "\\n": a line's first two bytes decide (LINE_START),
                       only the lines that start with white space are read character by character
    unify_line_ends    CRLF and lone CR become "\\n" (for the counting pass too)

The lowest of the reader's three compiled modules: it also holds what counting.py shares with it,
the UTF-8 decoding (decode_one) and str.strip()'s white space (SPACE, is_space).
"""

from __future__ import annotations

import numpy as np

from bigram.reader.numba_cache import njit

NL = 10  # "\n": a line's end; the boundary while counting, token 0 once the vocabulary is made
CR = 13  # "\r": a line end the reader makes "\n" first
# code point → does str.strip() remove it (white space lies below U+3001); "\n" never inside a line
SPACE = np.zeros(0x3001, dtype=np.bool_)
SPACE[[c for c in range(0x3001) if chr(c).isspace() and c != NL]] = True


@njit(cache=True, nogil=True)
def decode_one(b, i, n):
    """The code point starting at byte i, and the index after it. The input is valid UTF-8, except
    in `count_lines`' first pass: a sequence cut by the end is then taken byte by byte."""
    c = np.int64(b[i])
    if c < 0x80:
        return c, i + 1
    if c < 0xE0 and i + 1 < n:
        return ((c & 0x1F) << 6) | (np.int64(b[i + 1]) & 0x3F), i + 2
    if c < 0xF0 and i + 2 < n:
        return ((c & 0x0F) << 12) | ((np.int64(b[i + 1]) & 0x3F) << 6) | (np.int64(b[i + 2]) & 0x3F), i + 3
    if i + 3 < n:
        return (
            ((c & 0x07) << 18)
            | ((np.int64(b[i + 1]) & 0x3F) << 12)
            | ((np.int64(b[i + 2]) & 0x3F) << 6)
            | (np.int64(b[i + 3]) & 0x3F)
        ), i + 4
    return c, i + 1


@njit(cache=True, nogil=True)
def is_space(c, space):
    """Whether code point c is white space that str.strip() removes (`space`: SPACE)."""
    return c < space.shape[0] and space[c]


def _line_start_kinds() -> np.ndarray:
    """What a line's first two bytes say about it, by (first << 8 | second): 0 an empty line, 1 a
    name (its first character is not white space), 2 unsure (it starts with a white space
    character, or with the first two bytes of one: the exact scan decides)."""
    kinds = np.ones(1 << 16, dtype=np.uint8)
    kinds[NL << 8 : (NL + 1) << 8] = 0
    for c in np.flatnonzero(SPACE):
        b = chr(c).encode()
        if len(b) == 1:
            kinds[b[0] << 8 : (b[0] + 1) << 8] = 2
        else:
            kinds[b[0] << 8 | b[1]] = 2
    return kinds


LINE_START = _line_start_kinds()


def count_lines(buf: np.ndarray) -> int:
    """How many names a chunk of UTF-8 bytes holds, before any normalization: its lines with a
    character that is not white space (no normalization or case folding turns a character into
    white space or back). The random split's first pass: a line's first two bytes decide, in a
    loop without branches; the lines that start with white space (the loop notes where, up to
    UNSURE of them) are then read character by character, or the whole chunk if there are more.

    >>> count_lines(np.frombuffer("ann\\n\\n \\u3000\\n bob".encode(), np.uint8))
    2
    """
    at = np.empty(UNSURE, dtype=np.int64)
    names, unsure = _count_line_starts(buf, LINE_START, at)
    if unsure == 0:
        return int(names)
    if unsure >= UNSURE:  # `at` is full (its last place written over): the whole chunk closely
        return int(_count_lines(buf, SPACE))
    return int(names) + int(_names_at(buf, at[:unsure], SPACE))


UNSURE = 1 << 12  # line starts that count_lines reads closely, at most


@njit(cache=True, nogil=True)
def _names_at(buf, starts, space):
    """How many of the lines starting at `starts` hold a character that is not white space."""
    n, count = buf.shape[0], 0
    for i in starts:
        c = np.int64(NL)
        while i < n:
            c, i = decode_one(buf, i, n)
            if c == NL or not is_space(c, space):
                break
        count += c != NL and not is_space(c, space)
    return count


def unify_line_ends(buf: bytes) -> bytes:
    """CRLF and lone CR become LF, in one compiled pass (bytes.replace takes ~3 ms a MiB of CRLF
    lines, this ~0.3).

    >>> unify_line_ends(b"ann\\r\\nbob\\rcy\\n")
    b'ann\\nbob\\ncy\\n'
    """
    src = np.frombuffer(buf, np.uint8)
    out = np.empty(len(src), dtype=np.uint8)
    return out[: _unify_line_ends(src, out)].tobytes()


@njit(cache=True, nogil=True)
def _unify_line_ends(buf, out):
    m, prev = 0, np.uint8(0)
    for i in range(buf.shape[0]):
        c = buf[i]
        out[m] = NL if c == CR else c
        m += not (c == NL and prev == CR)  # the LF of a CRLF: its CR already ended the line
        prev = c
    return m


def quick_count_lines(buf: np.ndarray) -> int:
    """`count_lines` of a chunk as it lies in the file (line ends LF or CRLF), or -1 where a lone
    "\\r" makes lines that only `count_lines` (after the reader's unify) reads right. A chunk holds
    a name per "\\n", which numpy counts at memory speed, less its blank and white-space-only
    lines: a loop that LLVM turns into vector instructions (≥ 5 GB/s against ~1.2 for
    `count_lines`) looks for lines that may start with white space, 512 bytes at a time, and only
    those lines are read character by character.

    >>> chunks = b"ann\\nbob\\ncy", b"ann\\n\\n \\nbob\\r\\n", b"a\\rb\\n"  # blank lines; a lone "\\r"
    >>> [quick_count_lines(np.frombuffer(b, np.uint8)) for b in chunks]
    [3, 2, -1]
    """
    n = buf.shape[0]
    if n < 3 or buf[n - 1] == CR:
        return -1
    blank = _blank_lines(buf, SPACE)
    if blank < 0:
        return -1
    if buf[n - 2] == NL:  # a last line of one byte (or empty): the loop looks at none that short
        blank += _is_blank(buf, n - 1, SPACE)
    return int(np.count_nonzero(buf == NL)) + int(buf[n - 1] != NL) - int(blank)


@njit(cache=True, nogil=True)
def _blank_lines(buf, space):
    """How many lines (but a last one of one byte) are blank or white space only, or -1 if a "\\r"
    is not a CRLF's. Each LOOK bytes are first checked by an OR without branches, which
    vectorizes; only a block where it finds something is read line start by line start."""
    n = buf.shape[0]
    blank = _is_blank(buf, 0, space) if may_start_blank(buf[0], buf[1]) else 0
    for lo in range(0, n - 2, LOOK):
        seg = buf[lo : min(lo + LOOK, n - 2) + 2]  # a view: with buf[lo + i] the loop does not vectorize
        look = False
        for i in range(seg.shape[0] - 2):
            b0, b1 = seg[i + 1], seg[i + 2]
            look |= ((seg[i] == NL) & may_start_blank(b0, b1)) | ((b0 == CR) & (b1 != NL))
        if not look:
            continue
        for i in range(seg.shape[0] - 2):
            b0, b1 = seg[i + 1], seg[i + 2]
            if b0 == CR and b1 != NL:
                return -1
            if seg[i] == NL and may_start_blank(b0, b1):
                blank += _is_blank(buf, lo + i + 1, space)
    return blank


LOOK = 1 << 9  # bytes that _blank_lines checks at once: a blank line costs a close look at these


@njit(cache=True, nogil=True)
def _is_blank(buf, i, space):
    """Whether the line that starts at byte i holds white space only (str.strip() leaves nothing)."""
    n = buf.shape[0]
    while i < n:
        c, i = decode_one(buf, i, n)
        if c == NL:
            return True
        if not is_space(c, space):
            return False
    return True


@njit(cache=True, inline="always")
def may_start_blank(b0, b1):
    """Whether a line that starts with the bytes b0 b1 may be blank: b0 a control character, a
    space or "\\n", or b0 b1 the first two bytes of U+0085, U+00A0, U+1680, U+2000–U+205F or U+3000
    (every white space character str.strip() removes; tested against LINE_START)."""
    return (
        (b0 <= 0x20)
        | ((b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0)))
        | ((b0 == 0xE1) & (b1 == 0x9A))
        | ((b0 == 0xE2) & ((b1 == 0x80) | (b1 == 0x81)))
        | ((b0 == 0xE3) & (b1 == 0x80))
    )


@njit(cache=True, nogil=True)
def _count_line_starts(buf, kinds, at):
    """(lines that surely hold a name, lines that start with white space), by LINE_START; where
    the latter start goes to `at` (the first len(at) of them)."""
    n = buf.shape[0]
    names = 0
    unsure = 0
    last = at.shape[0] - 1
    prev = np.uint8(NL)  # the chunk starts a line
    for i in range(n - 1):
        b = buf[i]
        kind = kinds[(np.int64(b) << 8) | np.int64(buf[i + 1])]
        start = prev == NL
        names += start & (kind == 1)
        at[min(unsure, last)] = i  # written always, kept only where unsure moves on: no branch
        unsure += start & (kind == 2)
        prev = b
    if n > 0 and prev == NL:  # a last line of one byte, without its "\n"
        kind = kinds[np.int64(buf[n - 1]) << 8]
        names += kind == 1
        at[min(unsure, last)] = n - 1
        unsure += kind == 2
    return names, unsure


@njit(cache=True, nogil=True)
def _count_lines(buf, space):
    n = buf.shape[0]
    count = 0
    i = 0
    while i < n:  # at a line's start: skip white space; a name if a character is left before "\n"
        c, i = decode_one(buf, i, n)
        while c != NL and is_space(c, space) and i < n:
            c, i = decode_one(buf, i, n)
        if c != NL and not is_space(c, space):
            count += 1
            while i < n and buf[i] != NL:  # the rest of the line: bytes only
                i += 1
            i += 1
    return count
