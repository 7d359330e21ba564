"""A config key is declared once, in bigram/config.py's TrainConfig (name, type, default, one-line
help, choices), and everything that names it is derived from there: the options of `train` and
`sweep`, their --help, the comments of bigram/configs/default.toml and the flag table of
docs/cli.md. These tests check that each agrees with the declaration.

To rewrite default.toml and the docs table after changing a declaration:
BIGRAM_UPDATE_README=1 pytest tests/test_config_keys.py, then read the diff.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib

import typer.main

from bigram import config
from bigram.cli import app
from tests.conftest import ROOT

DEFAULT_TOML = ROOT / "bigram" / "configs" / "default.toml"
CLI_DOC = ROOT / "docs" / "cli.md"
BEGIN = "<!-- train's flags: written from bigram/config.py (tests/test_config_keys.py checks) -->\n"
END = "<!-- end of train's flags -->\n"
KEYS = {f.name: f for f in dataclasses.fields(config.TrainConfig)}


def _command(name: str):
    return typer.main.get_command(app).commands[name]


def _update(path, text: str) -> None:
    if os.environ.get("BIGRAM_UPDATE_README"):
        path.write_text(text, encoding="utf-8")


def test_default_toml_is_written_from_the_declarations():
    want = config.default_toml()
    if DEFAULT_TOML.read_text(encoding="utf-8") != want:
        _update(DEFAULT_TOML, want)
    assert DEFAULT_TOML.read_text(encoding="utf-8") == want
    # and it reads back as the built-in defaults, the unset keys (data, lr) commented out
    declared = tomllib.loads(want)
    assert declared == {k: f.default for k, f in KEYS.items() if f.metadata["example"] is None}
    assert set(KEYS) - set(declared) == {"data", "lr"}
    for name, f in KEYS.items():
        (line,) = [line for line in want.splitlines() if line.lstrip("# ").startswith(f"{name} = ")]
        assert line.endswith(f.metadata["help"]) or "(unset: " in line, line


def test_every_choice_is_named_in_its_help():
    for name, choices in config.CHOICES.items():
        assert all(c in KEYS[name].metadata["help"] for c in choices), name


def test_train_and_sweep_options_are_the_declared_keys():
    for command, names, defaults in (
        ("train", list(KEYS), {}),
        ("sweep", [k for k in KEYS if k in ("data", "model", "smoothing", "steps", "optimizer", "lr",
                                            "val_frac", "test_frac", "seed", "figures")], {"figures": False}),
    ):  # fmt: skip
        params = {p.name: p for p in _command(command).params}
        assert [n for n in names if n not in params] == [], command
        for name in names:
            p, f = params[name], KEYS[name]
            assert p.default is None, name  # not given: the config file's value stands
            assert p.help.startswith(f.metadata["help"][0].upper() + f.metadata["help"][1:]), name
            assert p.help.endswith(f"(default: {config.default_text(name, defaults)})"), name
            if f.metadata["choices"]:
                assert p.metavar == "[" + "|".join(f.metadata["choices"]) + "]", name
            if f.metadata["flag"]:
                on, off = f.metadata["flag"].split("/")
                assert p.opts == [on] and p.secondary_opts == [off], name
            else:
                assert p.opts == ["--" + name.replace("_", "-")], name
    assert "(default: --no-figures)" in {p.name: p for p in _command("sweep").params}["figures"].help


def flag_table() -> str:
    """docs/cli.md's table of train's flags, from the command's options and the declarations."""
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for p in _command("train").params:
        flag = " / ".join(f"`{o}`" for o in p.opts + p.secondary_opts)
        if p.name in KEYS:
            default, meaning = config.default_text(p.name), KEYS[p.name].metadata["help"]
        else:
            default, meaning = ("off" if p.default is False else "—"), p.help
        meaning = meaning.replace("|", "\\|").replace("<", "&lt;")  # a bar ends the cell; <x> is HTML
        rows.append(f"| {flag} | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def test_the_docs_flag_table_is_written_from_the_declarations():
    text = CLI_DOC.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/cli.md lost the table's markers"
    head, rest = text.split(BEGIN)
    table, tail = rest.split(END)
    want = flag_table()
    if table != want:
        _update(CLI_DOC, head + BEGIN + want + END + tail)
    assert table == want
    for name in KEYS:  # every key has its row
        assert f"`--{name.replace('_', '-')}`" in want
