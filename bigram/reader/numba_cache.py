"""bigram's compiled loops (numba): the corpus reader's kernels and Newton's row step.

numba compiles them on first use and keeps the machine code in a cache. bigram puts that cache in
the user's cache directory, not beside the source, so that it works where site-packages is
read-only, and so each environment compiles once per user (numba keeps one folder per source
directory inside it). The first compile in an environment takes a few seconds: it is said on
stderr in one line, and everything is compiled then, so it is said once.

numba notices a change to a function's own file only: a loop that calls another file's function
or reads its constants (counting.py calls lines.py's decode_one and is_space; shuffle.py reads
counting.py's EMPTY and M1) would keep the old ones compiled in until its own file changed. So a
change to any kernel file (a new stamp) first forgets every kernel file's cached machine code.

The compiled modules define their functions with this module's `njit`, which puts their cache
here, and are named below by path (KERNELS, WARM_UPS) rather than imported: this module sits
below them, and imports none of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PACKAGE = Path(os.path.abspath(__file__)).parents[1]  # bigram/, unresolved as numba names it
# the modules whose functions numba compiles: a change to any of them compiles everything again
KERNELS = (
    PACKAGE / "reader" / "lines.py",
    PACKAGE / "reader" / "counting.py",
    PACKAGE / "reader" / "shuffle.py",
    PACKAGE / "optim" / "newton_kernel.py",
)
# "module:function" that imports a compiled module and runs each of its functions once
WARM_UPS = ("bigram.reader.corpus:_kernels", "bigram.optim.newton:_compiled")
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

    key = "\0".join([*map(str, KERNELS), numba.__version__, sys.version]).encode()
    key += b"".join(p.read_bytes() for p in KERNELS)
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
    with contextlib.suppress(OSError):
        cache_dir().mkdir(parents=True, exist_ok=True)
    if os.access(cache_dir(), os.W_OK):
        numba.config.CACHE_DIR = str(cache_dir())
    try:
        yield
    finally:
        numba.config.CACHE_DIR = before


def njit(**flags) -> Callable[[Callable], Callable]:
    """numba.njit(**flags) for bigram's kernels: the function's machine code cached in cache_dir()."""
    import numba

    def compile_(fn: Callable) -> Callable:
        with numba_cache():
            return numba.njit(**flags)(fn)

    return compile_


def _forget_compiled() -> None:
    """Delete numba's cache files of every kernel module of this environment: the folder numba
    keeps for a source directory is named by the directory and a hash of its path (numba's
    _UserProvidedCacheLocator), each file by the module's name."""
    for source in KERNELS:
        folder = cache_dir() / f"{source.parent.name}_{hashlib.sha1(str(source.parent).encode()).hexdigest()}"
        for stale in [*folder.glob(f"{source.stem}.*.nbi"), *folder.glob(f"{source.stem}.*.nbc")]:
            with contextlib.suppress(OSError):
                stale.unlink()


def compile_all_once() -> None:
    """Called by each loader before it compiles: the first time in this environment for this user,
    say so in one line on stderr, compile every kernel (WARM_UPS), then write the stamp."""
    global _compiling
    if _compiling:
        return
    stamp = _stamp()
    if stamp is None or stamp.exists():
        return
    _compiling = True
    try:
        print(NOTICE.format(cache_dir()), file=sys.stderr, flush=True)
        _forget_compiled()
        for warm_up in WARM_UPS:
            module, _, function = warm_up.partition(":")
            getattr(importlib.import_module(module), function)()
        with contextlib.suppress(OSError):
            stamp.touch()
    finally:
        _compiling = False
