"""Checkpoint files: atomic writes, and loads that never execute code from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bigram import atomic
from bigram.errors import BigramError


def save(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written file."""

    def write(tmp: Path) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch reports a full disk as "PytorchStreamWriter failed writing"
            raise OSError(str(e).splitlines()[0][:200]) from None

    atomic.write_with(path, write)


def load(path: Path, kind: str) -> dict[str, Any]:
    """Load a checkpoint of the given kind with weights_only=True (tensors and plain data only:
    a crafted pickle that would run code is refused). Any problem is a one-line BigramError."""
    if not path.is_file():
        raise BigramError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, disallowed global: all the same to a user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BigramError(
            f"checkpoint {path} is corrupted or not a bigram checkpoint ({first[:200]}): "
            "retrain, or restore the file"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        raise BigramError(f"checkpoint {path} is not a bigram {kind} checkpoint")
    return ckpt


def to_sparse(counts: torch.Tensor) -> torch.Tensor:
    """Count matrices are stored sparse: a big vocabulary's V×V matrix is mostly zeros."""
    return counts.to_sparse().coalesce()


def from_sparse(t: torch.Tensor) -> torch.Tensor:
    return t.to_dense() if t.is_sparse else t
