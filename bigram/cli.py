"""The `bigram` command line: parse, call the library, print. Heavy imports happen inside commands
(what the commands share, their common options and one-line errors: bigram.cli_shared)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from bigram import options
from bigram.cli_shared import (
    ConfigOpt,
    JsonOpt,
    ModelOpt,
    RunArg,
    config_options,
    dumps,
    dumps_line,
    friendly,
    libraries,
    open_run,
    say_corpus,
)
from bigram.errors import BigramError
from bigram.exact.constraints import Constraints, Patterns  # light: a leaf above errors and text
from bigram.heap import bound_heap
from bigram.safety import layout, rundir
from bigram.text import check_data_path, check_input_file, escaped, escaped_lines

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
        typer.echo(f"\nTensorBoard: tensorboard --logdir {escaped(result.run_dir)}")
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
    options.check_seed(seed)
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
        unique=unique, most_likely=most_likely, start=start, end=end, contains=contains,
        not_contains=not_contains,
    )  # fmt: skip
    blocked = options.read_blocklist(blocklist)
    r = open_run(run, model)
    # one thread from here: the messages and walks are many small tensor ops, and with another
    # process on a core torch's threads wait on each other at every one (order 5: 3.5 s, not 0.7)
    import torch

    torch.set_num_threads(1)
    request = dict(
        temperature=temperature, top_k=top_k, top_p=top_p,
        constraints=Constraints(start, end, min_len, max_len),
        patterns=Patterns(pattern, tuple(contains or ()), tuple(not_contains or ()), blocked),
    )  # fmt: skip
    log_p = _say_mass(r, model, request)
    blocks, stopped = r.names(
        n, model=model, seed=seed, unique=unique, most_likely=most_likely, novel=novel, **request
    )
    if most_likely is not None and stopped is None and len(blocks[0]) < most_likely:  # every name with P > 0
        typer.echo(f"only {len(blocks[0]):,} names meet the constraints with a probability > 0", err=True)
    _print_names(blocks, r, model, as_json, log_p)
    if stopped is not None:
        raise stopped


def _say_mass(r, model: str | None, request: dict) -> float | None:
    """P(the constraints) on stderr (runs.constraint_mass): its log, or None for a request that
    constrains nothing."""
    from bigram.runs import constraint_mass

    said = constraint_mass(r, model, request)
    if said is None:
        return None
    typer.echo(said[1], err=True)
    return said[0]


def _sample_lecture(run: Path | None, model: str | None, n: int, seed: int | None) -> None:
    """`sample --lecture`: the lecture's plain loop, one multinomial call per character."""
    options.check_count(n)
    r = open_run(run, model)
    import torch

    from bigram import sampling

    torch.set_num_threads(1)  # one small row at a time: more threads only wait on each other (6× slower)

    seed = sampling.LECTURE_SEED if seed is None else seed
    for name in sampling.lecture_names(r.log_probs(model), r.vocab, n, seed):
        typer.echo(escaped_lines(name))


def _print_names(blocks, r, model: str | None, as_json: bool, log_p: float | None = None) -> None:
    """Print blocks of names as they come: one a line (control characters shown escaped, so a
    corpus cannot drive the terminal), or one JSON list of each name's log-likelihood, written a
    block at a time, with P(the constraints) in every entry of a constrained request (`log_p`)."""
    if not as_json:
        for names in blocks:
            if names:
                typer.echo(escaped_lines("\n".join(names)))
        return
    import math

    from bigram.metrics import names_json

    extra = None if log_p is None else {"p_constraints": math.exp(log_p), "log_p_constraints": log_p}
    for text in names_json(blocks, r.log_probs(model), r.vocab, extra):
        typer.echo(text, nl=False)


@app.command("eval")
@friendly
def evaluate(
    run: RunArg = None,
    data: Annotated[
        Path | None, typer.Option(help="Evaluate on this file instead of the run's splits.")
    ] = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    lecture_float32: Annotated[
        bool,
        typer.Option(
            "--lecture-float32",
            help="The lecture notebook's log-likelihood and NLL, summed in float32 one bigram at a time "
            "in file order, as it sums them (docs/math.md).",
        ),
    ] = False,
) -> None:
    """NLL, perplexity, bits per char, data entropy and KL of each model on each split (or --data FILE)."""
    if data is not None:
        check_data_path(data)
    r = open_run(run, model, every_model=True)
    if lecture_float32:
        from bigram.runs import lecture_float32_sums

        sums = lecture_float32_sums(r)
        if as_json:
            typer.echo(dumps(sums))
            return
        typer.echo(f"the lecture notebook's sums: float32, one bigram at a time, {sums['bigrams']:,} bigrams")
        typer.echo(
            f"log_likelihood={sums['log_likelihood']}\nnll={-sums['log_likelihood']}\n{sums['nll']:.4f}"
        )
        typer.echo(f"in float64, as bigram sums them: log_likelihood={sums['float64_log_likelihood']:.4f}, "
                   f"NLL {sums['float64_nll']:.6f}")  # fmt: skip
        return
    from bigram.metrics import format_kl, format_table

    counts = None if data is None else {str(data): r.counts_of(data)}
    results = r.evaluate(model, counts)
    if as_json:
        typer.echo(dumps(results))
        return
    if data is not None:  # the split column names the file, its whole path said above the table
        typer.echo(f"data: {escaped(data)}")
        results = {m: {data.name: per[str(data)]} for m, per in results.items()}
    kl = results.pop("kl_count_neural", None)
    order = r.config.order
    typer.echo(format_table(results, order))
    if kl:
        typer.echo("\n" + format_kl(kl, order))


def _score_file(args: list[str], file: str, model: str | None, as_json: bool) -> None:
    """score --file: names read by the run's text rule, scored a batch at a time, printed as they go."""
    if len(args) > 1 or (args and not (Path(args[0]) / layout.VOCAB).is_file()):
        raise BigramError("with --file, give at most the run directory: the names come from the file")
    path = Path("/dev/stdin") if file == "-" else Path(file)
    check_data_path(path)
    r = open_run(args[0] if args else None, model)
    from bigram.counts import gram_name
    from bigram.reader.corpus import iter_names
    from bigram.runs import scored_names

    grams, unknown = gram_name(r.config.order) + "s", 0
    if not as_json:
        typer.echo(f"name\tlog-likelihood\tNLL\t{grams}")
    for names, ll, n in scored_names(r, iter_names(path, r.rule), model):
        unknown += int(ll.isinf().sum())
        if as_json:
            rows = zip(names, ll.tolist(), n.tolist(), strict=True)
            lines = (
                dumps_line({"name": w, "log_likelihood": x, "nll": -x / b, grams: b}) for w, x, b in rows
            )
        else:  # the batch's names escaped in one pass (none holds a line break)
            shown = escaped_lines("\n".join(names)).split("\n")
            rows = zip(shown, ll.tolist(), (-ll / n).tolist(), n.tolist(), strict=True)
            lines = map("%s\t%.4f\t%.4f\t%d".__mod__, rows)
        sys.stdout.write("\n".join(lines) + "\n")
    if unknown:
        what = "name holds" if unknown == 1 else "names hold"
        typer.echo(
            f"{unknown:,} {what} a character the model never saw: P = 0, log-likelihood -inf", err=True
        )


@app.command()
@friendly
def score(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[RUN] NAME...", help="Optional run directory, then names.", show_default=False
        ),
    ] = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="Score every line of this file ('-': standard input), streaming: a line per name "
            "(name, log-likelihood, NLL, predictions), or with --json a JSON object per line.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Every bigram of each name with P and log P, its log-likelihood and NLL per bigram."""
    if file is not None:
        return _score_file(args or [], file, model, as_json)
    run, names = options.split_run_and_names(args or [])
    if not names:
        raise BigramError("give names to score (after the run directory, if any), or --file FILE")
    r = open_run(run, model)
    from bigram.metrics import format_score

    scores = r.score(names, model=model)
    typer.echo(dumps(scores) if as_json else escaped_lines("\n\n".join(format_score(s) for s in scores)))


@app.command()
@friendly
def export(
    run: RunArg = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="[arpa|json|csv]", help="Default: --out's extension, else arpa."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="File to write (default: <model>-model.<format> in the run).", show_default=False),
    ] = None,
    model: ModelOpt = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing --out file (the run's own export is always rewritten)."),
    ] = False,
) -> None:
    """Write a model's bigram table as an ARPA language model, JSON or CSV."""
    fmt = options.parse_export_format(fmt, out)
    if out is not None:
        options.check_new_file(out, overwrite)
    r = open_run(run, model)
    from bigram.formats.export import export_to

    out, kind = export_to(r, fmt, model, out)
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
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<date>_<time>).", show_default=False)
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing bigram run at --out.")] = False,
    tol: Annotated[
        float, typer.Option(help="EM stops when no weight moves by more than this in an iteration.")
    ] = 1e-3,
) -> None:
    """A new run whose model is P = Σ λᵢ Pᵢ per context: the runs' tables interpolated."""
    options.check_tol(tol)
    given = options.parse_weights(weights)
    if out is not None:
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
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<date>_<time>).", show_default=False)
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing bigram run at --out.")] = False,
) -> None:
    """A new run whose model is an ARPA file's table (backoffs applied), read by every command."""
    if out is not None:
        rundir.check_out(out, overwrite)  # refused before torch loads
    check_input_file(model, "ARPA file")
    libraries()
    from bigram.combine import import_arpa

    vocab, order, run = import_arpa(model, out, overwrite)
    typer.echo(f"read {escaped(model)}: order {order}, {vocab.describe()}")
    typer.echo(f"wrote {escaped(run)}")


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
    out: Annotated[
        Path | None,
        typer.Option(
            help="PNG file to write (default: counts.png or probs-<model>.png in the run).",
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = None,
    top: Annotated[int, typer.Option(help="Show at most this many tokens, the most frequent.")] = 40,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing --out file (the run's own figure is always rewritten).")
    ] = False,
) -> None:
    """Draw the lecture's figure: the V×V matrix, each cell labelled with its bigram and value
    (above order 2: the most frequent contexts as rows)."""
    options.check_plot(what, top, out, overwrite)
    r = open_run(run, model, every_model=what == "counts")  # the counts are no model's: no note on which
    from bigram.formats.plots import plot_to

    typer.echo(f"wrote {escaped(plot_to(r, what, model, top, out))}")


@app.command()
@friendly
def explore(
    run: RunArg = None,
    out: Annotated[
        Path | None, typer.Option(help="HTML file (default: explore.html in the run).", show_default=False)
    ] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in a web browser.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing --out file (the run's own explore.html is always rewritten)."),
    ] = False,
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
    bound_heap()  # a high order's temporaries go back to the OS when freed: a lower peak
    # a path that is not valid UTF-8 (kept by Python as surrogates) prints as \udcff, never a traceback
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    app()
