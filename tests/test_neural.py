"""The one-hot neural model and its optimizers (models.py, fit.py, optim/): its full-batch loss from
counts is the per-example loss; the optimizers reach the optimum, L-BFGS's history bounded by the table."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F

from bigram.config import TrainConfig
from bigram.counts import count_bigrams
from bigram.fit import fit_neural
from bigram.models import NeuralBigram
from bigram.vocab import Vocab


def plain_dataset(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's xs, ys lists, built with a Python loop over every bigram."""
    stoi = {ch: i + 1 for i, ch in enumerate(sorted({c for w in names for c in w}))}
    xs, ys = [], []
    for w in names:
        chs = [0, *(stoi[c] for c in w), 0]
        for a, b in pairwise(chs):
            xs.append(a)
            ys.append(b)
    return torch.tensor(xs), torch.tensor(ys)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_full_batch_loss_and_gradient_equal_one_hot(names):
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab).float()
    xs, ys = plain_dataset(names)
    assert len(xs) == 228_146

    a = NeuralBigram(27, seed=2147483647)
    loss_a, _, _ = a.loss_from_counts(N, reg=0.01)
    loss_a.backward()

    b = NeuralBigram(27, seed=2147483647)
    # the lecture's literal forward: one_hot @ W, exp, normalize, pick, log, mean
    logits = F.one_hot(xs, 27).float() @ b.W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdim=True)
    loss_b = -probs[torch.arange(len(xs)), ys].log().mean() + 0.01 * (b.W**2).mean()
    loss_b.backward()

    assert abs(loss_a.item() - loss_b.item()) / loss_b.item() <= 1e-5
    assert rel(a.W.grad, b.W.grad) <= 1e-5
    # the closed-form gradient the full-batch trainer uses: (softmax(W)·r − N)/ΣN + 2·reg·W/V²
    c = NeuralBigram(27, seed=2147483647)
    loss_c, _, _, grad_c = c.loss_and_grad_from_counts(N, reg=0.01)
    assert abs(loss_c - loss_b.item()) / loss_b.item() <= 1e-5
    assert rel(grad_c, b.W.grad) <= 1e-5
    assert loss_b.item() == pytest.approx(3.768619, abs=5e-5)  # the lecture's first loss


def test_nll_is_cross_entropy_against_one_hot_targets(names):
    xs, ys = plain_dataset(names[:200])
    m = NeuralBigram(27, seed=0)
    _, nll, _ = m.loss(xs, ys, reg=0.0)
    logits = m(xs)
    assert torch.allclose(nll, F.cross_entropy(logits, ys))
    assert torch.allclose(nll, F.nll_loss(F.log_softmax(logits, 1), ys))
    # and the same as −mean log P(y|x) read off the model's V×V table
    assert torch.allclose(nll, -m.log_probs()[xs, ys].mean())


def test_forward_is_row_lookup():
    m = NeuralBigram(5, seed=3)
    x = torch.tensor([4, 0, 2])
    assert torch.equal(m(x), m.W[x])


def test_log_probs_do_not_underflow():
    m = NeuralBigram(3, seed=0)
    with torch.no_grad():
        m.W.copy_(torch.tensor([[0.0, 200.0, -200.0]] * 3))
    lp = m.log_probs()
    assert torch.isfinite(lp).all()  # log(softmax) would give -inf for the third column
    assert lp[0, 2].item() == pytest.approx(-400.0)


def _fit(names, **kw):
    vocab = Vocab.from_names(names)
    counts = {"train": count_bigrams(names, vocab)}
    cfg = TrainConfig(seed=2147483647, **kw)
    model = fit_neural(cfg, counts, device=torch.device("cpu")).model
    return model, counts["train"].float()


def test_optimizers_reduce_the_loss(names):
    start = NeuralBigram(27, seed=2147483647).loss_from_counts(
        count_bigrams(names, Vocab.from_names(names)).float(), 0.01
    )[0]
    for kw in (
        dict(optimizer="sgd", steps=20),
        dict(optimizer="adam", steps=20),
        dict(optimizer="lbfgs", steps=20),
    ):
        model, N = _fit(names, **kw)
        end = model.loss_from_counts(N, 0.01)[0]
        assert end < start - 0.5, kw


def _optimum(names) -> float:
    """The optimum of the convex objective (reg 0.01): a long, tightly converged float64 L-BFGS run."""
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab).double()
    W = torch.zeros(27, 27, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [W], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = -(N * torch.log_softmax(W, 1)).sum() / N.sum() + 0.01 * (W**2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return closure().item()


def test_lbfgs_reaches_the_regularized_optimum(names):
    optimum = _optimum(names)
    model, Nf = _fit(names, optimizer="lbfgs", steps=100)
    assert model.loss_from_counts(Nf, 0.01)[0].item() - optimum < 1e-4
    # with a tolerance it stops by itself, well before a generous cap, and as close
    vocab = Vocab.from_names(names)
    cfg = TrainConfig(seed=2147483647, optimizer="lbfgs", steps=1000, tol=1e-6)
    fit = fit_neural(cfg, {"train": count_bigrams(names, vocab)}, device=torch.device("cpu"))
    assert fit.converged and 20 < fit.step < 200
    assert fit.model.loss_from_counts(Nf, 0.01)[0].item() - optimum < 1e-4


def test_newton_reaches_the_regularized_optimum_in_few_steps(names):
    """Newton's method row by row: the float64 optimum (a long L-BFGS run, as above) within
    1e-5 in a dozen steps on names.txt, with the tolerance stopping it."""
    optimum = _optimum(names)
    vocab = Vocab.from_names(names)
    N = count_bigrams(names, vocab).double()
    cfg = TrainConfig(seed=2147483647, optimizer="newton", steps=100, tol=1e-7)
    fit = fit_neural(cfg, {"train": count_bigrams(names, vocab)}, device=torch.device("cpu"))
    assert fit.converged and fit.step <= 20
    assert fit.model.loss_from_counts(N.float(), 0.01)[0].item() - optimum < 1e-5
    # the default config (Newton, tol 1e-6) stops by itself within 1e-4 of the optimum
    fit = fit_neural(TrainConfig(), {"train": count_bigrams(names, vocab)}, device=torch.device("cpu"))
    assert fit.converged and fit.step <= 20
    assert fit.model.loss_from_counts(N.float(), 0.01)[0].item() - optimum < 1e-4


def test_newton_on_a_large_sparse_vocabulary_with_empty_rows():
    """Rows seen once, rows never seen (only the L2 term pulls them: to 0 in one step), a few
    heavy rows: Newton gets the gradient to ~0 where plain gradient steps barely move."""
    g = torch.Generator().manual_seed(1)
    V = 400
    N = torch.zeros(V, V, dtype=torch.long)
    rows = (torch.rand(20000, generator=g) ** 3 * (V - 50)).long()  # the last 50 rows: never seen
    cols = torch.randint(0, V, (20000,), generator=g)
    N.index_put_((rows, cols), torch.ones(20000, dtype=torch.long), accumulate=True)
    cfg = TrainConfig(seed=3, optimizer="newton", steps=60, tol=1e-9, reg=0.01)
    fit = fit_neural(cfg, {"train": N}, device=torch.device("cpu"))
    W = fit.model.W.detach().double()
    Nd = N.double()
    grad = (torch.softmax(W, 1) * Nd.sum(1, keepdim=True) - Nd) / Nd.sum() + 2 * 0.01 * W / V**2
    assert grad.abs().max() < 1e-6
    assert W[-50:].abs().max() < 1e-4  # unseen rows: the L2 term alone, optimum 0


def test_newton_step_is_the_dense_hessian_solve(monkeypatch):
    """One step of the tensor version from a point where the full step is accepted equals
    W − H⁻¹g with each row's Hessian built densely and solved by numpy (no Sherman–Morrison)."""
    import numpy as np

    from bigram.optim import newton

    monkeypatch.setattr(newton, "MAX_MOVE", math.inf)
    g = torch.Generator().manual_seed(5)
    V, reg = 12, 0.05
    N = torch.randint(0, 6, (V, V), generator=g) * (torch.rand(V, V, generator=g) < 0.5)
    N[3] = 0  # a row never seen
    W = torch.log((N + 0.5) / (N + 0.5).sum(1, keepdim=True)).float()  # near the optimum
    W0, total = W.double().numpy().copy(), float(N.sum())
    newton.step_torch(W, N.float(), total, reg, 1.0)
    for a in range(V):
        w, n = W0[a], N[a].double().numpy()
        p = np.exp(w - w.max())
        p /= p.sum()
        alpha, beta = n.sum() / total, 2 * reg / V**2
        grad = (p * n.sum() - n) / total + beta * w
        H = alpha * (np.diag(p) - np.outer(p, p)) + beta * np.eye(V)
        want = w - np.linalg.solve(H, grad)
        assert np.abs(W[a].double().numpy() - want).max() < 1e-5, a


def test_newton_compiled_step_equals_the_tensor_step():
    """The CPU kernel and the tensor version (CUDA's) take the same steps, float32 rounding
    aside, on a sparse vocabulary with empty rows, from W's random start."""
    from bigram.optim import newton

    g = torch.Generator().manual_seed(2)
    V = 300
    N = ((torch.rand(V, V, generator=g) < 0.05) * torch.randint(0, 50, (V, V), generator=g)).float()
    N[-20:] = 0
    W1 = torch.randn(V, V, generator=g)
    W2 = W1.clone()
    for _ in range(6):
        a = newton.RowNewton(W1, N, 0.01, 1.0).step()
        b = newton.step_torch(W2, N, float(N.sum()), 0.01, 1.0)
        assert a == pytest.approx(b, rel=1e-9)
        assert (W1 - W2).abs().max() < 1e-4


def test_tol_zero_runs_every_step_and_sgd_at_lr_50_does_not_converge_in_100(names):
    vocab = Vocab.from_names(names)
    for tol, want in ((0.0, 100), (1e-6, 100)):
        cfg = TrainConfig(seed=2147483647, optimizer="sgd", steps=100, tol=tol)
        fit = fit_neural(cfg, {"train": count_bigrams(names, vocab)}, device=torch.device("cpu"))
        assert fit.step == want and not fit.converged


def test_minibatch_loss_equals_the_one_hot_forward_without_building_it(names, monkeypatch):
    """A minibatch's logits are rows of W: the loss and gradient equal the literal one-hot forward's,
    and training never makes a batch × C one-hot matrix (at order 5 that was 6.8 MB a batch row)."""
    xs, ys = plain_dataset(names[:300])
    a, b = NeuralBigram(27, seed=1), NeuralBigram(27, seed=1)
    loss_a = a.loss(xs, ys, reg=0.01)[0]
    loss_a.backward()
    loss_b = F.cross_entropy(F.one_hot(xs, 27).float() @ b.W, ys) + 0.01 * (b.W**2).mean()
    loss_b.backward()
    assert abs(loss_a.item() - loss_b.item()) <= 1e-6 and rel(a.W.grad, b.W.grad) <= 1e-5
    calls = []
    original = F.one_hot
    monkeypatch.setattr(F, "one_hot", lambda *args, **kw: calls.append(args) or original(*args, **kw))
    model, N = _fit(names, optimizer="sgd", lr=10.0, steps=30, batch_size=512)
    assert not calls
    assert model.loss_from_counts(N, 0.01)[0] < 3.3


def test_plain_sgd_is_torch_sgd_bit_for_bit(names):
    """fit_neural's SGD is the lecture's W.data += -lr * W.grad; torch.optim.SGD gives the same W."""
    from bigram.fit import PlainSGD

    N = count_bigrams(names, Vocab.from_names(names)).float()
    a, b = NeuralBigram(27, seed=2147483647), NeuralBigram(27, seed=2147483647)
    ours, theirs = PlainSGD(a.parameters(), lr=50.0), torch.optim.SGD(b.parameters(), lr=50.0)
    for _ in range(5):
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            model.loss_from_counts(N, 0.01)[0].backward()
            opt.step(lambda: None)
    assert torch.equal(a.W, b.W)


def test_count_log_probs_at_equals_the_table_everywhere():
    from bigram.table import count_log_probs, count_log_probs_at

    N = torch.tensor([[0, 5, 1], [0, 0, 0], [2, 0, 7]])  # row 1 empty
    i, j = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
    for k in (0.0, 0.3, 1.0):
        for counts in (N, N.to_sparse()):
            got = count_log_probs_at(counts, k)(i.flatten(), j.flatten()).view(3, 3)
            assert torch.allclose(got, count_log_probs(N, k), rtol=0, atol=1e-15)


def test_newton_step_is_the_same_compiled_afresh_or_loaded_from_the_cache(tmp_path):
    """The first run in an environment compiles the Newton kernel, later ones load it from numba's
    cache: both must round alike, or a run's W would depend on whether it was the first."""
    import os
    import subprocess
    import sys

    code = (
        "import torch\nfrom bigram.optim.newton import RowNewton\n"
        "g = torch.Generator().manual_seed(0)\n"
        "N = torch.poisson(torch.rand(300, 300, generator=g) ** 8 * 20, generator=g)\n"
        "W = torch.randn(300, 300, generator=torch.Generator().manual_seed(1))\n"
        "opt = RowNewton(W, N, 0.01, 1.0)\n"
        "for _ in range(6):\n    opt.step()\n"
        "print(W.double().sum().item().hex(), W.abs().double().sum().item().hex())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True) for _ in "ab"
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert "compiling" in runs[0].stderr and "compiling" not in runs[1].stderr  # afresh, then cached
    assert runs[0].stdout == runs[1].stdout


def test_lbfgs_history_is_bounded_by_the_table():
    from bigram.fit import LBFGS_HISTORY_BYTES, RestartingLBFGS

    for entries, want in ((27 * 27, 20), (27**4, 20), (1 << 23, 4)):  # 2^28 / (8 · 2^23) = 4
        W = torch.nn.Parameter(torch.zeros(entries))
        history = RestartingLBFGS([W], 1.0, entries).param_groups[0]["history_size"]
        assert history == want and (history * 2 * 4 * entries <= LBFGS_HISTORY_BYTES or want == 20)
