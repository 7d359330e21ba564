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
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

# the line search's constants live with the compiled step (importing it defines, not compiles, it)
from bigram.optim.newton_kernel import ARMIJO, HALVINGS, MAX_MOVE, newton_rows


@functools.cache
def _compiled():
    """newton_kernel.newton_rows, compiled (or loaded from the cache, bigram.reader.numba_cache) on first
    use; Ctrl-C held meanwhile."""
    from bigram.reader import numba_cache
    from bigram.safety.interrupt import held_ctrl_c

    with held_ctrl_c():
        numba_cache.compile_all_once()
        one = np.zeros((1, 1), np.float32)
        newton_rows(one, one, 0, 1, 1.0, 0.0, 0.0, 1.0, np.zeros((1, 2)))
    return newton_rows


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
        kernel, threads = _compiled(), max(1, min(os.cpu_count() or 1, 8))
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
