"""Run configuration: built-in defaults < a TOML file (--config) < command-line flags."""

from __future__ import annotations

import difflib
import json
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bigram import bundled
from bigram.errors import BigramError
from bigram.text import NORMALIZATIONS, escaped

MODEL_CHOICES = ("count", "neural", "both")
OPTIMIZERS = ("newton", "sgd", "adam", "lbfgs")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "lbfgs": "L-BFGS", "newton": "Newton"}  # as printed
DEFAULT_LR = {"sgd": 50.0, "adam": 0.1, "lbfgs": 1.0, "newton": 1.0}  # sgd 50 is the lecture's
SPLIT_METHODS = ("auto", "random", "hash")
SMOOTHING_NAMES = ("auto", "kn")  # smoothing's words; otherwise it is add-k's k
MAX_SMOOTHING = 1e9  # beyond it every row is uniform to float precision (and k·V could overflow)
MAX_ORDER = 12  # contexts of up to 11 characters (tables are capped by size anyway)
MAX_REG = 1e6  # reg·mean(W²) must stay finite
MAX_BATCH = 1 << 24  # minibatch examples; the one-hot batch is batch × V floats


def key(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] = (),
    flag: str = "",
    example: Any = None,
    reads_as: str = "",
) -> Any:
    """Declare one config key: its default and one-line help, and its choices when its value is one
    of a fixed set. Everything else is derived from this declaration: train's option (`flag` names a
    switch's two spellings), its --help, the comment in default.toml (`example`: the value shown on
    the commented-out line of a key left unset; `reads_as`: how its default reads, where not as is) and
    the flag table of docs/cli.md (tests check that they agree)."""
    meta = {
        "help": help,
        "choices": choices,
        "flag": flag,
        "example": example,
        "reads_as": reads_as,
    }
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # resolve() sets data when none is given (bundled.default_corpus)
    data: str = key(
        bundled.DEFAULT_DATA,
        "corpus: UTF-8, one name per line, relative to where you run bigram",
        example=bundled.DEFAULT_DATA,
        reads_as="data/names.txt if it is here, else the bundled names.txt",
    )
    model: str = key("both", "which models to train: count, neural or both", choices=MODEL_CHOICES)
    order: int = key(2, "n-gram order N: predict each character from the N-1 before it (2 = bigram)")
    smoothing: float | str = key(
        "auto",
        "count model: add-k's k >= 0 (P = (N + k) / row sum; 1 = add-one), auto (the best k on val, "
        "leave-one-out without val names) or kn (Kneser-Ney)",
    )
    steps: int = key(100, "most optimizer steps of the neural model (fewer once converged, see tol)")
    lr: float | None = key(
        None,
        "learning rate",
        example=1.0,
        reads_as="per optimizer: newton 1, sgd 50 (the lecture's), adam 0.1, lbfgs 1",
    )
    reg: float | str = key(
        "auto",
        "L2 on W: loss = mean NLL + reg * mean(W**2); auto = the reg whose neural model predicts the "
        "val names best (0.01, the lecture's, without val names)",
    )
    optimizer: str = key(
        "newton",
        "how the neural model trains: newton (full batch, ~10 steps at any V), sgd (the lecture's "
        "W -= lr * grad), adam, lbfgs",
        choices=OPTIMIZERS,
    )
    tol: float = key(1e-6, "converged once a step changes the loss by less than this (0 = run every step)")
    batch_size: int = key(0, "0 = full batch from the counts (exact); N = minibatches of N random examples")
    val_frac: float = key(0.1, "fraction of names held out for validation (0 allowed)")
    test_frac: float = key(0.1, "fraction of names held out for test (0 allowed)")
    seed: int = key(2147483647, "seeds the split, W's initialization and minibatches (the lecture's seed)")
    split: str = key(
        "auto",
        "random (seeded permutation of the names), hash (by name; streams any size), auto (random up to "
        "256 MB)",
        choices=SPLIT_METHODS,
    )
    normalize: str = key(
        "NFC",
        "Unicode normalization of the text: NFC, NFD, NFKC, NFKD or none (keep it as is)",
        choices=NORMALIZATIONS,
    )
    lowercase: bool = key(False, "fold case before counting", flag="--lowercase/--keep-case")
    device: str = key(
        "auto", "where the neural model trains: auto (cuda if available), cpu or cuda", choices=DEVICES
    )
    eval_every: int = key(1, "log val NLL to TensorBoard every this many steps")
    figures: bool = key(
        True, "draw the labelled heatmaps into TensorBoard at the end (~0.5 s)", flag="--figures/--no-figures"
    )

    @property
    def trains_count(self) -> bool:
        return self.model in ("count", "both")

    @property
    def trains_neural(self) -> bool:
        return self.model in ("neural", "both")

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lr"] = self.learning_rate  # the run records what was used
        return d

    def to_toml(self) -> str:
        lines = ["# The resolved configuration of this run (bigram train --config this-file repeats it)."]
        for k, v in self.to_dict().items():
            lines.append(f"{k} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:  # a path's non-UTF-8 bytes (kept by Python as surrogates)
            return f"{list(os.fsencode(v))}  # the path's bytes: {escaped(v)} is not UTF-8"
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    return repr(v)


def _path_of(value: Any) -> Any:
    """data as config.toml may hold it: a string, or a list of bytes for a path that is not
    UTF-8 (as _toml_value writes it), so that such a run resumes from the very same file."""
    if isinstance(value, list) and value and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return os.fsdecode(bytes(value))
    return value


_FIELDS = {f.name: f for f in fields(TrainConfig)}  # each key's declaration
_KEYS = list(_FIELDS)
# names other tools use for our keys (nanoGPT's among them), for "did you mean"
_SYNONYMS = {
    "learning_rate": "lr", "max_iters": "steps", "num_steps": "steps", "iters": "steps", "epochs": "steps",
    "weight_decay": "reg", "l2": "reg", "regularization": "reg", "alpha": "smoothing", "k": "smoothing",
    "eval_interval": "eval_every", "batch": "batch_size", "dataset": "data", "corpus": "data",
    "data_path": "data", "val_split": "val_frac", "test_split": "test_frac", "opt": "optimizer",
}  # fmt: skip
# the keys whose value is one of a fixed set: what validation accepts and what --help lists
CHOICES = {name: f.metadata["choices"] for name, f in _FIELDS.items() if f.metadata["choices"]}


def default_text(name: str, defaults: dict[str, Any] | None = None) -> str:
    """How a key's default reads in --help and docs/cli.md: a switch by the spelling that is on."""
    f = _FIELDS[name]
    value = (defaults or {}).get(name, f.default)
    if f.metadata["flag"]:
        on, off = f.metadata["flag"].split("/")
        return on if value else off
    return f.metadata["reads_as"] or str(value)


def default_toml() -> str:
    """bigram/configs/default.toml, written from TrainConfig's declarations (a test keeps the file
    equal): every key with its one-line help, a key left unset on a commented-out line."""
    lines = [
        "# bigram train --config default (this file, bundled with bigram; a copy: python -m bigram.bundled"
        " --copy default.toml)",
        "# Every key can be overridden by the flag of the same name (underscores become dashes).",
        "# Written from the declarations in bigram/config.py, as are train's flags and their help.",
    ]
    for f in fields(TrainConfig):
        example = f.metadata["example"]
        line = f"{f.name} = {_toml_value(f.default if example is None else example)}"
        unset = "" if example is None else f" (unset: {default_text(f.name)})"
        line = line if example is None else f"# {line}"
        lines.append(f"{line:<23}  # {f.metadata['help']}{unset}")
    return "\n".join(lines) + "\n"


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file's keys, refusing unknown ones with the closest valid key."""
    p, where = Path(path), escaped(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(bundled.CONFIGS)
        raise BigramError(f"config file {where} does not exist (bundled configs: {names})") from None
    except IsADirectoryError:
        raise BigramError(f"config path {where} is a directory: give a TOML file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BigramError(f"cannot read config file {where}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise BigramError(f"config file {where} is not valid TOML: {e}") from None
    if "data" in raw:
        raw["data"] = _path_of(raw["data"])
    for key in raw:
        if key not in _KEYS:
            close = [_SYNONYMS[key]] if key in _SYNONYMS else difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(_KEYS)}"
            raise BigramError(f"unknown key {key!r} in config file {where}{hint}")
    return raw


def resolve_dict(values: dict[str, Any], where: str) -> TrainConfig:
    """A TrainConfig from a dict of keys (a run's config.toml), checked like a config file."""
    if "data" in values:
        values = {**values, "data": _path_of(values["data"])}
    for key, value in values.items():
        if key not in _KEYS:
            raise BigramError(f"unknown key {key!r} in {where}")
        _check_type(key, value, where)
    cfg = TrainConfig(**values)
    validate(cfg)
    return cfg


def resolve(
    config_path: str | Path | None, overrides: dict[str, Any], defaults: dict[str, Any] | None = None
) -> TrainConfig:
    """The built-in defaults, then the command's own `defaults` (e.g. sweep draws no figures),
    then the config file ("default" and "lecture" name the bundled ones), then the flags that
    were given (None = not given). With no data anywhere: data/names.txt if it is here, else the
    bundled names.txt (bundled.default_corpus)."""
    values: dict[str, Any] = dict(defaults or {})
    where = "built-in defaults"
    if config_path is not None:
        values.update(load_toml(bundled.config_path(config_path)))
        where = f"config file {escaped(config_path)}"
    for key, value in values.items():
        _check_type(key, value, where)
    given = {k: v for k, v in overrides.items() if v is not None}
    was = values.get("optimizer", TrainConfig.optimizer)
    if given.get("optimizer", was) != was and "lr" not in given and values.get("lr") == DEFAULT_LR.get(was):
        # the file's lr was its optimizer's default (the lecture's SGD 50): another optimizer takes
        # its own default, not a step size meant for plain gradient descent
        del values["lr"]
    values.update(given)
    values.setdefault("data", bundled.default_corpus())
    cfg = TrainConfig(**values)
    validate(cfg)
    return cfg


def _check_type(key: str, value: Any, where: str) -> None:
    declared = _FIELDS[key].type  # the annotation's text: "int", "float | None", …
    if (key == "smoothing" and value in SMOOTHING_NAMES) or (key == "reg" and value == "auto"):
        return
    if declared == "bool":
        ok, kind = isinstance(value, bool), "true or false"
        if ok:
            return
    elif declared == "str":
        ok, kind = isinstance(value, str), "a string"
    elif declared == "int":
        ok, kind = isinstance(value, int), "an integer"
    elif key == "smoothing":
        ok, kind = isinstance(value, int | float), "a number k ≥ 0 (add-k), 'auto' or 'kn' (Kneser-Ney)"
    elif key == "reg":
        ok, kind = isinstance(value, int | float), "a number ≥ 0 or 'auto' (the best on val)"
    else:
        ok, kind = isinstance(value, int | float), "a number"
    if isinstance(value, bool) or not ok:
        raise BigramError(f"{key} = {value!r} in {where} must be {kind}")


def validate(cfg: TrainConfig) -> None:
    """Refuse values that cannot make a sensible run, naming the key and the fix."""

    bad = BigramError
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise bad(f"{key} = {getattr(cfg, key)!r}: choose one of {', '.join(allowed)}")
    k = cfg.smoothing
    if k not in SMOOTHING_NAMES and (isinstance(k, str) or not 0 <= k <= MAX_SMOOTHING):  # NaN fails too
        raise bad(
            f"smoothing = {cfg.smoothing!r}: must be a number in [0, {MAX_SMOOTHING:g}] "
            "(0 = raw frequencies, 1 = add-one), 'auto' (best k on val) or 'kn' (Kneser-Ney)"
        )
    if not 1 <= cfg.order <= MAX_ORDER:
        raise bad(f"order = {cfg.order}: must be in [1, {MAX_ORDER}] (1 unigram, 2 bigram, 3 trigram, …)")
    if cfg.reg != "auto" and (isinstance(cfg.reg, str) or not 0 <= cfg.reg <= MAX_REG):  # NaN fails too
        raise bad(f"reg = {cfg.reg!r}: must be a number in [0, {MAX_REG:g}] or 'auto' (the best on val)")
    if cfg.steps <= 0:
        raise bad(f"steps = {cfg.steps}: must be a positive number of optimizer steps")
    if not 0 <= cfg.tol < math.inf:
        raise bad(f"tol = {cfg.tol}: must be a finite number ≥ 0 (0 = run every step)")
    if cfg.lr is not None and not 0 < cfg.lr < math.inf:
        raise bad(f"lr = {cfg.lr}: must be a finite number > 0")
    if not 0 <= cfg.batch_size <= MAX_BATCH:
        raise bad(f"batch_size = {cfg.batch_size}: must be in [0, {MAX_BATCH:,}] (0 = full batch)")
    if not 0 <= cfg.seed < 2**64:
        raise bad(f"seed = {cfg.seed}: must be in [0, 2^64)")
    if cfg.batch_size and cfg.optimizer in ("lbfgs", "newton"):
        raise bad(
            f"optimizer = {cfg.optimizer!r} needs the full batch: set batch_size = 0, or optimizer = 'sgd' "
            "or 'adam' for minibatches"
        )
    if cfg.eval_every <= 0:
        raise bad(f"eval_every = {cfg.eval_every}: must be a positive number of steps")
    for key in ("val_frac", "test_frac"):
        v = getattr(cfg, key)
        if not 0 <= v < 1:
            raise bad(f"{key} = {v}: must be in [0, 1)")
    if cfg.val_frac + cfg.test_frac >= 1:
        raise bad(
            f"val_frac + test_frac = {cfg.val_frac + cfg.test_frac:g} leaves no training names: "
            "make their sum < 1"
        )
