"""What the commands of bigram.cli share: the options they have in common, config keys as
options, one-line errors (`friendly`), the imports they put off until their checks pass
(`libraries`), and the run they read (`open_run`), said on stderr when none was named.

Standard library and Typer only at import: a command refused for a bad flag never loads torch.
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from bigram import bundled, options
from bigram.errors import BigramError
from bigram.safety import rundir
from bigram.safety.interrupt import held_ctrl_c
from bigram.text import escaped, json_safe


def _no_type_for_switches() -> None:
    """Typer ≥ 0.29 shows a value type for switches (`--json <bool>`), which take no value."""
    show = getattr(typer.core.TyperOption, "display_type_rich", None)
    if show is not None:
        typer.core.TyperOption.display_type_rich = lambda o, ctx: "" if o.is_flag else show(o, ctx)


_no_type_for_switches()


def config_options(*names: str, defaults: dict | None = None):
    """Give a command one option per config key in `names` (all of them when none are named),
    after its own parameters, into its **keys: type, help, choices and default all read from
    config.TrainConfig's declaration (options.config_flags), so a flag can never disagree with the
    key it sets. Each is None when not given (the config file's value or the built-in default
    stands); `defaults` are the command's own (sweep draws no figures), for its --help."""

    def option(c: options.ConfigFlag) -> inspect.Parameter:
        info = typer.Option(*c.spellings, help=c.help, metavar=c.metavar, show_default=False)
        kind = Annotated[c.type | None, info]
        return inspect.Parameter(c.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)

    def add(fn):
        own = inspect.signature(fn, eval_str=True).parameters.values()
        own = [p.replace(kind=p.KEYWORD_ONLY) for p in own if p.kind is not p.VAR_KEYWORD]
        fn.__signature__ = inspect.Signature(own + [option(c) for c in options.config_flags(names, defaults)])
        return fn

    return add


RunArg = Annotated[
    Path | None,
    typer.Argument(help="Run directory (default: the newest under runs/).", show_default=False),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="count, neural, mix or arpa (default: the one with the lower val NLL; with no val split, "
        "neural if trained, else count).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(help="TOML config file, or default / lecture (bundled); flags given here override it."),
]


def friendly(fn):
    """Turn a BigramError into one `error: …` line on stderr and exit status 1 (control
    characters and a path's non-UTF-8 bytes shown escaped, so a message is always one line)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BigramError as e:
            code = getattr(e, "exit_code", 1)  # 130 for a run stopped by Ctrl-C, as shells expect
            typer.echo(escaped(e) if code == 130 else f"error: {escaped(e)}", err=True)
            raise typer.Exit(code) from None
        except KeyboardInterrupt:  # outside the training loop (reading, counting): nothing half-written
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def say_corpus(flag: str | None, data: str) -> None:
    """With no --data and no data/names.txt in this directory, the default corpus is the bundled
    copy (bigram.bundled.default_corpus): said once on stderr, since it is read from elsewhere."""
    if flag is None and data == str(bundled.NAMES):
        typer.echo(
            f"data: no {bundled.DEFAULT_DATA} here, so the bundled names.txt: {escaped(data)}", err=True
        )


def libraries() -> None:
    """Import torch, where Ctrl-C is safe: after a command has checked everything it can check
    without it, so that a refusal answers at once (bigram.options, bigram.safety.rundir)."""
    with held_ctrl_c():
        import torch  # noqa: F401


def open_run(run: Path | None, model: str | None = None, every_model: bool = False):
    """The run to use (checked before torch is imported); when none was named, say on stderr
    which run and model(s) were picked, and which newer runs were skipped and why."""
    path, skipped = rundir.find_run(run)
    libraries()
    from bigram.runs import Run

    r = Run.open(path)
    for p, why in skipped:
        typer.echo(f"skipped run {escaped(p)}: {why}", err=True)
    from bigram.runs import default_model

    why = default_model(r)[1] if model is None and not every_model else None
    if run is None:
        kinds = r.models if every_model and model is None else [r.pick_model(model)]
        which = why or " and ".join(kinds) + (" models" if len(kinds) > 1 else " model")
        status, note = rundir.status_of(r.path)
        how = f"; interrupted {note}, resume with: bigram train --resume {escaped(r.path)}"
        how = how if status == "interrupted" else ""
        typer.echo(f"using run {escaped(r.path)} (the newest under runs/{how}), {which}", err=True)
    elif why:
        typer.echo(f"reading the {why}; --model chooses", err=True)
    return r


def dumps(obj) -> str:
    """JSON as the commands print it: characters as they are, but no raw control character."""
    return json_safe(json.dumps(obj, indent=2, ensure_ascii=False))


def dumps_line(obj) -> str:
    """`dumps` on one line: a JSON Lines record (what a stream of results prints)."""
    return json_safe(json.dumps(obj, ensure_ascii=False))
