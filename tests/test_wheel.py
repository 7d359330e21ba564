"""bigram as a user gets it: a wheel built from the checkout, installed into a fresh environment,
used from an empty directory outside the repository.

The environment is a new venv whose only way to the dependencies is a plain path entry to this
interpreter's site-packages (a .pth line, which adds the folder but runs none of its .pth files):
so torch and the rest need no download, while the checkout's editable install, whose import
hook lives in such a .pth file, is out of reach. bigram itself comes from the wheel alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import NAMES, ROOT
from tests.reference import plain_names

CLI_DOC = ROOT / "docs" / "cli.md"  # its `bigram train --config default` block


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A venv holding bigram's wheel, a cache folder of its own, and an empty working directory."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, ROOT],
        capture_output=True, text=True, check=False, cwd=root,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("bigram-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    work = root / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NUMBA_"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", XDG_CACHE_HOME=str(root / "cache"))
    return {"wheel": wheel, "py": py, "bin": venv / "bin", "work": work, "env": env, "cache": root / "cache"}


def _run(installed, *args, cwd=None):
    return subprocess.run(
        [*args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd or installed["work"],
        env=installed["env"],
    )


def _documented_default_run() -> list[str]:
    """The table and summary lines docs/cli.md shows for `bigram train --config default`."""
    text = CLI_DOC.read_text(encoding="utf-8")
    block = text[text.index("$ bigram train --config default\n") :].split("```")[0]
    return [line for line in block.splitlines() if re.match(r"(count|neural) ", line)]


def test_the_wheel_carries_the_corpus_and_configs(installed):
    with zipfile.ZipFile(installed["wheel"]) as z:
        names = set(z.namelist())
        shipped = {"bigram/names.txt", "bigram/configs/default.toml", "bigram/configs/lecture.toml"}
        assert shipped | {f"bigram/formats/explore_page.{ext}" for ext in ("html", "css", "js")} <= names
        assert z.read("bigram/names.txt") == (ROOT / "bigram" / "names.txt").read_bytes()


def test_train_with_no_flags_in_an_empty_directory_prints_the_documented_numbers(installed):
    r = _run(installed, installed["bin"] / "bigram", "train", "--no-figures")
    assert r.returncode == 0, r.stderr
    where = _run(installed, installed["py"], "-c", "import bigram; print(bigram.__file__)").stdout
    assert where.startswith(str(installed["py"].parents[1])), where  # the wheel's bigram, not the checkout's
    # the first use compiles, and says so once; the corpus used is said once too
    assert r.stderr.count("compiling bigram's kernels once") == 1, r.stderr
    assert r.stderr.count("the bundled names.txt") == 1, r.stderr
    got = [line for line in r.stdout.splitlines() if re.match(r"(count|neural) ", line)]
    assert got == _documented_default_run()
    (run,) = (installed["work"] / "runs").iterdir()
    config = (run / "config.toml").read_text()
    data = re.search(r'^data = "(.*)"', config, re.M).group(1)
    assert Path(data).read_bytes() == (ROOT / "bigram" / "names.txt").read_bytes()
    # the cache is the user's, not site-packages (which may be read-only)
    assert list(installed["cache"].glob("bigram/numba/*/*.nbi"))
    assert not list(Path(where).parent.rglob("*.nbi"))


def test_a_second_process_does_not_compile_again(installed):
    """After the first train, loading the kernels is a cache hit for every compiled function."""
    _run(installed, installed["bin"] / "bigram", "train", "--model", "count", "-q", "--no-figures")
    probe = (
        "import json, bigram.reader.corpus as c, bigram.optim.newton as n\n"
        "k = c._kernels(); f = n._compiled()\n"
        "ds = [d for d in vars(k).values() if hasattr(d, 'stats')] + list(f)\n"
        "hits, misses = (sum(len(getattr(d.stats, s)) for d in ds) for s in ('cache_hits', 'cache_misses'))\n"
        "print(json.dumps([misses, hits]))"
    )
    r = _run(installed, installed["py"], "-c", probe)
    assert r.returncode == 0, r.stderr
    misses, hits = json.loads(r.stdout)
    assert misses == 0 and hits >= 4, (misses, hits)
    assert "compiling" not in r.stderr


def test_bundled_configs_and_the_python_api_work_outside_the_repository(installed, tmp_path):
    r = _run(installed, installed["bin"] / "bigram", "train", "--config", "lecture", "--out", "runs/lecture",
             "-q", "--no-figures", "--model", "count")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "count   train          228,146  2.454577" in r.stdout  # the lecture's add-one count model
    code = "import bigram; r = bigram.load_run('runs/lecture'); print(round(r.score('emma')[0]['nll'], 4))"
    r = _run(installed, installed["py"], "-c", code)
    assert r.returncode == 0 and r.stdout.strip() == "2.5143", r.stderr
    r = _run(installed, installed["py"], "-m", "bigram.bundled", "--copy", "names.txt", "--to", tmp_path)
    assert r.returncode == 0, r.stderr
    assert plain_names(tmp_path / "names.txt") == plain_names(NAMES)
    r = _run(installed, installed["py"], "-m", "bigram.bundled", "--copy", "names.txt", "--to", tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "already exists" in r.stderr
