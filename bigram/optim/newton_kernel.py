"""Newton's row step (bigram.optim.newton) as compiled loops (numba): read them as plain Python.

For row a of W, with n = N[a] its counts, r = Σ n its total and p = softmax(W[a]):

    row_softmax   p (unnormalized) and the sums the row's loss needs, in one pass;
    direction     d = −H⁻¹g by Sherman–Morrison, and the slope gᵀd;
    line_search   W[a] += t·d for the first t = lr, lr/2, … that lowers the loss enough (Armijo).

`newton_rows` runs them for rows lo..hi−1; threads take disjoint row ranges (nogil). The line
search's constants are here too, where the loop reads them; bigram.optim.newton imports them.
Functions are defined by bigram.reader.numba_cache.njit (their cache is bigram's) and compiled on
first call: bigram.optim.newton._compiled does that.
"""

from __future__ import annotations

import math

import numpy as np

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


@_jit
def newton_rows(W, N, lo, hi, total, beta, reg_cell, lr, out):
    """Rows lo..hi−1 of W (float32, updated in place) take one Newton step each; out[a] gets row
    a's (NLL share, L2 share) before the step. N: the training counts as float32, C×V."""
    V = W.shape[1]
    p = np.empty(V)  # softmax of the row
    d = np.empty(V)  # the Newton direction
    for a in range(lo, hi):
        w, n = W[a], N[a]
        top, z, nw, ww, r = row_softmax(w, n, p)
        nll = -(nw - r * (top + math.log(z))) / total  # −Σ_j N_aj log p_j / ΣN
        out[a, 0], out[a, 1] = nll, reg_cell * ww
        slope = direction(w, n, p, d, z, r, r / total, beta, total)
        if slope < 0:  # else at the optimum already (or no usable direction): keep the row
            line_search(w, n, d, r, total, reg_cell, lr, nll + reg_cell * ww, slope)


@_step
def row_softmax(w, n, p):
    """p[j] = exp(w[j] − top), and (top, Σ p, Σ n·w, Σ w², Σ n) in float64."""
    top = -np.inf
    for j in range(w.shape[0]):
        top = max(top, w[j])
    z, nw, ww, r = 0.0, 0.0, 0.0, 0.0
    for j in range(w.shape[0]):
        x, nj = np.float64(w[j]), np.float64(n[j])  # float32 products would lose digits
        e = math.exp(x - top)
        p[j] = e
        z += e
        nw += nj * x
        ww += x * x
        r += nj
    return top, z, nw, ww, r


@_step
def direction(w, n, p, d, z, r, alpha, beta, total):
    """Normalize p (by z) and set d = −H⁻¹g, H = α·diag(p) − α·p pᵀ + β·I; returns gᵀd, how fast
    the loss falls along d (< 0 for a descent direction)."""
    V = w.shape[0]
    # pᵀA⁻¹g, and 1 − α·pᵀA⁻¹p = Σ_j p_j·β/A_j (as Σ p_j = 1), a sum without cancellation:
    # where β ≪ α·p_j it is tiny, and 1 − (something close to 1) would keep no digits of it
    pAg, den = 0.0, 0.0
    for j in range(V):
        p[j] /= z
        A = alpha * p[j] + beta
        if A > 0:
            d[j] = ((p[j] * r - n[j]) / total + beta * w[j]) / A  # A⁻¹g for now
            pAg += p[j] * d[j]
            den += p[j] * beta / A
        else:  # reg = 0 and p_j underflowed: no curvature, no step
            d[j] = 0.0
    c = alpha * pAg / den if den > 0 else 0.0
    slope = 0.0
    for j in range(V):
        A = alpha * p[j] + beta
        g = (p[j] * r - n[j]) / total + beta * w[j]
        d[j] = -(d[j] + c * p[j] / A) if A > 0 else 0.0
        slope += g * d[j]
    return slope


@_step
def line_search(w, n, d, r, total, reg_cell, lr, before, slope):
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
            z += math.exp(x - top)
            nw += n[j] * x
            ww += x * x
        after = -(nw - r * (top + math.log(z))) / total + reg_cell * ww
        if after <= before + ARMIJO * t * slope:
            for j in range(V):
                w[j] = w[j] + t * d[j]
            return
        t /= 2
