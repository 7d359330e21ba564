"""The neural model: logits = one_hot(x) @ W, P = softmax(logits); the only parameter is W (C×V).

Since one_hot(x) @ W is just row x of W, softmax(W) by rows *is* the model's table (bigram.table,
where the count model's table, P = (N + k) / row sums, is made too). Its loss is the mean NLL of
the training bigrams plus L2 on W, and because every example with x = i, y = j adds the same term,
the full-batch loss and its gradient come from the count matrix N alone (`loss_from_counts`).

Where C·V is large (a big alphabet, a high order) W is held sparse (`SparseNeural`): entries of a
row that start equal get equal gradients from the counts and the L2 term alike, so they stay
equal under every full-batch optimizer. Started at zero, a row of a context seen in training is
its seen followers' logits plus ONE logit u shared by the m = V − n tokens it was never followed
by, and the row of a context never seen stays 0 (L2's optimum): the uniform distribution. Same
model, same objective, same optimum: only the storage grows with what was seen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bigram.backoff import Level, Table


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

    def weights(self) -> nn.Parameter:
        """The parameter the optimizers move (the sparse model's is its entries)."""
        return self.W

    def state(self) -> dict:
        """What neural.pt stores of the model."""
        return {"W": self.W.detach().cpu()}

    def batch_loss(self, idx: torch.Tensor, reg: float):
        """loss() of the examples drawn as flat indices into the C×V counts."""
        V = self.W.shape[1]
        return self.loss(idx // V, idx % V, reg)

    def grad_per_token_(self) -> None:
        """Every entry of W is one token: its gradient is already the per-token one."""

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


def _segment_sum(x: torch.Tensor, row: torch.Tensor, R: int) -> torch.Tensor:
    return torch.zeros(R, dtype=x.dtype, device=x.device).index_add(0, row, x)


class SparseNeural(nn.Module):
    """The neural model of the module docstring's second paragraph: W held as, for each context
    seen in training (sorted keys, bigram.counts' row ids), the logits of the tokens seen after
    it (cols, in CSR form: ptr) and one shared logit u for the other m = V − n tokens of its row.

    The parameter `theta` holds every row's entries, its listed ones then its shared one (`fptr`
    delimits them; a row that lists all V tokens has none); `mu` is how many tokens of the full
    row an entry stands for (1, or m), `n` its training count (0 for a shared entry), `row` its row."""

    def __init__(self, V: int, order: int, keys, ptr, cols, counts=None, dtype=torch.float32) -> None:
        super().__init__()
        R, E = len(keys), len(cols)
        self.V, self.order, self.cells = V, order, V**order  # cells: C·V, the full table's
        lens = ptr.diff()
        has = lens < V  # rows with tokens never seen after them: a shared entry
        width = lens + has
        fptr = torch.cat([torch.zeros(1, dtype=torch.int64), width.cumsum(0)])
        for name, t in (
            ("keys", keys), ("ptr", ptr), ("cols", cols), ("fptr", fptr), ("has_shared", has),
            ("listed", torch.arange(E) + torch.repeat_interleave(fptr[:-1] - ptr[:-1], lens)),
            ("shared_at", (fptr[1:] - 1)[has]),
            ("row", torch.repeat_interleave(torch.arange(R), width)),
        ):  # fmt: skip
            self.register_buffer(name, t)
        mu = torch.ones(int(fptr[-1]), dtype=torch.float64)
        mu[self.shared_at] = (V - lens[has]).double()
        self.register_buffer("mu", mu)
        n = torch.zeros(int(fptr[-1]), dtype=torch.float32)
        if counts is not None:
            n[self.listed] = counts.to(torch.float32)
        self.register_buffer("n", n)
        self.theta = nn.Parameter(torch.zeros(int(fptr[-1]), dtype=dtype))  # every row 0: uniform

    @classmethod
    def of_counts(cls, counts: torch.Tensor, dtype=torch.float32) -> SparseNeural:
        """A row for every context with a training count, listing the tokens seen after it; W = 0."""
        from bigram.counts import nonzero, order_of

        C, V = counts.shape
        i, j, n = nonzero(counts.coalesce() if counts.is_sparse else counts)  # sorted by (row, col)
        keys, per = torch.unique_consecutive(i, return_counts=True)
        ptr = torch.cat([torch.zeros(1, dtype=torch.int64), per.cumsum(0)])
        return cls(V, order_of((C, V)), keys.long(), ptr, j.long(), n, dtype)

    @property
    def vocab_size(self) -> int:
        return self.V

    @property
    def contexts(self) -> int:
        return self.cells // self.V

    def weights(self) -> nn.Parameter:
        return self.theta

    def shared_logits(self) -> torch.Tensor:
        """Each row's shared logit u (0 where a row lists every token), differentiably."""
        u = torch.zeros(len(self.keys), dtype=self.theta.dtype, device=self.theta.device)
        return u.index_put((self.has_shared.nonzero().squeeze(1),), self.theta[self.shared_at])

    def load(self, values: torch.Tensor, shared: torch.Tensor) -> None:
        """Set the listed logits and each row's shared one (from a checkpoint)."""
        with torch.no_grad():
            self.theta[self.listed] = values.to(self.theta)
            self.theta[self.shared_at] = shared.to(self.theta)[self.has_shared]

    def state(self) -> dict:
        """neural.pt's sparse form: the rows' keys, ptr and cols, their logits and shared logits."""
        parts = {k: getattr(self, k).cpu() for k in ("keys", "ptr", "cols")}
        values = self.theta.detach()[self.listed].cpu()
        return {**parts, "values": values, "shared": self.shared_logits().detach().cpu()}

    def log_z(self, x: torch.Tensor) -> torch.Tensor:
        """log Σ over each full row of exp(logit): Σ_listed exp(w) + m·exp(u), by rows."""
        R, y = len(self.keys), x.to(torch.float64)
        top = torch.full((R,), -math.inf, dtype=y.dtype, device=y.device)
        top = top.scatter_reduce_(0, self.row, y.detach(), "amax")
        return top + _segment_sum((y - top[self.row]).exp() * self.mu, self.row, R).log()

    def reg_term(self, reg: float) -> torch.Tensor:
        """reg · mean(W²) over the full C×V table: Σ μ·θ² / (C·V) (rows never seen are 0)."""
        return reg * (self.mu * self.theta.to(torch.float64) ** 2).sum() / self.cells

    def loss_from_counts(self, counts: torch.Tensor, reg: float):
        """(loss, nll, reg term) over every training example, `counts` an entry's count (n), by
        autograd: NLL = (Σ_rows r·log Z − Σ n·θ) / Σ n."""
        c = counts.to(torch.float64)
        r = _segment_sum(c, self.row, len(self.keys))
        nll = ((r * self.log_z(self.theta)).sum() - (c * self.theta).sum()) / c.sum()
        reg_t = self.reg_term(reg)
        return nll + reg_t, nll, reg_t

    def batch_loss(self, idx: torch.Tensor, reg: float):
        """(loss, nll, reg term) over the examples drawn as entries idx (each a listed one: the
        minibatch's (context, token) pairs), by autograd: what cross_entropy of their rows gives."""
        nll = (self.log_z(self.theta)[self.row[idx]] - self.theta[idx]).mean()
        r = self.reg_term(reg)
        return nll + r, nll, r

    def grad_per_token_(self) -> None:
        """theta.grad of a shared entry is the sum over the m tokens it stands for: the gradient
        of any one of them (what an elementwise optimizer of W gives each) is that / m."""
        self.theta.grad.div_(self.mu.to(self.theta.grad))

    @torch.no_grad()
    def loss_and_grad_from_counts(self, counts: torch.Tensor, reg: float, total: float | None = None):
        """(loss, nll, reg term, per-token gradient) of loss_from_counts in closed form: an entry's
        gradient is that of each token it stands for, (p·r − n) / Σ n + 2·reg·θ / (C·V), as the
        dense model's (its sum over the m tokens is m times it)."""
        total = float(counts.sum()) if total is None else total
        c, x, R = counts.to(torch.float64), self.theta.to(torch.float64), len(self.keys)
        log_z = self.log_z(x)
        r = _segment_sum(c, self.row, R)
        nll = float((r * log_z).sum() - (c * x).sum()) / total
        reg_t = reg * float((self.mu * x * x).sum()) / self.cells
        p = (x - log_z[self.row]).exp()
        grad = (p * r[self.row] - c) / total + (2 * reg / self.cells) * x
        return nll + reg_t, nll, reg_t, grad.to(self.theta.dtype)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        """Rows ctx of the full W (len × V): listed logits, the shared one elsewhere, 0 for a
        context never seen; one_hot(ctx) @ W, without W."""
        ctx = torch.as_tensor(ctx, dtype=torch.int64, device=self.keys.device)
        out = torch.zeros(len(ctx), self.V, dtype=self.theta.dtype, device=self.theta.device)
        if not len(self.keys):
            return out
        pos = torch.searchsorted(self.keys, ctx).clamp_(max=len(self.keys) - 1)
        known = self.keys[pos] == ctx
        idx, rows = known.nonzero().squeeze(1), pos[known]
        out[idx] = self.shared_logits()[rows].unsqueeze(1).expand(-1, self.V)
        lo, lens = self.ptr[rows], self.ptr[rows + 1] - self.ptr[rows]
        which = torch.repeat_interleave(torch.arange(len(rows), device=lo.device), lens)
        at = torch.arange(int(lens.sum()), device=lo.device) - (lens.cumsum(0) - lens - lo)[which]
        out[idx[which], self.cols[at]] = self.theta[self.listed[at]]
        return out

    def log_probs(self) -> Table:
        """The model's table: its rows listed, every other token of a row at the shared logit
        (the backoff weight β = V·exp(u)/Z onto the uniform root), a context never seen uniform."""
        s = self.state()
        return neural_table(self.V, self.order, s["keys"], s["ptr"], s["cols"], s["values"], s["shared"])


def neural_table(V: int, order: int, keys, ptr, cols, values, shared) -> Table:
    """A sparse neural model's table (checked parts: checkpoints.check_neural): in each seen
    context's row, log P = w − log Z for a listed token, and log β = log V + u − log Z, so that
    every other token reads β·(1/V) = exp(u)/Z at the uniform root; the rows of contexts never
    seen read the root itself (W = 0 there)."""
    R = len(keys)
    lens = ptr.diff()
    row = torch.repeat_interleave(torch.arange(R), lens)
    w, u, m = values.to(torch.float64), shared.to(torch.float64), (V - lens).to(torch.float64)
    top = torch.full((R,), -math.inf, dtype=torch.float64).scatter_reduce_(0, row, w, "amax")
    top = torch.where(m > 0, torch.maximum(top, u), top)
    z = _segment_sum((w - top[row]).exp(), row, R) + torch.where(m > 0, m * (u - top).exp(), 0.0)
    log_z = top + z.log()
    beta = torch.where(m > 0, u - log_z + math.log(V), -math.inf)
    level = Level(keys, ptr, cols, w - log_z[row], beta)
    return Table(V, order, [None] * (order - 1) + [level]).with_dense()
