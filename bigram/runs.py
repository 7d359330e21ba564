"""Run directories: everything a training run writes, and reading it back, in one place.

The files' names and the model kinds are declared in bigram.safety.layout; what each holds:

runs/2026-11-21_10-30-05/                                            written by / read by
    .bigram-run      marker: bigram made this directory, its status, the files bigram wrote here
                     (--overwrite replaces only such a directory, and deletes only those files)
    config.toml      the resolved configuration                      write_inputs / read_config
    vocab.json       id 0 = boundary, then the characters            write_inputs / read_vocab
    counts.pt        {"splits": {split: sparse C×V counts}}          write_inputs / read_split_counts
    count.pt         {"counts", "smoothing": k|"kn", "table" (KN)}    save_count_model / read_checkpoint
    neural.pt        {"W" (or sparse: keys, ptr, cols, values, shared), "step",
                      optimizer and generator state}                  save_neural_model / read_checkpoint
    mix.pt           {"table": its parts (Mixture.state), "recipe"}   save_table_model / read_checkpoint
    arpa.pt          {"table": its levels (table_state), "recipe"}    save_table_model / read_checkpoint
    metrics.json     NLL, perplexity, bits per char per model and split     write_metrics / read_metrics
    count/, neural/  TensorBoard's event files, a directory per model        formats/tensorboard.Writers
    <model>-model.<format>, counts.png, probs-<model>.png   export and plot without --out (rundir.claim)

Which run a command uses when none is named (the newest complete one): rundir.find_run. A model's
table, log P(next | context), is made from its checkpoint by `table.model_table` alone; `Run`
reads a run's files once and holds its tables.

Every checkpoint also records its "kind" and the vocabulary's "chars", checked when it is read.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bigram.backoff import Table, table_state
from bigram.config import TrainConfig, resolve_dict
from bigram.counts import compact, context_rows
from bigram.errors import BigramError
from bigram.exact.constraints import SearchStopped, asked, mass_line
from bigram.metrics import evaluate, kl_between, score_name
from bigram.mixture import Mixture
from bigram.safety import atomic, checkpoints, layout
from bigram.safety.rundir import find_run, own, read_bytes
from bigram.table import count_model_of, model_table
from bigram.text import TextRule, escaped
from bigram.vocab import Vocab

if TYPE_CHECKING:
    from bigram.exact.plans import Plan

SMALL_FILE_BYTES = 64 << 20  # config.toml, vocab.json, metrics.json: far above what bigram writes
RECORDED = ("data", "model")  # in every config.toml bigram ever wrote: missing, the file is damaged


# --- writing a run -------------------------------------------------------------------------------


def write_config(run: Path, cfg: TrainConfig) -> None:
    atomic.write_text(own(run, layout.CONFIG), cfg.to_toml())


def write_inputs(run: Path, cfg: TrainConfig, vocab: Vocab, splits: dict[str, torch.Tensor]) -> None:
    """What a run is trained from: its resolved config, vocabulary and per-split counts."""
    write_config(run, cfg)
    vocab_json = json.dumps(vocab.to_dict(), ensure_ascii=False, indent=1) + "\n"
    atomic.write_text(own(run, layout.VOCAB), vocab_json)
    sparse = {s: checkpoints.to_sparse(c) for s, c in splits.items()}
    checkpoints.save(
        {"kind": "counts", "chars": list(vocab.chars), "splits": sparse}, own(run, layout.COUNTS)
    )


def save_count_model(
    run: Path, vocab: Vocab, train: torch.Tensor, smoothing: float | str, table: Table | None = None
) -> None:
    """The count model is its training counts and its smoothing (k, or "kn"): the table follows.
    Kneser-Ney's table is stored too (`table`), so a reading command need not estimate it again."""
    ckpt = {"kind": "count", "chars": list(vocab.chars), "counts": checkpoints.to_sparse(train)}
    smoothing = smoothing if smoothing == "kn" else float(smoothing)
    if smoothing == "kn" and table is not None:
        ckpt["table"] = table_state(table)
    checkpoints.save({**ckpt, "smoothing": smoothing}, own(run, layout.checkpoint("count")))


def save_neural_model(
    run: Path,
    vocab: Vocab,
    weights: dict,
    *,
    step: int,
    optimizer: str,
    optimizer_state: dict | None,
    generator_state: torch.Tensor,
) -> None:
    """The weights (the model's `state()`: {"W"}, or the sparse model's parts), and everything
    --resume needs to continue exactly where training stopped."""
    ckpt = {"kind": "neural", "chars": list(vocab.chars), **weights, "step": step}
    state = {"optimizer_state": optimizer_state, "generator_state": generator_state}
    checkpoints.save({**ckpt, "optimizer": optimizer, **state}, own(run, layout.checkpoint("neural")))


def write_metrics(run: Path, metrics: dict) -> None:
    atomic.write_text(own(run, layout.METRICS), json.dumps(metrics, indent=2) + "\n")


def save_table_model(
    run: Path, kind: str, vocab: Vocab, table: Table | Mixture | torch.Tensor, recipe: dict
) -> None:
    """A mixed (kind "mix") or imported ("arpa") model is its table itself, in backoff form
    (bigram.backoff.table_state: the known contexts' levels, never a C×V tensor; a C×V tensor
    given here is stored as the dense table it is; a mix: its parts, bigram.mixture), and how it
    was made (also in KIND.json, to read): a mix's parents (run, model, weight) and, for fitted
    weights, the held-out NLL of each EM iteration; an import's source file."""
    if isinstance(table, torch.Tensor):
        table = Table.of_dense(table.double())
    state = table.state() if isinstance(table, Mixture) else table_state(table)
    ckpt = {"kind": kind, "chars": list(vocab.chars), "table": state, "recipe": recipe}
    checkpoints.save(ckpt, own(run, layout.checkpoint(kind)))
    atomic.write_text(own(run, layout.recipe(kind)), json.dumps(recipe, indent=2, ensure_ascii=False) + "\n")


# --- reading a run's files (each checked: a damaged file is one error naming it) -------------------


def read_config(run: Path) -> TrainConfig:
    """config.toml: the run's whole resolved configuration (a key left out is damage, not a default)."""
    where = run / layout.CONFIG
    try:
        raw = tomllib.loads(read_bytes(where, SMALL_FILE_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as e:
        raise BigramError(f"cannot read {escaped(where)}: {_why(e)}; it is damaged, retrain") from None
    missing = [k for k in RECORDED if k not in raw]
    if missing:
        raise BigramError(f"{escaped(where)} lacks {', '.join(missing)}: it is damaged; retrain")
    return resolve_dict(raw, where=escaped(where))


def read_vocab(run: Path) -> Vocab:
    """vocab.json: id 0 the boundary, then the characters."""
    try:
        return Vocab.from_dict(json.loads(read_bytes(run / layout.VOCAB, SMALL_FILE_BYTES)))
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise BigramError(f"cannot read vocabulary {escaped(run / layout.VOCAB)}: {_why(e)}") from None


def read_checkpoint(run: Path, model: str, vocab: Vocab) -> dict:
    """MODEL.pt, checked to be that model's and to hold the run's vocabulary."""
    ckpt = checkpoints.load(run / layout.checkpoint(model), model)
    if tuple(ckpt.get("chars", ())) != vocab.chars:
        raise BigramError(f"{run / layout.checkpoint(model)} does not match {run / layout.VOCAB}")
    return ckpt


def read_split_counts(run: Path, shape: tuple[int, int], imported: bool = False) -> dict[str, torch.Tensor]:
    """counts.pt: the C×V count matrix of every non-empty split (an imported run has none)."""
    where = str(run / layout.COUNTS)
    splits = checkpoints.load(run / layout.COUNTS, "counts").get("splits")
    if isinstance(splits, dict) and not splits and imported:
        raise BigramError(
            f"run {run} was imported from an ARPA file and has no splits of its own: "
            "give --data FILE (eval) or use --what probs (plot)"
        )
    if not isinstance(splits, dict) or not splits or not set(splits) <= {"train", "val", "test"}:
        raise BigramError(f"{where} has no per-split counts: it is damaged; retrain")
    return {k: compact(checkpoints.check_counts(v, shape, where)) for k, v in splits.items()}


def read_metrics(run: Path) -> dict:
    """metrics.json: every model's metrics per split, and what training chose and did."""
    try:
        return json.loads(read_bytes(run / layout.METRICS, SMALL_FILE_BYTES))
    except (OSError, ValueError, RecursionError) as e:
        raise BigramError(f"cannot read {escaped(run / layout.METRICS)}: {_why(e)}; retrain") from None


def _why(e: Exception) -> str:
    """What went wrong reading a run's file, in words (an OSError's without its errno)."""
    if isinstance(e, RecursionError):
        return "it is nested too deeply to be bigram's"
    return escaped(e.strerror or e) if isinstance(e, OSError) else escaped(e)


def count_ngrams_in_file(
    path: str | Path, vocab: Vocab, rule: TextRule, shape: tuple[int, int], batch: int = 1 << 16
) -> torch.Tensor:
    """The (context, next) counts of a names file, read by `rule` and counted in `vocab` (streamed,
    a batch of names at a time); a character the vocabulary lacks is an error naming it and the
    name's position."""
    from bigram.reader.corpus import iter_names  # the streaming reader: loaded where names are read

    C, V = shape
    keys, weights, names, done = [], [], [], 0

    def flush() -> None:
        nonlocal done
        try:
            ids = vocab.encode_corpus(names)
        except BigramError:
            for i, name in enumerate(names):  # find the name with the unknown character
                vocab.encode(name, where=f" (name {done + i + 1} of {path})")
            raise
        rows, nxt = context_rows(ids, C, V)
        k, c = torch.unique(rows * V + nxt, return_counts=True)
        keys.append(k)
        weights.append(c)
        done += len(names)
        names.clear()

    for name in iter_names(path, rule):
        names.append(name)
        if len(names) == batch:
            flush()
    if names:
        flush()
    if not done:
        raise BigramError(f"data file {path} has no names (it is empty or only blank lines)")
    k, inverse = torch.unique(torch.cat(keys), return_inverse=True)
    c = torch.zeros(len(k), dtype=torch.long).index_add_(0, inverse, torch.cat(weights))
    pairs = torch.stack([k // V, k % V])
    return compact(torch.sparse_coo_tensor(pairs, c, (C, V), check_invariants=False))


_PLANNED = ("temperature", "top_k", "top_p", "constraints", "patterns")  # what a sampling plan is built from


def _rest(kw: dict) -> dict:
    """A sampling request's keys beyond its plan's (exclude, unique, max_rounds, …)."""
    return {key: v for key, v in kw.items() if key not in _PLANNED}


def read_by_rule(rule: TextRule, kw: dict) -> dict:
    """A sampling request's --start, --end and the strings of --contains, --not-contains and
    --blocklist read by a run's text rule (a --pattern is taken as written)."""
    c = kw.get("constraints")
    if c is not None:
        kw["constraints"] = dataclasses.replace(c, start=rule.text(c.start), end=rule.text(c.end))
    p = kw.get("patterns")
    if p is not None:
        keys = ("contains", "not_contains", "blocklist")
        kw["patterns"] = dataclasses.replace(p, **{k: tuple(map(rule.text, getattr(p, k))) for k in keys})
    return kw


# --- a run: its files read once, its tables built from them ------------------------------------------


@dataclass
class Run:
    """A trained run loaded from disk: its vocabulary, config and model tables."""

    path: Path
    vocab: Vocab
    config: TrainConfig
    _cache: dict = field(default_factory=dict, repr=False)  # tables and counts, read once

    @classmethod
    def open(cls, path: str | Path | None = None) -> Run:
        """A run directory (default: the newest readable one under runs/; a warning names the
        newer ones it skipped, whose training diverged or did not finish)."""
        p, skipped = find_run(path)  # choosing the run: rundir.find_run
        for run, why in skipped:
            warnings.warn(f"skipped run {escaped(run)}: {why}", stacklevel=2)
        return cls(p, read_vocab(p), read_config(p))

    @property
    def shape(self) -> tuple[int, int]:
        """(C, V): the model tables' rows (contexts of order − 1 tokens) and columns (tokens)."""
        V = self.vocab.size
        return V ** (self.config.order - 1), V

    @property
    def models(self) -> list[str]:
        """The models this run has a checkpoint for."""
        return [m for m in layout.MODEL_KINDS if (self.path / layout.checkpoint(m)).is_file()]

    def pick_model(self, model: str | None) -> str:
        """The requested model, or by default the better one on val (`default_model`)."""
        have = self.models
        if not have:
            raise BigramError(
                f"run {self.path} has no model checkpoint (count.pt or neural.pt): it did not finish; retrain"
            )
        if model is None:
            return default_model(self)[0]
        if model not in layout.MODEL_KINDS:
            *others, last = layout.MODEL_KINDS
            raise BigramError(f"unknown model {model!r}: choose {', '.join(others)} or {last}")
        if model not in have:
            raise BigramError(f"run {self.path} has no {model} model; it has: {', '.join(have)}")
        return model

    def checkpoint(self, model: str) -> dict:
        return read_checkpoint(self.path, model, self.vocab)

    def log_probs(self, model: str | None = None) -> torch.Tensor:
        """The C×V table log P(next | context) of a model (float64); what every consumer reads."""
        model = self.pick_model(model)
        if model not in self._cache:
            ckpt = self.count_checkpoint() if model == "count" else self.checkpoint(model)
            self._cache[model] = model_table(
                model, ckpt, self.shape, str(self.path / layout.checkpoint(model))
            )
        return self._cache[model]

    def count_checkpoint(self) -> dict:
        """count.pt, read once (the table and export both use it)."""
        key = layout.checkpoint("count")  # a cache key apart from the "count" table's
        if key not in self._cache:
            self._cache[key] = self.checkpoint("count")
        return self._cache[key]

    def count_model(self) -> tuple[torch.Tensor, float | str]:
        """The count model's training counts (C×V, sparse) and its smoothing (k, or "kn"), checked."""
        return count_model_of(
            self.count_checkpoint(), self.shape, str(self.path / layout.checkpoint("count"))
        )

    def neural_state(self) -> dict:
        """neural.pt with its weights and step checked, and its optimizer the config's: what
        --resume needs."""
        ckpt, where = self.checkpoint("neural"), str(self.path / layout.checkpoint("neural"))
        ckpt.update(checkpoints.check_neural(ckpt, self.shape, where))
        ckpt["step"] = int(checkpoints.check_number(ckpt.get("step"), 0, 2**62, "step", where))
        if ckpt.get("optimizer") != self.config.optimizer:
            raise BigramError(
                f"{where} was trained with optimizer {ckpt.get('optimizer')!r} but "
                f"{self.path / layout.CONFIG} says {self.config.optimizer!r}: --resume continues the same "
                "optimizer; restore the config or retrain"
            )
        return ckpt

    def counts(self, split: str = "train") -> torch.Tensor:
        """The C×V (context, next) count matrix of a split of this run's data (int64)."""
        have = self.split_counts()
        if split not in have:
            raise BigramError(f"run {self.path} has no {split!r} split; it has: {', '.join(have)}")
        return have[split]

    # --- what the commands do with the tables -------------------------------------------------------

    @property
    def rule(self) -> TextRule:
        """How this run turned text into names (normalization, case): applied to every name given
        to it, so that a run trained with --lowercase scores "Emma" as "emma"."""
        return TextRule.of(self.config)

    def sample(self, n: int = 20, *, model: str | None = None, seed: int | None = None, **kw) -> list[str]:
        """n names (see bigram.sampling.sample_blocks for temperature, top_k, top_p, constraints, …)."""
        return [name for block in self.sample_blocks(n, model=model, seed=seed, **kw) for name in block]

    def plan(self, model: str | None = None, **kw) -> Plan:
        """A sampling request's exact plan (sampling.plan_for), built once, so that the names and
        P(the constraints) `bigram sample` prints read the same messages; the latest one is kept."""
        from bigram import sampling  # here: its planner costs commands that never sample

        asked = read_by_rule(self.rule, {k: kw[k] for k in _PLANNED if k in kw})
        key = (self.pick_model(model), tuple(sorted(asked.items())))
        if self._cache.get("plan", (None,))[0] != key:
            self._cache.pop("plan", None)  # one plan held at a time: its messages can be large
            self._cache["plan"] = (key, sampling.plan_for(self.log_probs(model), self.vocab, **asked))
        return self._cache["plan"][1]

    def sample_blocks(self, n: int, *, model: str | None = None, seed: int | None = None, **kw):
        """The same names as sample(), block by block (for very large n)."""
        from bigram.sampling import sample_blocks

        plan = self.plan(model, **kw)
        return sample_blocks(self.log_probs(model), self.vocab, n, seed=seed, plan=plan, **_rest(kw))

    def most_likely(self, k: int = 10, *, model: str | None = None, **kw) -> list[tuple[str, float]]:
        """The k most probable names (with their log-probabilities) meeting the constraints."""
        from bigram.sampling import most_likely

        return most_likely(self.log_probs(model), self.vocab, k, plan=self.plan(model, **kw), **_rest(kw))

    def names(
        self, n: int, *, model: str | None = None, seed: int | None = None, unique: bool = False,
        most_likely: int | None = None, novel: bool = False, **kw,
    ) -> tuple[Iterable[list[str]], BigramError | None]:  # fmt: skip
        """What `bigram sample` prints: n names drawn block by block (constant memory for any n), or
        the `most_likely` K names as one block; and the SearchStopped that cut that search short, if
        one did (what it found is exact, and given first). `novel`: none of the corpus's own names."""
        if novel:
            kw["exclude"] = self.corpus_names()
        if most_likely is None:
            return self.sample_blocks(n, model=model, seed=seed, unique=unique, **kw), None
        try:
            found, stopped = self.most_likely(most_likely, model=model, **kw), None
        except SearchStopped as e:
            found, stopped = e.found, e
        return [[name for name, _ in found]], stopped

    def score(self, names: str | list[str], *, model: str | None = None) -> list[dict]:
        """Per-name bigram probabilities, log-likelihood and NLL (what `bigram score` prints), each
        name read by the run's text rule."""
        lp = self.log_probs(model)
        given = [names] if isinstance(names, str) else names
        return [score_name(lp, self.vocab, self.rule.name(w)) for w in given]

    def evaluate(self, model: str | None = None, splits: dict[str, torch.Tensor] | None = None) -> dict:
        """{model: {split: metrics}} on the run's splits (or on given split → count matrices), and
        when both models are evaluated, "kl_count_neural": {split: KL(count ‖ neural)}."""
        splits = self.split_counts() if splits is None else splits
        tables = {m: self.log_probs(m) for m in ([self.pick_model(model)] if model else self.models)}
        if not tables:
            self.pick_model(None)  # raises the "no checkpoint" error
        out: dict = {m: {s: evaluate(lp, c) for s, c in splits.items()} for m, lp in tables.items()}
        if len(tables) == 2:
            out["kl_count_neural"] = {
                s: kl_between(tables["count"], tables["neural"], c) for s, c in splits.items()
            }
        return out

    def split_counts(self) -> dict[str, torch.Tensor]:
        """The count matrix of every non-empty split of this run's data."""
        if "counts" not in self._cache:
            self._cache["counts"] = read_split_counts(self.path, self.shape, imported="arpa" in self.models)
        return self._cache["counts"]

    def corpus_names(self) -> set[str]:
        """Every name of the corpus this run was trained on (read again from its data file, by the
        run's text rule, so that --novel leaves out exactly the names it was trained on)."""
        data = Path(self.config.data)
        if not data.is_file():
            raise BigramError(
                f"--novel needs the run's corpus {data} (from {self.path / layout.CONFIG}), which is not "
                "there: run from the directory you trained in"
            )
        from bigram.reader.corpus import iter_names

        return set(iter_names(data, self.rule))

    def counts_of(self, path: str | Path, batch: int = 1 << 16) -> torch.Tensor:
        """The (context, next) counts of another names file, read by this run's text rule and
        counted in its vocabulary (streamed, a batch of names at a time); a character the run never
        saw is an error naming it and the name's position."""
        return count_ngrams_in_file(path, self.vocab, self.rule, self.shape, batch)

    def metrics(self) -> dict:
        """metrics.json: every model's metrics per split, and what training chose and did."""
        return read_metrics(self.path)

    def explore(self):
        """The `bigram explore` page of this run; a notebook shows it inline (`_repr_html_`)."""
        from bigram.formats.explore import Page, render

        return Page(render(self))


def lecture_float32_sums(run: Run, batch: int = 1 << 16) -> dict:
    """`bigram eval --lecture-float32`: the lecture notebook's float32 log-likelihood and NLL
    (metrics.lecture_float32) over every name of the run's data file, in file order. The notebook
    counts all names and sums over all of them with an order-2 add-k model: a run made the same
    way (`--config lecture`) is what it reproduces."""
    cfg, where = run.config, f"--lecture-float32 ({escaped(str(run.path))})"
    if "count" not in run.models or cfg.order != 2 or run.count_model()[1] == "kn":
        raise BigramError(
            f"{where}: the notebook's sums are of an order-2 add-k count model; this run has none"
        )
    if cfg.val_frac or cfg.test_frac:
        raise BigramError(
            f"{where}: the notebook counts and sums over every name of the file; this run holds out val "
            "and test: train with --val-frac 0 --test-frac 0 (as --config lecture does)"
        )
    if run.vocab.size**2 > 1 << 20:
        raise BigramError(f"{where}: the notebook's dense float32 table of {run.vocab.size:,}² is too big")
    data = Path(cfg.data)
    if not data.is_file():
        raise BigramError(
            f"{where} needs the run's corpus {escaped(str(data))} (from {run.path / layout.CONFIG}), "
            "which is not there: run from the directory you trained in"
        )
    from itertools import islice

    from bigram.metrics import lecture_float32, log_likelihood
    from bigram.reader.corpus import iter_names
    from bigram.table import count_log_probs_at

    counts, k = run.count_model()
    names = iter_names(data, run.rule)

    def batches():  # a batch of names at a time, in file order: bounded memory on any corpus
        while chunk := list(islice(names, batch)):
            yield run.vocab.encode_corpus(chunk)

    sums = lecture_float32(counts, float(k), batches())
    ll64 = log_likelihood(count_log_probs_at(counts, float(k)), counts)  # the same sum in float64
    return {**sums, "float64_log_likelihood": ll64, "float64_nll": -ll64 / sums["bigrams"]}


def scored_names(
    run: Run, names: Iterable[str], model: str | None = None, batch: int = 1 << 16
) -> Iterator[tuple[list[str], torch.Tensor, torch.Tensor]]:
    """`bigram score --file`: (names, log-likelihoods, predictions) a batch of names at a time, in
    order, so that a stream of any length is scored in bounded memory (metrics.name_log_likelihoods)."""
    from itertools import islice

    from bigram.metrics import name_log_likelihoods

    lp, it = run.log_probs(model), iter(names)
    while chunk := list(islice(it, batch)):
        yield chunk, *name_log_likelihoods(lp, run.vocab, chunk)


def constraint_mass(run: Run, model: str | None, request: dict) -> tuple[float, str] | None:
    """How big a sampling request's constraints are (what `bigram sample` says first, on stderr):
    (log P(the constraints), the line saying it) from the plan its names are drawn with
    (Run.plan), under the table as adjusted (--temperature, --top-k, --top-p); None for a request
    that constrains nothing."""
    read = read_by_rule(run.rule, dict(request))  # as the run reads them: --start E is "e" to --lowercase
    c, p = read["constraints"], read["patterns"]
    if not asked(c, p):
        return None
    log_p = run.plan(model, **request).log_mass()
    flags = [f"--{k.replace('_', '-')} {v:g}" for k, v in request.items() if k.startswith(("top", "temp"))
             and v is not None and not (k == "temperature" and v == 1.0)]  # fmt: skip
    words = f"the {layout.MODEL_NAMES[run.pick_model(model)]}" + (f" with {' '.join(flags)}" if flags else "")
    spaced = any(ch.isspace() for ch in run.vocab.chars)  # walks the text rule makes no name of
    return log_p, mass_line(c, p, log_p, words, walks=spaced)


def default_model(run: Run) -> tuple[str, str | None]:
    """(the model a command reads when --model is not given, why): with both models and a val
    split, the one with the lower val NLL (metrics.json); otherwise neural if trained, else
    count (then mix, arpa), and no reason to say. Decided once a run (metrics.json read once)."""
    if "default_model" not in run._cache:
        run._cache["default_model"] = _default_model(run)
    return run._cache["default_model"]


def _default_model(run: Run) -> tuple[str, str | None]:
    have = run.models
    first = next(m for m in ("neural", "count", "mix", "arpa") if m in have)
    try:
        val = {m: float(run.metrics()[m]["val"]["nll"]) for m in ("count", "neural")}
    except (BigramError, KeyError, TypeError, ValueError):
        return first, None  # no val split (or no metrics): the rule before, docs/cli.md
    if not {"count", "neural"} <= set(have) or val["count"] == val["neural"]:
        return first, None
    best, other = sorted(("count", "neural"), key=val.get)
    return best, f"{best} model (val NLL {val[best]:.4f}, below the {other} model's {val[other]:.4f})"
