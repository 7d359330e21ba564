"""bigram.reader.numba_cache: where the compiled kernels are cached, and what a change forgets."""

from __future__ import annotations

import hashlib

from bigram.reader import numba_cache


def test_a_change_to_any_kernel_file_forgets_every_kernel_files_machine_code(tmp_path, monkeypatch):
    """counting.py's loops call lines.py's functions, which numba would keep compiled in until
    counting.py itself changed: so every kernel module's cache files go, and nothing else."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    kept, stale = [], []
    for source in numba_cache.KERNELS:
        # numba's folder for a source directory: its name, "_", the SHA-1 of its absolute path
        folder = tmp_path / f"{source.parent.name}_{hashlib.sha1(str(source.parent).encode()).hexdigest()}"
        folder.mkdir(exist_ok=True)
        for name in (f"{source.stem}.f-10.py311.nbi", f"{source.stem}.f-10.py311.1.nbc"):
            stale.append(folder / name)
        kept.append(folder / f"users_{source.stem}.f-10.py311.nbi")  # another module's cache
    kept.append(tmp_path / "elsewhere" / "lines.f-10.py311.nbi")  # another directory's lines.py
    for path in stale + kept:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    numba_cache._forget_compiled()
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_the_kernel_list_names_every_module_that_defines_compiled_functions():
    """A module that compiles with numba_cache.njit but is not in KERNELS would not recompile
    when it changes, nor be forgotten when another kernel file does."""
    package = numba_cache.PACKAGE
    users = {p for p in package.rglob("*.py") if "numba_cache import njit" in p.read_text(encoding="utf-8")}
    assert users == set(numba_cache.KERNELS)
