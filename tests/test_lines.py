"""The line kernels (bigram/reader/lines.py): counting names from bytes, the quick count of the
random split's first pass, and line ends unified, each as the text rule reads lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from bigram.reader.corpus import _raw_lines, _utf8
from bigram.reader.lines import count_lines, quick_count_lines
from bigram.text import TextRule
from tests.reference import line_text


@given(lines=st.lists(line_text, max_size=12), ends=st.sampled_from(["\n", "\r\n", "\r"]))
def test_counting_names_from_bytes_agrees_with_the_rule(lines, ends):
    """The random split's first pass counts names from bytes; it must agree with the full rule,
    or every label after the first disagreement would shift."""
    buf = ends.join(lines).encode()
    for rule in (TextRule(), TextRule("NFKC", lowercase=True)):
        want = len(
            [
                s
                for s in rule.text(buf.decode().replace("\r\n", "\n").replace("\r", "\n")).split("\n")
                if s.strip()
            ]
        )
        assert count_lines(np.frombuffer(_raw_lines(buf, 1), np.uint8)) == want
        text = _utf8(buf, 1, Path("x"), rule).decode()
        assert len([s for s in text.split("\n") if s.strip()]) == want
        quick = quick_count_lines(np.frombuffer(buf, np.uint8))  # the first pass's usual path
        lone_cr = b"\r" in buf.replace(b"\r\n", b"") or buf.endswith(b"\r")
        # with a lone CR it may decline (-1), or count right where the CR changes nothing ("\r  ")
        assert quick in ((-1, want) if lone_cr or len(buf) < 3 else (want,))


@given(
    parts=st.lists(st.sampled_from([b"a", b"\xc3\xa9", b"\r", b"\n", b"\r\n", b" ", b"\r\r"]), max_size=40)
)
def test_the_readers_line_ends_are_the_text_rules(parts):
    """The reader's compiled unify_line_ends makes CRLF and lone CR an LF, as str's line rule does."""
    from bigram.reader.lines import unify_line_ends

    buf = b"".join(parts)
    assert unify_line_ends(buf) == buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def test_lines_that_start_with_white_space_are_read_closely_however_many():
    """count_lines reads each line that starts with white space character by character (up to
    lines.UNSURE of them, else the whole chunk): the count must not depend on how many there are."""
    from bigram.reader.lines import UNSURE

    for unsure in (1, UNSURE - 1, UNSURE, UNSURE + 1, 3 * UNSURE):
        lines = [" ann" if i % 3 else "\u3000 " for i in range(unsure)] + ["bob", "", "cy"] * 50
        buf = np.frombuffer("\n".join(lines[::-1] if unsure % 2 else lines).encode(), np.uint8)
        assert count_lines(buf) == len([w for w in lines if w.strip()]), unsure


def test_the_quick_line_count_looks_closer_at_every_line_start_that_may_be_blank():
    """may_start_blank must hold for every (first byte, second byte) that LINE_START does not
    call a name for sure, or a blank line would be counted as a name; and not hold for the first
    bytes of letters (ASCII, Latin to Cyrillic, Arabic, Indic, CJK), or the quick path would
    read many lines closely. Blank and white-space-only lines are taken off the count."""
    from bigram.reader.lines import LINE_START, NL, may_start_blank

    for b0 in range(256):
        for b1 in range(256):
            kind = LINE_START[b0 << 8 | b1]
            blank = bool(may_start_blank(np.uint8(b0), np.uint8(b1)))
            assert blank or kind == 1, (hex(b0), hex(b1))
            if 0x21 <= b0 < 0x80 or 0xC3 <= b0 <= 0xDF or 0xE4 <= b0 <= 0xEF:
                assert not blank, (hex(b0), hex(b1))
    assert may_start_blank(np.uint8(NL), np.uint8(ord("a")))
    for text in ["anna\nbob\n", "ゆき\n李\nзоя\n", "ab\ncd", "ann\r\nbob\r\n", "ann\nbob\ncy\ndee\n" * 50]:
        buf = np.frombuffer(text.encode(), np.uint8)
        assert quick_count_lines(buf) == count_lines(buf) == len(text.split())
    for text, want in [
        ("anna\n\nbob\n", 2),  # a blank line
        ("anna\n \n\u3000\n \u3000 \r\nbob\n", 2),  # white space only: a space, U+3000, both, CRLF
        ("anna\n bob\n\u3000cy\n", 3),  # names after white space
        ("\nann\n \n", 1),  # the first line (the LF of a CRLF cut by the chunk before)
        ("ann\nb", 2),  # a last line of one byte
        ("ann\n ", 1),
        ("ann\n\n", 1),
        ("an\rna\nbob\n", -1),  # a lone "\r"
        ("ann\nbob\r", -1),  # a "\r" at the end
    ]:
        assert quick_count_lines(np.frombuffer(text.encode(), np.uint8)) == want, text
    import random

    rng = random.Random(0)
    pieces = [b"a", b"\xc3\xa9", b"\xe3\x81\x82", b" ", b"\t", b"\xe3\x80\x80", b"\xc2\xa0", b"\n", b"\r\n"]
    for _ in range(3000):  # LF and CRLF chunks with white space anywhere: the count is exact
        buf = b"".join(rng.choice(pieces) for _ in range(rng.randint(3, 40)))
        want = count_lines(np.frombuffer(_raw_lines(buf, 1), np.uint8))
        assert quick_count_lines(np.frombuffer(buf, np.uint8)) == (-1 if buf.endswith(b"\r") else want), buf
