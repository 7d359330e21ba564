"""Config keys, files and flags (config.py): bad values refused by name, in files and flags alike."""

from __future__ import annotations

import pytest

from tests.conftest import NAMES, one_line_error


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--smoothing", "nan"), ("--smoothing", "inf"), ("--smoothing", "1e308"), ("--lr", "nan"),
     ("--lr", "inf"), ("--reg", "nan"), ("--reg", "inf"), ("--reg", "1e308"), ("--seed", str(2**64))],
)  # fmt: skip
def test_non_finite_or_huge_values_are_refused_by_name(invoke, tmp_path, tiny_corpus, flag, value):
    out = tmp_path / "run"
    r = invoke("train", "--data", tiny_corpus, "--out", out, "-q", flag, value)
    one_line_error(r, flag.strip("-").replace("-", "_"))
    assert not out.exists()


def test_config_files_are_checked_the_same_way(invoke, tmp_path, tiny_corpus):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data = "{tiny_corpus}"\nsmoothing = nan\n')
    one_line_error(invoke("train", "--config", cfg), "smoothing")
    cfg.write_text(f'data = "{tiny_corpus}"\nreg = inf\n')
    one_line_error(invoke("train", "--config", cfg), "reg")


@pytest.mark.parametrize(
    ("toml", "needles"),
    [
        ("learning_rate = 1.0\n", ["'learning_rate'", "'lr'"]),
        ("smoothing = 'lots'\n", ["smoothing", "number"]),
        ("steps = 2.5\n", ["steps", "integer"]),
        ("lowercase = 1\n", ["lowercase", "true or false"]),
        ("steps = 0\n", ["steps"]),
        ("steps = -5\n", ["steps"]),
        ("lr = 0.0\n", ["lr"]),
        ("lr = -1.0\n", ["lr"]),
        ("smoothing = -1.0\n", ["smoothing"]),
        ("reg = -0.1\n", ["reg"]),
        ("val_frac = 0.5\ntest_frac = 0.5\n", ["no training names"]),
        ("model = 'gpt'\n", ["count, neural, both"]),
        ("steps = \n", ["not valid TOML"]),
    ],
)
def test_bad_config_is_refused(invoke, tmp_path, toml, needles):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data = "{NAMES}"\n' + toml)
    one_line_error(invoke("train", "--config", cfg), *needles)


def test_changing_the_optimizer_drops_a_config_files_default_lr():
    """lecture.toml's lr = 50 is SGD's step: with --optimizer newton or adam the run takes that
    optimizer's own default (1, 0.1), unless --lr is given; SGD keeps 50 (issue 32)."""
    from bigram.config import resolve

    assert resolve("lecture", {"optimizer": "newton"}).learning_rate == 1.0
    assert resolve("lecture", {"optimizer": "adam"}).learning_rate == 0.1
    assert resolve("lecture", {"optimizer": "newton", "lr": 50.0}).learning_rate == 50.0
    assert resolve("lecture", {}).learning_rate == 50.0
    assert resolve("lecture", {"optimizer": "sgd"}).learning_rate == 50.0
