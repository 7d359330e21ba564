"""Checkpoint files: atomic writes, and loads that never execute code from the file."""

from __future__ import annotations

import warnings
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
        with warnings.catch_warnings():  # a raw pickle makes torch warn (two lines) before it refuses it
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, disallowed global: all the same to a user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if first.startswith("Weights only load failed"):  # torch's advice (weights_only=False) is unsafe
            first = "it holds Python objects beyond tensors and plain data, which bigram never loads"
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


SPARSE_PARTS = ("keys", "ptr", "cols", "values", "shared")  # neural.pt's sparse form


def check_neural(ckpt: dict, shape: tuple[int, int], where: str) -> dict:
    """A neural checkpoint's weights, checked: {"W": the C×V tensor} (check_weights) or its
    sparse form (check_sparse_weights), whichever the file holds."""
    if "W" in ckpt or not any(k in ckpt for k in SPARSE_PARTS):
        return {"W": check_weights(ckpt.get("W"), shape, where)}
    return check_sparse_weights(ckpt, shape, where)


def check_sparse_weights(ckpt: dict, shape: tuple[int, int], where: str) -> dict:
    """The sparse neural model read from a file (bigram.models.SparseNeural.state): sorted context
    keys below C, row offsets, each row's tokens below V sorted and at least one, finite logits;
    checked before any of it indexes anything."""
    C, V = shape

    def bad(what: str) -> BigramError:
        return BigramError(f"{where} holds sparse weights whose {what}: it is damaged; retrain")

    parts = [ckpt.get(k) for k in SPARSE_PARTS]
    if not all(isinstance(x, torch.Tensor) and x.dim() == 1 and x.layout == torch.strided for x in parts):
        raise bad("parts are not the five 1-D tensors keys, ptr, cols, values, shared")
    keys, ptr, cols, values, shared = parts
    if not all(x.dtype == torch.int64 for x in (keys, ptr, cols)) or not all(
        x.is_floating_point() for x in (values, shared)
    ):
        raise bad("keys, ptr and cols are not int64 or values and shared not floats")
    R = len(keys)
    if len(ptr) != R + 1 or len(shared) != R or len(values) != len(cols) or int(ptr[0]) != 0:
        raise bad("parts have mismatched lengths")
    lens = ptr.diff()
    if int(ptr[-1]) != len(cols) or bool((lens < 1).any()) or bool((lens > V).any()):
        raise bad(f"rows list no token, or more than V = {V}, or offsets out of order")
    if R and (int(keys[0]) < 0 or int(keys[-1]) >= C or bool((keys.diff() <= 0).any())):
        raise bad(f"context keys are unsorted or outside the {C:,} contexts")
    if len(cols) and (int(cols.min()) < 0 or int(cols.max()) >= V):
        raise bad(f"tokens are outside the vocabulary of {V}")
    first = torch.zeros(len(cols), dtype=torch.bool)
    first[ptr[:-1]] = True  # a row's first entry: no order to keep with the one before
    if len(cols) > 1 and bool(((cols[1:] <= cols[:-1]) & ~first[1:]).any()):
        raise bad("rows list their tokens unsorted or twice")
    for x in (values, shared):
        if x.numel() and not bool(torch.isfinite(x).all()):
            raise BigramError(f"{where} holds non-finite weights (nan or inf): it is damaged; retrain")
    return dict(zip(SPARSE_PARTS, parts, strict=True))


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
