"""Runs made from other runs and files: `bigram mix` and `bigram import`.

    mix_runs     a new run whose model (mix.pt) interpolates the parents' models over the union of
                 their vocabularies, with given weights or weights fitted by EM on held-out names
                 (the mix: bigram.mixture, kept as its parts; EM: bigram.formats.mix)
    import_arpa  a new run whose model (arpa.pt) is the table of an ARPA file of characters (KenLM,
                 SRILM, `bigram export`; the parsing: bigram.formats.arpa)

Either run is read by every command like a trained one: its model is one more table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bigram import runs
from bigram.config import TrainConfig, validate
from bigram.errors import BigramError
from bigram.formats.arpa import read_arpa
from bigram.formats.mix import (
    Events,
    check_union,
    check_weights,
    event_probs,
    events_of_counts,
    fit_weights,
    lift_counts,
    mix_tables,
    union_vocab,
)
from bigram.metrics import evaluate
from bigram.mixture import Mixture
from bigram.runs import Run
from bigram.safety import rundir
from bigram.safety.layout import MODEL_KINDS
from bigram.text import escaped
from bigram.vocab import Vocab

MAX_PARENTS = 64  # runs one mix reads: its chain costs each part's entries plus the mix's states


def parse_parent(spec: str) -> tuple[str, str | None]:
    """ "RUN" or "RUN:MODEL" (count, neural, mix or arpa) → (run, model or None: as `sample` picks)."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail in MODEL_KINDS:
        return head, tail
    return spec, None


@dataclass
class MixResult:
    run_dir: Path
    weights: list[float]
    nll: list[float]  # EM's held-out NLL per iteration (empty for given weights)
    parents: list[dict]
    test_nll: dict[str, float]  # each parent alone and the mix ("mix") on the shared test split, if any


def _highest(parents: list):
    """The first run of the highest order with splits of its own (not imported): the mix's config
    and splits are its."""
    N = max(r.config.order for r, _ in parents)
    top = [r for r, _ in parents if r.config.order == N]
    for r in top:
        if "arpa" not in r.models:
            return r
    raise BigramError(
        f"every run of order {N} here ({escaped(top[0].path)}{' …' if len(top) > 1 else ''}) was imported "
        f"from an ARPA file and has no splits, and a mix takes its splits from a trained run of its "
        f"order: add a trained run of order {N} to the mix"
    )


def _shared_corpus(parents: list) -> bool:
    """Whether the runs were trained on one corpus, split alike (their val and test names agree)."""
    configs = [r.config for r, _ in parents]
    keys = {(Path(c.data).resolve(), c.split, c.seed, c.val_frac, c.test_frac) for c in configs}
    return len(keys) == 1


def _heldout(parents: list, union: Vocab, N: int, val: str | Path | None) -> Events:
    """The held-out events: the n-grams of `val` (streamed, counted in the union vocabulary), or
    the shared val split of the parents' corpus."""
    if val is not None:
        shape = (union.size ** (N - 1), union.size)
        return events_of_counts(runs.count_ngrams_in_file(val, union, parents[0][0].rule, shape))
    if not _shared_corpus(parents):
        raise BigramError(
            "--weights auto needs held-out names: the runs were not trained on one corpus and split, "
            "so give --val FILE"
        )
    top = _highest(parents)
    if "val" not in top.split_counts():
        raise BigramError(f"run {top.path} has no val split: give --val FILE for --weights auto")
    return events_of_counts(lift_counts(top.counts("val"), top.vocab, union))


def _open_parents(specs: Sequence[str], out: str | Path | None) -> list:
    """(Run, model) of each "RUN[:model]", once they read text by one rule and `out` is apart
    from them (not one of them, inside one, or holding one: --overwrite would replace it)."""
    if len(specs) < 2:
        raise BigramError("bigram mix needs two or more runs")
    if len(specs) > MAX_PARENTS:
        raise BigramError(
            f"bigram mix of {len(specs):,} runs: mix at most {MAX_PARENTS} at once (mix mixes for more)"
        )
    parents = []
    for spec in specs:
        path, model = parse_parent(spec)
        r = Run.open(path)
        parents.append((r, r.pick_model(model)))
    if len({(r.config.normalize, r.config.lowercase) for r, _ in parents}) != 1:
        raise BigramError(
            "the runs read text by different rules (--normalize, --lowercase): retrain them alike"
        )
    if out is None:  # a new runs/<date>_<time>: no parent's
        return parents
    target = Path(out).resolve()
    for r, _ in parents:
        p = r.path.resolve()
        how = "is" if p == target else "lies inside" if p in target.parents else ""
        how = how or ("holds" if target in p.parents else "")
        if how:
            raise BigramError(
                f"--out {escaped(out)} {how} the run {escaped(r.path)} being mixed: write the mix elsewhere"
            )
    return parents


def _write_run(out, overwrite: bool, parents: list, union: Vocab, table: Mixture, recipe: dict):
    """The mixed run on disk (at `out`, or a new runs/<date>_<time>): the highest-order parent's
    config and splits (in the union vocabulary), the table and its recipe, its metrics; returns
    (the metrics, the run's path)."""
    top = _highest(parents)
    recipe["counts"] = f"{top.path}'s splits, in the union vocabulary"
    cfg = dataclasses.replace(top.config, order=recipe["order"])
    with rundir.new_run_dir(out, overwrite) as run:
        splits = {s: lift_counts(c, top.vocab, union) for s, c in top.split_counts().items()}
        runs.write_inputs(run, cfg, union, splits)
        runs.save_table_model(run, "mix", union, table, recipe)
        metrics = {"mix": {s: evaluate(table, c) for s, c in splits.items()}, "mix_recipe": recipe}
        runs.write_metrics(run, metrics)
        rundir.set_status(run, "complete")
    return metrics, run if out is None else Path(out)  # `run` is a staging name under --overwrite


def mix_runs(
    specs: Sequence[str],
    weights: Sequence[float] | None,
    out: str | Path | None = None,
    *,
    val: str | Path | None = None,
    overwrite: bool = False,
    tol: float = 1e-3,
) -> MixResult:
    """A new run whose model is the interpolation of the parents' models: `weights` given (one
    per parent, summing to one) or, when None, fitted by EM on held-out names. The mix keeps every
    parent's table (lifted onto the union vocabulary): its memory is theirs."""
    if weights is not None and len(weights) != len(specs):
        raise BigramError(f"--weights gives {len(weights)} weights for {len(specs)} runs: give one per run")
    if weights is not None:
        check_weights(weights)
    if not (isinstance(tol, int | float) and 0 <= tol < math.inf):  # NaN fails too
        raise BigramError(f"--tol {tol}: give a number ≥ 0 (EM stops when no weight moves by more)")
    parents = _open_parents(specs, out)
    union = union_vocab([r.vocab for r, _ in parents])
    N = max(r.config.order for r, _ in parents)
    check_union(union, N)  # before any table is read or lifted
    _highest(parents)  # the mix's splits are there
    tables = [r.log_probs(m) for r, m in parents]
    vocabs = [r.vocab for r, _ in parents]
    mixture, _ = mix_tables(tables, vocabs, weights or [1 / len(parents)] * len(parents))
    history: list[float] = []
    if weights is None:
        events = _heldout(parents, union, N, val)
        fit = fit_weights(event_probs(mixture, events), events[2], tol=tol)
        weights, history = fit.weights, fit.nll
    check_weights(weights)
    mixture = Mixture(mixture.parts, weights, mixture.own).with_dense()
    alone: dict[str, float] = {}  # each parent's own test NLL, when the runs share a test split
    if _shared_corpus(parents) and all("test" in r.split_counts() for r, _ in parents):
        for (r, m), t in zip(parents, tables, strict=True):
            alone[f"{r.path}:{m}"] = evaluate(t, r.counts("test"))["nll"]
    recipe = {
        "parents": [
            {"run": str(r.path), "model": m, "order": r.config.order, "weight": float(w)}
            for (r, m), w in zip(parents, weights, strict=True)
        ],
        "weights": "auto (EM on held-out names)" if history else "given",
        "heldout_nll": history,
        "order": N,
    }
    metrics, path = _write_run(out, overwrite, parents, union, mixture, recipe)
    if alone:
        alone["mix"] = metrics["mix"]["test"]["nll"]
    return MixResult(path, [float(w) for w in weights], history, recipe["parents"], alone)


# --- import ---
def import_arpa(
    path: str | Path, out: str | Path | None = None, overwrite: bool = False
) -> tuple[Vocab, int, Path]:
    """A new run (at `out`; by default a new runs/<date>_<time>, as `train` makes) whose model
    (arpa.pt) is the table of an ARPA file: (vocabulary, order, the run). It has no splits of its
    own; its config records the file as its data."""
    if out is not None:
        rundir.check_out(out, overwrite)
    table, vocab, order = read_arpa(path)
    cfg = TrainConfig(data=str(path), order=order, model="count")
    validate(cfg)  # what train would refuse, no command could read: refused here, before writing
    with rundir.new_run_dir(out, overwrite) as run:
        runs.write_inputs(run, cfg, vocab, {})
        recipe = {"source": str(Path(path).resolve()), "order": order, "renormalized_over": "real tokens"}
        runs.save_table_model(run, "arpa", vocab, table, recipe)
        rundir.set_status(run, "complete")
    return vocab, order, run if out is None else Path(out)  # `run` is a staging name under --overwrite
