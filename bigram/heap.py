"""How bigram hands memory back to the operating system (glibc's malloc; a no-op elsewhere).

A high order's steps each hold tens of MB of temporaries (the reader's tables, a Kneser-Ney level,
a block of log P): glibc keeps freed memory in its heap unless told, so that one step's freed
memory stacks under the next step's and the peak grows beyond what is alive. Two remedies:

    bound_heap()            blocks of 4 MiB and more are mapped on their own and unmapped when
                            freed, instead of glibc's default, which raises that threshold to
                            32 MiB as soon as such a block is freed (the command's process only)
    release_freed_memory()  hand what the heap holds free back now (between the steps)
"""

from __future__ import annotations

import contextlib
import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
MMAP_THRESHOLD = 4 << 20  # smaller: more page faults for the many mid-sized blocks; larger: fragments


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): their allocators return memory themselves
        return None


def bound_heap() -> None:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD for this process (the CLI calls it first)."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_freed_memory() -> None:
    """Hand the heap's free memory back to the OS, so that what runs next does not stack on top
    of it (glibc keeps it per thread arena)."""
    libc = _libc()
    with contextlib.suppress(AttributeError):
        if libc is not None:
            libc.malloc_trim(0)
