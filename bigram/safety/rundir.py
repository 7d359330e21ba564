"""The run directory on disk: the marker that says bigram made it, how far its training got,
the checks before --out replaces anything, building a run beside the one it replaces, and
finding the run a command reads. Filesystem only (the standard library): every command checks
its paths with this before it imports torch. What the files in a run hold: runs.py.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bigram.errors import BigramError, TrainingStopped
from bigram.safety import atomic, layout
from bigram.text import escaped

RUNS_DIR = Path("runs")
STATUSES = ("training", "complete", "interrupted", "diverged")
MAX_NESTING = (
    4  # runs within runs bigram makes: a sweep holds runs, a run nothing (a marked tree deeper is not its)
)
MARKER_BYTES = 1 << 20  # a marker lists a run's file names (a sweep's: its sub-runs): far below this
_TEMP = re.compile(r"\.(.+)\.tmp-\d+")  # atomic's temporary name for NAME, left by a killed write
# TensorBoard's event file name, exactly (events.out.tfevents.<10-digit time>.<host>.<pid>.<n>)
_EVENTS = re.compile(r"events\.out\.tfevents\.\d{10}\..+\.\d+\.\d+")


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


def read_bytes(path: Path, limit: int) -> bytes:
    """A run's small file (marker, config, vocabulary, metrics), read whole: only a regular file
    (a FIFO or a device would block or never end) and at most `limit` bytes, else OSError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # opening a FIFO does not wait
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "it is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"it is larger than {limit:,} bytes, more than bigram writes there")
    return data


# --- the marker: bigram made this directory, how far its training got, the files it wrote ----------


def read_marker(path: Path) -> tuple[dict | None, str]:
    """(the marker's content, "") when `path` holds bigram's marker: a plain file (not a link) with
    a JSON object made by bigram whose "files", if any, is a list of names; else (None, why not).
    A marker without "files" is a run's made before bigram listed its files (see _legacy_owned)."""
    m = path / layout.MARKER
    if not m.exists() and not m.is_symlink():
        return None, f"{escaped(path)} has no {layout.MARKER} marker, so bigram did not make it"
    if m.is_symlink() or not m.is_file():
        return None, f"{escaped(m)} is not a plain file, so bigram did not make {escaped(path)}"
    try:
        info = json.loads(read_bytes(m, MARKER_BYTES))
    except (OSError, ValueError, RecursionError):
        info = None
    files = info.get("files", []) if isinstance(info, dict) else None
    if (
        not isinstance(info, dict)
        or info.get("made_by") != "bigram"
        or not isinstance(files, list)
        or not all(isinstance(f, str) for f in files)
    ):
        return None, f"its marker {escaped(m)} is damaged (not the one bigram writes)"
    return info, ""


def mark(path: Path, kind: str = "run", status: str = "training", note: str = "") -> None:
    """Write the marker that says bigram made this directory (and may replace it), with how far
    training got: "training" until it ends, then "complete", "interrupted" (resumable) or
    "diverged" (refused by every command; `note` says why). The list of files bigram wrote there
    is kept (a new marker starts it empty; one made before the list was kept stays without one)."""
    old, _ = read_marker(path)
    info = {"made_by": "bigram", "kind": kind}
    if kind == "run":  # a sweep's directory holds runs; each has its own status
        info.update(status=status, **({"note": note} if note else {}))
    if old is None or "files" in old:
        info["files"] = [] if old is None else old["files"]
    _write_marker(path, info)


def _write_marker(path: Path, info: dict) -> None:
    atomic.write_text(path / layout.MARKER, json.dumps(info, ensure_ascii=False) + "\n")


def own(run: Path, name: str) -> Path:
    """`run / name`, recorded in the run's marker as a file bigram writes there, before it is
    written (so that a run stopped midway lists it too): --overwrite deletes only what the marker
    lists. A directory without bigram's marker, or whose marker predates the list, is left as it is."""
    assert name and "/" not in name and name not in (".", ".."), name
    info, _ = read_marker(run)
    if info is not None and "files" in info and name not in info["files"]:
        info["files"] = sorted({*info["files"], name})
        _write_marker(run, info)
    return run / name


def claim(run: Path, name: str, elsewhere: str) -> Path:
    """`run / name` for a file bigram writes into a run by default (a page, an export), recorded in the
    marker as bigram's (own) so that writing it again replaces it and --overwrite of the run
    removes it. Refused, nothing written, when the name is taken by anything bigram did not write
    there (a file the user put there, a link, a directory), when the run has no marker of bigram's,
    or when its marker lists no files (a run made before it did) and the name is not one of the
    layout's (what it wrote could not be told from the user's later).
    `elsewhere`: how to write it elsewhere instead, for the messages."""
    path = run / name
    info, why = read_marker(run)
    if info is None or ("files" not in info and name not in layout.FILES):
        why = why or f"{escaped(run)} was made before bigram listed the files it writes into a run"
        raise BigramError(f"not writing into {escaped(run)}: {why}; {elsewhere}")
    if (path.exists() or path.is_symlink()) and not (_owned(path, info) and path.is_file()):
        raise BigramError(
            f"{escaped(path)} is already there and bigram did not write it: move it away, or {elsewhere}"
        )
    try:
        return own(run, name)
    except BigramError as e:  # the marker cannot be written (a read-only run), nor could the file
        raise BigramError(f"{e}; {elsewhere}") from None


def target(out: Path | None, run: Path, name: str, elsewhere: str) -> Path:
    """Where a command writes its file (a page, an export, a figure): without --out, or with an
    --out naming exactly that file in the run, `run / name` claimed as bigram's (claim); any other
    --out is the user's file, refused when it would replace one of the run's own (a checkpoint,
    the config, the marker: the layout's files), which commands could then no longer read."""
    if out is None or (out.name == name and out.parent.resolve() == run.resolve()):
        return claim(run, name, elsewhere)
    info, _ = read_marker(out.parent)
    if info is not None and info.get("kind") == "run" and out.name in layout.FILES:
        raise BigramError(
            f"--out {escaped(out)} is one of the files bigram wrote into the run {escaped(out.parent)}, "
            "which its commands read: choose another --out"
        )
    return out


def sub_run(path: Path) -> Path:
    """A sweep's sub-run directory, recorded in the sweep's marker, made and marked."""
    own(path.parent, path.name)
    path.mkdir()
    mark(path)
    return path


def set_status(run: Path, status: str, note: str = "") -> None:
    """Record how a run's training ended (see mark)."""
    assert status in STATUSES, status
    mark(run, "run", status, note)


def status_of(run: Path) -> tuple[str, str]:
    """(status, note) from a run's marker. A run made before statuses were recorded, or whose
    marker is unreadable, counts as complete: its checkpoints are checked when they are read."""
    info, _ = read_marker(run)
    if info is None:
        return "complete", ""
    status, note = info.get("status", "complete"), info.get("note", "")
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


# --- what is bigram's: only what its marker lists -------------------------------------------------


def _legacy_owned(entry: Path, kind: str, depth: int) -> bool:
    """In a run made before markers listed files: a file with one of the names bigram writes, an
    atomic write's leftover of one, a sweep's sub-run, a model's directory of event files (marked),
    or an event file named exactly as TensorBoard names them that begins as TensorBoard's do.
    Anything else, however alike, is the user's."""
    name = entry.name
    if entry.is_dir():  # a sweep's sub-run, or a model's event files that --resume added
        events = kind == "run" and name in layout.EVENT_DIRS
        return (kind == "sweep" or events) and foreign_entry(entry, depth + 1) is None
    temp = _TEMP.fullmatch(name)
    if name in layout.FILES or (temp and temp.group(1) in layout.FILES):
        return True
    return bool(_EVENTS.fullmatch(name)) and _begins_as_tensorboard(entry)


def _begins_as_tensorboard(path: Path) -> bool:
    """Whether the file's first record is TensorBoard's first event (its file version)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12 + 256)
    except OSError:
        return False
    n = int.from_bytes(head[:8], "little") if len(head) >= 12 else 0
    return 0 < n <= 256 and b"brain.Event:" in head[12 : 12 + n]


def _owned(entry: Path, info: dict, depth: int = 0) -> bool:
    """Whether bigram wrote `entry`, by the marker of the directory holding it (`info`)."""
    if entry.is_symlink():
        return False
    if entry.name == layout.MARKER:
        return entry.is_file()
    if "files" not in info:
        return _legacy_owned(entry, info.get("kind", "run"), depth)
    temp = _TEMP.fullmatch(entry.name)
    if entry.name not in info["files"] and not (temp and temp.group(1) in info["files"]):
        return False
    if entry.is_dir():  # a sweep's sub-run: bigram's if all in it is
        return not temp and foreign_entry(entry, depth + 1) is None
    return entry.is_file()


def foreign_entry(path: Path, depth: int = 0) -> str | None:
    """None when `path` is a directory bigram made holding only what its marker says bigram wrote
    there (sub-runs of a sweep included); otherwise what makes it foreign, for the error message."""
    if path.is_symlink() or not path.is_dir():
        return f"{escaped(path)} is not a directory bigram made"
    if depth > MAX_NESTING:
        return f"{escaped(path)} is nested deeper than bigram's runs are"
    info, why = read_marker(path)
    if info is None:
        return why
    for entry in path.iterdir():
        if _owned(entry, info, depth):
            continue
        if entry.is_symlink():
            return f"{escaped(entry)} is a symbolic link"
        if entry.is_dir():
            sub = entry.name in info.get("files", ()) or ("files" not in info and info.get("kind") == "sweep")
            inner = foreign_entry(entry, depth + 1) if sub else None
            return inner or f"{escaped(entry)} is a directory bigram did not make"
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
    if os.path.ismount(path):
        raise BigramError(
            f"--out {escaped(path)} is a mount point: --overwrite builds the new run beside the old one "
            "and renames it into place, which a mount point refuses; choose another --out"
        )
    why = foreign_entry(path)
    if why is None and (read_marker(path)[0] or {}).get("kind") == "tensorboard":
        why = "it is a run's TensorBoard directory"  # one model's event files inside a run
    if why is not None:
        raise BigramError(
            f"--out {escaped(path)} is not a bigram run directory ({why}): refusing to replace it"
        )
    return path


def _top_missing(path: Path) -> Path | None:
    """The highest of `path` and its parents that does not exist (what mkdir(parents=True) makes)."""
    top = None
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            break
        top = p
    return top


@contextmanager
def new_run_dir(
    out: str | Path | None, overwrite: bool = False, *, data: str | Path | None = None, kind: str = "run"
) -> Iterator[Path]:
    """The directory to write a new run into, marked as bigram's.

    Without `out`: a new runs/<date>_<time>. A new or empty --out is written in place (so that
    TensorBoard shows it while it trains). A run that --overwrite replaces is built beside it and
    swapped in only once complete (or stopped consistently, see TrainingStopped): until then the
    old run is untouched. If anything else goes wrong, what bigram wrote is removed again (and the
    directories it made, when nothing else was put in them meanwhile)."""
    if out is None:
        top = _top_missing(RUNS_DIR)
        final, staged = _stamp_dir(RUNS_DIR), False
        top = top or final
    else:
        final = check_out(out, overwrite, data)
        staged = final.exists() and any(final.iterdir())
        top = None if staged else _top_missing(final)
    try:
        work = _beside(final, "tmp", make=True) if staged else final
        work.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_dirs(final.parent, top)
        raise BigramError(f"cannot create run directory {escaped(final)}: {e.strerror or e}") from None
    try:
        mark(work, kind)
        yield work
    except TrainingStopped:
        _commit(work, final, staged)
        raise
    except BaseException:
        _discard(work, keep_dir=not staged and top is None)  # an empty directory the user made stays
        _remove_dirs(final.parent, top)
        raise
    _commit(work, final, staged)


def _beside(final: Path, tag: str, make: bool = False) -> Path:
    """A free hidden name beside `final`, .NAME.TAG-PID (then -1, -2, …: two runs of one process),
    made as a directory if `make` (so that no other process takes it)."""
    for i in range(1000):
        path = final.with_name(f".{final.name}.{tag}-{os.getpid()}" + (f"-{i}" if i else ""))
        if not make:
            if not path.exists() and not path.is_symlink():
                return path
            continue
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise BigramError(f"no free name beside {escaped(final)}: remove its .{final.name}.{tag}-* directories")


def _remove_dirs(path: Path, top: Path | None) -> None:
    """Remove `path` and its parents up to `top` (those a failed run made), each only if empty."""
    if top is None:
        return
    for p in (path, *path.parents):
        if p != top and top not in p.parents:
            return
        try:
            p.rmdir()
        except OSError:
            return


def _discard(work: Path, keep_dir: bool) -> None:
    """Remove a run that failed: what bigram wrote, then the marker too if the user put something
    there meanwhile (it stays, in a directory that is no longer a run)."""
    left, _ = _remove_owned(work, keep_dir)
    if left:
        _unlink(work / layout.MARKER)


def _remove_owned(path: Path, keep_dir: bool = False) -> tuple[list[Path], bool]:
    """Delete what bigram wrote in `path` (by its marker; its sub-runs likewise; the marker last)
    and then `path` itself unless `keep_dir`, if nothing else is in it. Returns what is left that
    is not bigram's (a whole sub-run, when something not bigram's is in it), and whether all of
    bigram's went (a file that cannot be deleted, read-only or busy, stays)."""
    info, _ = read_marker(path)
    left, done = [], True
    for entry in _entries(path):
        if entry.name == layout.MARKER and info is not None:
            continue
        if info is None or not _owned(entry, info):
            left.append(entry)
        elif entry.is_dir():
            inner, ok = _remove_owned(entry)
            left += [entry] if inner else []
            done = done and ok
        else:
            done = _unlink(entry) and done
    if left or not done:
        return left, done
    if info is not None:
        done = _unlink(path / layout.MARKER)
    if not keep_dir and done:
        try:
            path.rmdir()
        except OSError:  # something appeared since it was listed
            return [e for e in _entries(path) if e.name != layout.MARKER], done
    return [], done


def _entries(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def _unlink(path: Path) -> bool:
    """Delete a file bigram wrote (its directory made writable if it was not); whether it went."""
    for _ in range(2):
        try:
            path.unlink(missing_ok=True)
            return True
        except PermissionError:
            try:
                os.chmod(path.parent, 0o700)
            except OSError:
                return False
        except OSError:
            return False
    return False


def _commit(work: Path, final: Path, staged: bool) -> None:
    """Put a staged run in place of the old one (two bigram processes swapping in one directory
    take turns: two --overwrite of one run end with the later one, nothing of the user's lost)."""
    if staged:
        with _swap_lock(final.parent):
            _swap(work, final)


@contextmanager
def _swap_lock(parent: Path) -> Iterator[None]:
    """An exclusive lock on the directory holding the run, while a swap runs (where flock exists)."""
    try:
        import fcntl

        fd = os.open(parent, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _swap(work: Path, final: Path) -> None:
    """The old run is moved aside, the new one moved in; then what is in the old one is looked at
    again, by its marker, at that moment: anything not bigram's (a file put there while the new run
    was built) is moved into the new run, then bigram's files are deleted. A name the new run has
    too, or a marker no longer bigram's, undoes the swap: the old run goes back as it was."""
    if not final.exists() and not final.is_symlink():  # removed while the new run was built
        return _move(work, final, work, f"cannot put the new run at {escaped(final)}", "it was not kept")
    if final.is_symlink() or not final.is_dir():
        _remove_owned(work)
        raise BigramError(
            f"{escaped(final)} changed while --overwrite rebuilt it (it is no longer a directory): "
            "it is left as it is and the new run was not kept"
        )
    old = _beside(final, "old")
    kept = "the old run is unchanged and the new run was not kept"
    _move(final, old, work, f"cannot move {escaped(final)} aside to put the new run in its place", kept)
    _move(work, final, work, f"cannot put the new run in place of {escaped(final)}", kept, undo=old)
    why = _keep_foreign(old, final, strict=True)
    if why:
        os.replace(final, work)
        os.replace(old, final)
        _remove_owned(work)
        raise BigramError(
            f"{escaped(final)} changed while --overwrite rebuilt it ({why}): it is left as it was and "
            "the new run was not kept"
        )
    for _ in range(3):  # a file that appears in the old run while it is deleted is moved too
        left, done = _remove_owned(old)
        if not left or not done:
            break
        _keep_foreign(old, final, strict=False)
    if left or not done:
        print(
            f"note: what is left of the old run is in {escaped(old)}: look, then remove it", file=sys.stderr
        )


def _move(src: Path, dst: Path, work: Path, what: str, then: str, undo: Path | None = None) -> None:
    """Rename `src` to `dst`. On failure: the old run goes back from `undo` (where it was moved
    aside), the new run (`work`) is removed, and the error is one line: `what`, why, `then`."""
    try:
        os.replace(src, dst)
    except OSError as e:
        try:
            if undo is not None:
                os.replace(undo, dst)
        except OSError:
            then = f"the old run is in {escaped(undo)}: move it back to {escaped(dst)}"
        _remove_owned(work)
        raise BigramError(f"{what}: {e.strerror or e}; {then}") from None


def _keep_foreign(old: Path, final: Path, strict: bool) -> str | None:
    """Move what is not bigram's in `old` (the run being replaced) into `final` (the new run).
    `strict`: say why the swap must be undone instead (a name the new run has too, or a marker no
    longer bigram's); else such an entry stays in `old`."""
    info, _ = read_marker(old)
    if info is None:
        return f"its {layout.MARKER} marker is gone or no longer bigram's" if strict else None
    foreign = [e for e in _entries(old) if not _owned(e, info)]
    taken = [e for e in foreign if (final / e.name).exists() or (final / e.name).is_symlink()]
    if strict and taken:
        return (
            f"{escaped(final / taken[0].name)} appeared in it, and the new run has a file of that name; "
            "move it away and train again"
        )
    kept = []
    for e in foreign:
        try:
            if e not in taken:
                os.replace(e, final / e.name)
                kept.append(e)
        except OSError:
            pass  # it stays in the old run, which then stays too (and is named)
    if kept:
        shown = ", ".join(escaped(e.name) for e in kept[:5]) + (", …" if len(kept) > 5 else "")
        print(f"note: kept {shown}, put into {escaped(final)} while it was rebuilt", file=sys.stderr)
    return None


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
    if p.exists() and not p.is_dir():
        raise BigramError(
            f"{escaped(p)} is a file, not a run directory: name a directory made by `bigram train`"
        )
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
