"""`bigram train`: corpus → counts → count model + neural model → checkpoints, metrics, TensorBoard."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from bigram import atomic, checkpoints
from bigram.config import TrainConfig
from bigram.corpus import default_world, load_counts
from bigram.counts import dense, top_tokens
from bigram.errors import BigramError, TrainingStopped
from bigram.interrupt import held_ctrl_c
from bigram.metrics import evaluate
from bigram.metrics import nll as nll_of
from bigram.models import NeuralBigram, count_log_probs, count_log_probs_at
from bigram.runs import check_out, mark, new_run_dir
from bigram.sampling import sample_plain
from bigram.smoothing import choose_smoothing
from bigram.vocab import Vocab

N_TB_SAMPLES = 10  # names written to TensorBoard per model
TB_MAX_LEN = 40  # their length cap
TB_IMAGE_TOKENS = 64  # a larger vocabulary shows its most frequent characters
TB_FIGURE_TOKENS = 27  # the labelled figures: the lecture's size (each cell costs drawing time)


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    tables: dict[str, torch.Tensor] = field(default_factory=dict)  # model → V×V log P
    summary: list[str] = field(default_factory=list)  # what happened, in words (printed by the CLI)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BigramError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(name)


class PlainSGD:
    """The lecture's update, W.data += -lr * W.grad, with the optimizer interface fit_neural uses.
    Same numbers as torch.optim.SGD(lr=lr); written out because constructing any torch.optim
    optimizer first imports torch._dynamo, ~2–3 s of a 5 s default run."""

    def __init__(self, params, lr: float) -> None:
        self.params = list(params)
        self.lr = lr

    def step(self, closure) -> float:
        loss = closure()
        with torch.no_grad():
            for p in self.params:
                p.add_(p.grad, alpha=-self.lr)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"state": {}, "param_groups": [{"lr": self.lr}]}

    def load_state_dict(self, state: dict) -> None:
        """Plain SGD keeps no state between steps (a torch.optim.SGD checkpoint loads too)."""


def make_optimizer(cfg: TrainConfig, model: NeuralBigram, train: torch.Tensor):
    lr, params = cfg.learning_rate, model.parameters()
    if cfg.optimizer == "newton":
        from bigram.newton import RowNewton  # numba: only the runs that use it pay the import

        return RowNewton(model.W, train, cfg.reg, lr)
    if cfg.optimizer == "sgd":
        return PlainSGD(params, lr)  # plain W ← W − lr·grad, as in the lecture
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    # one L-BFGS iteration per step; its curvature history carries over between steps
    return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe")


@dataclass
class Fit:
    """The outcome of fit_neural: the model, its optimizer and minibatch generator, how many
    updates W has had, and why training stopped early (None, "interrupted" or "diverged")."""

    model: NeuralBigram
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int
    stopped: str | None = None
    bad_loss: float = math.nan
    converged: bool = False  # a step changed the loss by less than cfg.tol

    def checkpoint(self, cfg: TrainConfig, vocab: Vocab) -> dict:
        """Everything --resume needs to continue exactly where this stopped."""
        keep_state = self.stopped != "diverged"  # the optimizer had moved past the kept weights
        return {
            "kind": "neural",
            "chars": list(vocab.chars),
            "W": self.model.W.detach().cpu(),
            "step": self.step,
            "optimizer": cfg.optimizer,
            "optimizer_state": self.optimizer.state_dict() if keep_state else None,
            "generator_state": self.generator.get_state(),
        }


class _StopOnCtrlC:
    """While active, Ctrl-C sets a flag that the loop checks between steps, so an interrupted
    run stops after a whole update; a second Ctrl-C interrupts at once, as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None
        self._depth = 0  # entered again by fit_neural: only the outermost enter/exit installs/restores

    def __enter__(self) -> _StopOnCtrlC:
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class _QuietWriterThread:
    """While active, an exception in TensorBoard's background writer thread (a full disk) is not
    printed as a thread traceback: the writer re-raises it in the main thread, which reports it
    as one line."""

    def __enter__(self) -> _QuietWriterThread:
        self._old = threading.excepthook

        def hook(args) -> None:
            if args.thread is None or "Writer" not in type(args.thread).__name__:
                self._old(args)

        threading.excepthook = hook
        return self

    def __exit__(self, *exc) -> None:
        threading.excepthook = self._old


def fit_neural(
    cfg: TrainConfig,
    counts: dict[str, torch.Tensor],
    *,
    device: torch.device,
    writer=None,
    progress: bool = False,
    resume: dict | None = None,
    ctrl_c: _StopOnCtrlC | None = None,
) -> Fit:
    """Train W to minimize mean NLL over the training bigrams + reg · mean(W²), from a fresh
    init or from a checkpoint (`resume`), up to cfg.steps updates in all.

    Full batch: loss and gradient come from the training count matrix in O(V²) per step.
    --batch-size N: each step draws N training bigrams at random (with replacement, i.e. from
    the counts' distribution) and runs the literal one-hot forward on them.
    Step k logs the loss of the forward pass *before* the k-th update, so a resumed run's steps
    continue the interrupted run's without repeating one.
    Stops early on Ctrl-C (after a whole update) or at the first non-finite loss (keeping the
    last weights whose loss was finite)."""
    train = dense(counts["train"]).to(device=device, dtype=torch.float32)
    V = train.shape[0]
    model = NeuralBigram(V, seed=cfg.seed).to(device)
    opt = make_optimizer(cfg, model, train)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    start = 0
    if resume is not None:
        with torch.no_grad():
            model.W.copy_(resume["W"])
        if resume.get("optimizer_state") is not None:
            opt.load_state_dict(resume["optimizer_state"])
        gen.set_state(resume["generator_state"])
        start = int(resume["step"])
    flat = train.flatten()
    # the count model's NLL on each split: what the neural model is heading for
    k = cfg.smoothing if cfg.smoothing != "auto" else choose_smoothing(counts["train"], counts.get("val"))[0]
    count_lp = count_log_probs_at(counts["train"], k)
    reference = {s: nll_of(count_lp, c) for s, c in counts.items()}

    total = float(train.sum())
    parts: list[tuple[float, float, float]] = []  # (loss, nll, reg) of each evaluation in a step

    def closure() -> float:
        if cfg.batch_size:  # autograd through the literal one-hot forward
            opt.zero_grad(set_to_none=True)
            idx = torch.multinomial(flat, cfg.batch_size, replacement=True, generator=gen)
            loss_t, nll_t, reg_t = model.loss(idx // V, idx % V, cfg.reg)
            loss_t.backward()
            loss, nll, reg = loss_t.item(), nll_t.item(), reg_t.item()
        else:  # the same objective over all bigrams from the counts, gradient in closed form
            loss, nll, reg, model.W.grad = model.loss_and_grad_from_counts(train, cfg.reg, total)
        parts.append((loss, nll, reg))
        return loss

    fit = Fit(model, opt, gen, start)
    last_finite = None  # the weights of the last step whose loss was finite
    previous = None  # the loss before the previous update, to measure what that update gained
    bar = tqdm(
        range(start, cfg.steps), desc="neural", unit="step", disable=not progress, leave=False,
        initial=start, total=cfg.steps,
    )  # fmt: skip
    with ctrl_c or _StopOnCtrlC() as ctrl_c:
        for step in bar:
            if ctrl_c.requested:
                fit.stopped = "interrupted"
                break
            # a resumed run's first model was already evaluated when the previous run stopped
            if writer is not None and step % cfg.eval_every == 0 and not (resume and step == start):
                log_eval(writer, model, counts, reference, step)
            before = model.W.detach().clone()
            parts.clear()
            if cfg.optimizer == "newton":  # its compiled step evaluates the loss as it goes
                parts.append(opt.step())
            else:
                opt.step(closure)
            loss, nll, reg = parts[0]  # L-BFGS evaluates more than once; the first is before the update
            if not math.isfinite(loss):  # `before` is bad: go back to the last finite weights
                with torch.no_grad():
                    model.W.copy_(before if last_finite is None else last_finite)
                fit.step, fit.stopped, fit.bad_loss = max(step - 1, start), "diverged", loss
                return fit
            last_finite = before
            fit.step = step + 1
            gain = math.inf if previous is None else previous - loss
            previous = loss
            if isinstance(opt, torch.optim.LBFGS) and opt.state[model.W].get("t") == 0:
                # a failed line search leaves step size 0 and L-BFGS would stall there for good:
                # drop its curvature history and restart from steepest descent
                opt.state.clear()
                previous = None  # a stalled step is no sign of convergence
            if writer is not None:
                writer.add_scalar("train/loss", loss, step)
                writer.add_scalar("train/nll", nll, step)
                writer.add_scalar("train/reg", reg, step)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if abs(gain) < cfg.tol:  # the last update changed the loss by (almost) nothing: converged
                fit.converged = True
                break
    bar.close()
    if writer is not None:
        log_eval(writer, model, counts, reference, fit.step)
    return fit


@torch.no_grad()
def log_eval(writer, model: NeuralBigram, counts: dict, reference: dict, step: int) -> None:
    """Neural NLL on held-out splits, and the count model's NLL on every split as a reference."""
    lp = model.log_probs()
    for split, c in counts.items():
        if split != "train":
            writer.add_scalar(f"{split}/nll", nll_of(lp, c), step)
        writer.add_scalar(f"{split}/nll_count_model", reference[split], step)


def train(
    cfg: TrainConfig,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> TrainResult | None:
    """The whole path: read, split, count, fit, save, log. Returns the run directory and metrics
    (None in the processes other than rank 0 under torchrun)."""
    if progress is None:
        progress = sys.stdout.isatty()
    device = resolve_device(cfg.device)
    if out is not None:
        check_out(out, overwrite, cfg.data)  # fail before the counting, not after
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
    vocab, counts = corpus.vocab, corpus.counts

    with new_run_dir(out, overwrite, data=cfg.data) as run:
        final = run if out is None else Path(out)  # `run` is a staging name while --overwrite builds
        _write_run_inputs(run, cfg, vocab, counts)
        result = _fit_and_report(run, cfg, vocab, counts, device=device, progress=progress, shown=final)
    return dataclasses.replace(result, run_dir=final)


def _write_run_inputs(run: Path, cfg: TrainConfig, vocab: Vocab, counts: dict[str, torch.Tensor]) -> None:
    """What a run is trained from: its resolved config, vocabulary and per-split counts."""
    atomic.write_text(run / "config.toml", cfg.to_toml())
    vocab.save(run / "vocab.json")
    sparse = {s: checkpoints.to_sparse(c) for s, c in counts.items()}
    checkpoints.save({"kind": "counts", "chars": list(vocab.chars), "splits": sparse}, run / "counts.pt")


def resume(run_dir: str | Path, *, steps: int | None = None, progress: bool | None = None) -> TrainResult:
    """Continue a run's neural model from its checkpoint to `steps` updates in all (default: the
    run's own), with its optimizer state and minibatch generator: the same weights as an
    uninterrupted run of that many steps. The counts come from the run directory itself."""
    from bigram.config import resolve_dict
    from bigram.runs import Run

    run = Run.open(run_dir)
    if "neural" not in run.models:
        raise BigramError(
            f"run {run.path} has no neural checkpoint to resume (it has: {', '.join(run.models) or 'none'})"
        )
    cfg = resolve_dict(run.config, where=str(run.path / "config.toml"))
    ckpt = run.checkpoint("neural")
    where = str(run.path / "neural.pt")
    ckpt["W"] = checkpoints.check_weights(ckpt.get("W"), run.vocab.size, where)
    done = int(checkpoints.check_number(ckpt.get("step"), 0, 2**62, "step", where))
    if ckpt.get("optimizer") != cfg.optimizer:
        raise BigramError(
            f"{where} was trained with optimizer {ckpt.get('optimizer')!r} but {run.path / 'config.toml'} "
            f"says {cfg.optimizer!r}: --resume continues the same optimizer; restore the config or retrain"
        )
    if steps is not None:
        cfg.steps = steps
    if cfg.steps <= done:
        raise BigramError(
            f"run {run.path} is already at step {done}: pass --steps with a larger total to go on"
        )
    atomic.write_text(run.path / "config.toml", cfg.to_toml())
    progress = sys.stdout.isatty() if progress is None else progress
    device = resolve_device(cfg.device)
    return _fit_and_report(
        run.path, cfg, run.vocab, run.split_counts(), device=device, progress=progress, resume=ckpt
    )


def sweep(
    cfg: TrainConfig, regs: list[float], *, out: str | Path | None = None, progress: bool | None = None
) -> tuple[Path, list[dict]]:
    """Neural models for several L2 strengths, counted once, each in OUT/reg=<value>/, so that
    `tensorboard --logdir OUT` shows them side by side (HParams tab). For each, the add-k
    smoothing whose count model is nearest: how much smoothing the penalty amounts to."""
    from bigram.smoothing import equivalent_smoothing

    progress = sys.stdout.isatty() if progress is None else progress
    device = resolve_device(cfg.device)
    if out is not None:
        check_out(out, False)
    corpus = load_counts(cfg, progress=progress)
    rows = []
    counts = corpus.counts  # the count model's k is the same for every reg: chosen once
    choice = choose_smoothing(counts["train"], counts.get("val")) if cfg.smoothing == "auto" else None
    with new_run_dir(out, kind="sweep") as root:
        for reg in regs:
            sub = dataclasses.replace(cfg, reg=reg, model="neural")
            run = root / f"reg={reg:g}"
            run.mkdir()
            mark(run)
            _write_run_inputs(run, sub, corpus.vocab, counts)
            result = _fit_and_report(
                run, sub, corpus.vocab, counts, device=device, progress=progress, smoothing_choice=choice
            )
            k, kl = equivalent_smoothing(result.tables["neural"], counts["train"])
            metrics = result.metrics["neural"]
            rows.append({"reg": reg, "run": str(run), "metrics": metrics, "equivalent_k": k, "kl": kl})
    return root, rows


def _fit_and_report(
    run: Path,
    cfg: TrainConfig,
    vocab: Vocab,
    counts: dict,
    *,
    device,
    progress: bool,
    resume: dict | None = None,
    shown: Path | None = None,
    smoothing_choice: tuple | None = None,
) -> TrainResult:
    """Fit the neural model (if asked), then write its checkpoint, metrics.json and TensorBoard
    summaries. An early stop still leaves all of them consistent, then raises TrainingStopped.
    `shown`: the run's name in messages, when `run` is where a replacing run is being built.
    `smoothing_choice`: choose_smoothing's result when the caller has it already (the sweep)."""
    shown = run if shown is None else shown
    with held_ctrl_c():  # heavy import, only when training; not safe to interrupt midway
        from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run))
    tables: dict[str, torch.Tensor] = {}
    fit = None
    extra: dict = {}
    quiet_writer = _QuietWriterThread().__enter__()
    ctrl_c = _StopOnCtrlC().__enter__()  # from here on, Ctrl-C stops cleanly between steps
    try:
        if cfg.smoothing == "auto":  # the k that predicts held-out names best
            k, curve, on = smoothing_choice or choose_smoothing(counts["train"], counts.get("val"))
            extra["smoothing"] = {"chosen": k, "chosen_by": on, "curve": [[x, y] for x, y in curve]}
            log_smoothing_curve(writer, k, curve, on)
            cfg = dataclasses.replace(cfg, smoothing=k)
        exact = {}  # the metrics' source of log P where it is not the table itself
        if cfg.trains_count:
            # float64 log P at the counted bigrams for the metrics (the published figures); the
            # table itself, read only by the TensorBoard summaries, in float32 (half the memory)
            exact["count"] = count_log_probs_at(counts["train"], cfg.smoothing)
            tables["count"] = count_log_probs(counts["train"], cfg.smoothing, dtype=torch.float32)
            ckpt = {
                "kind": "count",
                "chars": list(vocab.chars),
                "counts": checkpoints.to_sparse(counts["train"]),
            }
            checkpoints.save({**ckpt, "smoothing": float(cfg.smoothing)}, run / "count.pt")
        if cfg.trains_neural:
            fit = fit_neural(
                cfg, counts, device=device, writer=writer, progress=progress, resume=resume, ctrl_c=ctrl_c
            )
            extra["neural_training"] = {
                "optimizer": cfg.optimizer, "lr": cfg.learning_rate, "steps": fit.step,
                "step_cap": cfg.steps, "tol": cfg.tol, "converged": fit.converged,
            }  # fmt: skip
            checkpoints.save(fit.checkpoint(cfg, vocab), run / "neural.pt")
            tables["neural"] = fit.model.log_probs().detach().to("cpu", torch.float64)
        metrics = {
            kind: {s: evaluate(exact.get(kind, lp), c) for s, c in counts.items()}
            for kind, lp in tables.items()
        }
        atomic.write_text(run / "metrics.json", json.dumps({**metrics, **extra}, indent=2) + "\n")
        # the run is complete and consistent from here: a Ctrl-C now (or one that came during
        # the saves) ends the TensorBoard summaries, not the run
        ctrl_c.__exit__()
        try:
            if ctrl_c.requested and (fit is None or fit.stopped is None):
                raise KeyboardInterrupt
            log_summary(writer, cfg, vocab, tables, metrics, counts["train"], fit.step if fit else 0)
        except KeyboardInterrupt:
            raise TrainingStopped(
                f"interrupted while writing TensorBoard summaries: the models and metrics.json in {shown} "
                "are complete",
                exit_code=130,
            ) from None
    except OSError as e:  # TensorBoard's writer thread hit a full disk; it re-raises here
        raise BigramError(f"cannot write TensorBoard events in {shown}: {e.strerror or e}") from None
    finally:
        if ctrl_c._depth:
            ctrl_c.__exit__()
        with contextlib.suppress(OSError):  # reported above, or the run is abandoned anyway
            writer.close()
        quiet_writer.__exit__()
    if fit is not None and fit.stopped == "interrupted":
        raise TrainingStopped(
            f"interrupted at step {fit.step} of {cfg.steps}: saved {shown / 'neural.pt'} and metrics.json; "
            f"resume with: bigram train --resume {shown}",
            exit_code=130,
        )
    if fit is not None and fit.stopped == "diverged":
        raise TrainingStopped(
            f"training diverged: the loss was {fit.bad_loss} at step {fit.step + 1}; kept the last finite "
            f"model (step {fit.step}) in {shown / 'neural.pt'}; lower --lr (now {cfg.learning_rate:g})",
            exit_code=1,
        )
    return TrainResult(run, metrics, tables, summary_lines(cfg, extra))


def summary_lines(cfg: TrainConfig, extra: dict) -> list[str]:
    """What training did, in words: the count model's k (and how it was chosen), the neural
    model's optimizer, steps and whether it converged.

    >>> cfg = TrainConfig(model="both", smoothing=0.5, optimizer="lbfgs", tol=1e-7)
    >>> extra = {"smoothing": {"chosen": 0.5, "curve": [[0.5, 2.4612]]},
    ...          "neural_training": {"steps": 41, "step_cap": 500, "converged": True}}
    >>> print("\\n".join(summary_lines(cfg, extra)))
    count model:  add-k smoothing, k = 0.5, chosen on the val split (val NLL 2.461200)
    neural model: L-BFGS (lr 1), 41 steps, converged: the last step changed the loss by < 1e-07
    """
    lines = []
    if cfg.trains_count:
        if "smoothing" in extra:
            k, by = extra["smoothing"]["chosen"], extra["smoothing"].get("chosen_by", "val")
            val = dict(map(tuple, extra["smoothing"]["curve"]))[k]
            chosen = (
                f"chosen on the val split (val NLL {val:.6f})" if by == "val"
                else f"chosen by leave-one-out on the training bigrams, no val split (NLL {val:.6f})"
            )  # fmt: skip
            lines.append(f"count model:  add-k smoothing, k = {k:.4g}, {chosen}")
        else:
            lines.append(f"count model:  add-k smoothing, k = {float(cfg.smoothing):g}")
    t = extra.get("neural_training")
    if t is not None:
        name = {"sgd": "SGD", "adam": "Adam", "lbfgs": "L-BFGS", "newton": "Newton"}[cfg.optimizer]
        head = f"neural model: {name} (lr {cfg.learning_rate:g}), {t['steps']} steps"
        if t["converged"]:
            lines.append(f"{head}, converged: the last step changed the loss by < {cfg.tol:g}")
        elif cfg.tol > 0:
            lines.append(f"{head}: stopped at the step cap before converging; raise --steps to go on")
        else:
            lines.append(f"{head}, every step run (tol = 0)")
    return lines


def log_smoothing_curve(writer, chosen: float, curve: list[tuple[float, float]], on: str = "val") -> None:
    """The val (or leave-one-out) NLL of the count model against k. TensorBoard's x axis takes
    integers, so the step is 1000·log10(k) + 4000 (k = 1e-4 → 0, k = 1 → 4000, k = 1000 → 7000)."""
    tag = "smoothing/val_nll" if on == "val" else "smoothing/leave_one_out_nll"
    for k, nll in curve:
        writer.add_scalar(tag, nll, round(1000 * math.log10(k)) + 4000)
    what = "val NLL" if on == "val" else "leave-one-out NLL"
    writer.add_text("smoothing/chosen", f"k = {chosen:.6g} ({what} {dict(curve)[chosen]:.6f})")


def log_summary(
    writer, cfg: TrainConfig, vocab: Vocab, tables: dict, metrics: dict, counts_train, step: int
) -> None:
    """End-of-run TensorBoard entries: probability images, sampled names, labelled figures, hparams."""
    from torch.utils.tensorboard.summary import hparams

    show = top_tokens(counts_train, TB_IMAGE_TOKENS)
    for kind, lp in tables.items():
        p = lp[show][:, show].exp().float()  # the most frequent characters of a big vocabulary
        writer.add_image(f"probs/{kind}", (p / p.max()).unsqueeze(0), step, dataformats="CHW")
        names = sample_plain(lp, vocab, N_TB_SAMPLES, seed=cfg.seed, max_len=TB_MAX_LEN)
        # four-space indent: a Markdown code block, so names show verbatim
        writer.add_text(f"samples/{kind}", "\n".join("    " + n for n in names), step)
    if cfg.figures:  # the lecture's labelled heatmaps (bigram plot draws the same): ~1 s each
        from bigram.plots import figure_for

        kind = "neural" if "neural" in tables else "count"
        fig = figure_for(vocab, counts_train, None, "counts", kind, TB_FIGURE_TOKENS)
        writer.add_image("figures/counts", fig.array(), step, dataformats="HWC")
        fig = figure_for(vocab, counts_train, tables[kind], "probs", kind, TB_FIGURE_TOKENS)
        writer.add_image(f"figures/probs_{kind}", fig.array(), step, dataformats="HWC")
    hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in cfg.to_dict().items()}
    final = {
        f"hparam/{kind}_{split}_nll": m["nll"] for kind, per in metrics.items() for split, m in per.items()
    }
    exp, ssi, sei = hparams(hp, final)
    fw = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        fw.add_summary(summary)
    for tag, value in final.items():
        writer.add_scalar(tag, value, step)
