"""The run directory on disk: the marker that says bigram made it, how far its training got,
the checks before --out replaces anything, building a run beside the one it replaces, and
finding the run a command reads. Filesystem only (the standard library): every command checks
its paths with this before it imports torch. What the files in a run hold: runs.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bigram.errors import BigramError, TrainingStopped
from bigram.safety import atomic, layout
from bigram.text import escaped

RUNS_DIR = Path("runs")
STATUSES = ("training", "complete", "interrupted", "diverged")
# TensorBoard's event files (events.out.tfevents.<time>.<host>.<pid>.<n>); a crashed atomic write
_OURS = re.compile(r"events\.out\.tfevents\.\d+\.[^/]+\.\d+\.\d+|\..+\.tmp-\d+")


def _stamp_dir(root: Path) -> Path:
    """A new, empty runs/<date>_<time> (never an existing one: two runs in one second get -1, …)."""
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for i in range(1000):
        path = root / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise BigramError(f"cannot create a run directory under {root}/: {e.strerror or e}") from None
    raise BigramError(f"could not create a new run directory under {root}/")


def mark(path: Path, kind: str = "run", status: str = "training", note: str = "") -> None:
    """Write the marker that says bigram made this directory (and may replace it), with how far
    training got: "training" until it ends, then "complete", "interrupted" (resumable) or
    "diverged" (refused by every command; `note` says why)."""
    info = {"made_by": "bigram", "kind": kind}
    if kind == "run":  # a sweep's directory holds runs; each has its own status
        info.update(status=status, **({"note": note} if note else {}))
    atomic.write_text(path / layout.MARKER, json.dumps(info, ensure_ascii=False) + "\n")


def set_status(run: Path, status: str, note: str = "") -> None:
    """Record how a run's training ended (see mark)."""
    assert status in STATUSES, status
    mark(run, "run", status, note)


def status_of(run: Path) -> tuple[str, str]:
    """(status, note) from a run's marker. A run made before statuses were recorded, or whose
    marker is unreadable, counts as complete: its checkpoints are checked when they are read."""
    try:
        info = json.loads((run / layout.MARKER).read_text(encoding="utf-8"))
        status, note = info.get("status", "complete"), info.get("note", "")
    except (OSError, ValueError, AttributeError):
        return "complete", ""
    return (status, str(note)) if status in STATUSES else ("complete", "")


def unusable(run: Path) -> str | None:
    """Why a run cannot be read (None when it can): training diverged, has not finished (it is
    still running, or its process was killed), or left no model checkpoint."""
    status, note = status_of(run)
    if status == "diverged":
        return f"its training diverged ({note})" if note else "its training diverged"
    if status == "training":
        return "its training has not finished (it is still running, or its process was stopped)"
    if not any((run / layout.checkpoint(m)).is_file() for m in layout.MODEL_KINDS):
        *others, last = map(layout.checkpoint, layout.MODEL_KINDS)
        return f"it has no model checkpoint ({', '.join(others)} or {last})"
    return None


def foreign_entry(path: Path) -> str | None:
    """None when `path` is a directory bigram made holding only what bigram writes (sub-runs of a
    sweep included); otherwise what makes it foreign, for the error message."""
    if path.is_symlink() or not path.is_dir():
        return f"{escaped(path)} is not a directory bigram made"
    if not (path / layout.MARKER).is_file():
        return f"{escaped(path)} has no {layout.MARKER} marker, so bigram did not make it"
    for entry in path.iterdir():
        if entry.is_symlink():
            return f"{escaped(entry)} is a symbolic link"
        if entry.is_dir():
            inner = foreign_entry(entry)
            if inner is not None:
                return inner
        elif entry.name not in layout.FILES and not _OURS.fullmatch(entry.name):
            return f"{escaped(entry)} is not a file bigram writes"
    return None


def check_out(
    out: str | Path, overwrite: bool, data: str | Path | None = None, can_overwrite: bool = True
) -> Path:
    """Refuse an --out that would replace something: without --overwrite anything non-empty; with
    it, anything but a directory bigram made that holds only bigram's files, the current directory
    (or one above it) and a directory that holds the data file. `can_overwrite`: whether the
    command has --overwrite at all (sweep has not), for the message."""
    path = Path(out)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # bytes Python kept as surrogates; TensorBoard cannot write there
        raise BigramError(
            f"--out {escaped(path)} is not a valid UTF-8 path: choose a UTF-8 name for the run"
        ) from None
    if not path.exists() and not path.is_symlink():
        return path
    if path.is_symlink():
        raise BigramError(f"--out {escaped(path)} is a symbolic link: choose a plain directory for the run")
    if not path.is_dir():
        raise BigramError(f"--out {escaped(path)} is a file, not a directory: choose another --out")
    if not any(path.iterdir()):
        return path
    if not overwrite:
        fix = "choose another --out"
        fix = f"pass --overwrite to replace it, or {fix}" if can_overwrite else fix
        raise BigramError(f"--out {escaped(path)} already exists and is not empty: {fix}")
    here, target = Path.cwd().resolve(), path.resolve()
    if target == here or target in here.parents:
        raise BigramError(
            f"--out {escaped(path)} is the current directory or contains it: refusing to replace it"
        )
    if data is not None and target in Path(data).resolve().parents:
        raise BigramError(
            f"--out {escaped(path)} contains the data file {escaped(data)}: refusing to replace it"
        )
    why = foreign_entry(path)
    if why is not None:
        raise BigramError(
            f"--out {escaped(path)} is not a bigram run directory ({why}): refusing to replace it"
        )
    return path


@contextmanager
def new_run_dir(
    out: str | Path | None, overwrite: bool = False, *, data: str | Path | None = None, kind: str = "run"
) -> Iterator[Path]:
    """The directory to write a new run into, marked as bigram's.

    Without `out`: a new runs/<date>_<time>. A new or empty --out is written in place (so that
    TensorBoard shows it while it trains). A run that --overwrite replaces is built beside it and
    swapped in only once complete (or stopped consistently, see TrainingStopped): until then the
    old run is untouched. If anything else goes wrong, what was made is removed again."""
    if out is None:
        final, created, staged = _stamp_dir(RUNS_DIR), True, False
    else:
        final = check_out(out, overwrite, data)
        staged = final.exists() and any(final.iterdir())
        created = not final.exists()
    work = final.with_name(f".{final.name}.tmp-{os.getpid()}") if staged else final
    try:
        work.mkdir(parents=True, exist_ok=not staged)
    except OSError as e:
        raise BigramError(f"cannot create run directory {work}: {e.strerror or e}") from None
    try:
        mark(work, kind)
        yield work
    except TrainingStopped:
        _commit(work, final, staged)
        raise
    except BaseException:
        if staged or created:
            shutil.rmtree(work, ignore_errors=True)
        else:  # an empty directory the user made: leave it empty again
            for entry in work.iterdir():
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        raise
    _commit(work, final, staged)


def _commit(work: Path, final: Path, staged: bool) -> None:
    """Put a staged run in place of the old one: the old one is moved aside first, then removed."""
    if not staged:
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.replace(final, old)
    os.replace(work, final)
    retry = {"onexc" if sys.version_info >= (3, 12) else "onerror": _writable_and_retry}
    shutil.rmtree(old, **retry)
    shutil.rmtree(old, ignore_errors=True)  # what is left, if the retry failed too


def _writable_and_retry(func, path: str, _exc) -> None:
    """rmtree of a read-only old run: make its directory writable, then delete again."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        func(path)
    except OSError:
        pass


def latest_run(root: Path = RUNS_DIR) -> tuple[Path, list[tuple[Path, str]]]:
    """The newest run under runs/ (by when its config was written) that can be read, and the newer
    ones skipped on the way, each with why (see unusable)."""
    found = root.glob(f"*/{layout.CONFIG}") if root.is_dir() else []
    runs = [p.parent for p in found if not p.parent.name.startswith(".")]  # not a run being replaced
    if not runs:
        raise BigramError(
            f"no runs found under {root}/: train one with `bigram train`, or name a run directory"
        )
    skipped = []
    for run in sorted(runs, key=lambda p: (p / layout.CONFIG).stat().st_mtime, reverse=True):
        why = unusable(run)
        if why is None:
            return run, skipped
        skipped.append((run, why))
    listed = "; ".join(f"{escaped(p)}: {why}" for p, why in skipped[:3])
    raise BigramError(
        f"no finished run under {root}/ ({listed}{'; …' if len(skipped) > 3 else ''}): "
        "train one with `bigram train`"
    )


def find_run(path: str | Path | None) -> tuple[Path, list[tuple[Path, str]]]:
    """The run a command reads: `path`, checked, or the newest readable one under runs/ (with the
    runs it skipped). Filesystem only: a command checks its run before it imports torch."""
    if path is None:
        return latest_run()
    p = Path(path)
    if not p.is_dir():
        raise BigramError(
            f"run directory {escaped(p)} does not exist: name a directory made by `bigram train`"
        )
    if not (p / layout.VOCAB).is_file():
        raise BigramError(f"{escaped(p)} is not a bigram run directory (no {layout.VOCAB})")
    why = unusable(p)
    if why is not None:
        status = status_of(p)[0]
        fix = {"diverged": "train it again (with a lower --lr)", "training": "wait for it, or train it again"}
        raise BigramError(f"run {escaped(p)} cannot be used: {why}; {fix.get(status, 'train it again')}")
    return p, []
