"""The lecture's figure: the bigram matrix as a heatmap, each cell labelled with its bigram and
its count (or probability). A large vocabulary shows its most frequent characters.

The picture is drawn directly with Pillow (which matplotlib already depends on): cell colours from
matplotlib's "Blues" colour map, labels in matplotlib's DejaVu Sans (one Text artist per cell
would cost seconds for the lecture's 729 cells). The same image goes to `bigram plot` and to
TensorBoard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bigram import atomic
from bigram.counts import dense, top_tokens
from bigram.vocab import Vocab

WHAT = ("counts", "probs")
CELL_PX = 46  # each cell's side: two lines of 13 px labels fit with room to spare
FONT_PX = 13  # label size in pixels at the saved size (capitals ~9.5 px tall)
MARGIN_PX = 8
TITLE_PX = 30


@dataclass
class Heatmap:
    """The figure: an RGB image, and each cell's label and ink, row by row (for tests and reuse)."""

    image: object  # PIL.Image.Image
    labels: list[str]
    inks: list[str]

    def array(self) -> np.ndarray:
        """H×W×3 uint8, what TensorBoard's add_image takes (dataformats="HWC")."""
        return np.asarray(self.image)


def _label(vocab: Vocab, i: int) -> str:
    t = vocab.token(i)
    return "␣" if t.isspace() else t if t.isprintable() else f"U+{ord(t):04X}"


def _font(px: int):
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), px)


def heatmap(values: torch.Tensor, vocab: Vocab, ids: torch.Tensor, what: str, title: str) -> Heatmap:
    """`values` (the block of rows and columns `ids`) as coloured cells, each labelled with its
    bigram and value: white ink on a dark cell, near-black on a light one (by the relative
    luminance of the cell's colour), so every label reads.

    >>> h = heatmap(torch.tensor([[0, 9], [3, 1]]), Vocab(("a",)), torch.tensor([0, 1]), "counts", "N")
    >>> h.labels, h.inks
    (['..\\n0', '.a\\n9', 'a.\\n3', 'aa\\n1'], ['#1a1a1a', 'white', '#1a1a1a', '#1a1a1a'])
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    n = len(ids)
    sub = values.to(torch.float64).numpy()
    top = float(sub.max()) or 1.0
    rgb = colormaps["Blues"](sub / top)[..., :3]
    dark = rgb @ np.array([0.2126, 0.7152, 0.0722]) < 0.5
    cells = (np.repeat(np.repeat(rgb, CELL_PX, 0), CELL_PX, 1) * 255).round().astype(np.uint8)
    side = n * CELL_PX
    img = Image.new("RGB", (side + 2 * MARGIN_PX, side + TITLE_PX + MARGIN_PX), "white")
    img.paste(Image.fromarray(cells), (MARGIN_PX, TITLE_PX))
    draw = ImageDraw.Draw(img)
    font = _font(FONT_PX)
    names = [_label(vocab, int(i)) for i in ids]
    labels, inks = [], []
    for r in range(n):
        for c in range(n):
            v = sub[r, c]
            shown = f"{int(v)}" if what == "counts" else f"{v:.3f}".lstrip("0")
            ink = "white" if dark[r, c] else "#1a1a1a"
            x, y = MARGIN_PX + c * CELL_PX + CELL_PX / 2, TITLE_PX + r * CELL_PX + CELL_PX / 2
            draw.text((x, y - FONT_PX * 0.6), names[r] + names[c], fill=ink, font=font, anchor="mm")
            draw.text((x, y + FONT_PX * 0.6), shown, fill=ink, font=font, anchor="mm")
            labels.append(f"{names[r]}{names[c]}\n{shown}")
            inks.append(ink)
    draw.text((img.width / 2, TITLE_PX / 2), title, fill="black", font=_font(15), anchor="mm")
    return Heatmap(img, labels, inks)


def figure_for(
    vocab: Vocab, counts: torch.Tensor, log_probs: torch.Tensor | None, what: str, model: str, top: int
) -> Heatmap:
    """The figure of a run's training counts, or of a model's probabilities."""
    ids = top_tokens(counts, top)
    if what == "counts":  # only the shown block is made dense
        block = counts.index_select(0, ids).index_select(1, ids)
        values, title = dense(block), "bigram counts N (training split)"
    else:
        values, title = log_probs[ids][:, ids].exp(), f"P(next | prev), {model} model"
    if len(ids) < vocab.size:
        title += f": the {len(ids)} most frequent of {vocab.size:,} tokens"
    return heatmap(values, vocab, ids, what, title)


def save_png(fig: Heatmap, path: Path) -> None:
    atomic.write_with(path, lambda tmp: fig.image.save(tmp, format="PNG"))
