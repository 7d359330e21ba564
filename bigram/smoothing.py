"""Searching the add-k smoothing constant: the k that predicts held-out names best (on the val
split, or by leave-one-out when there is none), and the k whose count model is closest to a
given table (how much smoothing an L2 penalty amounts to)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bigram.counts import entry_row_sums, nonzero, total
from bigram.metrics import kl_between, nll
from bigram.table import count_log_probs_at, count_table

K_RANGE = (1e-4, 1e3)  # searched on a log scale


def _minimize_log(f: Callable[[float], float], lo: float, hi: float, grid: int = 29, refine: int = 30):
    """min of f(k) over [lo, hi]: a log-spaced grid, then golden-section search in log k around
    the best grid point. Returns (k, every (k, f(k)) evaluated, sorted by k)."""
    seen: dict[float, float] = {}

    def g(logk: float) -> float:
        k = 10**logk
        if k not in seen:
            seen[k] = f(k)
        return seen[k]

    a, b = math.log10(lo), math.log10(hi)
    xs = [a + (b - a) * i / (grid - 1) for i in range(grid)]
    best = min(range(grid), key=lambda i: g(xs[i]))
    left, right = xs[max(best - 1, 0)], xs[min(best + 1, grid - 1)]
    phi = (math.sqrt(5) - 1) / 2
    c, d = right - phi * (right - left), left + phi * (right - left)
    for _ in range(refine):
        if g(c) < g(d):
            right, d = d, c
            c = right - phi * (right - left)
        else:
            left, c = c, d
            d = left + phi * (right - left)
    k = min(seen, key=seen.get)
    return k, sorted(seen.items())


def choose_smoothing(
    train: torch.Tensor, val: torch.Tensor | None = None
) -> tuple[float, list[tuple[float, float]], str]:
    """The k minimizing the count model's NLL on the val counts, the curve (k, val NLL), and
    "val". Without val counts (no val split), the k minimizing the leave-one-out NLL of the
    training bigrams instead, its curve, and "leave-one-out"."""
    if val is None or not total(val):
        return (*_minimize_log(leave_one_out_nll(train), *K_RANGE), "leave-one-out")
    return (*_minimize_log(held_out_nll(train, val), *K_RANGE), "val")


def held_out_nll(train: torch.Tensor, val: torch.Tensor) -> Callable[[float], float]:
    """k ↦ the add-k count model's NLL on `val`, in O(val's counted pairs + V) for each k rather
    than O(V²): only the val bigrams' log-probabilities are read (table.count_log_probs_at).

    >>> train, val = torch.tensor([[1, 3], [2, 0]]), torch.tensor([[0, 1], [1, 1]])
    >>> round(held_out_nll(train, val)(0.5), 6)  # −(log 3.5/5 + log 2.5/3 + log 0.5/3) / 3
    0.776919
    """
    return lambda k: nll(count_log_probs_at(train, k), val)


def leave_one_out_nll(train: torch.Tensor) -> Callable[[float], float]:
    """k ↦ the NLL of the training bigrams when each is predicted by the add-k model of all the
    *other* training bigrams ("deleted estimation"): a bigram counted N_ij times in a row of N_i
    gets (N_ij − 1 + k) / (N_i − 1 + k·V). A pair seen once then costs log(k / …), so k is
    chosen, like on a val split, by how well the model predicts pairs it has not seen. In O(nnz).

    >>> train = torch.tensor([[1, 3], [2, 0]])
    >>> round(leave_one_out_nll(train)(0.5), 6)  # −(log 0.5/4 + 3·log 2.5/4 + 2·log 1.5/2) / 6
    0.677469
    """
    _, _, n = nonzero(train)
    n = n.to(torch.float64)
    rows = entry_row_sums(train).to(torch.float64)
    V, total = train.shape[1], float(n.sum())
    return lambda k: -float((n * ((n - 1 + k).log() - (rows - 1 + k * V).log())).sum()) / total


def equivalent_smoothing(log_probs: torch.Tensor, train: torch.Tensor) -> tuple[float, float]:
    """The k whose count model is nearest the table (least KL(count_k ‖ table), rows weighted by
    the training counts), and that KL."""
    k, curve = _minimize_log(lambda k: kl_between(count_table(train, k), log_probs, train), *K_RANGE)
    return k, dict(curve)[k]
