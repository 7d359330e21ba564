"""The lecture's figure: the bigram matrix as a heatmap, each cell labelled with its bigram and
its count (or probability). A large vocabulary shows its most frequent characters."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from bigram import atomic
from bigram.counts import top_tokens
from bigram.vocab import Vocab

WHAT = ("counts", "probs")
DEFAULT_TOP = 40


def _label(vocab: Vocab, i: int) -> str:
    t = vocab.token(i)
    return "␣" if t.isspace() else t if t.isprintable() else f"U+{ord(t):04X}"


def heatmap(values: torch.Tensor, vocab: Vocab, ids: torch.Tensor, what: str, title: str):
    """A matplotlib Figure (no pyplot state) of `values`, the block of rows and columns `ids`,
    every cell labelled."""
    from matplotlib.figure import Figure

    n = len(ids)
    sub = values.to(torch.float64)
    size = max(8.0, 0.55 * n)
    fig = Figure(figsize=(size, size), dpi=60)
    ax = fig.add_subplot()
    ax.imshow(sub.numpy(), cmap="Blues")
    labels = [_label(vocab, int(i)) for i in ids]
    for r in range(n):
        for c in range(n):
            v = float(sub[r, c])
            shown = f"{int(v)}" if what == "counts" else f"{v:.3f}".lstrip("0")
            ax.text(c, r, f"{labels[r]}{labels[c]}\n{shown}", ha="center", va="center", color="gray",
                    fontsize=8, linespacing=1.3)  # fmt: skip
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    return fig


def figure_for(
    vocab: Vocab, counts: torch.Tensor, log_probs: torch.Tensor | None, what: str, model: str, top: int
):
    """The figure of a run's training counts, or of a model's probabilities."""
    ids = top_tokens(counts, top)
    if what == "counts":  # only the shown block is made dense
        block = counts.index_select(0, ids).index_select(1, ids)
        values, title = block.to_dense() if block.is_sparse else block, "bigram counts N (training split)"
    else:
        values, title = log_probs[ids][:, ids].exp(), f"P(next | prev), {model} model"
    if len(ids) < vocab.size:
        title += f": the {len(ids)} most frequent of {vocab.size:,} tokens"
    with warnings.catch_warnings():  # a font without CJK or Hangul glyphs draws boxes, quietly
        warnings.simplefilter("ignore", UserWarning)
        return heatmap(values, vocab, ids, what, title)


def save_png(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        atomic.write_with(path, lambda tmp: FigureCanvasAgg(fig).print_png(str(tmp)))
