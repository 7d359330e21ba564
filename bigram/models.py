"""The two bigram models. Both end as a V×V table of log P(next | prev), row-stochastic.

count  : P = (N + k) / row sums — add-k smoothing of the count matrix N;
         or interpolated modified Kneser-Ney of N (smoothing "kn", kneser_ney.py).
neural : logits = one_hot(x) @ W, P = softmax(logits); the only parameter is W (V×V).
         Since one_hot(x) @ W is just row x of W, softmax(W) by rows *is* the model's table.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bigram.counts import row_sums, rows_of, values_at
from bigram.estimators.kneser_ney import kneser_ney_probs


def count_log_probs(
    counts: torch.Tensor, smoothing: float | str, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """log P of the count model, in float64 (or `dtype`): log((N + k) / Σ_j (N + k)), or
    Kneser-Ney's when smoothing is "kn".

    A row with no counts at all and k = 0 (a character seen only outside the training split)
    has no estimate; it gets the uniform distribution rather than 0/0."""
    if smoothing == "kn":
        return kneser_ney_probs(counts)[0].log_().to(dtype)
    if counts.is_sparse:  # one V×V allocation: the table itself
        c = counts.coalesce()
        n = torch.full(c.shape, float(smoothing), dtype=dtype, device=c.device)
        n.index_put_(tuple(c.indices()), c.values().to(dtype), accumulate=True)
    else:
        n = counts.to(dtype, copy=True).add_(smoothing)
    totals = n.sum(1, keepdim=True)
    empty = totals.squeeze(1) == 0
    n[empty] = 1.0
    totals[empty] = n.shape[1]
    return n.log_().sub_(totals.log_())


def count_log_probs_at(counts: torch.Tensor, smoothing: float | str):
    """(i, j) ↦ the count model's log P_ij in float64, for index tensors i, j, without the V×V
    table: log(N_ij + k) − log(N_i + k·V), in O(len(i) + V). What the metrics need (they read only
    counted bigrams), so a large vocabulary's count model is evaluated without allocating V².
    (Kneser-Ney, smoothing "kn", mixes every row with shorter histories' rows: it builds the table.)

    >>> at = count_log_probs_at(torch.tensor([[1, 3], [0, 0]]), 0.0)
    >>> at(torch.tensor([0, 1]), torch.tensor([1, 0])).exp()  # 3/4, and an empty row: uniform
    tensor([0.7500, 0.5000], dtype=torch.float64)
    """
    if smoothing == "kn":
        table = count_log_probs(counts, "kn")
        return lambda i, j: table[i, j]
    V = counts.shape[1]
    rows = row_sums(counts).to(torch.float64) + smoothing * V

    def at(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        num = values_at(counts, i, j).to(torch.float64) + smoothing
        den = rows[i]
        return torch.where(den > 0, num.log() - den.log(), torch.full_like(den, -math.log(V)))

    return at


class CountRows:
    """The add-k count model's C×V table of log P, made only at the rows asked for: `table[i]`
    for an index tensor i equals count_log_probs(counts, k)[i] (float64). What the end-of-run
    summaries read of it (an image's corner, ten sampled names), without allocating C×V: at
    V = 4,500 the whole table would be 160 MB.

    >>> CountRows(torch.tensor([[1, 3], [0, 0]]).to_sparse(), 0.0)[torch.tensor([0])].exp()
    tensor([[0.2500, 0.7500]], dtype=torch.float64)
    """

    def __init__(self, counts: torch.Tensor, smoothing: float) -> None:
        self.counts, self.smoothing, self.shape = counts, smoothing, tuple(counts.shape)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        return count_log_probs(rows_of(self.counts, rows), self.smoothing)


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
