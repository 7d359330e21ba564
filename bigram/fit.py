"""Fitting the neural model: its optimizer, the training loop, and a Ctrl-C that stops it between steps.

The loop (`fit_neural`) is the lecture's: evaluate the loss, step the optimizer, repeat; with a
progress bar, TensorBoard curves, an early stop once the loss stops changing (`tol`), and a
clean stop on Ctrl-C or on a non-finite loss.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
from dataclasses import dataclass

import torch
from tqdm import tqdm

from bigram.backoff import DENSE_LIMIT
from bigram.config import TrainConfig
from bigram.counts import dense, nonzero
from bigram.errors import BigramError
from bigram.models import NeuralBigram, SparseNeural

MAX_BATCH_CELLS = 1 << 25  # a minibatch's logits, batch × V floats (autograd keeps a few copies)
LBFGS_HISTORY_BYTES = 256 << 20  # L-BFGS's curvature history (in memory and in neural.pt)
LBFGS_MAX_ENTRIES = 1 << 23  # beyond it, its state (~9 copies of W) and neural.pt pass 300 MB: refused
# W is a dense C×V tensor (randn from the seed, the lecture's start) up to this many cells; beyond,
# the sparse model (models.SparseNeural, rows of the contexts seen, started at 0): same optimum
DENSE_CELLS = DENSE_LIMIT
MULTINOMIAL_MAX = 1 << 24  # torch.multinomial's most categories


def is_sparse(C: int, V: int) -> bool:
    """Whether a fresh neural model of this C×V table is held sparse."""
    return C * V > DENSE_CELLS


def check_fits(
    cfg: TrainConfig, C: int, V: int, entries: int | None = None, sparse: bool | None = None
) -> None:
    """Refuse, before anything that size is allocated, the flag values whose memory would follow
    the flag rather than the model: a dense minibatch's logits are batch × V, L-BFGS keeps copies
    of W (`entries`: the sparse model's weights, once known)."""
    if not cfg.trains_neural:
        return
    sparse = is_sparse(C, V) if sparse is None else sparse
    # the logits (and autograd's copies) are batch × V; the sparse model reads one logit an example
    if not sparse and cfg.batch_size * V > MAX_BATCH_CELLS:
        raise BigramError(
            f"--batch-size {cfg.batch_size:,}: its logits would be {cfg.batch_size:,} × {V:,} floats; "
            f"with this vocabulary give at most {MAX_BATCH_CELLS // V:,}"
        )
    entries = C * V if entries is None and not sparse else entries
    if cfg.optimizer == "lbfgs" and entries is not None and entries > LBFGS_MAX_ENTRIES:
        raise BigramError(
            f"--optimizer lbfgs keeps a history of copies of W, and this model has {entries:,} weights "
            f"(more than {LBFGS_MAX_ENTRIES:,}): use --optimizer newton (the default), sgd or adam"
        )


def check_counts_fit(cfg: TrainConfig, train: torch.Tensor) -> None:
    """check_fits for the model the training counts make: the sparse model's weights counted from
    them (one per n-gram seen, one per context not followed by every token)."""
    C, V = train.shape
    entries = None
    if cfg.trains_neural and cfg.optimizer == "lbfgs" and is_sparse(C, V):
        i, _, _ = nonzero(train.coalesce() if train.is_sparse else train)
        per = torch.unique_consecutive(i, return_counts=True)[1]
        entries = len(i) + int((per < V).sum())
    check_fits(cfg, C, V, entries=entries)


class PlainSGD:
    """The lecture's update, W.data += -lr * W.grad, with the optimizer interface fit_neural uses.
    Same numbers as torch.optim.SGD(lr=lr); written out because constructing any torch.optim
    optimizer first imports torch._dynamo (seconds, in a command that takes a few)."""

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


class RestartingLBFGS(torch.optim.LBFGS):
    """L-BFGS, one iteration per step, its curvature history carried over between steps. A failed
    line search leaves step size 0, where L-BFGS would stall for good: the history is then
    dropped (`stalled` says so) and the next step starts again from steepest descent."""

    stalled = False

    def __init__(self, params, lr: float, entries: int) -> None:
        # the history holds two C×V vectors a step: kept within its budget (and the checkpoint with it)
        history = max(3, min(20, LBFGS_HISTORY_BYTES // (8 * entries)))
        super().__init__(params, lr=lr, max_iter=1, history_size=history, line_search_fn="strong_wolfe")

    def step(self, closure) -> float:
        loss = super().step(closure)
        self.stalled = self.state[self.param_groups[0]["params"][0]].get("t") == 0
        if self.stalled:
            self.state.clear()
        return loss


class IsometricLBFGS(RestartingLBFGS):
    """L-BFGS of the sparse model, in coordinates where its geometry is the full W's: φ = √μ·θ.
    A shared entry stands for μ = m equal weights of W, so a step δ in it moves W by m·δ² in
    squared length, and its gradient is m times a token's; in φ both are W's (‖δφ‖² = m·δ², ∂/∂φ =
    √m × a token's), so every inner product L-BFGS takes, and so its every step, is the dense W's."""

    def __init__(self, model: SparseNeural, lr: float) -> None:
        self.model = model
        self.scale = model.mu.sqrt().to(model.theta.dtype)
        self.phi = torch.nn.Parameter(model.theta.detach() * self.scale)
        super().__init__([self.phi], lr, self.phi.numel())

    def _to_model(self) -> None:
        with torch.no_grad():  # μ ≥ 1: a listed entry's θ is φ itself
            self.model.theta.copy_(self.phi / self.scale)

    def step(self, closure) -> float:
        def in_phi() -> float:
            self._to_model()
            loss = closure()  # sets theta.grad: the per-token gradient
            self.phi.grad = self.model.theta.grad * self.scale
            return loss

        group = self.param_groups[0]
        lr = group["lr"]
        if self.state[self.phi].get("n_iter", 0) == 0:
            # torch's first iteration (and a restart's) tries t = lr·min(1, 1/‖g‖₁), an L1 norm,
            # not an inner product: that step is scaled to the one W's ‖g‖₁ gives (one evaluation more)
            in_phi()
            g = self.model.theta.grad.abs().to(torch.float64)
            ours, theirs = float((g * self.scale).sum()), float((g * self.model.mu).sum())
            group["lr"] = lr * min(1.0, 1 / theirs if theirs else 1.0) / min(1.0, 1 / ours if ours else 1.0)
        try:
            loss = super().step(in_phi)
        finally:
            group["lr"] = lr
        self._to_model()  # where the line search left φ
        return loss

    def state_dict(self) -> dict:
        return {**super().state_dict(), "phi": self.phi.detach().clone()}  # θ = φ/√μ loses bits

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        phi = state.pop("phi", None)
        if isinstance(phi, torch.Tensor) and phi.shape == self.phi.shape and bool(phi.isfinite().all()):
            with torch.no_grad():
                self.phi.copy_(phi)
            self._to_model()
        super().load_state_dict(state)


def make_optimizer(cfg: TrainConfig, model: NeuralBigram | SparseNeural, train: torch.Tensor):
    lr, params, sparse = cfg.learning_rate, model.parameters(), isinstance(model, SparseNeural)
    if cfg.optimizer == "newton":
        from bigram.safety.interrupt import held_ctrl_c

        with held_ctrl_c():  # numba: only the runs that use it pay the import (never interrupted halfway)
            from bigram.optim.newton import RowNewton, SparseRowNewton

        return SparseRowNewton(model, cfg.reg, lr) if sparse else RowNewton(model.W, train, cfg.reg, lr)
    # SGD and Adam move each weight by its own gradient: the sparse model gives them a token's
    if cfg.optimizer == "sgd":
        return PlainSGD(params, lr)  # plain W ← W − lr·grad, as in the lecture
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    return IsometricLBFGS(model, lr) if sparse else RestartingLBFGS(params, lr, model.W.numel())


class Curves:
    """What fit_neural reports as it goes: each update's (loss, NLL, L2 term), and every eval_every
    steps the model itself. This one records nothing; bigram.formats.tensorboard.Curves writes them
    for TensorBoard."""

    def start(self) -> None:
        """Training has started (the model is made, or loaded to resume): nothing was refused."""

    def train(self, step: int, loss: float, nll: float, reg: float, with_nll: bool = True) -> None:
        """The update at `step`: its loss before it, split into NLL and L2 term."""

    def evaluate(self, model: NeuralBigram | SparseNeural, step: int, final: bool = False) -> None:
        """The model at `step` (the last one, `final`)."""


class StopOnCtrlC:
    """While active, Ctrl-C sets a flag that the loop checks between steps, so an interrupted
    run stops after a whole update; a second Ctrl-C interrupts at once, as usual. Entered again
    (by fit_neural inside a caller's), only the outermost enter/exit installs/restores."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None
        self._depth = 0

    def __enter__(self) -> StopOnCtrlC:
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

    @property
    def active(self) -> bool:
        return self._depth > 0


@dataclass
class Fit:
    """A neural model being fitted: the model, its optimizer and minibatch generator, how many
    updates W has had, and why training stopped early (None, "interrupted" or "diverged")."""

    cfg: TrainConfig
    train: torch.Tensor  # the training counts as the model holds them, float32 on the device
    total: float  # their sum: the number of training bigrams
    model: NeuralBigram | SparseNeural
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    stopped: str | None = None
    bad_loss: float = math.nan
    converged: bool = False  # a step changed the loss by less than cfg.tol

    @classmethod
    def start(cls, cfg: TrainConfig, train: torch.Tensor, device: torch.device, resume: dict | None) -> Fit:
        """W = randn(C, V) from the seed (the sparse model where C·V is large: 0), or the
        weights, optimizer state and generator of a checkpoint (runs.Run.neural_state) to go
        on from; a checkpoint is continued in the form it was saved in. reg = "auto" with no val
        names to choose it on (fit_neural chooses it where there are) is the lecture's 0.01."""
        if cfg.reg == "auto":
            cfg = dataclasses.replace(cfg, reg=REG_WITHOUT_VAL)
        C, V = train.shape
        sparse = is_sparse(C, V) if resume is None else "W" not in resume
        if sparse:
            model = SparseNeural.of_counts(train)
            check_fits(cfg, C, V, entries=model.theta.numel(), sparse=True)
            if resume is not None:
                _load_sparse(model, resume)
            model = model.to(device)
            train = model.n  # the counts of its entries
        else:
            check_fits(cfg, C, V, entries=C * V, sparse=False)
            train = dense(train).to(device=device, dtype=torch.float32)
            model = NeuralBigram(V, seed=cfg.seed, contexts=C).to(device)
            if resume is not None:
                with torch.no_grad():
                    model.W.copy_(resume["W"])
        optimizer = make_optimizer(cfg, model, train)
        generator = torch.Generator(device).manual_seed(cfg.seed)
        fit = cls(cfg, train, float(train.sum()), model, optimizer, generator)
        if resume is not None:
            if resume.get("optimizer_state") is not None:
                fit.optimizer.load_state_dict(resume["optimizer_state"])
            fit.generator.set_state(resume["generator_state"])
            fit.step = int(resume["step"])
        return fit

    def update(self) -> tuple[float, float, float]:
        """One optimizer step; returns (loss, nll, reg) of W *before* it."""
        if self.cfg.optimizer == "newton":  # its compiled step evaluates the loss itself
            return self.optimizer.step()
        cfg, model = self.cfg, self.model
        seen: list[tuple[float, float, float]] = []

        def closure() -> float:
            if cfg.batch_size:  # autograd through the literal one-hot forward's rows
                self.optimizer.zero_grad(set_to_none=True)
                idx = draw(self.train.flatten(), cfg.batch_size, self.generator)
                loss_t, nll_t, reg_t = model.batch_loss(idx, cfg.reg)
                loss_t.backward()
                model.grad_per_token_()
                seen.append((loss_t.item(), nll_t.item(), reg_t.item()))
            else:  # the same objective over all bigrams from the counts, gradient in closed form
                *parts, grad = model.loss_and_grad_from_counts(self.train, cfg.reg, self.total)
                model.weights().grad = grad
                seen.append(tuple(parts))
            return seen[-1][0]

        self.optimizer.step(closure)
        return seen[0]  # L-BFGS evaluates more than once; the first is before the update

    def checkpoint_state(self) -> dict:
        """What runs.save_neural_model stores besides W: where to go on from."""
        keep = self.stopped != "diverged"  # the optimizer had moved past the kept weights
        return {
            "step": self.step,
            "optimizer": self.cfg.optimizer,
            "optimizer_state": self.optimizer.state_dict() if keep else None,
            "generator_state": self.generator.get_state(),
        }


def _load_sparse(model: SparseNeural, resume: dict) -> None:
    """A sparse checkpoint's weights into the model made from the run's training counts: its rows
    must be those counts' (the same contexts, the same tokens listed)."""
    from bigram.safety import layout

    state = model.state()
    if not all(torch.equal(resume[k], state[k]) for k in ("keys", "ptr", "cols")):
        raise BigramError(
            f"{layout.checkpoint('neural')} lists other rows than the run's training counts: "
            "it belongs to another run or is damaged; retrain"
        )
    model.load(resume["values"], resume["shared"])


def draw(weights: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k indices drawn with replacement in proportion to `weights` (a minibatch's examples):
    torch.multinomial where it takes that many categories, else the inverse of the cumulative sum."""
    if len(weights) <= MULTINOMIAL_MAX:
        return torch.multinomial(weights, k, True, generator=generator)
    cum = weights.to(torch.float64).cumsum(0)
    u = torch.rand(k, generator=generator, dtype=torch.float64, device=weights.device) * cum[-1]
    return torch.searchsorted(cum, u, right=True).clamp_(max=len(weights) - 1)


def fit_neural(
    cfg: TrainConfig,
    splits: dict[str, torch.Tensor],
    *,
    device: torch.device,
    curves: Curves | None = None,
    progress: bool = False,
    resume: dict | None = None,
    ctrl_c: StopOnCtrlC | None = None,
) -> Fit:
    """Train W to minimize mean NLL over the training bigrams + reg · mean(W²), from a fresh
    init or from a checkpoint (`resume`), up to cfg.steps updates in all.

    Full batch: loss and gradient come from the training count matrix in O(C·V) per step (held
    sparse, models.SparseNeural: in O(n-grams seen)).
    --batch-size N: each step draws N training bigrams at random (with replacement, i.e. from
    the counts' distribution) and runs the literal one-hot forward on them.
    Step k logs the loss of the forward pass *before* the k-th update, so a resumed run's steps
    continue the interrupted run's without repeating one. Stops early on Ctrl-C (after a whole
    update) or at the first non-finite loss (keeping the last weights whose loss was finite).
    `curves` records each step (TensorBoard's, in `train`). reg = "auto": chosen on splits["val"]."""
    if cfg.reg == "auto":
        cfg = dataclasses.replace(cfg, reg=choose_reg(cfg, splits, device).reg)
    fit = Fit.start(cfg, splits["train"], device, resume)
    first = fit.step
    curves = curves or Curves()
    curves.start()
    last_finite = None  # the weights of the last step whose loss was finite
    previous = None  # the loss before the previous update, to measure what that update gained
    bar = tqdm(
        range(first, cfg.steps), desc="neural", unit="step", disable=not progress, leave=False,
        initial=first, total=cfg.steps,
    )  # fmt: skip
    with ctrl_c or StopOnCtrlC() as ctrl_c:
        for step in bar:
            if ctrl_c.requested:
                fit.stopped = "interrupted"
                break
            # a resumed run's first model was already evaluated when the previous run stopped
            if step % cfg.eval_every == 0 and not (resume and step == first):
                curves.evaluate(fit.model, step)
            before = fit.model.weights().detach().clone()
            loss, nll, reg = fit.update()
            if not math.isfinite(loss):  # `before` is bad: go back to the last finite weights
                with torch.no_grad():
                    fit.model.weights().copy_(before if last_finite is None else last_finite)
                fit.step, fit.stopped, fit.bad_loss = max(step - 1, first), "diverged", loss
                return fit
            last_finite, fit.step = before, step + 1
            # a resumed run's first train/nll is the stopped run's final point, already logged
            curves.train(step, loss, nll, reg, with_nll=not (resume and step == first))
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            gain = math.inf if previous is None else previous - loss
            previous = None if getattr(fit.optimizer, "stalled", False) else loss  # a stall is no convergence
            if abs(gain) < cfg.tol:  # the last update changed the loss by (almost) nothing: converged
                fit.converged = True
                break
    bar.close()
    curves.evaluate(fit.model, fit.step, final=True)
    return fit


# --- reg = "auto": the L2 strength chosen on val, as add-k's k is ----------------------------------
REG_RANGE = (1e-4, 1e6)  # searched on a log scale: the mean of W² runs over C·V weights, so a large
# alphabet needs a far larger reg for the same pull on each weight
REG_WITHOUT_VAL = 0.01  # what auto means without val names: the lecture's


@dataclass
class RegChoice:
    """reg = "auto"'s choice: the reg, every (reg, val NLL) tried, and "val" (or "default": no
    val names, so the lecture's 0.01)."""

    reg: float
    curve: list[tuple[float, float]]
    on: str


def choose_reg(cfg: TrainConfig, splits: dict[str, torch.Tensor], device: torch.device) -> RegChoice:
    """The reg whose neural model, fitted by Newton to convergence, has the lowest NLL on the val
    split: a log-spaced grid over REG_RANGE (a point every two decades), then golden-section
    search between the best point's neighbours (smoothing._minimize_log, as for add-k's k). A
    fit at any order is a few Newton steps on the counts; the search costs fourteen fits."""
    from bigram.metrics import nll
    from bigram.smoothing import _minimize_log

    val = splits.get("val")
    if val is None or not int(nonzero(val)[2].sum()):
        return RegChoice(REG_WITHOUT_VAL, [], "default")
    probe = dataclasses.replace(cfg, optimizer="newton", lr=None, steps=100, tol=1e-6, batch_size=0)

    def val_nll(reg: float) -> float:
        fit = fit_neural(dataclasses.replace(probe, reg=reg), {"train": splits["train"]}, device=device)
        with torch.no_grad():
            return nll(fit.model.log_probs(), val)

    reg, curve = _minimize_log(val_nll, *REG_RANGE, grid=6, refine=8)
    return RegChoice(reg, curve, "val")
