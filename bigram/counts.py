"""Bigram counts: the sufficient statistic of every bigram model."""

from __future__ import annotations

import torch

from bigram.vocab import Vocab


def count_ids(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """N[i, j] = how often id j follows id i in the sequence (one bincount, no Python loop)."""
    pairs = ids[:-1] * vocab_size + ids[1:]
    return torch.bincount(pairs, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size)


def count_bigrams(names: list[str], vocab: Vocab) -> torch.Tensor:
    """The V×V int64 count matrix of the names, each wrapped in boundaries: .emma. → .e em mm ma a."""
    return count_ids(vocab.encode_corpus(names), vocab.size)


def top_tokens(counts: torch.Tensor, k: int) -> torch.Tensor:
    """Ids of the k most frequent tokens (the boundary always among them), in vocabulary order:
    what a figure of a large vocabulary shows."""
    if counts.shape[0] <= k:
        return torch.arange(counts.shape[0])
    freq = counts.sum(1).double()
    freq[0] = float("inf")
    return freq.topk(k).indices.sort().values
