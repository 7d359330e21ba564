"""Shared fixtures, paths and CLI helpers. The plain-Python references live in tests/reference.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from tests.reference import plain_names

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT / "data" / "names.txt"


@pytest.fixture(scope="session")
def names() -> list[str]:
    return plain_names(NAMES)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner, monkeypatch, tmp_path):
    """Run the CLI in-process from a fresh working directory; returns the click Result."""
    from bigram.cli import app

    monkeypatch.chdir(tmp_path)

    def _invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return _invoke


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """ab, ab, b, ba: small enough to derive every probability by hand."""
    p = tmp_path / "tiny.txt"
    p.write_text("ab\nab\nb\nba\n", encoding="utf-8")
    return p


def one_line_error(r, *needles: str) -> None:
    """The command failed with exit 1 and one line `error: …` naming each needle, no traceback."""
    assert r.exit_code == 1, r.output
    assert r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.output, (n, r.output)


def train_run(invoke, data, out, *extra):
    """`bigram train` of data into out, quietly, without figures; it must succeed."""
    r = invoke("train", "--data", data, "--out", out, "-q", "--no-figures", *extra)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def run(invoke, tmp_path, tiny_corpus) -> Path:
    """A small run of the tiny corpus, both models, no held-out splits."""
    out = tmp_path / "run"
    r = invoke("train", "--data", tiny_corpus, "--out", out, "-q", "--no-figures", "--steps", "5",
               "--val-frac", "0", "--test-frac", "0")  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def small(invoke, tmp_path, tiny_corpus) -> Path:
    """Like `run`, in tmp_path / "r" and with 3 steps: the tiny corpus, both models, no held-out splits."""
    flags = ("--steps", "3", "--val-frac", "0", "--test-frac", "0")
    return train_run(invoke, tiny_corpus, tmp_path / "r", *flags)


@pytest.fixture(scope="session")
def lecture_runs(tmp_path_factory) -> dict[int, Path]:
    """names.txt without held-out splits, smoothing 0 and 1, neural model by L-BFGS: trained once."""
    from bigram.cli import app

    root = tmp_path_factory.mktemp("lecture-runs")
    runs = {}
    for k in (0, 1):
        out = root / f"k{k}"
        args = ["train", "--data", str(NAMES), "--out", str(out), "--val-frac", "0", "--test-frac", "0",
                "--smoothing", str(k), "--optimizer", "lbfgs", "--steps", "60", "-q"]  # fmt: skip
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        runs[k] = out
    return runs


# property-based tests: few examples, no deadline (a first call may compile numba kernels)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("ci")
