"""The table: every model ends as a C×V table of log P(next | context), row-stochastic.

Rows are contexts (the previous order − 1 tokens; bigram.counts addresses them), columns the
next token, id 0 the name boundary. Sampling, scoring, evaluation, export, plots and the explore
page read this table and nothing else. How each model becomes one:

count   log((N + k) / row sums) from the training counts N (add-k smoothing: `count_log_probs`),
        or interpolated modified Kneser-Ney of N (smoothing "kn", bigram.estimators.kneser_ney)
neural  log_softmax(W) row by row: one_hot(context) @ W is row `context` of W (bigram.models);
        held sparse, the seen contexts' rows with a shared logit each (models.neural_table)
mix     its parts' tables and weights, as `bigram mix` wrote them, read as one (bigram.mixture)
arpa    the table `bigram import` read from an ARPA file (bigram.formats.arpa), stored sparse

`model_table` makes any of them from its checkpoint; `count_table` and `count_log_probs_at` give
the count model's entries without building all of it (the metrics and summaries read few).

    >>> count_log_probs(torch.tensor([[1, 3], [0, 0]]), 1.0).exp()  # (N + 1) / row sums; an empty row
    tensor([[0.3333, 0.6667],
            [0.5000, 0.5000]], dtype=torch.float64)
"""

from __future__ import annotations

import math

import torch

from bigram.backoff import Level, Table, table_of_state
from bigram.config import MAX_SMOOTHING
from bigram.counts import nonzero, order_of, totals_at, values_at
from bigram.errors import BigramError
from bigram.safety import checkpoints, layout
from bigram.vocab import check_keys


def count_log_probs(
    counts: torch.Tensor, smoothing: float | str, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """log P of the count model, in float64 (or `dtype`): log((N + k) / Σ_j (N + k)), or
    Kneser-Ney's when smoothing is "kn".

    A row with no counts at all and k = 0 (a character seen only outside the training split)
    has no estimate; it gets the uniform distribution rather than 0/0."""
    if smoothing == "kn":
        from bigram.estimators.kneser_ney import kneser_ney_probs  # only the runs that use it pay the import

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
    counts = counts.coalesce() if counts.is_sparse else counts  # once, not at every call

    def at(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        num = values_at(counts, i, j).to(torch.float64) + smoothing
        den = totals_at(counts, i).to(torch.float64) + smoothing * V
        return torch.where(den > 0, num.log() - den.log(), torch.full_like(den, -math.log(V)))

    return at


def count_table(counts: torch.Tensor, smoothing: float | str) -> Table:
    """The count model as a backoff table: a row for every context seen in training, listing the
    tokens seen after it, (c + k) / (c(h) + kV), and β(h) = kV / (c(h) + kV) for every other
    token times the uniform root 1/V; a context never seen reads the root. Kneser-Ney when
    smoothing is "kn" (bigram.estimators.kneser_ney).

    >>> t = count_table(torch.tensor([[1, 3], [0, 0]]), 1.0)  # row 0 seen; row 1 never
    >>> t.rows(torch.tensor([0, 1])).exp()
    tensor([[0.3333, 0.6667],
            [0.5000, 0.5000]], dtype=torch.float64)
    """
    if smoothing == "kn":
        from bigram.estimators.kneser_ney import kneser_ney_table  # only the runs that use it pay the import

        return kneser_ney_table(counts)[0]
    C, V = counts.shape
    N = order_of((C, V))
    check_keys(V, N)
    i, j, n = nonzero(counts.coalesce() if counts.is_sparse else counts)
    keys, inv, per = torch.unique_consecutive(i, return_inverse=True, return_counts=True)
    den = torch.zeros(len(keys), dtype=torch.float64).index_add_(0, inv, n.double()) + smoothing * V
    logp = (n.double() + smoothing).log_() - den.log()[inv]
    beta = torch.full_like(den, math.log(smoothing * V) if smoothing > 0 else -math.inf) - den.log()
    ptr = torch.cat([torch.zeros(1, dtype=torch.int64), per.cumsum(0)])
    top = Level(keys, ptr, j.long(), logp, beta)
    return Table(V, N, [None] * (N - 1) + [top]).with_dense()


def model_table(model: str, ckpt: dict, shape: tuple[int, int], where: str) -> Table:
    """A checkpoint → its model's table of log P(next | context), float64 (checked first);
    C = V contexts for the bigram. How each kind becomes its table: the module docstring."""
    if model == "count":
        counts, smoothing = count_model_of(ckpt, shape, where)
        if smoothing == "kn" and "table" in ckpt:  # Kneser-Ney as it was estimated in training
            return table_of_state(ckpt["table"], shape[1], where)
        return count_table(counts, smoothing)
    if model == "mix" and isinstance(ckpt.get("table"), dict) and "parts" in ckpt["table"]:
        from bigram.mixture import Mixture  # a mix is kept as its parts

        mix = Mixture.of_state(ckpt["table"], shape[1], where)
        if mix.order != order_of(shape):
            raise BigramError(
                f"{where} holds an order-{mix.order} mix in an order-{order_of(shape)} run: it is damaged"
            )
        return mix
    if model in layout.TABLE_KINDS:
        return stored_table(ckpt, shape, where)
    weights = checkpoints.check_neural(ckpt, shape, where)
    if "W" not in weights:  # the sparse form: rows of the contexts seen, a shared logit each
        from bigram.models import neural_table

        return neural_table(shape[1], order_of(shape), *weights.values())
    W = weights["W"]
    out = torch.empty(W.shape, dtype=torch.float64)
    step = max(1, (1 << 20) // W.shape[1])  # a block of rows at a time: no float64 copy of all of W
    for i in range(0, W.shape[0], step):
        torch.log_softmax(W[i : i + step].double(), dim=1, out=out[i : i + step])
    return Table.of_dense(out)


def stored_table(ckpt: dict, shape: tuple[int, int], where: str) -> Table:
    """A mixed or imported model's stored table (its levels, checked by table_of_state); a run
    written before the table was sparse stores the C×V tensor "log_probs" instead."""
    if "table" not in ckpt:
        return Table.of_dense(checkpoints.check_table(ckpt.get("log_probs"), shape, where))
    table = table_of_state(ckpt["table"], shape[1], where)
    if table.order != order_of(shape):
        raise BigramError(
            f"{where} holds an order-{table.order} table in an order-{order_of(shape)} run: it is damaged"
        )
    return table


def count_model_of(ckpt: dict, shape: tuple[int, int], where: str) -> tuple[torch.Tensor, float | str]:
    """A count checkpoint's training counts (C×V, sparse) and its smoothing (k, or "kn"), checked."""
    counts = checkpoints.check_counts(ckpt.get("counts"), shape, where)
    if ckpt.get("smoothing") == "kn":
        return counts, "kn"
    return counts, checkpoints.check_number(ckpt.get("smoothing"), 0, MAX_SMOOTHING, "smoothing", where)
