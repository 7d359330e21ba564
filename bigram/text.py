"""What counts as a name: one text rule for the corpus and for every name a user types.

A corpus file is UTF-8 (a BOM at its start is dropped), one name per line. Lines end with "\\n",
"\\r\\n" or a lone "\\r". Each line then goes through the run's `TextRule`:

1. Unicode normalization (NFC unless told otherwise: "e" + "◌́" becomes "é"),
2. lowercasing if asked,
3. surrounding white space stripped (`str.strip`); a line left empty is not a name.

    >>> TextRule("NFC", lowercase=True).name("  E\\u0301mile ")
    'émile'
    >>> TextRule("NFC", lowercase=False).lines("anna \\n\\n  bob\\n")
    'anna\\nbob'

The rule is recorded in a run's config (`normalize`, `lowercase`); `score`, `sample --start/--end`,
`--novel` and `eval --data` apply the run's rule, so "Emma" and "emma" mean the same name to a run
trained with `--lowercase`. This module is a leaf: it imports nothing else of bigram but errors.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bigram.errors import BigramError

NORMALIZATIONS = ("NFC", "NFD", "NFKC", "NFKD", "none")
BOM = b"\xef\xbb\xbf"


# What a terminal must never be sent from a corpus, a model or a path: C0 controls, DEL and C1
# controls (they recolour, retitle or move the cursor), the bytes of a path that are not UTF-8
# (Python keeps them as lone surrogates U+DC80..U+DCFF), shown as \xNN; and the characters that
# reorder or break what is shown (bidirectional marks, embeddings, overrides and isolates: U+061C,
# U+200E, U+200F, U+202A..U+202E, U+2066..U+2069; the line and paragraph separators U+2028, U+2029),
# shown as \uNNNN: a name must not make the next one read backwards or start a line of its own.
_REORDER = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\udc80-\udcff{_REORDER}]")
_UNSAFE_IN_LINES = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f\udc80-\udcff{_REORDER}]")  # "\n" kept
_JSON_RAW = re.compile(f"[\x7f-\x9f{_REORDER}]")  # what json.dumps leaves raw (it escapes C0 itself)


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def escaped(text: object) -> str:
    """Text (a name, a path, a message) as it is safe to print on one line.

    >>> print(escaped("a\\x1b[31mred"), escaped("\\x9b"), escaped(Path(os.fsdecode(b"bad\\xff.txt"))))
    a\\x1b[31mred \\x9b bad\\xff.txt
    >>> print(escaped("abc\\u202edcba"), escaped("one\\u2028two"))
    abc\\u202edcba one\\u2028two
    """
    text = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def escaped_lines(text: str) -> str:
    """`escaped` for many lines at once (sampled names, a score): the line breaks stay."""
    return _UNSAFE_IN_LINES.sub(_escape, text) if _UNSAFE_IN_LINES.search(text) else text


def json_safe(text: str) -> str:
    """JSON text with DEL, the C1 controls and the reordering characters above escaped as
    \\uXXXX, as JSON allows (json.dumps escapes C0 already, but with ensure_ascii=False writes
    the others raw).

    >>> print(json_safe('["a\\x9bb", "c\\u202ed"]'))
    ["a\\u009bb", "c\\u202ed"]
    """
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _JSON_RAW.search(text) else text


def check_data_path(path: str | Path) -> Path:
    """The path of an existing, readable file, or a BigramError saying what is wrong."""
    p = Path(path)
    where = escaped(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise BigramError(
            f"data file {where} does not exist: pass --data with a UTF-8 file, one name per line"
        ) from None
    except OSError as e:
        raise BigramError(f"cannot read data file {where}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BigramError(f"data path {where} is a directory: pass --data with a file, one name per line")
    if not os.access(p, os.R_OK):
        raise BigramError(f"cannot read data file {where}: permission denied")
    return p


def check_input_file(path: str | Path, what: str) -> Path:
    """The path of an existing regular file (`what`: "ARPA file"), or a BigramError saying what it
    is instead: a directory, a FIFO or a device is never read (a FIFO may block, a device not end)."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise BigramError(f"{what} {escaped(p)} does not exist") from None
    except OSError as e:
        raise BigramError(f"cannot read {what} {escaped(p)}: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        kind = (
            "a directory" if stat.S_ISDIR(mode)
            else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file"
        )  # fmt: skip
        raise BigramError(f"{what} {escaped(p)} is {kind}: give the path of a file")
    if not os.access(p, os.R_OK):
        raise BigramError(f"cannot read {what} {escaped(p)}: permission denied")
    return p


def is_regular(path: Path) -> bool:
    """False for a FIFO, a socket or a device: what can be read only once, or never ends."""
    return stat.S_ISREG(path.stat().st_mode)


def check_bytes(buf: bytes, path: Path) -> None:
    """Refuse binary data: a NUL byte never occurs in a names file."""
    if b"\x00" in buf:
        raise BigramError(
            f"data file {path} looks binary (it contains NUL bytes): expected UTF-8 text, one name per line"
        )


def decode(buf: bytes, path: Path, offset: int, raw: bytes | None = None) -> str:
    """UTF-8 bytes as text; an invalid byte is an error naming its line and byte in the file.
    `raw`: the chunk as read, starting `offset` bytes into the file, when `buf` is that chunk after
    its BOM was dropped and its line ends unified (positions in `buf` no longer match the file)."""
    try:
        return buf.decode("utf-8")
    except UnicodeDecodeError as e:
        start = e.start
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e_raw:
                start = e_raw.start
        pos = offset + start
        line = line_of(path, pos, raw if raw is not None else buf, offset)
        where = f"line {line} (byte {pos})" if line is not None else f"byte {pos}"
        raise BigramError(f"data file {path} is not valid UTF-8 at {where}: re-save it as UTF-8") from None


def line_ends(block: bytes, after_cr: bool = False) -> int:
    """How many line ends `block` holds ("\\n", "\\r\\n" and a lone "\\r" are one each); `after_cr`:
    the byte before it was "\\r", so a "\\n" it starts with ends that CRLF's line, no new one.

    >>> line_ends(b"a\\r\\nb\\rc\\n"), line_ends(b"\\nd\\n", after_cr=True)
    (3, 1)
    """
    ends = block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
    return ends - (after_cr and block.startswith(b"\n"))


# A stream read once (a pipe, /dev/stdin, a FIFO) cannot be read again to count lines (a FIFO
# opened again even waits for a writer): its reader notes the line each chunk starts on, with
# whether the byte before it was "\r" (stream → {offset: (line, after_cr)}); line_of reads them.
_STREAM_CHUNKS: dict[str, dict[int, tuple[int, bool]]] = {}
_NOTED = 64  # chunks remembered per stream (64 MiB of 1 MiB chunks): memory never grows with a corpus


def note_chunk(path: Path, offset: int, line: int, after_cr: bool) -> None:
    """Record that the chunk of stream `path` at byte `offset` starts on `line` (a read from the
    stream's start forgets what an earlier read of the same path noted)."""
    if offset == 0:
        _STREAM_CHUNKS[str(path)] = {}
    noted = _STREAM_CHUNKS.setdefault(str(path), {})
    noted[offset] = (line, after_cr)
    if len(noted) > _NOTED:  # bounded: chunks are decoded as they are read, the oldest are done
        del noted[next(iter(noted))]


def line_of(path: Path, pos: int, chunk: bytes | None = None, offset: int = 0) -> int | None:
    """The 1-based line number of byte `pos`, counting "\\n", "\\r\\n" and lone "\\r" as line ends
    (the error path only). A regular file is read again up to pos; a stream is not: its line is
    the one its reader noted for `chunk` (the bytes from `offset` on, pos among them) plus the
    lines in the chunk before pos, or None when the reader noted none."""
    try:
        regular = is_regular(path)
    except OSError:
        regular = False
    if not regular:
        start = _STREAM_CHUNKS.get(str(path), {}).get(offset)
        if start is None or chunk is None:
            return None
        return start[0] + line_ends(chunk[: pos - offset], start[1])
    lines, prev_cr = 1, False
    with path.open("rb") as f:
        left = pos
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                break
            left -= len(block)
            lines += line_ends(block, prev_cr)
            prev_cr = block.endswith(b"\r")
    return lines


@dataclass(frozen=True)
class TextRule:
    """How raw text becomes names; a run records it, and every command applies the run's."""

    normalize: str | None = "NFC"  # None (or "none"): keep the code points as they are
    lowercase: bool = False

    @classmethod
    def of(cls, cfg) -> TextRule:
        """The rule a TrainConfig asks for."""
        return cls(None if cfg.normalize in (None, "none") else cfg.normalize, bool(cfg.lowercase))

    def text(self, text: str) -> str:
        """Normalization and case folding of a whole text (no stripping): for --start/--end."""
        if self.normalize and not text.isascii() and not unicodedata.is_normalized(self.normalize, text):
            text = unicodedata.normalize(self.normalize, text)
        return text.lower() if self.lowercase else text

    def name(self, line: str) -> str:
        """One line as a name ('' when it is blank)."""
        return self.text(line).strip()

    def lines(self, text: str) -> str:
        """Lines joined by "\\n" (line ends unified) → the names they hold, joined by "\\n".
        Whole-text operations, so a chunk costs one C call for each step."""
        text = self.text(text)
        return "\n".join(s for line in text.split("\n") if (s := line.strip()))
