"""`bigram train`, `--resume` and `sweep`: corpus → counts → count model + neural model → run directory.

The pieces: reader/corpus.py counts, table.py makes the count model's table, models.py defines
the neural model and fit.py fits it, formats/tensorboard.py logs it, runs.py writes the run
directory. This file puts them in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bigram import runs
from bigram.backoff import Table
from bigram.config import OPTIMIZER_NAMES, TrainConfig, validate
from bigram.counts import gram_name
from bigram.errors import BigramError, TrainingStopped
from bigram.estimators.kneser_ney import kneser_ney_table
from bigram.fit import Fit, StopOnCtrlC, check_counts_fit, choose_reg, fit_neural
from bigram.formats.tensorboard import (
    Curves,
    QuietWriterThread,
    log_smoothing_curve,
    log_summary,
    open_writer,
)
from bigram.heap import release_freed_memory
from bigram.metrics import evaluate
from bigram.reader.corpus import default_world, load_counts
from bigram.safety import layout, rundir
from bigram.smoothing import choose_smoothing, equivalent_smoothing
from bigram.table import count_log_probs_at, count_table, model_table
from bigram.vocab import Vocab


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    # model → its table of log P (bigram.backoff.Table)
    tables: dict[str, Table] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)  # what happened, in words (printed by the CLI)
    order: int = 2  # the n-gram order the tables have
    account: Account | None = None  # what training chose and did (metrics.json's other keys)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BigramError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(name)


def _setup(cfg: TrainConfig, progress: bool | None) -> tuple[torch.device, bool]:
    """The device to train on and whether to draw progress bars (by default: on a terminal)."""
    return resolve_device(cfg.device), sys.stdout.isatty() if progress is None else progress


def train(
    cfg: TrainConfig,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> TrainResult | None:
    """The whole path: read, split, count, fit, save, log. Returns the run directory and metrics
    (None in the processes other than rank 0 under torchrun)."""
    device, progress = _setup(cfg, progress)
    if out is not None:
        rundir.check_out(out, overwrite, cfg.data)  # fail before the counting, not after
    rank, world = default_world()
    group = None
    if world > 1:  # under torchrun: every process counts its byte range, counts are summed
        import torch.distributed as dist

        if device.type == "cuda":  # one GPU per process
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            device = torch.device("cuda", torch.cuda.current_device())
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        group = dist.group.WORLD
    try:
        corpus = load_counts(cfg, progress=progress and rank == 0, rank=rank, world=world, group=group)
    finally:
        if group is not None:
            dist.destroy_process_group()
    if rank != 0:
        return None  # only rank 0 trains and writes the run directory
    vocab, splits = corpus.vocab, corpus.splits
    check_counts_fit(cfg, splits["train"])  # before the count model is fitted, not after

    with rundir.new_run_dir(out, overwrite, data=cfg.data) as run:
        final = run if out is None else Path(out)  # `run` is a staging name while --overwrite builds
        runs.write_inputs(run, cfg, vocab, splits)
        result = _fit_and_report(run, cfg, vocab, splits, device=device, progress=progress, final_dir=final)
    return dataclasses.replace(result, run_dir=final)


def resume(run_dir: str | Path, *, steps: int | None = None, progress: bool | None = None) -> TrainResult:
    """Continue a run's neural model from its checkpoint to `steps` updates in all (default: the
    run's own), with its optimizer state and minibatch generator: the same weights as an
    uninterrupted run of that many steps. The counts come from the run directory itself."""
    run = runs.Run.open(run_dir)
    if "neural" not in run.models:
        raise BigramError(
            f"run {run.path} has no neural checkpoint to resume (it has: {', '.join(run.models) or 'none'})"
        )
    state = run.neural_state()
    cfg = run.config if steps is None else dataclasses.replace(run.config, steps=steps)
    if cfg.steps <= state["step"]:
        raise BigramError(
            f"run {run.path} is already at step {state['step']}: pass --steps with a larger total to go on"
        )
    runs.write_config(run.path, cfg)
    device, progress = _setup(cfg, progress)
    return _fit_and_report(
        run.path, cfg, run.vocab, run.split_counts(), device=device, progress=progress, resume=state
    )


def sweep(
    cfg: TrainConfig, regs: list[float], *, out: str | Path | None = None, progress: bool | None = None
) -> tuple[Path, list[dict]]:
    """Neural models for several L2 strengths, counted once, each in OUT/reg=<value>/, so that
    `tensorboard --logdir OUT` shows them side by side (HParams tab). For each, the add-k
    smoothing whose count model is nearest: how much smoothing the penalty amounts to."""
    device, progress = _setup(cfg, progress)
    if out is not None:
        rundir.check_out(out, False, can_overwrite=False)
    corpus = load_counts(cfg, progress=progress)
    rows = []
    splits = corpus.splits  # the count model's k is the same for every reg: chosen once
    auto = cfg.smoothing == "auto"
    choice = SmoothingChoice(*choose_smoothing(splits["train"], splits.get("val"))) if auto else None
    with rundir.new_run_dir(out, kind="sweep") as root:
        for reg in regs:
            sub = dataclasses.replace(cfg, reg=reg, model="neural")
            run = _sub_run(root / f"reg={reg:g}", sub, corpus.vocab, splits)
            result = _fit_and_report(
                run, sub, corpus.vocab, splits, device=device, progress=progress, smoothing_choice=choice,
                swept=("reg",),
            )  # fmt: skip
            k, kl = equivalent_smoothing(result.tables["neural"], splits["train"])
            metrics = result.metrics["neural"]
            rows.append({"reg": reg, "run": str(run), "metrics": metrics, "equivalent_k": k, "kl": kl})
    return root, rows


def sweep_orders(
    cfg: TrainConfig,
    orders: list[int],
    regs: list[float],
    *,
    out: str | Path | None = None,
    progress: bool | None = None,
) -> tuple[Path, list[dict]]:
    """The lecture's first exercise, does more context help: one run per order N in OUT/order=N/,
    each counted at its order and trained as `train` would (`regs`: one per order). All in one
    HParams view. With --smoothing auto the count model is, per order, whichever predicts the val
    split better: add-k with its best k, or Kneser-Ney; each row reports both."""
    device, progress = _setup(cfg, progress)
    if out is not None:
        rundir.check_out(out, False, can_overwrite=False)
    subs = [dataclasses.replace(cfg, order=n, reg=reg) for n, reg in zip(orders, regs, strict=True)]
    for sub in subs:
        validate(sub)  # every order checked before the first is counted
    rows = []
    with rundir.new_run_dir(out, kind="sweep") as root:
        for sub in subs:
            corpus = load_counts(sub, progress=progress)
            splits = corpus.splits
            run = _sub_run(root / f"order={sub.order}", sub, corpus.vocab, splits)
            weighed = _weigh_smoothings(splits) if sub.smoothing == "auto" and sub.trains_count else None
            choice, candidates, kn = weighed or (None, None, None)
            result = _fit_and_report(
                run, sub, corpus.vocab, splits, device=device, progress=progress, smoothing_choice=choice,
                kneser_ney=kn, swept=("order", "reg"),
            )  # fmt: skip
            k = (result.account.smoothing or {}).get("chosen", sub.smoothing)
            reg = (result.account.reg or {}).get("chosen", sub.reg)  # auto: the reg chosen on val
            row = {"order": sub.order, "reg": reg, "k": k, "run": str(run), "metrics": result.metrics}
            if weighed:  # both candidates' metrics, and add-k's k
                row.update(candidates=candidates, add_k=choice.k)  # k: "kn" when Kneser-Ney won
            rows.append(row)
    return root, rows


@dataclasses.dataclass(frozen=True)
class SmoothingChoice:
    """--smoothing auto's choice of add-k, made once for a sweep's runs: k, the NLL of each k
    tried, on what ("val" or "leave-one-out"), and Kneser-Ney's val NLL when that was weighed too."""

    k: float
    curve: list
    on: str
    kneser_ney_val_nll: float | None = None


def _weigh_smoothings(splits: dict[str, torch.Tensor]) -> tuple[SmoothingChoice, dict, tuple] | None:
    """The sweep's --smoothing auto: the best add-k k on val and Kneser-Ney, each evaluated on
    every split; `_fit_and_report` keeps the one with the lower val NLL. Returns the choice, the
    candidates' metrics and Kneser-Ney's (log P, discounts); None without a val split (then auto
    is add-k by leave-one-out, as in `train`)."""
    if "val" not in splits:
        return None
    k, curve, on = choose_smoothing(splits["train"], splits["val"])
    kn = _kneser_ney_log_probs(splits["train"])
    candidates = {
        name: {s: evaluate(lp, c) for s, c in splits.items()}
        for name, lp in (("add-k", count_log_probs_at(splits["train"], k)), ("kn", kn[0]))
    }
    return SmoothingChoice(k, curve, on, candidates["kn"]["val"]["nll"]), candidates, kn


def _kneser_ney_log_probs(train: torch.Tensor) -> tuple[Table, list]:
    return kneser_ney_table(train)


def _sub_run(run: Path, cfg: TrainConfig, vocab: Vocab, splits: dict[str, torch.Tensor]) -> Path:
    """One of a sweep's runs: a marked directory holding its config, vocabulary and counts."""
    rundir.sub_run(run)  # recorded in the sweep's marker, made and marked
    runs.write_inputs(run, cfg, vocab, splits)
    return run


@dataclass
class Account:
    """What training chose and did, recorded in metrics.json beside the metrics (a part is None
    where it did not happen): `smoothing`, --smoothing auto's choice of k and its curve;
    `kneser_ney`, the discounts; `reg`, reg = auto's choice and its curve; `neural_training`, the
    optimizer's steps and whether it converged."""

    smoothing: dict | None = None
    kneser_ney: dict | None = None
    reg: dict | None = None
    neural_training: dict | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Fitted:
    """The models _fit_and_report fits, as it goes: each one's table of log P (bigram.backoff),
    the metrics' source of log P where it is not the table itself, the neural model's training,
    and the account of it all."""

    tables: dict[str, Table] = field(default_factory=dict)
    exact: dict[str, object] = field(default_factory=dict)
    fit: Fit | None = None
    account: Account = field(default_factory=Account)


def _fit_and_report(
    run: Path,
    cfg: TrainConfig,
    vocab: Vocab,
    splits: dict[str, torch.Tensor],
    *,
    device,
    progress: bool,
    resume: dict | None = None,
    final_dir: Path | None = None,
    smoothing_choice: SmoothingChoice | None = None,
    kneser_ney: tuple | None = None,
    swept: tuple[str, ...] = (),
) -> TrainResult:
    """Fit the models the config asks for, then write their checkpoints, metrics.json and the
    TensorBoard summaries; an early stop leaves them consistent, then raises TrainingStopped.
    `final_dir`: the run's name in messages (`run` may be where a replacing run is built). The sweep
    passes what it has computed once: `smoothing_choice`, `kneser_ney` (log P, discounts), and
    `swept`, the keys it varies (listed first in the HParams tab)."""
    final_dir = run if final_dir is None else final_dir
    models = Fitted()
    with contextlib.ExitStack() as stack:
        writer = open_writer(run)
        stack.enter_context(QuietWriterThread())
        stack.callback(_close_quietly, writer)  # an error is reported below, or the run is abandoned anyway
        try:
            with StopOnCtrlC() as ctrl_c:  # Ctrl-C stops cleanly between steps until the run is complete
                cfg = _settle_smoothing(cfg, splits, writer, smoothing_choice, models.account)
                if cfg.trains_count:
                    _fit_count(run, cfg, vocab, splits["train"], kneser_ney, models)
                if cfg.trains_neural:
                    cfg = _settle_reg(cfg, splits, device, models.account)
                    curves = Curves(writer, splits, cfg.smoothing, models.exact.get("count"))
                    models.fit = fit_neural(
                        cfg,
                        splits,
                        device=device,
                        curves=curves,
                        progress=progress,
                        resume=resume,
                        ctrl_c=ctrl_c,
                    )
                    _save_neural(run, cfg, vocab, models)
                metrics = {
                    model: {s: evaluate(models.exact.get(model, lp), c) for s, c in splits.items()}
                    for model, lp in models.tables.items()
                }
                runs.write_metrics(run, {**metrics, **models.account.to_json()})
            # the run is complete and consistent from here: a Ctrl-C now (or one that came during
            # the saves) ends the TensorBoard summaries, not the run
            fit = models.fit
            stopped_early = ctrl_c.requested and (fit is None or fit.stopped is None)
            summary = (cfg, vocab, models.tables, metrics, splits["train"], fit.step if fit else 0, swept)
            _log_summaries(writer, run, final_dir, stopped_early, *summary)
        except OSError as e:  # TensorBoard's writer thread hit a full disk; it re-raises here
            raise BigramError(f"cannot write TensorBoard events in {final_dir}: {e.strerror or e}") from None
    _set_final_status(run, final_dir, cfg, models.fit)
    return TrainResult(
        run, metrics, models.tables, summary_lines(cfg, models.account), cfg.order, models.account
    )


def _close_quietly(writer) -> None:
    with contextlib.suppress(OSError):
        writer.close()


def _settle_reg(cfg: TrainConfig, splits: dict, device: torch.device, account: Account) -> TrainConfig:
    """reg = "auto": the config with the reg whose neural model predicts the val names best
    (fit.choose_reg), recorded in metrics.json; config.toml keeps "auto", as it keeps smoothing's,
    and a resumed run chooses again (the same splits and seed: the same reg)."""
    if cfg.reg != "auto":
        return cfg
    choice = choose_reg(cfg, splits, device)
    account.reg = {"chosen": choice.reg, "on": choice.on, "curve": [list(p) for p in choice.curve]}
    return dataclasses.replace(cfg, reg=choice.reg)


def _settle_smoothing(
    cfg: TrainConfig, splits: dict, writer, choice: SmoothingChoice | None, account: Account
) -> TrainConfig:
    """smoothing = "auto": the config with the k that predicts held-out names best (or "kn" when
    the sweep weighed Kneser-Ney too and it won); the curve goes to TensorBoard and metrics.json."""
    if cfg.smoothing != "auto":
        return cfg
    choice = choice or SmoothingChoice(*choose_smoothing(splits["train"], splits.get("val")))
    k, curve, on = choice.k, choice.curve, choice.on
    account.smoothing = {"chosen": k, "chosen_by": on, "curve": [[x, y] for x, y in curve]}
    kn_val = choice.kneser_ney_val_nll
    log_smoothing_curve(writer, k, curve, on, kn_val)
    if kn_val is not None:
        account.smoothing.update(best_k=k, kneser_ney_val_nll=kn_val)
        k = account.smoothing["chosen"] = "kn" if kn_val < dict(curve)[k] else k
    return dataclasses.replace(cfg, smoothing=k)


def _fit_count(
    run: Path, cfg: TrainConfig, vocab: Vocab, train: torch.Tensor, kneser_ney: tuple | None, models: Fitted
) -> None:
    """Save the count model; keep its table and the metrics' source of its log P."""
    if cfg.smoothing == "kn":
        table, found = kneser_ney or _kneser_ney_log_probs(train)
        release_freed_memory()  # the estimator's temporaries, before the metrics' own
        runs.save_count_model(run, vocab, train, cfg.smoothing, table)
        models.account.kneser_ney = {
            "discounts": [list(d.d) for d in found],
            "fallback": [d.fallback for d in found],
        }
        models.exact["count"] = models.tables["count"] = table
        return
    runs.save_count_model(run, vocab, train, cfg.smoothing)
    # float64 log P at the counted bigrams for the metrics (the published figures); the table,
    # read only by the TensorBoard summaries, made at the rows they read
    models.exact["count"] = count_log_probs_at(train, cfg.smoothing)
    models.tables["count"] = count_table(train, cfg.smoothing)


def _save_neural(run: Path, cfg: TrainConfig, vocab: Vocab, models: Fitted) -> None:
    """Save the trained neural model; keep its table as every command reads it back (float64)."""
    fit = models.fit
    models.account.neural_training = {
        "optimizer": cfg.optimizer, "lr": cfg.learning_rate, "steps": fit.step,
        "step_cap": cfg.steps, "tol": cfg.tol, "converged": fit.converged,
    }  # fmt: skip
    weights = fit.model.state()
    runs.save_neural_model(run, vocab, weights, **fit.checkpoint_state())
    shape = (fit.model.contexts, fit.model.vocab_size)
    models.tables["neural"] = model_table("neural", weights, shape, str(run / layout.checkpoint("neural")))


def _log_summaries(writer, run: Path, final_dir: Path, stopped_early: bool, *summary) -> None:
    """TensorBoard's summaries of a complete run (log_summary's arguments in `summary`); a Ctrl-C
    before or while they are written leaves the run complete and says so."""
    release_freed_memory()  # the metrics' temporaries, before the figures'
    try:
        if stopped_early:
            raise KeyboardInterrupt
        log_summary(writer, *summary)
    except KeyboardInterrupt:
        rundir.set_status(run, "complete")
        raise TrainingStopped(
            f"interrupted while writing TensorBoard summaries: the models and {layout.METRICS} in "
            f"{final_dir} are complete",
            exit_code=130,
        ) from None


def _set_final_status(run: Path, final_dir: Path, cfg: TrainConfig, fit) -> None:
    """Mark the run complete, or interrupted / diverged with how to go on (TrainingStopped)."""
    neural = final_dir / layout.checkpoint("neural")
    if fit is not None and fit.stopped == "interrupted":
        rundir.set_status(run, "interrupted", f"at step {fit.step} of {cfg.steps}")
        raise TrainingStopped(
            f"interrupted at step {fit.step} of {cfg.steps}: saved {neural} and "
            f"{layout.METRICS}; resume with: bigram train --resume {final_dir}",
            exit_code=130,
        )
    if fit is not None and fit.stopped == "diverged":
        lr = f"lr {cfg.learning_rate:g}"
        rundir.set_status(run, "diverged", f"the loss was {fit.bad_loss} at step {fit.step + 1}, {lr}")
        raise TrainingStopped(
            f"training diverged: the loss was {fit.bad_loss} at step {fit.step + 1}; kept the last finite "
            f"model (step {fit.step}) in {neural}; lower --lr (now {cfg.learning_rate:g})",
            exit_code=1,
        )
    rundir.set_status(run, "complete")


def summary_lines(cfg: TrainConfig, account: Account) -> list[str]:
    """What training did, in words: the count model's k (and how it was chosen), the neural
    model's optimizer, steps and whether it converged.

    >>> cfg = TrainConfig(model="both", smoothing=0.5, optimizer="lbfgs", tol=1e-7)
    >>> account = Account(smoothing={"chosen": 0.5, "curve": [[0.5, 2.4612]]},
    ...                   neural_training={"steps": 41, "step_cap": 500, "converged": True})
    >>> print("\\n".join(summary_lines(cfg, account)))
    count model:  add-k smoothing, k = 0.5, chosen on the val split (val NLL 2.461200)
    neural model: L-BFGS (lr 1), 41 steps, converged: the last step changed the loss by < 1e-07
    """
    lines = []
    if cfg.trains_count:
        auto = account.smoothing
        kn_val = auto.get("kneser_ney_val_nll") if auto else None
        if auto:
            k, by = auto.get("best_k", auto["chosen"]), auto.get("chosen_by", "val")
            val = dict(map(tuple, auto["curve"]))[k]
        if cfg.smoothing == "kn":
            how = (
                f", chosen on the val split over add-k k = {k:.4g} ({kn_val:.6f} vs {val:.6f})"
                if auto
                else ""
            )
            lines.append(f"count model:  interpolated modified Kneser-Ney{how}; discounts D1, D2, D3+:")
            kn = account.kneser_ney
            for n, (d, fallback) in enumerate(zip(kn["discounts"], kn["fallback"], strict=True), 1):
                note = "  lmplz's fallback (its counts of counts give no valid discounts)" if fallback else ""
                lines.append(f"{'':14}{gram_name(n) + 's':<10}{d[0]:.4f}  {d[1]:.4f}  {d[2]:.4f}{note}")
        elif auto:
            chosen = (
                f"chosen on the val split (val NLL {val:.6f})" if by == "val"
                else f"chosen by leave-one-out on the training bigrams, no val split (NLL {val:.6f})"
            )  # fmt: skip
            if kn_val is not None:
                chosen += f" over Kneser-Ney (val NLL {kn_val:.6f})"
            lines.append(f"count model:  add-k smoothing, k = {k:.4g}, {chosen}")
        else:
            lines.append(f"count model:  add-k smoothing, k = {float(cfg.smoothing):g}")
    t = account.neural_training
    if t is not None:
        name = OPTIMIZER_NAMES[cfg.optimizer]
        head = f"neural model: {name} (lr {cfg.learning_rate:g}), {t['steps']} steps"
        if account.reg:
            lines.append(_reg_line(account.reg))
        if t["converged"]:
            lines.append(f"{head}, converged: the last step changed the loss by < {cfg.tol:g}")
        elif cfg.tol > 0:
            lines.append(f"{head}: stopped at the step cap before converging; raise --steps to go on")
        else:
            lines.append(f"{head}, every step run (tol = 0)")
    return lines


def _reg_line(reg: dict) -> str:
    """The summary's line for reg = auto: which reg, and why."""
    if reg["on"] != "val":
        return f"neural model: reg = {reg['chosen']:g} (auto without val names: the lecture's)"
    val = dict(map(tuple, reg["curve"]))[reg["chosen"]]
    return f"neural model: reg = {reg['chosen']:.4g}, chosen on the val split (val NLL {val:.6f})"
