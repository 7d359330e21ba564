"""Ctrl-C while libraries import: held until the import is done, then raised where it is safe.

A KeyboardInterrupt raised inside `import torch` can abort the process from C++ ("terminate called
after throwing pybind11::error_already_set"), or leave numpy half-imported so that later code fails
with an unrelated error. Code that imports heavy libraries does it inside `held_ctrl_c()`: a Ctrl-C
there is remembered and raised as KeyboardInterrupt when the block ends, which every command turns
into one line and exit status 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_ctrl_c() -> Iterator[None]:
    """Hold SIGINT for the block; raise KeyboardInterrupt at its end if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if came:
        raise KeyboardInterrupt
