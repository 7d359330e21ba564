"""bigram's compiled loops (numba): the corpus reader's kernels.py and Newton's row loop.

numba compiles them on first use and keeps the machine code in a cache. bigram puts that cache in
the user's cache directory, not beside the source, so that it works where site-packages is
read-only, and so each environment compiles once per user (numba keeps one folder per source
directory inside it). The first compile in an environment takes a few seconds: it is said on
stderr in one line, and everything is compiled then, so it is said once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = (HERE / "kernels.py", HERE / "newton_kernel.py")  # the modules whose functions numba compiles
NOTICE = "compiling bigram's kernels once for this environment (~10 s; cached in {})"
_compiling = False  # compile_all_once is under way (the loaders it calls call it again)


def cache_dir() -> Path:
    """$NUMBA_CACHE_DIR if set, else $XDG_CACHE_HOME (or ~/.cache) / bigram / numba."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bigram" / "numba"


def _stamp() -> Path | None:
    """The file that says this environment's kernels are compiled, named by what would make numba
    compile again: the sources (where they are and what they say) and the numba and Python
    versions. None when the cache directory cannot be made (numba then caches where it can)."""
    import numba

    key = "\0".join([*map(str, SOURCES), numba.__version__, sys.version]).encode()
    key += b"".join(p.read_bytes() for p in SOURCES)
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cache_dir() / f"bigram-{hashlib.sha1(key).hexdigest()[:16]}.compiled"


@contextlib.contextmanager
def numba_cache() -> Iterator[None]:
    """While bigram's numba functions are defined, numba's cache is cache_dir() (each function picks
    its cache when it is defined); a user's own numba code keeps the user's setting."""
    import numba

    before = numba.config.CACHE_DIR
    if os.access(cache_dir(), os.W_OK):
        numba.config.CACHE_DIR = str(cache_dir())
    try:
        yield
    finally:
        numba.config.CACHE_DIR = before


def compile_all_once() -> None:
    """Called by each loader before it compiles: the first time in this environment for this user,
    say so in one line on stderr, compile every kernel, then write the stamp."""
    global _compiling
    if _compiling:
        return
    stamp = _stamp()
    if stamp is None or stamp.exists():
        return
    _compiling = True
    try:
        print(NOTICE.format(cache_dir()), file=sys.stderr, flush=True)
        from bigram import corpus, newton

        corpus._kernels()
        newton._compiled()
        with contextlib.suppress(OSError):
            stamp.touch()
    finally:
        _compiling = False
