"""Shared fixtures. Reference values are computed here in plain Python, independently of bigram."""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT / "data" / "names.txt"


def plain_names(path: Path = NAMES) -> list[str]:
    return [w for w in (line.strip() for line in path.read_text(encoding="utf-8").splitlines()) if w]


def plain_counts(names: list[str]) -> Counter:
    """The lecture's loop: every bigram of .name. counted in a dict (None is the boundary)."""
    c: Counter = Counter()
    for w in names:
        chs = [None, *w, None]
        for a, b in pairwise(chs):
            c[a, b] += 1
    return c


def plain_nll(names: list[str], k: float) -> float:
    """Mean −log P over all bigrams of the add-k count model, in plain Python floats."""
    c = plain_counts(names)
    alphabet = sorted({ch for w in names for ch in w})
    V = len(alphabet) + 1
    rows: Counter = Counter()
    for (a, _), n in c.items():
        rows[a] += n
    total = sum(c.values())
    return -math.fsum(n * math.log((n + k) / (rows[a] + k * V)) for (a, _), n in c.items()) / total


@pytest.fixture(scope="session")
def names() -> list[str]:
    return plain_names()


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
