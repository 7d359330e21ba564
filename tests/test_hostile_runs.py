"""Hostile run directories (issue 44): --overwrite deletes only what the run's marker says bigram
wrote, and looks again at the moment of the swap; every write failure is one line and leaves
nothing staged; damaged run files (event files, metrics.json, the marker, FIFOs) give a page that
says what it could not read, or one line, never a traceback or a hang."""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import signal
import struct
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import one_line_error

FLAGS = ("-q", "--no-figures", "--steps", "3", "--val-frac", "0", "--test-frac", "0")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """One small run (both models, TensorBoard events), trained once and copied by each test."""
    from typer.testing import CliRunner

    from bigram.cli import app

    root = tmp_path_factory.mktemp("hostile")
    (root / "tiny.txt").write_text("ab\nab\nb\nba\nanna\nbob\n")
    args = ["train", "--data", str(root / "tiny.txt"), "--out", str(root / "base"), *FLAGS]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return root / "base"


def copy(base: Path, to: Path, legacy: bool = False) -> Path:
    """A copy of the base run; `legacy`: as bigram wrote it before its marker listed files (its
    event files beside the others, not in a directory per model)."""
    shutil.copytree(base, to, symlinks=True)
    if legacy:
        info = json.loads((to / ".bigram-run").read_text())
        del info["files"]
        (to / ".bigram-run").write_text(json.dumps(info))
        for model in ("count", "neural"):
            for events in (to / model).glob("events.out.tfevents.*"):
                events.rename(to / events.name)
            shutil.rmtree(to / model)
    return to


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def staged(parent: Path) -> list[str]:
    """Staging or old-run directories left beside runs."""
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def overwrite(invoke, data: Path, run: Path, *extra: str):
    return invoke("train", "--data", data, "--out", run, "--overwrite", *FLAGS, *extra)


def marker(run: Path) -> dict:
    return json.loads((run / ".bigram-run").read_text())


# --- ownership: the marker's list, not a name pattern ---------------------------------------------


def test_the_marker_lists_exactly_the_files_bigram_wrote(base, invoke, tmp_path):
    run = copy(base, tmp_path / "r")
    on_disk = {p.name for p in run.iterdir()} - {".bigram-run"}
    assert set(marker(run)["files"]) == on_disk
    assert {"config.toml", "vocab.json", "counts.pt", "count.pt", "neural.pt", "metrics.json"} < on_disk
    assert {"count", "neural"} < on_disk and not any(n.startswith("events.out.tfevents.") for n in on_disk)
    for model in ("count", "neural"):  # TensorBoard's runs: each directory lists its one event file
        on_disk = {p.name for p in (run / model).iterdir()} - {".bigram-run"}
        assert set(marker(run / model)["files"]) == on_disk and len(on_disk) == 1
    # the run's own page is bigram's; a page or an export written elsewhere in it is the user's
    assert invoke("explore", run).exit_code == 0
    assert invoke("explore", run, "--out", run / "mine.html").exit_code == 0
    assert invoke("export", run, "--out", run / "names.arpa").exit_code == 0
    files = set(marker(run)["files"])
    assert "explore.html" in files and "mine.html" not in files and "names.arpa" not in files
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "not a file bigram writes")


def test_a_page_of_the_users_named_explore_html_in_a_run_is_never_replaced(base, invoke, tmp_path):
    """explore's default page goes into the run, but not over an explore.html bigram did not write
    there (the marker does not list it), with or without --overwrite; the run's own is rewritten."""
    run = copy(base, tmp_path / "r")
    (run / "explore.html").write_text("my page")
    for extra in ([], ["--overwrite"]):
        r = invoke("explore", run, *extra)
        one_line_error(r, f"{run / 'explore.html'} is already there and bigram did not", "--out FILE")
    assert (run / "explore.html").read_text() == "my page" and "explore.html" not in marker(run)["files"]
    (run / "explore.html").unlink()
    assert invoke("explore", run).exit_code == 0 and invoke("explore", run).exit_code == 0
    assert (run / "explore.html").read_text().startswith("<!doctype html>")


@pytest.mark.parametrize("legacy", [False, True], ids=["listed", "legacy"])
@pytest.mark.parametrize(
    "name",
    [
        ".my-notes.tmp-2024",  # the issue's: looked like an atomic write's leftover
        "events.out.tfevents.1.thesis-backup.1.1",  # the issue's: looked like TensorBoard's
        "events.out.tfevents.1700000000.host.12.0",  # named exactly as TensorBoard names them
        ".config.toml.tmp-x",
    ],
)
def test_files_named_like_bigrams_are_the_users(base, invoke, tmp_path, name, legacy):
    run = copy(base, tmp_path / "r", legacy)
    (run / name).write_text("my thesis\n")
    before = tree(tmp_path)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), name, "not a file bigram writes")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("model", ["count", "neural"])
def test_a_file_put_into_a_models_event_directory_is_the_users(base, invoke, tmp_path, model):
    run = copy(base, tmp_path / "r")
    (run / model / "events.out.tfevents.1700000000.host.12.0").write_text("my thesis\n")
    before = tree(tmp_path)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "not a file bigram writes")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("what", ["file", "directory", "link"])
def test_a_models_event_directory_name_taken_by_the_user_is_never_claimed(base, invoke, tmp_path, what):
    """RUN/neural that bigram did not make (a file, a directory without its marker, a link): the
    writer refuses before the name goes into the run's marker, so --overwrite never deletes it."""
    from bigram.errors import BigramError
    from bigram.formats import tensorboard

    run = copy(base, tmp_path / "r")
    shutil.rmtree(run / "neural")
    info = marker(run)
    info["files"].remove("neural")
    (run / ".bigram-run").write_text(json.dumps(info))
    if what == "file":
        (run / "neural").write_text("my notes\n")
    elif what == "directory":
        (run / "neural").mkdir()
        (run / "neural" / "notes.txt").write_text("my notes\n")
    else:
        (run / "neural").symlink_to(tmp_path)
    writers = tensorboard.open_writer(run)
    with pytest.raises(BigramError, match="bigram did not make it"):
        writers["neural"]
    writers.close()
    assert "neural" not in marker(run)["files"]
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "neural")  # still the user's: kept
    assert (run / "neural").exists() or (run / "neural").is_symlink()


def test_a_runs_tensorboard_directory_is_no_run_to_overwrite(base, invoke, tmp_path):
    run = copy(base, tmp_path / "r")
    before = tree(tmp_path)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run / "neural"), "TensorBoard directory")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("legacy", [False, True], ids=["listed", "legacy"])
def test_a_run_and_its_crashed_write_are_replaced(base, invoke, tmp_path, legacy):
    """What bigram did write goes: its event file (in a legacy run: named and begun as TensorBoard's)
    and an atomic write's leftover of a file it lists (a process killed mid-write)."""
    run = copy(base, tmp_path / "r", legacy)
    (run / ".config.toml.tmp-4242").write_text("half")
    r = overwrite(invoke, base.parent / "tiny.txt", run, "--seed", "7")
    assert r.exit_code == 0, r.output
    assert "seed = 7" in (run / "config.toml").read_text()
    assert not (run / ".config.toml.tmp-4242").exists()
    assert set(marker(run)["files"]) == {p.name for p in run.iterdir()} - {".bigram-run"}
    assert staged(tmp_path) == []


# --- the swap: ownership looked at again -----------------------------------------------------------


@contextmanager
def during_training(monkeypatch, act):
    """Run `act(final run directory)` while the replacing run trains."""
    import bigram.training

    real = bigram.training._fit_and_report

    def fit(run, *a, **k):
        act(k["final_dir"])
        return real(run, *a, **k)

    monkeypatch.setattr(bigram.training, "_fit_and_report", fit)
    yield
    monkeypatch.setattr(bigram.training, "_fit_and_report", real)


def test_files_put_into_a_run_while_it_is_rebuilt_are_kept(base, invoke, tmp_path, monkeypatch):
    run = copy(base, tmp_path / "r")
    old_events = {p.name for p in run.glob("*/events.out.tfevents.*")}
    assert len(old_events) == 2

    def meanwhile(final: Path) -> None:
        (final / "notes.txt").write_text("my notes\n")
        (final / "plots").mkdir()
        (final / "plots" / "a.txt").write_text("a\n")
        r = invoke("export", final, "--out", final / "names.arpa")  # bigram itself, for the user
        assert r.exit_code == 0, r.output

    with during_training(monkeypatch, meanwhile):
        r = overwrite(invoke, base.parent / "tiny.txt", run, "--seed", "9")
    assert r.exit_code == 0, r.output
    assert "kept" in r.stderr and "notes.txt" in r.stderr
    assert "seed = 9" in (run / "config.toml").read_text()  # the new run is in place
    assert (run / "notes.txt").read_text() == "my notes\n"
    assert (run / "plots" / "a.txt").read_text() == "a\n"
    assert (run / "names.arpa").read_text().startswith("\\data\\")
    assert not old_events & {p.name for p in run.glob("*/*")}  # the old run's own files went
    assert staged(tmp_path) == []
    # they are the user's: the next --overwrite refuses, naming one
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "not")


def test_a_name_the_new_run_also_has_undoes_the_swap(invoke, tmp_path, monkeypatch, base):
    """A count-only run; while a both-models run replaces it the user puts a neural.pt there."""
    data = base.parent / "tiny.txt"
    run = tmp_path / "r"
    assert invoke("train", "--data", data, "--out", run, "--model", "count", *FLAGS).exit_code == 0
    before = tree(run)
    with during_training(monkeypatch, lambda final: (final / "neural.pt").write_text("mine\n")):
        r = overwrite(invoke, data, run)
    one_line_error(r, "changed while --overwrite rebuilt it", "neural.pt", "not kept")
    assert tree(run) == {**before, "neural.pt": b"mine\n"} and staged(tmp_path) == []
    assert 'model = "count"' in (run / "config.toml").read_text()


def test_a_marker_removed_while_rebuilt_undoes_the_swap(base, invoke, tmp_path, monkeypatch):
    run = copy(base, tmp_path / "r")
    with during_training(monkeypatch, lambda final: (final / ".bigram-run").unlink()):
        r = overwrite(invoke, base.parent / "tiny.txt", run, "--seed", "9")
    one_line_error(r, "marker is gone", "not kept")
    assert tree(run) == {k: v for k, v in tree(base).items() if k != ".bigram-run"}
    assert staged(tmp_path) == []


def test_a_run_removed_while_rebuilt_gets_the_new_run(base, invoke, tmp_path, monkeypatch):
    run = copy(base, tmp_path / "r")
    with during_training(monkeypatch, shutil.rmtree):
        r = overwrite(invoke, base.parent / "tiny.txt", run, "--seed", "9")
    assert r.exit_code == 0, r.output
    assert "seed = 9" in (run / "config.toml").read_text() and staged(tmp_path) == []


def test_a_run_replaced_by_a_file_while_rebuilt_is_left(base, invoke, tmp_path, monkeypatch):
    run = copy(base, tmp_path / "r")

    def to_file(final: Path) -> None:
        shutil.rmtree(final)
        final.write_text("now a file\n")

    with during_training(monkeypatch, to_file):
        one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "no longer a directory")
    assert run.read_text() == "now a file\n" and staged(tmp_path) == []


def test_a_file_in_a_sweeps_sub_run_while_rebuilt_keeps_that_sub_run(invoke, tmp_path, monkeypatch, base):
    data = base.parent / "tiny.txt"
    r = invoke("sweep", "--reg", "0,0.1", "--data", data, "--out", tmp_path / "sw", "--steps", "2", "-q")
    assert r.exit_code == 0, r.output
    assert marker(tmp_path / "sw") == {"made_by": "bigram", "kind": "sweep", "files": ["reg=0", "reg=0.1"]}
    with during_training(monkeypatch, lambda final: (final / "reg=0" / "notes.txt").write_text("n\n")):
        r = overwrite(invoke, data, tmp_path / "sw")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sw" / "reg=0" / "notes.txt").read_text() == "n\n"
    assert not (tmp_path / "sw" / "reg=0.1").exists() and (tmp_path / "sw" / "neural.pt").is_file()


def test_two_overwrites_of_one_run_end_with_the_later_one(base, tmp_path):
    """Two replacing runs built at once (here in one process: the staging names must differ) and
    committed one after the other: the later is in place, nothing is left beside it."""
    from bigram.safety import rundir

    run = copy(base, tmp_path / "r")
    with rundir.new_run_dir(run, overwrite=True) as first:
        rundir.own(first, "config.toml").write_text("first\n")
        with rundir.new_run_dir(run, overwrite=True) as second:
            assert second != first
            rundir.own(second, "config.toml").write_text("second\n")
        assert (run / "config.toml").read_text() == "second\n"
    assert (run / "config.toml").read_text() == "first\n"
    assert {p.name for p in run.iterdir()} == {".bigram-run", "config.toml"} and staged(tmp_path) == []


# --- a failed run removes only what it wrote ---------------------------------------------------------


def test_a_failed_run_keeps_what_the_user_put_in_its_directory(base, invoke, tmp_path, monkeypatch):
    import bigram.training

    def fail(run, *a, **k):
        (run / "notes.txt").write_text("mine\n")
        raise KeyboardInterrupt

    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(bigram.training, "_fit_and_report", fail)
    for out in (tmp_path / "empty", tmp_path / "new"):
        r = invoke("train", "--data", base.parent / "tiny.txt", "--out", out, *FLAGS)
        assert r.exit_code == 130, r.output
        assert [p.name for p in out.iterdir()] == ["notes.txt"]  # no marker: not a run any more


def test_a_failed_run_removes_the_directories_it_made(base, invoke, tmp_path, monkeypatch):
    import bigram.training

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bigram.training, "_fit_and_report", fail)
    r = invoke("train", "--data", base.parent / "tiny.txt", "--out", tmp_path / "a" / "b" / "c", *FLAGS)
    assert r.exit_code == 130 and not (tmp_path / "a").exists()
    r = invoke("train", "--data", base.parent / "tiny.txt", *FLAGS)  # runs/<date>_<time>, and runs/
    assert r.exit_code == 130 and not (tmp_path / "runs").exists()


# --- damaged markers, links, a run that is a file ---------------------------------------------------


def _marker_dir(m: Path) -> None:
    m.unlink()
    m.mkdir()


def _marker_link(m: Path) -> None:
    other = m.parent.parent / "other-marker"
    other.write_text(m.read_text())
    m.unlink()
    m.symlink_to(other)


DAMAGED = {
    "garbage": lambda m: m.write_text("{not json"),
    "nested": lambda m: m.write_text("[" * 100_000 + "]" * 100_000),
    "huge": lambda m: m.write_text(json.dumps({"made_by": "bigram", "files": [], "pad": "x" * 1_100_000})),
    "not bigram's": lambda m: m.write_text(json.dumps({"made_by": "someone", "files": []})),
    "files not a list": lambda m: m.write_text(json.dumps({"made_by": "bigram", "files": "config.toml"})),
    "a directory": _marker_dir,
    "a link": _marker_link,
}


@pytest.mark.parametrize("damage", DAMAGED)
def test_a_damaged_marker_is_not_bigrams_and_the_run_still_reads(base, invoke, tmp_path, damage):
    run = copy(base, tmp_path / "r")
    DAMAGED[damage](run / ".bigram-run")
    before = tree(tmp_path)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), ".bigram-run", "refusing to replace it")
    assert tree(tmp_path) == before
    r = invoke("sample", run, "-n", "3", "--seed", "1")  # reading commands take it as complete
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3, r.output


def test_a_marker_listing_names_outside_the_run_protects_nothing_outside(base, invoke, tmp_path):
    run = copy(base, tmp_path / "r")
    info = marker(run) | {"files": ["../tiny.txt", "/etc/passwd", "..", "notes.txt"]}
    (run / ".bigram-run").write_text(json.dumps(info))
    (run / "notes.txt").write_text("listed, so bigram's: the marker says so\n")
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "not a file bigram writes")
    assert (base.parent / "tiny.txt").is_file()


@pytest.mark.parametrize("link", ["link", "config.toml"])
def test_a_link_in_a_run_stops_overwrite_and_its_target_stays(base, invoke, tmp_path, link):
    run = copy(base, tmp_path / "r")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep\n")
    (run / link).unlink(missing_ok=True)
    (run / link).symlink_to(precious)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "symbolic link")
    assert precious.read_text() == "keep\n" and (run / link).is_symlink()


def test_a_run_that_is_a_file(invoke, tmp_path):
    (tmp_path / "r").write_text("x\n")
    for command in ("explore", "sample", "eval"):
        one_line_error(invoke(command, tmp_path / "r"), "is a file, not a run directory")


# --- write failures: one line, nothing staged -----------------------------------------------------


@contextmanager
def read_only(monkeypatch, root: Path, code: int = errno.EROFS):
    """Every write under `root` fails as on a read-only file system (tests run as root, which
    chmod does not stop): opening for writing, creating, renaming, removing."""
    root = str(root.resolve())

    def under(path) -> bool:
        if not isinstance(path, (str, bytes, os.PathLike)):
            return False  # a file descriptor
        return os.path.abspath(os.fsdecode(path)).startswith(root)

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open = builtins.open, os.open

    def open_(file, mode="r", *a, **k):
        if under(file) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *a, **k)

    def os_open(path, flags, *a, **k):
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *a, **k)

    def two(real):
        return lambda src, dst, *a, **k: refuse(src) if under(src) or under(dst) else real(src, dst, *a, **k)

    def one(real):
        return lambda path, *a, **k: refuse(path) if under(path) else real(path, *a, **k)

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", open_)
        m.setattr(os, "open", os_open)
        for name in ("replace", "rename"):
            m.setattr(os, name, two(getattr(os, name)))
        for name in ("unlink", "remove", "mkdir", "rmdir"):
            m.setattr(os, name, one(getattr(os, name)))
        yield


@pytest.mark.parametrize("legacy", [False, True], ids=["listed", "legacy"])
def test_every_write_into_a_read_only_run_is_one_line(base, invoke, tmp_path, monkeypatch, legacy):
    """The issue's tracebacks: explore's default page, export --out, plot --out, train --resume."""
    run = copy(base, tmp_path / "r", legacy)
    before = tree(tmp_path)
    with read_only(monkeypatch, run):
        one_line_error(invoke("explore", run), "cannot write", "Read-only file system", "--out")
        one_line_error(invoke("export", run, "--out", run / "x.arpa"), "cannot write", "Read-only")
        why = ("made before bigram listed the files",) if legacy else ("cannot write", "Read-only")
        one_line_error(invoke("export", run), *why, "pass --out FILE to write the export elsewhere")
        one_line_error(invoke("plot", run, "--out", run / "x.png"), "cannot write", "Read-only")
        one_line_error(invoke("train", "--resume", run, "--steps", "5", "-q"), "cannot write", "Read-only")
        r = invoke("explore", run, "--out", tmp_path / "page.html")  # elsewhere it works
        assert r.exit_code == 0, r.output
    assert tree(tmp_path) == {**before, "page.html": (tmp_path / "page.html").read_bytes()}


@pytest.mark.parametrize("code", [errno.EBUSY, errno.EXDEV])
def test_a_swap_that_fails_is_one_line_and_leaves_the_old_run(base, invoke, tmp_path, monkeypatch, code):
    """Moving the old run aside fails (a busy mount point, say): the new run is not kept, nothing
    is left beside the old one, which is as it was."""
    run = copy(base, tmp_path / "r")
    before = tree(run)
    real = os.replace

    def replace(src, dst, *a, **k):
        if Path(src) == run:
            raise OSError(code, os.strerror(code))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "cannot move", os.strerror(code))
    assert tree(run) == before and staged(tmp_path) == []


def test_a_new_run_that_cannot_be_swapped_in_puts_the_old_one_back(base, invoke, tmp_path, monkeypatch):
    run = copy(base, tmp_path / "r")
    before = tree(run)
    real = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst) == run and ".tmp-" in Path(src).name:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), "cannot put the new run in place")
    assert tree(run) == before and staged(tmp_path) == []


# --- damaged run files read by explore (and by every command) -----------------------------------


def page_data(run: Path) -> dict:
    text = (run / "explore.html").read_text(encoding="utf-8")
    return json.loads(text.split('<script type="application/json" id="data">')[1].split("</script>")[0])


def own_events(run: Path, points: list[tuple[int, float]]) -> Path:
    """The run's event files replaced by one in neural/ holding train/nll at the given (step, value)s."""
    from torch.utils.tensorboard import SummaryWriter

    for p in run.glob("*/events.out.tfevents.*"):
        p.unlink()
    w = SummaryWriter(str(run / "neural"))
    for step, x in points:
        w.add_scalar("train/nll", x, step)
    w.close()
    return next(run.glob("neural/events.out.tfevents.*"))


def record(payload: bytes, length: int | None = None) -> bytes:
    """A TFRecord (its CRCs zero: bigram does not check them) claiming `length` bytes."""
    return struct.pack("<Q", len(payload) if length is None else length) + b"\0" * 4 + payload + b"\0" * 4


EVENTS = {
    "random bytes": lambda: os.urandom(500),
    "a record claiming 2^63 bytes": lambda: record(b"\0" * 20, 1 << 63),
    "not an event": lambda: record(b"\xff" * 40),
    "cut short": lambda: record(b"\x08\x01" * 10)[:-10],
}


@pytest.mark.parametrize("damage", EVENTS)
def test_a_damaged_event_file_gives_a_page_that_says_so(base, invoke, tmp_path, damage):
    run = copy(base, tmp_path / "r")
    good = own_events(run, [(1, 2.5), (2, 2.25), (3, 2.0)])
    with open(good, "ab") as f:  # the damage after three good points
        f.write(EVENTS[damage]())
    r = invoke("explore", run)
    assert r.exit_code == 0, r.output
    data = page_data(run)
    assert data["curves"] == {"train/nll": [[1, 2.5], [2, 2.25], [3, 2.0]]}
    assert len(data["unread"]) == 1 and good.name in data["unread"][0], data["unread"]
    # a whole file of it, alone: no points, and the page says why
    good.write_bytes(EVENTS[damage]())
    assert invoke("explore", run).exit_code == 0
    assert page_data(run)["curves"] == {} and "could not be read whole" in page_data(run)["unread"][0]


def test_non_finite_scalars_are_left_out_of_the_curves(base, invoke, tmp_path):
    run = copy(base, tmp_path / "r")
    own_events(run, [(1, 2.5), (2, float("nan")), (3, float("inf")), (4, 2.0)])
    assert invoke("explore", run).exit_code == 0
    assert page_data(run)["curves"] == {"train/nll": [[1, 2.5], [4, 2.0]]}


@contextmanager
def at_most(seconds: int):
    """Fail instead of hanging (a FIFO read without a writer blocks forever)."""

    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def fifo(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def test_fifos_and_directories_in_a_run_never_hang_a_command(base, invoke, tmp_path):
    run = copy(base, tmp_path / "r")
    events = next(run.glob("neural/events.out.tfevents.*"))
    with at_most(30):
        fifo(events)
        assert invoke("explore", run).exit_code == 0
        assert "not a regular file" in page_data(run)["unread"][0]
        events.unlink()
        events.mkdir()
        assert invoke("explore", run).exit_code == 0
        assert "not a regular file" in page_data(run)["unread"][0]
        fifo(run / "metrics.json")
        assert invoke("explore", run).exit_code == 0
        assert page_data(run)["metrics"] == {} and "metrics.json" in page_data(run)["unread"][0]
        fifo(run / "config.toml")
        for command in ("explore", "sample"):
            one_line_error(invoke(command, run), "config.toml", "not a regular file")
        fifo(run / ".bigram-run")
        one_line_error(overwrite(invoke, base.parent / "tiny.txt", run), ".bigram-run is not a plain file")


@pytest.mark.parametrize("name", ["config.toml", "vocab.json"])
def test_a_deeply_nested_run_file_is_one_line(base, invoke, tmp_path, name):
    run = copy(base, tmp_path / "r")
    (run / name).write_text(("a = " if name.endswith(".toml") else "") + "[" * 100_000 + "]" * 100_000)
    one_line_error(invoke("sample", run, "-n", "1"), name, "nested too deeply")


def test_a_run_file_over_its_cap_is_one_line(base, invoke, tmp_path):
    from bigram.runs import SMALL_FILE_BYTES

    run = copy(base, tmp_path / "r")
    with open(run / "vocab.json", "r+b") as f:
        f.truncate(SMALL_FILE_BYTES + 1)  # sparse: no disk spent
    one_line_error(invoke("sample", run, "-n", "1"), "vocab.json", "larger than")


METRICS = {  # the damage, and the model whose train row it spoils
    "a string for a number": (lambda m: m["count"]["train"].update(nll="oops"), "count"),
    "a bool for a count": (lambda m: m["neural"]["train"].update(bigrams=True), "neural"),
    "a list for a model": (lambda m: m.update(neural=[1, 2]), "neural"),
    "a split that is a string": (lambda m: m["count"].update(train="x"), "count"),
    "an unknown split": (lambda m: m.update(count={"nope": m["count"]["train"]}), "count"),
}


@pytest.mark.parametrize("damage", METRICS)
def test_a_metrics_value_that_is_not_a_number_leaves_its_row_out(base, invoke, tmp_path, damage):
    run = copy(base, tmp_path / "r")
    metrics = json.loads((run / "metrics.json").read_text())
    k = metrics["smoothing"]["chosen"]
    spoil, broken = METRICS[damage]
    spoil(metrics)
    metrics["smoothing"]["chosen"] = "abc"  # the ValueError; the note reads k from count.pt
    metrics["neural_training"] = {"steps": "x", "lr": "y", "optimizer": 3}
    (run / "metrics.json").write_text(json.dumps(metrics))
    r = invoke("explore", run)
    assert r.exit_code == 0, r.output
    data = page_data(run)
    other = {"count", "neural"} - {broken}
    assert set(data["metrics"]) == other and set(data["metrics"][other.pop()]) == {"train"}
    assert "metrics.json holds something other than numbers" in " ".join(data["unread"])
    assert data["model_notes"]["count"] == f"add-k smoothing, k = {k:.4g}"
    assert data["model_notes"]["neural"] == "Newton (lr 1), reg = 0.01"  # its steps left out


@pytest.mark.parametrize("text", ["null", "[]", "{not json", "[" * 100_000 + "]" * 100_000, ""])
def test_a_metrics_file_that_is_not_an_object_gives_a_page_without_its_table(base, invoke, tmp_path, text):
    run = copy(base, tmp_path / "r")
    (run / "metrics.json").write_text(text)
    r = invoke("explore", run)
    assert r.exit_code == 0, r.output
    data = page_data(run)
    assert data["metrics"] == {} and "no evaluation table" in data["unread"][0]
    assert data["model_notes"]["neural"].startswith("Newton (lr 1)")  # from the config, in train's words


def test_infinite_metrics_travel_as_text(invoke, tmp_path):
    """k = 0 and a held-out name with an unseen bigram: val NLL = inf, which JSON cannot hold."""
    data = tmp_path / "d.txt"
    data.write_text("ab\nab\nba\nbb\naa\nab\nzq\n")
    run = tmp_path / "r"
    r = invoke("train", "--data", data, "--out", run, "--smoothing", "0", "--model", "count", "--val-frac",
               "0.3", "--test-frac", "0", "--seed", "3", "-q", "--no-figures")  # fmt: skip
    assert r.exit_code == 0, r.output
    raw = json.loads((run / "metrics.json").read_text())
    infinite = [s for s, m in raw["count"].items() if m["nll"] == float("inf")]
    assert infinite, raw  # the case this test is about
    assert invoke("explore", run).exit_code == 0
    assert all(page_data(run)["metrics"]["count"][s]["nll"] == "Infinity" for s in infinite)


def test_a_run_whose_name_is_not_utf8(base, invoke, tmp_path):
    run = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff\xfe"))
    copy(base, run)
    r = invoke("explore", run)
    assert r.exit_code == 0, r.output
    text = (run / "explore.html").read_bytes().decode("utf-8")  # valid UTF-8 throughout
    assert "bad\\xff\\xfe</title>" in text
    assert page_data(run)["run"].endswith("bad\\xff\\xfe")
    assert "explore.html" in marker(run)["files"]


def test_resume_of_a_legacy_run_keeps_it_replaceable(base, invoke, tmp_path):
    run = copy(base, tmp_path / "r", legacy=True)
    r = invoke("train", "--resume", run, "--steps", "5", "-q")
    assert r.exit_code == 0, r.output
    assert "files" not in marker(run) and len(list(run.glob("events.out.tfevents.*"))) == 2
    assert len(list(run.glob("*/events.out.tfevents.*"))) == 2  # the resumed steps', a directory per model
    r = overwrite(invoke, base.parent / "tiny.txt", run)
    assert r.exit_code == 0, r.output
    assert set(marker(run)["files"]) == {p.name for p in run.iterdir()} - {".bigram-run"}


def test_a_tower_of_markers_is_not_bigrams(base, invoke, tmp_path):
    """50 directories each marked as a sweep listing the next (deep enough, 1,000, it would be a
    RecursionError without the cap; 50 keeps pytest's own cleanup within its recursion)."""
    top = p = tmp_path / "deep"
    for _ in range(50):
        p.mkdir()
        (p / ".bigram-run").write_text(json.dumps({"made_by": "bigram", "kind": "sweep", "files": ["s"]}))
        p = p / "s"
    one_line_error(overwrite(invoke, base.parent / "tiny.txt", top), "nested deeper than bigram's runs are")
    assert p.parent.is_dir()
