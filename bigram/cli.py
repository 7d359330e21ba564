"""The `bigram` command line: parse, call the library, print. Heavy imports happen inside commands."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from bigram import bundled, options
from bigram.errors import BigramError
from bigram.safety import layout, rundir
from bigram.safety.interrupt import held_ctrl_c
from bigram.text import check_data_path, escaped, escaped_lines, json_safe


def _no_type_for_switches() -> None:
    """Typer ≥ 0.29 shows a value type for switches (`--json <bool>`), which take no value."""
    show = getattr(typer.core.TyperOption, "display_type_rich", None)
    if show is not None:
        typer.core.TyperOption.display_type_rich = lambda o, ctx: "" if o.is_flag else show(o, ctx)


_no_type_for_switches()

app = typer.Typer(
    help="Character-level bigram language models: counts, a one-hot neural net, TensorBoard, sampling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from bigram import __version__

        typer.echo(f"bigram {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Character-level bigram language models: counts, a one-hot neural net, TensorBoard, sampling."""


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
    typer.Option("--model", help="count, neural, mix or arpa (default: neural if trained, else count)."),
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
    if run is None:
        kinds = r.models if every_model and model is None else [r.pick_model(model)]
        which = " and ".join(kinds) + (" models" if len(kinds) > 1 else " model")
        status, note = rundir.status_of(r.path)
        how = f"; interrupted {note}, resume with: bigram train --resume {escaped(r.path)}"
        how = how if status == "interrupted" else ""
        typer.echo(f"using run {escaped(r.path)} (the newest under runs/{how}), {which}", err=True)
    return r


def dumps(obj) -> str:
    """JSON as the commands print it: characters as they are, but no raw control character."""
    return json_safe(json.dumps(obj, indent=2, ensure_ascii=False))


@app.command()
@friendly
@config_options()
def train(
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/<date>_<time>).")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing run directory given by --out.")
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue this run's neural model (to --steps TOTAL) where it stopped."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or hints.")] = False,
    **keys,
) -> None:
    """Train the count model and/or the one-hot neural model; log to TensorBoard."""
    overrides = options.parse_config_flags(keys)
    progress = not quiet and sys.stdout.isatty()
    steps = keys["steps"]
    if resume is not None:
        options.check_resume(resume, overrides, config=config, out=out)
    else:  # every check that needs no torch, before torch is imported
        cfg = options.check_train(config, overrides, out, overwrite)
        say_corpus(keys["data"], cfg.data)
    libraries()
    from bigram.metrics import format_table
    from bigram.training import resume as resume_training
    from bigram.training import train as run_training

    if resume is not None:
        result = resume_training(resume, steps=steps, progress=progress)
    else:
        result = run_training(cfg, out=out, overwrite=overwrite, progress=progress)
    if result is None:  # a torchrun process other than rank 0: rank 0 reports
        return
    typer.echo(f"run: {escaped(result.run_dir)}")
    typer.echo(format_table(result.metrics, result.order))
    for line in result.summary:
        typer.echo(line)
    if not quiet:
        typer.echo(f"\nTensorBoard: tensorboard --logdir {escaped(result.run_dir.parent)}")
        typer.echo(f"Samples:     bigram sample {escaped(result.run_dir)}")


# sample's options, one alias each (its signature then reads as the list of what it takes)
_Num = Annotated[int, typer.Option("-n", "--num", help="How many names.")]
_Seed = Annotated[int | None, typer.Option(help="Random seed (same seed, same names).")]
_Temperature = Annotated[float, typer.Option(help="Reshape P: <1 sharper, >1 flatter.")]
_TopK = Annotated[int | None, typer.Option(help="Keep the k most probable next characters.")]
_TopP = Annotated[float | None, typer.Option(help="Keep the smallest set of next characters with mass ≥ p.")]
_Start = Annotated[str, typer.Option(help="Names start with this prefix (exact conditioning).")]
_End = Annotated[str, typer.Option(help="Names end with this suffix (exact conditioning).")]
_MinLen = Annotated[int, typer.Option(help="Minimum length in characters.")]
_MaxLen = Annotated[int | None, typer.Option(help="Maximum length in characters.")]
_Novel = Annotated[bool, typer.Option(help="Leave out names that are in the training corpus.")]
_Unique = Annotated[bool, typer.Option(help="No repeated names.")]
_MostLikely = Annotated[
    int | None, typer.Option(help="The K most probable names meeting the constraints, exactly.")
]
_Lecture = Annotated[
    bool, typer.Option("--lecture", help="The lecture's loop: one multinomial call per character.")
]
_Contains = Annotated[list[str] | None, typer.Option(help="Names contain this string (repeat for several).")]
_NotContains = Annotated[
    list[str] | None, typer.Option(help="Names do not contain this string (repeat for several).")
]
_Pattern = Annotated[str | None, typer.Option(help="The whole name matches this regular expression.")]
_Blocklist = Annotated[
    Path | None, typer.Option(help="File of strings, one a line, that no name contains anywhere.")
]


@app.command()
@friendly
def sample(
    run: RunArg = None,
    n: _Num = 20,
    seed: _Seed = None,
    temperature: _Temperature = 1.0,
    top_k: _TopK = None,
    top_p: _TopP = None,
    start: _Start = "",
    end: _End = "",
    min_len: _MinLen = 1,
    max_len: _MaxLen = None,
    novel: _Novel = False,
    unique: _Unique = False,
    most_likely: _MostLikely = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    lecture: _Lecture = False,
    contains: _Contains = None,
    not_contains: _NotContains = None,
    pattern: _Pattern = None,
    blocklist: _Blocklist = None,
) -> None:
    """Generate names, one per line: sampled exactly under the constraints, or the most likely."""
    if lecture:  # the lecture's loop has none of the other flags: refused, not ignored
        options.check_lecture(
            start=start != "", end=end != "", min_len=min_len != 1, max_len=max_len is not None,
            temperature=temperature != 1.0, top_k=top_k is not None, top_p=top_p is not None,
            novel=novel, unique=unique, most_likely=most_likely is not None, json=as_json,
            contains=bool(contains), not_contains=bool(not_contains), pattern=pattern is not None,
            blocklist=blocklist is not None,
        )  # fmt: skip
        return _sample_lecture(run, model, n, seed)
    options.check_sampling(
        n, temperature=temperature, top_k=top_k, top_p=top_p, min_len=min_len, max_len=max_len,
        unique=unique, most_likely=most_likely, start=start, end=end,
    )  # fmt: skip
    blocked = options.read_blocklist(blocklist)
    r = open_run(run, model)
    from bigram import sampling

    shape = dict(
        temperature=temperature, top_k=top_k, top_p=top_p, exclude=r.corpus_names() if novel else None,
        constraints=sampling.Constraints(start, end, min_len, max_len),
    )  # fmt: skip
    if (patterns := _patterns(pattern, contains, not_contains, blocked)) is not None:
        shape["patterns"] = patterns  # without them sampling needs no automaton (its import costs)
    # one thread from here: the messages and walks are many small tensor ops, and with another
    # process on a core torch's threads wait on each other at every one (order 5: 3.5 s, not 0.7)
    import torch

    torch.set_num_threads(1)
    stopped = None
    if most_likely is not None:
        blocks, stopped = _most_likely(r, most_likely, model, shape)
    else:  # block by block, drawn as they are printed: constant memory for any -n
        blocks = r.sample_blocks(n, model=model, seed=seed, unique=unique, **shape)
    _print_names(blocks, r, model, as_json)
    if stopped is not None:
        raise stopped


def _patterns(
    pattern: str | None, contains: list[str] | None, not_contains: list[str] | None, blocked: tuple
):
    """The automaton of --pattern, --contains, --not-contains and --blocklist; None without them."""
    if not (contains or not_contains or pattern is not None or blocked):
        return None
    from bigram.exact.constraints import Patterns

    return Patterns(pattern, tuple(contains or ()), tuple(not_contains or ()), blocked)


def _sample_lecture(run: Path | None, model: str | None, n: int, seed: int | None) -> None:
    """`sample --lecture`: the lecture's plain loop, one multinomial call per character."""
    options.check_count(n)
    r = open_run(run, model)
    from bigram import sampling

    seed = sampling.LECTURE_SEED if seed is None else seed
    for name in sampling.lecture_names(r.log_probs(model), r.vocab, n, seed):
        typer.echo(escaped_lines(name))


def _most_likely(r, k: int, model: str | None, shape: dict) -> tuple[list[list[str]], Exception | None]:
    """`sample --most-likely K`: the names found, as one block, and the SearchStopped that cut the
    search short, if one did (what was found is exact and printed before it is raised)."""
    from bigram.sampling import SearchStopped

    stopped = None
    try:
        found = r.most_likely(k, model=model, **shape)
    except SearchStopped as e:
        found, stopped = e.found, e
    if len(found) < k and stopped is None:  # every name with P > 0 was found
        typer.echo(f"only {len(found):,} names meet the constraints with a probability > 0", err=True)
    return [[name for name, _ in found]], stopped


def _print_names(blocks, r, model: str | None, as_json: bool) -> None:
    """Print blocks of names as they come: one a line (control characters shown escaped, so a
    corpus cannot drive the terminal), or one JSON list of each name's log-likelihood, written a
    block at a time."""
    if not as_json:
        for names in blocks:
            if names:
                typer.echo(escaped_lines("\n".join(names)))
        return
    from bigram.metrics import log_likelihoods

    table, opened, written = r.log_probs(model), False, 0
    for names in blocks:  # "[" once the first block is drawn: a refusal before it prints nothing
        text, opened = ("" if opened else "["), True
        if names:
            items = dumps(log_likelihoods(table, r.vocab, names))[1:-1].strip("\n")  # no brackets
            text += ("," if written else "") + "\n" + items
            written += len(names)
        typer.echo(text, nl=False)
    typer.echo(("" if opened else "[") + "\n]")


@app.command("eval")
@friendly
def evaluate(
    run: RunArg = None,
    data: Annotated[
        Path | None, typer.Option(help="Evaluate on this file instead of the run's splits.")
    ] = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """NLL, perplexity, bits per char, data entropy and KL of each model on each split (or --data FILE)."""
    if data is not None:
        check_data_path(data)
    r = open_run(run, model, every_model=True)
    from bigram.metrics import format_kl, format_table

    counts = None if data is None else {str(data): r.counts_of(data)}
    results = r.evaluate(model, counts)
    if as_json:
        typer.echo(dumps(results))
        return
    kl = results.pop("kl_count_neural", None)
    order = r.config.order
    typer.echo(format_table(results, order))
    if kl:
        typer.echo("\n" + format_kl(kl, order))


@app.command()
@friendly
def score(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[RUN] NAME...", help="Optional run directory, then names.", show_default=False
        ),
    ],
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every bigram of each name with P and log P, its log-likelihood and NLL per bigram."""
    run, names = options.split_run_and_names(args)
    r = open_run(run, model)
    from bigram.metrics import format_score

    scores = r.score(names, model=model)
    typer.echo(dumps(scores) if as_json else escaped_lines("\n\n".join(format_score(s) for s in scores)))


@app.command()
@friendly
def export(
    run: RunArg = None,
    fmt: Annotated[
        str | None, typer.Option("--format", metavar="[arpa|json|csv]", help="Default: --out's extension.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="File to write.", show_default=False)] = None,
    model: ModelOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Write a model's bigram table as an ARPA language model, JSON or CSV."""
    fmt = options.parse_export_format(fmt, out)
    options.check_new_file(out, overwrite)
    r = open_run(run, model)
    from bigram.formats.export import export as write

    kind = write(r, fmt, out, model)
    typer.echo(f"wrote {escaped(out)} ({kind} model, {fmt})")


@app.command()
@friendly
def mix(
    runs: Annotated[
        list[str],
        typer.Argument(help="Two or more runs, each RUN or RUN:count / RUN:neural.", show_default=False),
    ],
    weights: Annotated[
        str,
        typer.Option(
            help="Comma-separated weights summing to 1 (e.g. 0.7,0.3), or auto: EM on held-out names."
        ),
    ] = "auto",
    val: Annotated[
        Path | None,
        typer.Option(help="Held-out names for --weights auto (default: the runs' shared val split)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to write.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing bigram run at --out.")] = False,
    tol: Annotated[
        float, typer.Option(help="EM stops when no weight moves by more than this in an iteration.")
    ] = 1e-3,
) -> None:
    """A new run whose model is P = Σ λᵢ Pᵢ per context: the runs' tables interpolated."""
    if out is None:
        raise BigramError("--out RUN is required: where to write the mixed run")
    given = options.parse_weights(weights)
    rundir.check_out(out, overwrite)
    libraries()
    from bigram.combine import mix_runs
    from bigram.metrics import format_mix

    result = mix_runs(runs, given, out, val=val, overwrite=overwrite, tol=tol)
    where = f"--val {escaped(val)}" if val else "the runs' val split"
    typer.echo(format_mix(result.nll, result.parents, result.test_nll, where))
    typer.echo(f"wrote {escaped(result.run_dir)}")


@app.command("import")
@friendly
def import_(
    model: Annotated[
        Path, typer.Argument(help="ARPA file of a character model (KenLM, SRILM, bigram export).")
    ],
    out: Annotated[Path | None, typer.Option(help="Run directory to write.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing bigram run at --out.")] = False,
) -> None:
    """A new run whose model is an ARPA file's table (backoffs applied), read by every command."""
    if out is None:
        raise BigramError("--out RUN is required: where to write the imported run")
    rundir.check_out(out, overwrite)  # refused before torch loads
    libraries()
    from bigram.combine import import_arpa

    vocab, order = import_arpa(model, out, overwrite)
    typer.echo(f"read {escaped(model)}: order {order}, {vocab.describe()}")
    typer.echo(f"wrote {escaped(out)}")


@app.command()
@friendly
@config_options(*options.SWEEP_KEYS, defaults=options.SWEEP_DEFAULTS)
def sweep(
    reg: Annotated[
        str | None, typer.Option(help="Comma-separated L2 strengths, e.g. 0,0.01,0.1 (or one per --order).")
    ] = None,
    order: Annotated[
        str | None, typer.Option(help="Comma-separated n-gram orders, e.g. 1,2,3,4,5: one run per order.")
    ] = None,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option(help="Sweep directory (default: runs/<date>_<time>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    **keys,
) -> None:
    """Train the neural model for several reg values, or both models at several orders, into one
    TensorBoard HParams view."""
    cfg, orders, regs = options.check_sweep(reg, order, config, keys, out)
    say_corpus(keys["data"], cfg.data)
    progress = not quiet and sys.stdout.isatty()
    libraries()
    from bigram.metrics import format_order_sweep, format_reg_sweep
    from bigram.training import sweep as run_sweep
    from bigram.training import sweep_orders

    if orders is not None:  # one run per order
        root, rows = sweep_orders(cfg, orders, regs, out=out, progress=progress)
        table = format_order_sweep(rows)
    else:
        root, rows = run_sweep(cfg, regs, out=out, progress=progress)
        table = format_reg_sweep(rows)
    typer.echo(f"sweep: {escaped(root)}")
    typer.echo(table)
    typer.echo(f"\nTensorBoard: tensorboard --logdir {escaped(root)}  (HParams tab)")


@app.command()
@friendly
def plot(
    run: RunArg = None,
    what: Annotated[
        str, typer.Option(help="counts (the training split's N) or probs (a model's P).")
    ] = "counts",
    out: Annotated[Path | None, typer.Option(help="PNG file to write.", show_default=False)] = None,
    model: ModelOpt = None,
    top: Annotated[int, typer.Option(help="Show at most this many tokens, the most frequent.")] = 40,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Draw the lecture's figure: the V×V matrix, each cell labelled with its bigram and value
    (above order 2: the most frequent contexts as rows)."""
    options.check_plot(what, top, out, overwrite)
    r = open_run(run, model)
    from bigram.formats.plots import figure_for, save_png

    kind = r.pick_model(model)
    lp = r.log_probs(kind) if what == "probs" else None
    by_mass = kind == "arpa" and lp is not None  # an imported run has no counts: rank by probability
    counts = (lp.exp() * 1e6).round().long() if by_mass else r.counts("train")
    save_png(figure_for(r.vocab, counts, lp, what, kind, top), out)
    typer.echo(f"wrote {escaped(out)}")


@app.command()
@friendly
def explore(
    run: RunArg = None,
    out: Annotated[
        Path | None, typer.Option(help="HTML file (default: explore.html in the run).", show_default=False)
    ] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in a web browser.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Write one self-contained HTML page that shows the run's tables: the table, one row, a name's
    likelihood step by step, sampling, training."""
    if out is not None:
        options.check_new_file(out, overwrite)
    r = open_run(run)
    from bigram.formats.explore import write

    path = write(r, out if out is not None else r.path / layout.EXPLORE)
    typer.echo(f"wrote {escaped(path)}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def main() -> None:
    # a path that is not valid UTF-8 (kept by Python as surrogates) prints as \udcff, never a traceback
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    app()
