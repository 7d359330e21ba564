"""`bigram train`: corpus → counts → count model + neural model → checkpoints, metrics, TensorBoard."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from bigram import checkpoints
from bigram.config import TrainConfig
from bigram.corpus import default_world, load_counts
from bigram.errors import BigramError
from bigram.metrics import evaluate
from bigram.models import NeuralBigram, count_log_probs
from bigram.runs import check_out, create_run_dir
from bigram.sampling import Constraints, sample
from bigram.vocab import Vocab

N_TB_SAMPLES = 10  # names written to TensorBoard per model
TB_MAX_LEN = 40  # their length cap
TB_IMAGE_TOKENS = 64  # a larger vocabulary shows its most frequent characters


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    vocab: Vocab | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BigramError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return torch.device(name)


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    lr = cfg.learning_rate
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr)  # plain W ← W − lr·grad, as in the lecture
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    # one L-BFGS iteration per step; its curvature history carries over between steps
    return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe")


def fit_neural(
    cfg: TrainConfig,
    counts: dict[str, torch.Tensor],
    *,
    device: torch.device,
    writer=None,
    progress: bool = False,
) -> tuple[NeuralBigram, torch.optim.Optimizer]:
    """Train W to minimize mean NLL over the training bigrams + reg · mean(W²).

    Full batch: loss and gradient come from the training count matrix in O(V²) per step.
    --batch-size N: each step draws N training bigrams at random (with replacement, i.e. from
    the counts' distribution) and runs the literal one-hot forward on them.
    Step k logs the loss of the forward pass *before* the k-th update."""
    train = counts["train"].to(device=device, dtype=torch.float32)
    V = train.shape[0]
    model = NeuralBigram(V, seed=cfg.seed).to(device)
    opt = make_optimizer(cfg, model.parameters())
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    flat = train.flatten()
    # the count model's NLL on each split: what the neural model is heading for
    count_lp = count_log_probs(counts["train"], cfg.smoothing)
    reference = {s: evaluate(count_lp, c)["nll"] for s, c in counts.items()}

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

    bar = tqdm(range(cfg.steps), desc="neural", unit="step", disable=not progress, leave=False)
    for step in bar:
        if writer is not None and step % cfg.eval_every == 0:
            log_eval(writer, model, counts, reference, step)
        parts.clear()
        opt.step(closure)
        if isinstance(opt, torch.optim.LBFGS) and opt.state[model.W].get("t") == 0:
            # a failed line search leaves step size 0 and L-BFGS would stall there for good:
            # drop its curvature history and restart from steepest descent
            opt.state.clear()
        loss, nll, reg = parts[0]  # L-BFGS evaluates more than once; the first is before the update
        if not math.isfinite(loss):
            raise BigramError(
                f"training diverged at step {step} (loss = {loss}): lower --lr (now {cfg.learning_rate:g})"
            )
        if writer is not None:
            writer.add_scalar("train/loss", loss, step)
            writer.add_scalar("train/nll", nll, step)
            writer.add_scalar("train/reg", reg, step)
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
    if writer is not None:
        log_eval(writer, model, counts, reference, cfg.steps)
    return model, opt


@torch.no_grad()
def log_eval(writer, model: NeuralBigram, counts: dict, reference: dict, step: int) -> None:
    """Neural NLL on held-out splits, and the count model's NLL on every split as a reference."""
    lp = model.log_probs()
    for split, c in counts.items():
        if split != "train":
            writer.add_scalar(f"{split}/nll", evaluate(lp, c)["nll"], step)
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
        check_out(out, overwrite)  # fail before the counting, not after
    rank, world = default_world()
    group = None
    if world > 1:  # under torchrun: every process counts its byte range, counts are summed
        import torch.distributed as dist

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

    run = create_run_dir(out, overwrite)
    (run / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    vocab.save(run / "vocab.json")
    sparse = {s: checkpoints.to_sparse(c) for s, c in counts.items()}
    checkpoints.save({"kind": "counts", "chars": list(vocab.chars), "splits": sparse}, run / "counts.pt")

    from torch.utils.tensorboard import SummaryWriter  # heavy import: only when training

    writer = SummaryWriter(log_dir=str(run))
    metrics: dict[str, dict] = {}
    tables: dict[str, torch.Tensor] = {}
    try:
        if cfg.trains_count:
            tables["count"] = count_log_probs(counts["train"], cfg.smoothing)
            ckpt = {
                "kind": "count",
                "chars": list(vocab.chars),
                "counts": sparse["train"],
                "smoothing": float(cfg.smoothing),
            }
            checkpoints.save(ckpt, run / "count.pt")
        if cfg.trains_neural:
            model, opt = fit_neural(cfg, counts, device=device, writer=writer, progress=progress)
            tables["neural"] = model.log_probs().detach().to("cpu", torch.float64)
            ckpt = {
                "kind": "neural",
                "chars": list(vocab.chars),
                "W": model.W.detach().cpu(),
                "step": cfg.steps,
                "optimizer": cfg.optimizer,
                "optimizer_state": opt.state_dict(),
            }
            checkpoints.save(ckpt, run / "neural.pt")
        for kind, lp in tables.items():
            metrics[kind] = {s: evaluate(lp, c) for s, c in counts.items()}
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        log_summary(writer, cfg, vocab, tables, metrics, counts["train"])
    finally:
        writer.close()
    return TrainResult(run, metrics, vocab)


def top_tokens(counts: torch.Tensor, k: int) -> torch.Tensor:
    """Ids of the k most frequent tokens (the boundary always first), in vocabulary order."""
    if counts.shape[0] <= k:
        return torch.arange(counts.shape[0])
    freq = counts.sum(1).double()
    freq[0] = math.inf
    return freq.topk(k).indices.sort().values


def log_summary(writer, cfg: TrainConfig, vocab: Vocab, tables: dict, metrics: dict, counts_train) -> None:
    """End-of-run TensorBoard entries: probability images, sampled names, hparams."""
    from torch.utils.tensorboard.summary import hparams

    step = cfg.steps if cfg.trains_neural else 0
    show = top_tokens(counts_train, TB_IMAGE_TOKENS)
    for kind, lp in tables.items():
        p = lp[show][:, show].exp().float()  # the most frequent characters of a big vocabulary
        writer.add_image(f"probs/{kind}", (p / p.max()).unsqueeze(0), step, dataformats="CHW")
        # capped: an undertrained model over thousands of characters rarely ends a name
        names = sample(lp, vocab, N_TB_SAMPLES, seed=cfg.seed, constraints=Constraints(max_len=TB_MAX_LEN))
        # four-space indent: a Markdown code block, so names show verbatim
        writer.add_text(f"samples/{kind}", "\n".join("    " + n for n in names), step)
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
