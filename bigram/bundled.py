"""The files that ship inside the package, so that bigram works wherever it is installed:
names.txt (the lecture's 32,033 names) and the two configs, `default` and `lecture`.

    >>> NAMES.name, sorted(CONFIGS)
    ('names.txt', ['default', 'lecture'])
    >>> config_path("lecture") == CONFIGS["lecture"], config_path("my.toml")
    (True, 'my.toml')

`python -m bigram.bundled` lists them; `python -m bigram.bundled --copy names.txt` (or
`default.toml`, `lecture.toml`) writes a copy into the current directory (`--to DIR`: elsewhere),
never over an existing file. Standard library only: the CLI reads this before anything heavy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from bigram.errors import BigramError

HERE = Path(__file__).resolve().parent
NAMES = HERE / "names.txt"
CONFIGS = {name: HERE / "configs" / f"{name}.toml" for name in ("default", "lecture")}
DEFAULT_DATA = "data/names.txt"  # the corpus train reads when none is given, if it is here


def default_corpus() -> str:
    """The corpus when none is given: data/names.txt under the current directory if it is there
    (the checkout's, or the user's own), else the bundled names.txt."""
    return DEFAULT_DATA if Path(DEFAULT_DATA).is_file() else str(NAMES)


def config_path(config: str | Path) -> str | Path:
    """--config: "default" and "lecture" name the bundled configs; anything else is a path."""
    return CONFIGS.get(str(config), config)


def copy(name: str, to: Path) -> Path:
    """A copy of a bundled file in directory `to`; refuses to replace an existing file."""
    files = {NAMES.name: NAMES, **{p.name: p for p in CONFIGS.values()}}
    if name not in files:
        raise BigramError(f"--copy {name!r}: bundled files are {', '.join(files)}")
    dest = to / name
    if dest.exists():
        raise BigramError(f"{dest} already exists: remove it or give --to another directory")
    try:
        to.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[name], dest)
    except OSError as e:
        raise BigramError(f"cannot write {dest}: {e.strerror or e}") from None
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bigram.bundled", description=__doc__.split("\n\n")[0])
    ap.add_argument("--copy", metavar="FILE", help="names.txt, default.toml or lecture.toml")
    ap.add_argument("--to", type=Path, default=Path("."), help="directory to copy into (default: here)")
    args = ap.parse_args(argv)
    if args.copy is None:
        for p in (NAMES, *CONFIGS.values()):
            print(p)
        return 0
    try:
        print(f"wrote {copy(args.copy, args.to)}")
    except BigramError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
