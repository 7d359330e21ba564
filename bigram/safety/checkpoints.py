"""Checkpoint files: atomic writes, and loads that never execute code from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bigram.errors import BigramError
from bigram.safety import atomic


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


def check_counts(t: Any, shape: tuple[int, int], where: str) -> torch.Tensor:
    """A count matrix read from a file: a C×V integer tensor of non-negative counts (C contexts),
    checked before anything that size is allocated (a crafted sparse tensor may declare any shape)."""
    C, V = shape
    if not isinstance(t, torch.Tensor) or t.shape != shape or t.dtype not in (torch.int64, torch.int32):
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise BigramError(
            f"{where} holds counts of shape {shape}, not {C}×{V} integers for the run's vocabulary: "
            "it belongs to another run or is damaged; retrain"
        )
    if t.layout not in (torch.strided, torch.sparse_coo):
        raise BigramError(f"{where} holds counts in a {t.layout} layout bigram never writes: it is damaged")
    values = t._values() if t.is_sparse else t
    if values.numel() and int(values.min()) < 0:
        raise BigramError(f"{where} holds negative counts: it is damaged; retrain")
    if t.is_sparse:  # a crafted index past the table would be read out of bounds later
        idx = t._indices()
        ok = idx.dim() == 2 and idx.shape == (2, values.numel()) and not idx.is_floating_point()
        if ok and idx.numel():
            lo, hi0, hi1 = int(idx.min()), int(idx[0].max()), int(idx[1].max())
            ok = lo >= 0 and hi0 < C and hi1 < V
        if not ok:
            raise BigramError(f"{where} holds count indices outside its {C}×{V} table: damaged; retrain")
    return t.long()


def check_weights(W: Any, shape: tuple[int, int], where: str) -> torch.Tensor:
    """A neural model's W read from a file: a finite C×V floating-point tensor."""
    C, V = shape
    if not isinstance(W, torch.Tensor) or W.is_sparse or W.shape != shape or not W.is_floating_point():
        shape = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise BigramError(
            f"{where} holds weights W of shape {shape}, not {C}×{V} floats for the run's vocabulary: "
            "it belongs to another run or is damaged; retrain"
        )
    lo, hi = W.aminmax()  # nan and ±inf reach the min or max: one pass, ~20× faster than isfinite
    if not (bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))):
        raise BigramError(f"{where} holds non-finite weights (nan or inf): it is damaged; retrain")
    return W


def check_table(t: Any, shape: tuple[int, int], where: str) -> torch.Tensor:
    """A stored table of log P: C×V float64 rows that each sum to one (−inf: probability 0)."""
    C, V = shape
    if not isinstance(t, torch.Tensor) or t.is_sparse or t.shape != shape or t.dtype != torch.float64:
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise BigramError(f"{where} holds a table of shape {got}, not {C}×{V} float64: it is damaged")
    sums = torch.logsumexp(t, dim=1)
    if bool(t.isnan().any()) or not bool(torch.allclose(sums, torch.zeros_like(sums), atol=1e-9)):
        raise BigramError(
            f"{where} holds a table whose rows are not probability distributions: it is damaged"
        )
    return t


def check_number(x: Any, lo: float, hi: float, what: str, where: str) -> float:
    """A number read from a file, finite and within [lo, hi]."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not lo <= x <= hi:
        raise BigramError(f"{where}: {what} = {x!r} is not a number in [{lo:g}, {hi:g}]; it is damaged")
    return float(x)
