"""Drawing names from a V×V table of log-probabilities, all names at once as tensors."""

from __future__ import annotations

import torch

from bigram.errors import BigramError
from bigram.vocab import BOUNDARY_ID, Vocab

MAX_STEPS = 10_000  # a name never ends only if the table is broken; this bounds the loop


def reshape_log_probs(log_probs: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Each row of P raised to 1/T and renormalized: T < 1 sharpens, T > 1 flattens."""
    if not temperature > 0:
        raise BigramError(f"temperature must be > 0, got {temperature}")
    lp = log_probs.to(torch.float64)
    return torch.log_softmax(lp / temperature, dim=1) if temperature != 1.0 else lp


def draw_ids(log_probs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n independent walks from the boundary back to the boundary, as an (n, L) id matrix with
    0 after each name's end. One loop iteration per *position*, over all unfinished names at once.

    One searchsorted into the rows' cumulative sums laid end to end (row i shifted by i) draws
    every next token, so no (names × V) matrix is ever built, whatever the vocabulary size."""
    V = log_probs.shape[0]
    p = log_probs.to(torch.float64).exp().cpu()
    cdf = p.cumsum(1)
    cdf = cdf / cdf[:, -1:]  # each row ends at exactly 1.0 despite rounding
    flat = (cdf + torch.arange(V, dtype=torch.float64)[:, None]).flatten()
    cur = torch.full((n,), BOUNDARY_ID, dtype=torch.long)
    alive = torch.arange(n)
    columns: list[torch.Tensor] = []
    for _ in range(MAX_STEPS):
        u = torch.rand(len(alive), generator=generator, dtype=torch.float64).clamp_(max=1 - 1e-12)
        nxt = torch.searchsorted(flat, cur + u, right=True) - cur * V
        col = torch.zeros(n, dtype=torch.long)
        col[alive] = nxt
        columns.append(col)
        going = nxt != BOUNDARY_ID
        alive, cur = alive[going], nxt[going]
        if len(alive) == 0:
            break
    else:
        raise BigramError(f"sampling did not end within {MAX_STEPS} characters: the model never ends names")
    return torch.stack(columns, 1)


def decode_ids(ids: torch.Tensor, vocab: Vocab) -> list[str]:
    """Rows of ids (0 after each name) to strings, with one tensor gather and one decode."""
    n, L = ids.shape
    ids = torch.cat([ids, torch.zeros(n, 1, dtype=torch.long)], 1)
    lengths = (ids != BOUNDARY_ID).sum(1)
    keep = torch.arange(L + 1)[None, :] <= lengths[:, None]  # each name and the boundary after it
    table = torch.tensor([ord("\n")] + [ord(c) for c in vocab.chars], dtype=torch.int32)
    cps = table[ids[keep]]
    return cps.numpy().tobytes().decode("utf-32-le").split("\n")[:-1]


def sample(
    log_probs: torch.Tensor,
    vocab: Vocab,
    n: int,
    *,
    seed: int | None = None,
    temperature: float = 1.0,
) -> list[str]:
    """n names drawn from the table; the same seed gives the same names."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return decode_ids(draw_ids(reshape_log_probs(log_probs, temperature), n, g), vocab)
