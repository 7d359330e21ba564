"""Every command through the CLI, on a tiny corpus whose probabilities are derived by hand."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from tests.conftest import NAMES, ROOT, one_line_error
from tests.reference import plain_counts

# tiny corpus: ab ab b ba → .a 2  .b 2  ab 2  a. 1  b. 3  ba 1
# count model, smoothing 0: P(a|.) = 2/4, P(b|a) = 2/3, P(.|b) = 3/4, P(a|a) = 0
LL_AB = math.log(2 / 4) + math.log(2 / 3) + math.log(3 / 4)


@pytest.fixture
def tiny_run(invoke, tiny_corpus, tmp_path) -> Path:
    out = tmp_path / "tiny-run"
    r = invoke(
        "train", "--data", tiny_corpus, "--out", out, "--smoothing", 0, "--val-frac", 0, "--test-frac", 0,
        "--steps", 30, "--optimizer", "lbfgs", "--reg", 0, "-q",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


def test_score_text_and_json(invoke, tiny_run):
    r = invoke("score", tiny_run, "ab", "aa", "--model", "count", "--json")
    assert r.exit_code == 0, r.output
    ab, aa = json.loads(r.output)
    assert [b["bigram"] for b in ab["bigrams"]] == [".a", "ab", "b."]
    assert [b["prob"] for b in ab["bigrams"]] == pytest.approx([2 / 4, 2 / 3, 3 / 4])
    assert ab["log_likelihood"] == pytest.approx(LL_AB)
    assert ab["nll"] == pytest.approx(-LL_AB / 3)
    assert aa["bigrams"][1]["prob"] == 0.0
    assert aa["log_likelihood"] == -math.inf and aa["nll"] == math.inf
    assert "Infinity" in r.output

    text = invoke("score", tiny_run, "aa", "--model", "count").output
    assert "inf" in text and "Traceback" not in text


def test_score_defaults_to_the_newest_run_and_neural(invoke, tiny_run, tmp_path):
    # the neural model (reg 0, converged by L-BFGS) approaches the smoothing-0 frequencies
    (tmp_path / "runs").mkdir()
    r = invoke("score", tiny_run, "ab", "--json")
    assert json.loads(r.output)[0]["log_likelihood"] == pytest.approx(LL_AB, abs=2e-2)


def test_score_unknown_character_is_a_clear_error(invoke, tiny_run):
    r = invoke("score", tiny_run, "abz")
    assert r.exit_code == 1
    assert "error:" in r.output and "'z'" in r.output and "vocabulary" in r.output


def test_sample_is_reproducible_and_uses_the_vocabulary(invoke, tiny_run):
    a = invoke("sample", tiny_run, "-n", 50, "--seed", 7).output.splitlines()
    b = invoke("sample", tiny_run, "-n", 50, "--seed", 7).output.splitlines()
    c = invoke("sample", tiny_run, "-n", 50, "--seed", 8).output.splitlines()
    assert a == b and a != c and len(a) == 50
    assert all(set(name) <= {"a", "b"} for name in a)
    # smoothing 0 count model: "aa" never occurs, every name starts with a or b and ends properly
    names = invoke("sample", tiny_run, "-n", 500, "--seed", 1, "--model", "count").output.splitlines()
    assert not any("aa" in n or "bb" in n for n in names)


def test_eval_text_json_and_file(invoke, tiny_run, tmp_path):
    r = invoke("eval", tiny_run, "--json")
    res = json.loads(r.output)
    assert set(res) == {"count", "neural", "kl_count_neural"}
    c = res["count"]["train"]
    # the count model with smoothing 0 on its own training data: NLL = −Σ N log(N/row) / ΣN
    ll = (
        2 * math.log(2 / 4) * 2
        + 2 * math.log(2 / 3)
        + math.log(1 / 3)
        + 3 * math.log(3 / 4)
        + math.log(1 / 4)
    )
    expected = -ll / 11
    assert c["bigrams"] == 11 and c["nll"] == pytest.approx(expected)
    assert "perplexity" in invoke("eval", tiny_run).output

    other = tmp_path / "other.txt"
    other.write_text("ab\n", encoding="utf-8")
    r = invoke("eval", tiny_run, "--data", other, "--model", "count", "--json")
    assert json.loads(r.output)["count"][str(other)]["nll"] == pytest.approx(-LL_AB / 3)

    text = invoke(
        "eval", tiny_run, "--data", other
    ).output.splitlines()  # the path above, its name in the table
    assert text[0] == f"data: {other}" and "other.txt" in text[3] and all(len(t) < 100 for t in text[1:])

    other.write_text("ab\nxy\n", encoding="utf-8")
    r = invoke("eval", tiny_run, "--data", other)
    assert r.exit_code == 1 and "'x'" in r.output and "name 2" in r.output


def test_train_makes_a_new_dated_run_dir_each_time(invoke, tiny_corpus, tmp_path):
    args = ("train", "--data", tiny_corpus, "--steps", 2, "--val-frac", 0, "--test-frac", 0, "-q")
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 2 and runs[0][:4].isdigit()
    # sample with no RUN argument reads the newest
    r = invoke("sample", "-n", 3, "--seed", 0)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 3
    assert r.stderr == f"using run runs/{runs[1]} (the newest under runs/), neural model\n"


def test_out_is_never_overwritten_unasked(invoke, tiny_corpus, tiny_run):
    before = (tiny_run / "metrics.json").read_text()
    r = invoke("train", "--data", tiny_corpus, "--out", tiny_run, "--steps", 2)
    assert r.exit_code == 1 and "--overwrite" in r.output
    assert (tiny_run / "metrics.json").read_text() == before
    r = invoke(
        "train",
        "--data",
        tiny_corpus,
        "--out",
        tiny_run,
        "--steps",
        2,
        "--overwrite",
        "--model",
        "count",
        "-q",
    )
    assert r.exit_code == 0 and not (tiny_run / "neural.pt").exists()


def test_model_choice_and_missing_model(invoke, tiny_corpus, tmp_path):
    out = tmp_path / "count-only"
    assert invoke("train", "--data", tiny_corpus, "--out", out, "--model", "count", "-q").exit_code == 0
    r = invoke("sample", out, "--model", "neural")
    assert r.exit_code == 1 and "has no neural model" in r.output and "count" in r.output
    assert invoke("sample", out, "-n", 2).exit_code == 0  # defaults to count


def test_config_file_and_flag_precedence(invoke, tiny_corpus, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data = "{tiny_corpus}"\nsteps = 3\nsmoothing = 0.5\nval_frac = 0.0\ntest_frac = 0.0\n')
    out = tmp_path / "r"
    assert invoke("train", "--config", cfg, "--steps", 4, "--out", out, "-q").exit_code == 0
    resolved = (out / "config.toml").read_text()
    assert "steps = 4" in resolved and "smoothing = 0.5" in resolved

    cfg.write_text("stepz = 3\n")
    r = invoke("train", "--config", cfg)
    assert r.exit_code == 1 and "'stepz'" in r.output and "'steps'" in r.output


def test_default_config_file_matches_the_built_in_defaults():
    import tomllib
    from dataclasses import asdict

    from bigram.config import TrainConfig

    text = (ROOT / "bigram" / "configs" / "default.toml").read_text()
    declared = tomllib.loads(text)
    defaults = asdict(TrainConfig())
    # data is left unset (its line commented out), so that the default corpus rule applies
    assert {k: v for k, v in defaults.items() if v is not None and k != "data"} == declared
    assert f'# data = "{defaults["data"]}"  # corpus' in text
    for line in text.splitlines():  # every key has its one-line comment
        if line and not line.startswith("#"):
            assert "#" in line, line


def test_python_dash_m_and_help():
    r = subprocess.run(
        [sys.executable, "-m", "bigram", "--help"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0
    for cmd in ("train", "sample", "eval", "score"):
        assert cmd in r.stdout


def test_errors_are_one_line_without_traceback(invoke, tmp_path):
    r = invoke("train", "--data", tmp_path / "nope.txt")
    assert r.exit_code == 1
    assert r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    r = invoke("sample", tmp_path / "no-run")
    assert r.exit_code == 1 and "does not exist" in r.output


def test_train_has_a_flag_for_every_config_key_and_help_shows_choices_and_defaults(invoke, monkeypatch):
    import dataclasses
    import inspect

    from bigram.cli import train
    from bigram.config import CHOICES, TrainConfig

    params = inspect.signature(train).parameters
    assert [f.name for f in dataclasses.fields(TrainConfig) if f.name not in params] == []
    monkeypatch.setenv("COLUMNS", "400")  # every help on one line
    r = invoke("train", "--help")
    assert r.exit_code == 0, r.output
    for key, allowed in CHOICES.items():
        assert "[" + "|".join(allowed) + "]" in r.output, key
    for shown in ("(default: auto)", "(default: newton)", "(default: 1e-06)", "(default: data/names.txt if"):
        assert shown in r.output
    assert "--lowercase" in r.output and "--quiet" in r.output


COMMANDS = ["train", "sample", "eval", "score", "export", "plot", "sweep", "explore"]


@pytest.mark.parametrize("command", COMMANDS)
def test_switches_show_no_value_type_in_help(invoke, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")
    r = invoke(command, "--help")
    assert r.exit_code == 0, r.output
    assert "--help" in r.output and "<bool>" not in r.output


def test_version(invoke):
    from bigram import __version__

    r = invoke("--version")
    assert r.exit_code == 0 and r.output.strip() == f"bigram {__version__}"


VALUES = ["0", "-1", "1", "2", "nan", "inf", "-inf", "1e308", "", "abc", str(2**70), "0.5", "100000"]


def test_fuzz_flags_never_traceback(invoke, tmp_path, run):
    """Random values for the numeric flags of train, sample, score, eval and export: exit 0 with a
    result, or exit 1/2 with one line; never an uncaught exception, never a long wait."""
    rng = random.Random(0)
    corpus = tmp_path / "c.txt"
    corpus.write_text("ann\nbob\ncyd\nann\n")
    commands = [
        ("train", ["--smoothing", "--lr", "--reg", "--steps", "--val-frac", "--seed", "--batch-size"]),
        ("sample", ["-n", "--temperature", "--top-k", "--top-p", "--min-len", "--max-len", "--seed"]),
        ("sample", ["--most-likely", "--max-len", "--top-k"]),
        ("score", []),
        ("eval", []),
        ("export", []),
    ]
    for i in range(60):
        cmd, flags = rng.choice(commands)
        chosen = rng.sample(flags, k=min(len(flags), rng.randint(1, 3))) if flags else []
        args: list[str] = [cmd]
        if cmd == "train":
            args += ["--data", str(corpus), "--out", str(tmp_path / f"t{i}"), "-q", "--no-figures"]
        elif cmd == "score":
            args += [str(run), rng.choice(["ab", "", "zz", "a b", "ba"])]
        elif cmd == "export":
            args += [str(run), "--out", str(tmp_path / f"e{i}.{rng.choice(['arpa', 'json', 'csv'])}")]
            args += ["--format", rng.choice(["arpa", "json", "csv", "xml"])]
        else:
            args += [str(run)]
        for flag in chosen:
            value = rng.choice(VALUES)
            if flag in ("--steps",) and value in ("100000", str(2**70), "1e308"):
                value = "3"  # a long but legitimate training is not what this test is about
            args += [flag, value]
        t = time.perf_counter()
        r = invoke(*args)
        took = time.perf_counter() - t
        assert took < 30, (args, took)
        assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception))
        assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.output)
        if r.exit_code == 1:
            assert len(r.output.strip().splitlines()) >= 1 and "Traceback" not in r.output, (args, r.output)
        if r.exit_code == 0 and cmd == "sample" and "--json" in args:
            json.loads(r.output)


def test_paths_that_are_not_utf8_never_traceback(tmp_path, tiny_corpus):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    missing = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    p = subprocess.run([sys.executable, "-m", "bigram", "train", "--data", missing, "-q"],
                       capture_output=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert p.returncode == 1 and p.stderr.startswith(b"error:") and b"Traceback" not in p.stderr, p.stderr
    out = os.fsencode(tmp_path) + b"/run-\xff"
    p = subprocess.run([sys.executable, "-m", "bigram", "train", "--data", str(tiny_corpus), "--out", out,
                        "-q", "--no-figures", "--steps", "2"], capture_output=True, env=env, cwd=tmp_path,
                       timeout=120)  # fmt: skip
    assert p.returncode == 1 and p.stderr.startswith(b"error: --out") and b"UTF-8" in p.stderr, p.stderr
    assert not Path(os.fsdecode(out)).exists()


def test_bad_flags_are_refused(invoke):
    one_line_error(invoke("train", "--data", NAMES, "--steps", 0), "steps")
    one_line_error(invoke("train", "--data", NAMES, "--lr", -1), "lr")
    one_line_error(invoke("train", "--data", NAMES, "--smoothing", -2), "smoothing")


def test_cli_start_up_does_not_import_torch():
    code = "import sys, bigram.cli; print('torch' in sys.modules, 'tensorboard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_score_file_streams_every_line_with_plain_python_values(invoke, names, lecture_runs, tmp_path):
    """`score --file` (and `-`, standard input): a line per name, its log-likelihood, NLL and
    predictions equal to the add-one model computed in plain Python from names.txt's counts; a
    blank line skipped; a name with a character the model never saw has P = 0, said once on
    stderr; --json is one object per line; a batch boundary changes nothing."""
    c, alphabet = plain_counts(names), sorted({ch for w in names for ch in w})
    rows: Counter = Counter()
    for (a, _), n in c.items():
        rows[a] += n

    def plain_ll(w: str) -> float:
        chs = [None, *w, None]
        return math.fsum(math.log((c[a, b] + 1) / (rows[a] + len(alphabet) + 1)) for a, b in pairwise(chs))

    probe = ["emma", "zzyzx", "a", "mmmmmmmmmm", *names[::4001]]
    f = tmp_path / "probe.txt"
    f.write_text("\n".join(probe[:3]) + "\n\n" + "\n".join([*probe[3:], "zoë"]) + "\n", encoding="utf-8")
    run = lecture_runs[1]
    r = invoke("score", run, "--file", f, "--model", "count")
    assert r.exit_code == 0, r.output
    out = r.stdout.splitlines()
    assert out[0] == "name\tlog-likelihood\tNLL\tbigrams" and len(out) == len(probe) + 2
    for w, line in zip(probe, out[1:], strict=False):
        name, ll, nll, n = line.split("\t")
        assert name == w and int(n) == len(w) + 1
        assert float(ll) == pytest.approx(plain_ll(w), abs=5e-5)
        assert float(nll) == pytest.approx(-plain_ll(w) / (len(w) + 1), abs=5e-5)
    assert out[-1] == "zoë\t-inf\tinf\t4" and "1 name holds a character the model never saw" in r.stderr
    piped = subprocess.run(  # standard input is the process's: a child reads it
        [sys.executable, "-m", "bigram", "score", str(run), "--file", "-", "--model", "count", "--json"],
        input=f.read_bytes(), capture_output=True, check=True,
    )  # fmt: skip
    objs = [json.loads(line) for line in piped.stdout.decode().splitlines()]
    assert [o["name"] for o in objs] == [*probe, "zoë"]
    assert objs[0]["log_likelihood"] == pytest.approx(plain_ll("emma"), abs=1e-9) and objs[0]["bigrams"] == 5

    from bigram.runs import Run, scored_names

    one = [ll for _, ll, _ in scored_names(Run.open(run), probe, "count")]
    few = [ll for _, ll, _ in scored_names(Run.open(run), probe, "count", batch=3)]
    assert torch.equal(torch.cat(one), torch.cat(few))
    both = invoke("score", run, "emma", "--file", f)
    assert both.exit_code == 1 and both.output.count("\n") == 1


def test_the_better_model_on_val_is_what_a_command_reads_by_default(invoke, tmp_path):
    """With both models and a val split, sample/score/export read the model with the lower val
    NLL and say so once on stderr; --model still chooses; without a val split, neural."""
    run = tmp_path / "split"
    assert invoke("train", "--data", NAMES, "--out", run, "-q").exit_code == 0
    val = {
        k: v["val"]["nll"]
        for k, v in json.loads((run / "metrics.json").read_text()).items()
        if k in ("count", "neural")
    }
    best, other = sorted(val, key=val.get)
    default = invoke("score", run, "emma", "--json")
    assert json.loads(default.stdout) == json.loads(
        invoke("score", run, "emma", "--json", "--model", best).stdout
    )
    assert json.loads(default.stdout) != json.loads(
        invoke("score", run, "emma", "--json", "--model", other).stdout
    )
    assert default.stderr.count(f"reading the {best} model (val NLL {val[best]:.4f}") == 1
    sampled = invoke("sample", run, "-n", "5", "--seed", "3")
    assert sampled.stdout == invoke("sample", run, "-n", "5", "--seed", "3", "--model", best).stdout
    assert "reading the" not in invoke("score", run, "emma", "--model", other).stderr
    lecture = tmp_path / "all"
    invoke(
        "train",
        "--data",
        NAMES,
        "--val-frac",
        "0",
        "--test-frac",
        "0",
        "--steps",
        "3",
        "--out",
        lecture,
        "-q",
    )
    plain = invoke("score", lecture, "emma", "--json")
    assert "reading the" not in plain.stderr
    assert plain.stdout == invoke("score", lecture, "emma", "--json", "--model", "neural").stdout
