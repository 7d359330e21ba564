"""Atomic file writes: every file bigram writes is either the old one or the complete new one.

The content goes to a temporary file beside the target (same directory, so the same file system),
is flushed to disk, then renamed over the target in one step. A crash, Ctrl-C or a full disk
leaves the old file as it was and no half-written one:

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "metrics.json"
    >>> write_text(target, "{}\\n")   # target holds "{}\\n", or what it held before: nothing in between
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]   # no temporary file is left
    ('{}\\n', ['metrics.json'])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bigram.errors import BigramError
from bigram.text import escaped


def temp_path(path: Path) -> Path:
    """The temporary name a write to `path` uses: hidden, beside it, unique to this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """A temporary path to write; on success it is flushed to disk and renamed over `path`, on any
    error removed, `path` untouched. OSError (full disk, permissions) becomes a one-line error."""
    tmp = temp_path(path)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise BigramError(f"cannot write {escaped(path)}: {e.strerror or e}; nothing was changed") from None
    finally:
        _remove(tmp)


def _remove(tmp: Path) -> None:
    """Remove a temporary file if it is there. Only if: on a read-only file system unlink fails
    even for a file that does not exist (EROFS), which would hide the error that matters."""
    try:
        if os.path.lexists(tmp):
            tmp.unlink()
    except OSError:
        pass  # nothing more can be done; the write's own error has been reported


@contextmanager
def replacing(path: Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """An open file whose content replaces `path` when the block ends without an error."""
    with _staged(Path(path)) as tmp, open(tmp, mode, **open_kwargs) as f:
        yield f


def write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    with replacing(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Replace `path` atomically with what `write(tmp)` writes to a temporary path: for writers
    that take a file name (torch.save, matplotlib)."""
    with _staged(Path(path)) as tmp:
        write(tmp)
