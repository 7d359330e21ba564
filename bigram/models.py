"""The neural model: logits = one_hot(x) @ W, P = softmax(logits); the only parameter is W (C×V).

Since one_hot(x) @ W is just row x of W, softmax(W) by rows *is* the model's table (bigram.table,
where the count model's table, P = (N + k) / row sums, is made too). Its loss is the mean NLL of
the training bigrams plus L2 on W, and because every example with x = i, y = j adds the same term,
the full-batch loss and its gradient come from the count matrix N alone (`loss_from_counts`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NeuralBigram(nn.Module):
    """The one-hot neural bigram model: a single linear layer without bias, then softmax."""

    def __init__(
        self,
        vocab_size: int,
        seed: int | None = None,
        dtype: torch.dtype = torch.float32,
        contexts: int | None = None,
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        # the lecture's init: W = torch.randn((27, 27), generator=g); one row per context at order N
        rows = vocab_size if contexts is None else contexts
        self.W = nn.Parameter(torch.randn(rows, vocab_size, generator=g, dtype=dtype))

    @property
    def vocab_size(self) -> int:
        return self.W.shape[1]

    @property
    def contexts(self) -> int:
        return self.W.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for the next token after each context (row id) in x: the model's definition."""
        return F.one_hot(x, self.contexts).to(self.W.dtype) @ self.W

    def log_probs(self) -> torch.Tensor:
        """The C×V table log P(next | context); log_softmax never takes the log of an underflowed 0."""
        return F.log_softmax(self.W, dim=1)

    def reg_term(self, reg: float) -> torch.Tensor:
        return reg * (self.W**2).mean()

    def loss(
        self, xs: torch.Tensor, ys: torch.Tensor, reg: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, nll, reg term) over the examples xs → ys (a minibatch).

        The logits are rows xs of W: what the one-hot forward computes (tested equal), without
        its batch × C one-hot matrix, so memory is batch × V at any order. NLL of the targets
        under softmax(logits) is cross-entropy against one-hot targets."""
        nll = F.cross_entropy(self.W[xs], ys)
        r = self.reg_term(reg)
        return nll + r, nll, r

    def loss_from_counts(
        self, counts: torch.Tensor, reg: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same (loss, nll, reg term) over *every* bigram counted in `counts`, in O(V²).

        mean over examples of −log P(y|x) = −Σ_ij N_ij log softmax(W)_ij / Σ N, because every
        example with x = i, y = j contributes the same term. Same value, same gradient."""
        nll = -(counts * self.log_probs()).sum() / counts.sum()
        r = self.reg_term(reg)
        return nll + r, nll, r

    @torch.no_grad()
    def loss_and_grad_from_counts(
        self, counts: torch.Tensor, reg: float, total: float | None = None
    ) -> tuple[float, float, float, torch.Tensor]:
        """(loss, nll, reg term, dloss/dW) of loss_from_counts, with the gradient in closed form:

            d NLL / d W_ij = (P_ij · r_i − N_ij) / Σ N,   P = softmax(W) by rows, r_i = Σ_j N_ij
            d reg·mean(W²) / d W = 2 · reg · W / (C·V)

        ("predicted minus observed": softmax cross-entropy's gradient is P − one_hot(y), summed
        over the examples). Same numbers as autograd (tested), without its per-op overhead."""
        total = float(counts.sum()) if total is None else total
        logp = self.log_probs()
        nll = -float(torch.vdot(counts.flatten(), logp.flatten())) / total
        r = reg * float(torch.vdot(self.W.flatten(), self.W.flatten())) / self.W.numel()
        grad = logp.exp_().mul_(counts.sum(1, keepdim=True)).sub_(counts).div_(total)
        grad.add_(self.W, alpha=2 * reg / self.W.numel())
        return nll + r, nll, r, grad
