"""The commands' option values, parsed and checked with the standard library alone: the CLI checks
them before it imports torch (a refusal answers at once), and the library checks the same way.

    >>> check_sampling(temperature=0.8, top_k=5, top_p=0.9, min_len=3, max_len=8)
    >>> check_sampling(top_p=2)
    Traceback (most recent call last):
    ...
    bigram.errors.BigramError: --top-p must be in (0, 1], got 2
    >>> parse_number_list("--order", "1,2,3", int, "1,2,3,4,5")
    [1, 2, 3]
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from bigram.config import MAX_REG, SMOOTHING_NAMES, TrainConfig, default_text, resolve, validate
from bigram.errors import BigramError
from bigram.safety import layout, rundir
from bigram.text import check_data_path, escaped

MAX_STEPS = 10_000  # a walk that has not ended by then means a broken table
MAX_UNIQUE = 1_000_000  # --unique remembers every name given (~150 MB for a million)
EXPORT_FORMATS = {".arpa": "arpa", ".lm": "arpa", ".json": "json", ".csv": "csv"}  # by file extension
PLOT_WHAT = ("counts", "probs")  # the training split's N, or a model's P
PLOT_MAX_TOP = 100  # a figure of 100 × 100 labelled cells is ~4,600 px square; beyond, unreadable and huge
# the config keys sweep takes as flags, and its own defaults (a figure per run: only when asked)
SWEEP_KEYS = ("data", "model", "smoothing", "steps", "optimizer", "lr", "val_frac", "test_frac", "seed",
              "figures")  # fmt: skip
SWEEP_DEFAULTS = {"figures": False}
# a key's declared type → its flag's type (smoothing's text is parsed by parse_smoothing)
FLAG_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "float | None": float, "float | str": str}


def check_shape(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> None:
    """How a table may be reshaped before sampling (sampling.adjust)."""
    if not temperature > 0:  # NaN fails too
        raise BigramError(f"--temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise BigramError(f"--top-k must be ≥ 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise BigramError(f"--top-p must be in (0, 1], got {top_p}")


def check_seed(seed: int | None) -> None:
    """--seed: what torch's generator takes, and train's rule (config.validate): an integer in [0, 2^64)."""
    if seed is not None and not 0 <= seed < 2**64:
        raise BigramError(f"--seed {seed}: must be in [0, 2^64)")


def check_tol(tol: float) -> None:
    """--tol of `mix` (EM's stopping rule): train's rule for its tol, a finite number ≥ 0."""
    if not 0 <= tol < math.inf:  # NaN fails too
        raise BigramError(f"--tol {tol}: must be a finite number ≥ 0")


def check_lengths(min_len: int = 1, max_len: int | None = None) -> None:
    """The name lengths a walk may be conditioned on (conditioning.Plan)."""
    if min_len < 0:
        raise BigramError(f"--min-len must be ≥ 0, got {min_len}")
    if max_len is not None and max_len < min_len:
        raise BigramError(f"--min-len {min_len} is greater than --max-len {max_len}")
    if min_len > MAX_STEPS:
        raise BigramError(f"--min-len {min_len}: names are sampled up to {MAX_STEPS:,} characters long")


def check_count(n: int, unique: bool = False, most_likely: int | None = None) -> None:
    """How many names: -n (bounded under --unique, which remembers them all), --most-likely K."""
    if n < 0:
        raise BigramError(f"-n {n}: the number of names must be ≥ 0")
    if unique and n > MAX_UNIQUE:
        raise BigramError(f"-n {n:,} --unique: --unique remembers every name; ask for at most {MAX_UNIQUE:,}")
    if most_likely is not None and most_likely < 0:
        raise BigramError(f"--most-likely {most_likely}: must be ≥ 0")


def check_affixes(start: str = "", end: str = "") -> None:
    """--start/--end: names are stripped by the text rule, so none begins or ends with white space."""
    why = "which no name does (names are stripped)"
    for flag, text in (("--start", start), ("--end", end)):
        if len(text) > MAX_STEPS:
            raise BigramError(
                f"{flag} of {len(text):,} characters: names are sampled up to {MAX_STEPS:,} characters long"
            )
    if start[:1].isspace():
        raise BigramError(f"--start {start!r} begins with white space, {why}")
    if end[-1:].isspace():
        raise BigramError(f"--end {end!r} ends with white space, {why}")


def check_sampling(
    n: int = 1,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_len: int = 1,
    max_len: int | None = None,
    unique: bool = False,
    most_likely: int | None = None,
    start: str = "",
    end: str = "",
    contains: list[str] | None = None,
    not_contains: list[str] | None = None,
) -> None:
    """Every option of `bigram sample` that can be checked without the run."""
    check_count(n, unique, most_likely)
    check_shape(temperature, top_k, top_p)
    check_lengths(min_len, max_len)
    check_affixes(start, end)
    for flag, strings in (("--contains", contains), ("--not-contains", not_contains)):
        if strings and "" in strings:  # every name contains "": a no-op, or no name at all
            raise BigramError(f"{flag} '': give a string of at least one character")


# the other commands' flags: sample --lecture and --blocklist, score, export, plot, mix


def check_lecture(**given: bool) -> None:
    """`sample --lecture`: the lecture's plain loop takes no other sampling flag (`given`: which were)."""
    flags = [f"--{k.replace('_', '-')}" for k, on in given.items() if on]
    if flags:
        raise BigramError(f"--lecture is the lecture's plain loop: it takes no {', '.join(flags)}")


MAX_BLOCK_LINE = 1_000  # characters of one --blocklist string
MAX_BLOCK_STRINGS = 1_000_000  # strings in a --blocklist
MAX_BLOCK_READ = 16_000_000  # characters of a --blocklist file, blank lines and spaces included


def read_blocklist(path: Path | None) -> tuple[str, ...]:
    """--blocklist FILE: one string a line (UTF-8; surrounding white space and blank lines dropped),
    read a block at a time under stated caps: MAX_BLOCK_LINE characters a line, MAX_BLOCK_STRINGS
    strings, MAX_BLOCK_READ characters in all (/dev/zero is refused after its first block)."""
    if path is None:
        return ()
    where = escaped(path)
    words: dict[str, None] = {}
    try:
        with open(path, encoding="utf-8-sig", newline=None) as f:
            _read_lines(f, where, words)
    except FileNotFoundError:
        raise BigramError(f"--blocklist {where} does not exist (one string a line)") from None
    except IsADirectoryError:
        raise BigramError(f"--blocklist {where} is a directory: give a file, one string a line") from None
    except UnicodeDecodeError as e:
        raise BigramError(f"cannot read --blocklist {where}: not UTF-8 ({escaped(e.reason)})") from None
    except OSError as e:
        raise BigramError(f"cannot read --blocklist {where}: {escaped(e.strerror or e)}") from None
    if not words:
        raise BigramError(f"--blocklist {where} has no strings in it")
    return tuple(words)


def _read_lines(f, where: str, words: dict[str, None]) -> None:
    """The strings of a blocklist into `words`, 1 MiB of text at a time, each cap checked as it is
    passed: the unfinished last line of a block is carried into the next."""
    read, number, carry = 0, 0, ""
    while True:
        block = f.read(1 << 20)
        read += len(block)
        if read > MAX_BLOCK_READ:
            raise BigramError(f"--blocklist {where}: more than {MAX_BLOCK_READ:,} characters")
        lines = (carry + block).split("\n")
        carry = lines.pop()
        if not block:
            lines.append(carry)
        if lines and max(map(len, lines)) > MAX_BLOCK_LINE:
            long = next(i for i, line in enumerate(lines) if len(line) > MAX_BLOCK_LINE)
            raise BigramError(
                f"--blocklist {where}: line {number + long + 1:,} is longer than {MAX_BLOCK_LINE:,} "
                "characters (one string a line)"
            )
        number += len(lines)
        words.update(dict.fromkeys(filter(None, map(str.strip, lines))))
        if block and len(carry) > MAX_BLOCK_LINE:
            raise BigramError(
                f"--blocklist {where}: line {number + 1:,} is longer than {MAX_BLOCK_LINE:,} characters "
                "(one string a line)"
            )
        if len(words) > MAX_BLOCK_STRINGS:
            raise BigramError(f"--blocklist {where}: more than {MAX_BLOCK_STRINGS:,} strings")
        if not block:
            return


def split_run_and_names(args: list[str]) -> tuple[str | None, list[str]]:
    """score's [RUN] NAME...: the first argument is the run when it is a run directory."""
    is_run = bool(args) and (Path(args[0]) / layout.VOCAB).is_file()
    if len(args) == 1 and is_run:
        raise BigramError(f"{args[0]} is a run directory: give names to score after it")
    run = args[0] if len(args) > 1 and is_run else None
    return run, args[1:] if run is not None else args


def check_new_file(path: Path, overwrite: bool) -> None:
    """Never replace a file the user has unless asked."""
    if path.exists() and not overwrite:
        raise BigramError(
            f"{escaped(path)} already exists: pass --overwrite to replace it, or choose another --out"
        )
    if path.is_dir():
        raise BigramError(f"{escaped(path)} is a directory: --out takes a file path")


def parse_export_format(fmt: str | None, out: Path | None) -> str:
    """export's --format, or the one --out's extension names; they must agree when both are given.
    Without either: arpa (the file goes into the run, named after the model and the format)."""
    formats = list(dict.fromkeys(EXPORT_FORMATS.values()))  # arpa, json, csv
    if fmt is not None and fmt not in formats:
        raise BigramError(f"--format {fmt!r}: choose one of {', '.join(formats)}")
    if out is None:
        return fmt or "arpa"
    by_name = EXPORT_FORMATS.get(out.suffix.lower())
    if fmt is None and by_name is None:
        raise BigramError(f"--out {out}: name it .arpa, .json or .csv, or give --format")
    if fmt is not None and by_name not in (None, fmt):
        raise BigramError(f"--format {fmt} does not match --out {out} (a {by_name} name): change one")
    return fmt or by_name


def check_plot(what: str, top: int, out: Path | None, overwrite: bool) -> None:
    """plot's --what, --top and --out (a PNG file it may write)."""
    if what not in PLOT_WHAT:
        raise BigramError(f"--what {what!r}: choose counts or probs")
    if not 2 <= top <= PLOT_MAX_TOP:
        raise BigramError(f"--top {top}: show between 2 and {PLOT_MAX_TOP} tokens")
    if out is not None:  # else the run's own figure (formats.plots.plot_to)
        check_new_file(out, overwrite)


def parse_weights(text: str) -> list[float] | None:
    """mix's --weights: comma-separated numbers, or None for auto (EM on held-out names)."""
    if text == "auto":
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise BigramError(f"--weights {text!r}: give comma-separated numbers, or auto") from None


# the training commands (train, sweep): the config keys as flags, and the checks before a run starts


@dataclasses.dataclass(frozen=True)
class ConfigFlag:
    """One config key as a command's option: what Typer needs to declare it."""

    name: str  # the key, and the command's parameter
    spellings: tuple[str, ...]  # a switch's two (--lowercase/--keep-case); none: the key with dashes
    help: str  # the key's help, then its default
    metavar: str | None  # the choices, [a|b|c], where the key has them
    type: type


def config_flags(names: tuple[str, ...] = (), defaults: dict | None = None) -> list[ConfigFlag]:
    """The config keys in `names` (all when none) as options, from TrainConfig's declarations."""
    flags = []
    for f in dataclasses.fields(TrainConfig):
        if names and f.name not in names:
            continue
        meta = f.metadata
        text = f"{meta['help'][0].upper()}{meta['help'][1:]} (default: {default_text(f.name, defaults)})"
        metavar = "[" + "|".join(meta["choices"]) + "]" if meta["choices"] else None
        spellings = (meta["flag"],) if meta["flag"] else ()
        flags.append(ConfigFlag(f.name, spellings, text, metavar, FLAG_TYPES[f.type]))
    return flags


def parse_smoothing(text: str | None) -> float | str | None:
    """--smoothing as the config takes it: a number, "auto", "kn", or None when not given."""
    if text is None or text in SMOOTHING_NAMES:
        return text
    try:
        return float(text)
    except ValueError:
        raise BigramError(f"--smoothing {text!r}: give a number k ≥ 0 (add-k), auto or kn") from None


def parse_reg(text: str | None) -> float | str | None:
    """--reg as the config takes it: a number, "auto", or None when not given."""
    if text is None or text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise BigramError(f"--reg {text!r}: give a number ≥ 0 or auto (the best on val)") from None


def parse_config_flags(keys: dict) -> dict:
    """A command's config flags (its **keys) as config.resolve takes them: --smoothing's and
    --reg's text read."""
    out = dict(keys)
    if "smoothing" in keys:
        out["smoothing"] = parse_smoothing(keys["smoothing"])
    if "reg" in keys:
        out["reg"] = parse_reg(keys["reg"])
    return out


def parse_number_list(
    flag: str, text: str | None, kind: type, example: str, unique: bool = True
) -> list | None:
    """A flag's comma-separated numbers, each given once if `unique` (None: the flag was not given)."""
    if text is None:
        return None
    try:
        values = [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BigramError(f"{flag} {text!r}: give comma-separated numbers, e.g. {example}") from None
    if not values:
        raise BigramError(f"{flag} {text!r}: give one or more numbers, e.g. {example}")
    if unique and len({f"{v:g}" for v in values}) < len(values):
        raise BigramError(f"{flag} {text!r}: a value is repeated; give each once")
    return values


def check_train(config: Path | None, overrides: dict, out: Path | None, overwrite: bool) -> TrainConfig:
    """train's config (the built-in defaults, then --config, then the flags) and its --out, checked."""
    cfg = resolve(config, overrides)
    check_data_path(cfg.data)
    if out is not None:
        rundir.check_out(out, overwrite, cfg.data)
    return cfg


def check_resume(resume: Path, overrides: dict, **given: object) -> None:
    """train --resume takes only --steps: the run's own config.toml holds the rest."""
    flags = [f"--{k.replace('_', '-')}" for k, v in {**overrides, **given}.items() if v is not None]
    flags = [flag for flag in flags if flag != "--steps"]
    if flags:
        only = f"only --steps may be given (not {', '.join(flags)})"
        raise BigramError(f"--resume continues {escaped(resume)} with its own config: {only}")
    steps = overrides["steps"]
    if steps is not None and steps <= 0:
        raise BigramError(f"--steps {steps}: must be a positive number of optimizer steps")
    rundir.find_run(resume)  # a run that diverged or never finished is refused here


def parse_sweep_grid(reg: str | None, order: str | None) -> tuple[list[int] | None, list[float] | None]:
    """sweep's --order and --reg lists: several orders (one reg, or one each), or several regs."""
    orders = parse_number_list("--order", order, int, "1,2,3,4,5")
    per_order = orders is not None and len(orders) > 1
    regs = parse_number_list("--reg", reg, float, "0,0.001,0.01,0.1", unique=not per_order)
    if regs is None and orders is None:
        raise BigramError("sweep: give --reg (e.g. 0,0.001,0.01,0.1) or --order (e.g. 1,2,3,4,5), or both")
    if regs is not None and any(not 0 <= r <= MAX_REG for r in regs):  # NaN fails the comparison too
        raise BigramError(f"--reg {reg!r}: give one or more numbers in [0, {MAX_REG:g}]")
    if per_order and regs is not None and len(regs) not in (1, len(orders)):
        raise BigramError(
            f"--reg {reg!r} with --order {order!r}: give one reg for every order, or one per order "
            f"({len(orders)} values)"
        )
    if not per_order and regs is None:
        raise BigramError(f"--order {order!r}: one order, nothing to compare; give several, or --reg")
    return orders, regs


def check_sweep(
    reg: str | None, order: str | None, config: Path | None, keys: dict, out: Path | None
) -> tuple[TrainConfig, list[int] | None, list[float]]:
    """sweep's config and grid: (cfg, orders, one reg per order), or (cfg, None, regs) for one order."""
    orders, regs = parse_sweep_grid(reg, order)
    per_order = orders is not None and len(orders) > 1  # then --reg gives each order its own
    overrides = parse_config_flags(keys)
    overrides["order"] = orders[0] if orders is not None and len(orders) == 1 else None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise BigramError("sweep runs in one process: run it without torchrun (train works under torchrun)")
    cfg = resolve(config, overrides, defaults=SWEEP_DEFAULTS)
    check_data_path(cfg.data)
    if out is not None:
        rundir.check_out(out, False, can_overwrite=False)
    if not per_order:
        return cfg, None, regs
    for n in orders:  # every order checked before torch is imported
        validate(dataclasses.replace(cfg, order=n))
    regs = regs or [cfg.reg]
    return cfg, orders, regs * len(orders) if len(regs) == 1 else regs
