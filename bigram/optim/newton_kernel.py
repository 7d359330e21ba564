"""Newton's row step (bigram.optim.newton) as compiled loops (numba): read them as plain Python.

A row is a list of entries w with counts n and multiplicities μ ≥ 1: entry j stands for μ_j equal
logits of the full row (a dense row: every μ_j = 1; a sparse row: its listed tokens, μ = 1, and
one shared logit for the m ≥ 1 tokens it has not seen, μ = m). With
r = Σ n the row's total and p_j = exp(w_j) / Σ_k μ_k exp(w_k), the probability of each token
entry j stands for:

    row_softmax   p (unnormalized) and the sums the row's loss needs, in one pass;
    direction     d = −H⁻¹g by Sherman–Morrison, and the slope gᵀd;
    line_search   w += t·d for the first t = lr, lr/2, … that lowers the loss enough (Armijo).

`newton_rows` runs them for rows lo..hi−1 of a dense W, `newton_rows_sparse` for rows of entries
in CSR form; threads take disjoint row ranges (nogil). The line
search's constants are here too, where the loop reads them; bigram.optim.newton imports them.
Functions are defined by bigram.reader.numba_cache.njit (their cache is bigram's) and compiled on
first call: bigram.optim.newton._compiled does that.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload

from bigram.reader.numba_cache import njit

ARMIJO = 1e-4  # the fraction of the predicted decrease a step must achieve
HALVINGS = 30  # a row whose step still fails after this many halvings keeps its weights
# the first trial moves no logit by more than this: far from the optimum (W's random start) a
# full Newton step overshoots by orders of magnitude and would take ~10 halvings to shrink
MAX_MOVE = 4.0

# reassociation lets LLVM vectorize the sums; no flag that assumes finite values (top starts at −∞)
_FLAGS = dict(cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
_jit = njit(**_FLAGS)
# the steps are inlined into newton_rows (numba's IR): compiled as separate functions, a fresh
# compile and one loaded from the cache rounded differently in the last bits of W
_step = njit(inline="always", **_FLAGS)


def times(mu, j, x):
    """μ_j·x: a term of a row's sum, weighted by how many tokens entry j stands for; for a dense
    row (mu None) the term itself, compiled without the product so its sums keep every bit."""
    return x if mu is None else mu[j] * x


@overload(times, inline="always")
def _times(mu, j, x):
    if isinstance(mu, types.NoneType):
        return lambda mu, j, x: x
    return lambda mu, j, x: mu[j] * x


@_jit
def newton_rows(W, N, lo, hi, total, beta, reg_cell, lr, out):
    """Rows lo..hi−1 of W (float32, updated in place) take one Newton step each; out[a] gets row
    a's (NLL share, L2 share) before the step. N: the training counts as float32, C×V."""
    V = W.shape[1]
    p = np.empty(V)  # softmax of the row
    d = np.empty(V)  # the Newton direction
    mu = None  # every entry one token: the sums without the weights (times(None, …) is the term)
    for a in range(lo, hi):
        out[a, 0], out[a, 1] = row_step(W[a], N[a], mu, p, d, total, beta, reg_cell, lr)


@_jit
def newton_rows_sparse(w, n, mu, ptr, lo, hi, total, beta, reg_cell, lr, out):
    """The same for rows lo..hi−1 of entries in CSR form: row a is w[ptr[a]:ptr[a+1]] (float32,
    updated in place) with counts n (float32) and multiplicities mu (float64) alike."""
    width = 1
    for a in range(lo, hi):
        width = max(width, ptr[a + 1] - ptr[a])
    p = np.empty(width)
    d = np.empty(width)
    for a in range(lo, hi):
        s, e = ptr[a], ptr[a + 1]
        k = e - s
        out[a, 0], out[a, 1] = row_step(w[s:e], n[s:e], mu[s:e], p[:k], d[:k], total, beta, reg_cell, lr)


@_step
def row_step(w, n, mu, p, d, total, beta, reg_cell, lr):
    """One row's Newton step; returns its (NLL share, L2 share) before the step."""
    top, z, nw, ww, r = row_softmax(w, n, mu, p)
    nll = -(nw - r * (top + math.log(z))) / total  # −Σ_j n_j log p_j / ΣN
    slope = direction(w, n, mu, p, d, z, r, r / total, beta, total)
    if slope < 0:  # else at the optimum already (or no usable direction): keep the row
        line_search(w, n, mu, d, r, total, reg_cell, lr, nll + reg_cell * ww, slope)
    return nll, reg_cell * ww


@_step
def row_softmax(w, n, mu, p):
    """p[j] = exp(w[j] − top), and (top, Σ μ·p, Σ n·w, Σ μ·w², Σ n) in float64."""
    top = -np.inf
    for j in range(w.shape[0]):
        top = max(top, w[j])
    z, nw, ww, r = 0.0, 0.0, 0.0, 0.0
    for j in range(w.shape[0]):
        x, nj = np.float64(w[j]), np.float64(n[j])  # float32 products would lose digits
        e = math.exp(x - top)
        p[j] = e
        z += times(mu, j, e)
        nw += nj * x
        ww += times(mu, j, x * x)
        r += nj
    return top, z, nw, ww, r


@_step
def direction(w, n, mu, p, d, z, r, alpha, beta, total):
    """Normalize p (by z) and set d = −H⁻¹g, where in the row's own coordinates (one per entry)
    H = diag(μ·A) − α·q qᵀ, A = α·p + β, q = μ·p, and g = μ·(per-token gradient); returns gᵀd,
    how fast the loss falls along d (< 0 for a descent direction). By Sherman–Morrison the
    direction of each entry is the one its tokens take in the full row (H's solve there)."""
    V = w.shape[0]
    # qᵀ(μA)⁻¹g = Σ μ·p·(g/A), and 1 − α·qᵀ(μA)⁻¹q = Σ_j μ_j·p_j·β/A_j (as Σ μ·p = 1), a sum
    # without cancellation: where β ≪ α·p_j it is tiny, and 1 − (something close to 1) would keep
    # no digits of it
    pAg, den = 0.0, 0.0
    for j in range(V):
        p[j] /= z
        A = alpha * p[j] + beta
        if A > 0:
            d[j] = ((p[j] * r - n[j]) / total + beta * w[j]) / A  # A⁻¹g for now
            pAg += times(mu, j, p[j] * d[j])
            den += times(mu, j, p[j] * beta / A)
        else:  # reg = 0 and p_j underflowed: no curvature, no step
            d[j] = 0.0
    c = alpha * pAg / den if den > 0 else 0.0
    slope = 0.0
    for j in range(V):
        A = alpha * p[j] + beta
        g = (p[j] * r - n[j]) / total + beta * w[j]
        d[j] = -(d[j] + c * p[j] / A) if A > 0 else 0.0
        slope += times(mu, j, g * d[j])
    return slope


@_step
def line_search(w, n, mu, d, r, total, reg_cell, lr, before, slope):
    """w += t·d for the first t = lr·min(1, MAX_MOVE / max|d|), halved up to HALVINGS times, whose
    loss is within ARMIJO of the decrease the slope predicts; w is kept when none is, or when a
    step no longer changes w as stored (the row has converged)."""
    V = w.shape[0]
    big = 0.0
    for j in range(V):
        big = max(big, abs(d[j]))
    t = lr * min(1.0, MAX_MOVE / big)  # big > 0, as the slope is < 0
    for _ in range(HALVINGS + 1):
        top, moves = -np.inf, False
        for j in range(V):
            x = w[j] + t * d[j]
            top = max(top, x)
            moves = moves or np.float32(x) != w[j]
        if not moves:
            return
        z, nw, ww = 0.0, 0.0, 0.0
        for j in range(V):
            x = w[j] + t * d[j]
            z += times(mu, j, math.exp(x - top))
            nw += n[j] * x
            ww += times(mu, j, x * x)
        after = -(nw - r * (top + math.log(z))) / total + reg_cell * ww
        if after <= before + ARMIJO * t * slope:
            for j in range(V):
                w[j] = w[j] + t * d[j]
            return
        t /= 2
