"""`--optimizer newton`: Newton's method on the neural model's full-batch objective, row by row.

The objective (mean NLL over the training bigrams + reg · mean(W²)) splits into one convex problem
per row of W: row a holds the NLL of the bigrams after token a, weighted by their share α = N_a/ΣN
of all bigrams, plus that row's part of the L2 term. Row a's Hessian is diagonal plus rank one,

    H = α·diag(p) − α·p pᵀ + β·I      (p = softmax(W_a), β = 2·reg/(C·V), C·V the cells of W),

so its Newton step d = −H⁻¹g costs O(V) by the Sherman–Morrison formula,

    H⁻¹g = A⁻¹g + α·(A⁻¹p)·(pᵀA⁻¹g) / (1 − α·pᵀA⁻¹p),      A = α·diag(p) + β·I,

and a step for all rows costs O(V²), like one gradient step. Each row backtracks its own step
(lr, lr/2, …) until its loss falls by a fraction of what the step predicts (Armijo). Newton
converges in ~10–15 steps at any vocabulary size, where L-BFGS, with one curvature estimate for
all rows, barely moves on a vocabulary of thousands.

On the CPU the step is one compiled loop per row (numba, `newton_kernel.newton_rows`): the row
stays in cache while it is read ~7 times, and threads take disjoint rows. `step_torch` is the same step in
tensor operations (for CUDA, and as the tests' reference).

The sparse model (bigram.models.SparseNeural) keeps a row as its listed entries plus one shared
logit u standing for the m tokens the context was never followed by. Those m entries of the full
row have the same gradient and the same Hessian row at every step, so Newton's step keeps them
equal: the row's problem is a softmax over n + 1 entries, the shared one of multiplicity m (its
probability m·exp(u)/Z, its L2 term m·u²), with the Hessian above in those coordinates,

    H = diag(μ·A) − α·q qᵀ,   A = α·p + β,   q = μ·p      (μ = 1 for a listed entry, m for u),

still diagonal plus rank one, and its solve by Sherman–Morrison gives every entry the step its
tokens take in the full row (`newton_kernel.newton_rows_sparse`, `step_torch_sparse`).
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

# the line search's constants live with the compiled step (importing it defines, not compiles, it)
from bigram.optim.newton_kernel import ARMIJO, HALVINGS, MAX_MOVE, newton_rows, newton_rows_sparse


@functools.cache
def _compiled():
    """newton_kernel's dense and sparse row steps, compiled (or loaded from the cache,
    bigram.reader.numba_cache) on first use; Ctrl-C held meanwhile."""
    from bigram.reader import numba_cache
    from bigram.safety.interrupt import held_ctrl_c

    with held_ctrl_c():
        numba_cache.compile_all_once()
        one = np.zeros((1, 1), np.float32)
        newton_rows(one, one, 0, 1, 1.0, 0.0, 0.0, 1.0, np.zeros((1, 2)))
        w, mu, ptr = np.zeros(1, np.float32), np.ones(1), np.array([0, 1], np.int64)
        newton_rows_sparse(w, w, mu, ptr, 0, 1, 1.0, 0.0, 0.0, 1.0, np.zeros((1, 2)))
    return newton_rows, newton_rows_sparse


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


class RowNewton:
    """The optimizer object fit_neural drives: `step()` takes one Newton step for every row and
    returns (loss, nll, reg) *before* it, as a closure would. Keeps nothing between steps."""

    def __init__(self, W: torch.Tensor, train: torch.Tensor, reg: float, lr: float) -> None:
        self.W, self.lr, self.reg = W, lr, reg
        self.N = train.to(torch.float32).contiguous()
        self.total = float(train.sum())
        self.beta, self.reg_cell = 2 * reg / W.numel(), reg / W.numel()  # reg · mean(W²) over C·V cells
        self.on_cpu = W.device.type == "cpu"
        if self.on_cpu:
            _compiled()

    @torch.no_grad()
    def step(self) -> tuple[float, float, float]:
        if not self.on_cpu:
            return step_torch(self.W, self.N, self.total, self.reg, self.lr)
        W, N = self.W.detach().numpy(), self.N.numpy()  # views: the kernel updates W in place
        C = W.shape[0]
        out = np.zeros((C, 2))
        kernel, threads = _compiled()[0], _threads()
        cuts = np.linspace(0, C, threads + 1).astype(int)
        args = (self.total, self.beta, self.reg_cell, self.lr, out)
        with ThreadPoolExecutor(threads) as pool:  # the kernel releases the GIL: rows in parallel
            list(pool.map(lambda lo, hi: kernel(W, N, lo, hi, *args), cuts[:-1], cuts[1:]))
        nll, reg = out.sum(0)
        return float(nll + reg), float(nll), float(reg)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Newton's method keeps nothing between steps."""


class SparseRowNewton(RowNewton):
    """The same optimizer for a sparse model (bigram.models.SparseNeural): its rows of entries
    with multiplicities, the shared logit of each row one entry among them."""

    def __init__(self, model, reg: float, lr: float) -> None:
        self.model, self.lr, self.reg = model, lr, reg
        self.total = float(model.n.sum())
        self.beta, self.reg_cell = 2 * reg / model.cells, reg / model.cells  # reg · mean(W²) over C·V
        self.on_cpu = model.theta.device.type == "cpu"
        if self.on_cpu:
            _compiled()

    @torch.no_grad()
    def step(self) -> tuple[float, float, float]:
        m = self.model
        if not self.on_cpu:
            return step_torch_sparse(m.theta, m.n, m.mu, m.row, m.cells, self.total, self.reg, self.lr)
        w, n, mu, ptr = m.theta.detach().numpy(), m.n.numpy(), m.mu.numpy(), m.fptr.numpy()
        R = len(ptr) - 1
        out = np.zeros((R, 2))
        kernel, threads = _compiled()[1], _threads()
        # rows cut where the entries are shared evenly: a thread's work is its entries
        cuts = np.searchsorted(ptr, np.linspace(0, ptr[-1], threads + 1)).clip(0, R)
        cuts[0], cuts[-1] = 0, R
        args = (self.total, self.beta, self.reg_cell, self.lr, out)
        with ThreadPoolExecutor(threads) as pool:  # the kernel releases the GIL: rows in parallel
            list(pool.map(lambda lo, hi: kernel(w, n, mu, ptr, lo, hi, *args), cuts[:-1], cuts[1:]))
        nll, reg = out.sum(0)
        return float(nll + reg), float(nll), float(reg)


def step_torch(
    W: torch.Tensor, N: torch.Tensor, total: float, reg: float, lr: float
) -> tuple[float, float, float]:
    """The same step as newton_kernel.newton_rows in tensor operations, in float64 like the
    kernel's sums: all rows at once, then the rows whose first trial failed halve theirs.
    Returns (loss, nll, reg) before the step; W (float32) is updated in place."""
    beta, reg_cell = 2 * reg / W.numel(), reg / W.numel()
    W64, N64 = W.double(), N.double()
    alpha = N64.sum(1, keepdim=True) / total

    def row_losses(Wr: torch.Tensor, Nr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (Nr * torch.log_softmax(Wr, 1)).sum(1).div_(-total), (Wr * Wr).sum(1).mul_(reg_cell)

    nll_rows, reg_rows = row_losses(W64, N64)
    before = nll_rows + reg_rows
    p = torch.softmax(W64, 1)
    g = (p * alpha * total - N64).div_(total).add_(W64, alpha=beta)
    A = p * alpha + beta
    Ainv_g = g / A
    pAg = (p * Ainv_g).sum(1, keepdim=True)
    den = (p * beta / A).sum(1, keepdim=True)  # 1 − α pᵀA⁻¹p without cancellation, as in the kernel
    d = Ainv_g.add_((p / A).mul_(alpha * pAg / den)).neg_()  # −H⁻¹g
    slope = (g * d).sum(1)
    rows = torch.nonzero(slope < 0).squeeze(1)
    t = lr * (MAX_MOVE / d[rows].abs().amax(1)).clamp_(max=1.0)  # each row's first trial
    for _ in range(HALVINGS + 1):
        if len(rows) == 0:
            break
        trial = W64[rows] + t[:, None] * d[rows]
        moves = (trial.float() != W[rows]).any(1)  # a step too small to change W as stored
        ok = sum(row_losses(trial, N64[rows])) <= before[rows] + ARMIJO * t * slope[rows]
        W[rows[ok & moves]] = trial[ok & moves].float()
        again = ~ok & moves
        rows, t = rows[again], t[again] / 2
    return float(before.sum()), float(nll_rows.sum()), float(reg_rows.sum())


def _segment_sum(x: torch.Tensor, row: torch.Tensor, R: int) -> torch.Tensor:
    return torch.zeros(R, dtype=x.dtype, device=x.device).index_add_(0, row, x)


def _segment_max(x: torch.Tensor, row: torch.Tensor, R: int) -> torch.Tensor:
    out = torch.full((R,), -math.inf, dtype=x.dtype, device=x.device)
    return out.scatter_reduce_(0, row, x, "amax")


def step_torch_sparse(
    theta: torch.Tensor,
    n: torch.Tensor,
    mu: torch.Tensor,
    row: torch.Tensor,
    cells: int,
    total: float,
    reg: float,
    lr: float,
) -> tuple[float, float, float]:
    """newton_kernel.newton_rows_sparse in tensor operations (CUDA's, and the tests' reference):
    entries theta (float32, updated in place) with counts n, multiplicities mu ≥ 1, the row of
    each entry `row` (sorted); `cells` = C·V, the full table's. Returns (loss, nll, reg) before
    the step."""
    beta, reg_cell = 2 * reg / cells, reg / cells
    R = int(row[-1]) + 1 if len(row) else 0
    w, n64, mu64 = theta.double(), n.double(), mu.double()
    r = _segment_sum(n64, row, R)
    alpha = r / total

    def row_losses(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        top = _segment_max(x, row, R)
        log_z = top + _segment_sum((x - top[row]).exp() * mu64, row, R).log()
        nll = (r * log_z - _segment_sum(n64 * x, row, R)).div_(total)
        return nll, _segment_sum(mu64 * x * x, row, R).mul_(reg_cell), log_z

    nll_rows, reg_rows, log_z = row_losses(w)
    before = nll_rows + reg_rows
    p = (w - log_z[row]).exp()  # each token's probability
    g = (p * r[row] - n64) / total + beta * w  # each token's gradient
    A = p * alpha[row] + beta
    live = A > 0  # reg = 0 and p underflowed: no curvature, no step
    A_safe = torch.where(live, A, 1.0)
    Ainv_g = torch.where(live, g / A_safe, 0.0)
    pAg = _segment_sum(mu64 * p * Ainv_g, row, R)
    den = _segment_sum(torch.where(live, mu64 * p * beta / A_safe, 0.0), row, R)  # as in the kernel
    c = torch.where(den > 0, alpha * pAg / den, 0.0)
    d = torch.where(live, -(Ainv_g + c[row] * p / A_safe), 0.0)  # −H⁻¹g
    slope = _segment_sum(mu64 * g * d, row, R)
    big = _segment_max(d.abs(), row, R)
    t = torch.where(slope < 0, lr * (MAX_MOVE / big).clamp(max=1.0), 0.0)  # each row's first trial
    for _ in range(HALVINGS + 1):
        active = t > 0
        if not bool(active.any()):
            break
        trial = w + t[row] * d
        moves = _segment_sum(((trial.float() != theta) & active[row]).double(), row, R) > 0
        nll_t, reg_t, _ = row_losses(trial)
        ok = active & moves & (nll_t + reg_t <= before + ARMIJO * t * slope)
        theta.copy_(torch.where(ok[row], trial.float(), theta))
        t = torch.where(active & moves & ~ok, t / 2, 0.0)
    return float(before.sum()), float(nll_rows.sum()), float(reg_rows.sum())
