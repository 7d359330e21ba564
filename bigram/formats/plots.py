"""The lecture's figure: the bigram matrix as a heatmap, each cell labelled with its bigram and
its count (or probability). A large vocabulary shows its most frequent characters; a model of
order N > 2 shows its most frequent contexts as rows (each cell labelled context + next).

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

from bigram.counts import context_ids, dense, figure_ids, gram_name, order_of, row_totals
from bigram.safety import atomic, layout, rundir
from bigram.vocab import Vocab

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
    title: str

    def array(self) -> np.ndarray:
        """H×W×3 uint8, what TensorBoard's add_image takes (dataformats="HWC")."""
        return np.asarray(self.image)


def _label(vocab: Vocab, i: int) -> str:
    t = vocab.token(i)
    return "␣" if t.isspace() else t if t.isprintable() else f"U+{ord(t):04X}"


# matplotlib's "Blues" (ColorBrewer's nine blues), drawn as matplotlib draws it, without importing
# matplotlib (0.3 s of a plot command's start-up): a 256-entry table, linear between the anchors
BLUES = (
    (0.9686274509803922, 0.984313725490196, 1.0),
    (0.8705882352941177, 0.9215686274509803, 0.9686274509803922),
    (0.7764705882352941, 0.8588235294117647, 0.9372549019607843),
    (0.6196078431372549, 0.792156862745098, 0.8823529411764706),
    (0.4196078431372549, 0.6823529411764706, 0.8392156862745098),
    (0.25882352941176473, 0.5725490196078431, 0.7764705882352941),
    (0.12941176470588237, 0.44313725490196076, 0.7098039215686275),
    (0.03137254901960784, 0.3176470588235294, 0.611764705882353),
    (0.03137254901960784, 0.18823529411764706, 0.4196078431372549),
)


def blues(x: np.ndarray, n: int = 256) -> np.ndarray:
    """RGB in [0, 1] for values in [0, 1], equal to matplotlib's colormaps["Blues"](x)[..., :3]
    (its lookup table of n entries, built and indexed the same way; a test compares them).

    >>> blues(np.array([0.0, 1.0])).round(3).tolist()
    [[0.969, 0.984, 1.0], [0.031, 0.188, 0.42]]
    """
    anchors = np.array(BLUES)
    at = np.linspace(0, 1, len(anchors)) * (n - 1)
    want = (n - 1) * np.linspace(0, 1, n)
    i = np.searchsorted(at, want)[1:-1]
    frac = ((want[1:-1] - at[i - 1]) / (at[i] - at[i - 1]))[:, None]
    lut = np.clip(
        np.concatenate([anchors[:1], frac * (anchors[i] - anchors[i - 1]) + anchors[i - 1], anchors[-1:]]),
        0,
        1,
    )
    scaled = np.asarray(x, dtype=np.float64) * n
    scaled[scaled == n] = n - 1
    return lut.take(scaled.astype(int), axis=0, mode="clip")


def _font(px: int):
    """DejaVu Sans from matplotlib's own files, found without importing matplotlib."""
    import importlib.util

    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    assert spec is not None and spec.submodule_search_locations
    data = Path(next(iter(spec.submodule_search_locations))) / "mpl-data"
    return ImageFont.truetype(str(data / "fonts" / "ttf" / "DejaVuSans.ttf"), px)


def heatmap(values: torch.Tensor, rows: list[str], cols: list[str], what: str, title: str) -> Heatmap:
    """`values` (rows × cols) as coloured cells, each labelled with its row and column names (the
    bigram, or context + next) and its value: white ink on a dark cell, near-black on a light one
    (by the relative luminance of the cell's colour), so every label reads. Cells widen for
    contexts of more than three characters.

    >>> h = heatmap(torch.tensor([[0, 9], [3, 1]]), [".", "a"], [".", "a"], "counts", "N")
    >>> h.labels, h.inks
    (['..\\n0', '.a\\n9', 'a.\\n3', 'aa\\n1'], ['#1a1a1a', 'white', '#1a1a1a', '#1a1a1a'])
    """
    from PIL import Image, ImageDraw

    sub = values.to(torch.float64).numpy()
    top = float(sub.max()) or 1.0
    rgb = blues(sub / top)
    dark = rgb @ np.array([0.2126, 0.7152, 0.0722]) < 0.5
    width = max(CELL_PX, 9 * max(len(r) + len(c) for r in rows for c in cols) + 10)
    # colours to bytes per cell first: the image-sized array is uint8, not float64
    cells = np.repeat(np.repeat((rgb * 255).round().astype(np.uint8), CELL_PX, 0), width, 1)
    img = Image.new(
        "RGB", (len(cols) * width + 2 * MARGIN_PX, len(rows) * CELL_PX + TITLE_PX + MARGIN_PX), "white"
    )
    img.paste(Image.fromarray(cells), (MARGIN_PX, TITLE_PX))
    draw = ImageDraw.Draw(img)
    font = _font(FONT_PX)
    labels, inks = [], []
    for r, row in enumerate(rows):
        for c, col in enumerate(cols):
            v = sub[r, c]
            label = f"{int(v)}" if what == "counts" else f"{v:.3f}".lstrip("0")
            ink = "white" if dark[r, c] else "#1a1a1a"
            x, y = MARGIN_PX + c * width + width / 2, TITLE_PX + r * CELL_PX + CELL_PX / 2
            draw.text((x, y - FONT_PX * 0.6), row + col, fill=ink, font=font, anchor="mm")
            draw.text((x, y + FONT_PX * 0.6), label, fill=ink, font=font, anchor="mm")
            labels.append(f"{row}{col}\n{label}")
            inks.append(ink)
    draw.text((img.width / 2, TITLE_PX / 2), title, fill="black", font=_font(15), anchor="mm")
    return Heatmap(img, labels, inks, title)


def figure_for(
    vocab: Vocab, counts: torch.Tensor, log_probs: torch.Tensor | None, what: str, model: str, top: int
) -> Heatmap:
    """The figure of a run's training counts, or of a model's probabilities."""
    C, V = counts.shape
    rows, cols = figure_ids(counts, top)
    if what == "counts":  # only the shown block is made dense
        values = dense(counts.index_select(0, rows).index_select(1, cols))
        title = f"{gram_name(order_of((C, V)))} counts N (training split)"
    else:  # the shown rows only (log_probs.rows: a table's rows as dense tensors)
        values = log_probs[rows][:, cols].exp()
        title = f"P(next | {'prev' if C == V else 'context'}), {model} model"
    if C == V and len(cols) < V:
        title += f": the {len(cols)} most frequent of {V:,} tokens"
    elif C != V:
        seen = len(row_totals(counts)[0])
        title += f": the {len(rows)} most frequent of {seen:,} contexts seen × {len(cols)} of {V:,} tokens"
    names = [_label(vocab, i) for i in range(V)]
    row_names = ["".join(names[d] for d in context_ids(r, C, V)) for r in rows.tolist()]
    return heatmap(values, row_names, [names[c] for c in cols.tolist()], what, title)


def figure_of_run(run, what: str, model: str | None, top: int) -> Heatmap:
    """`bigram plot`'s figure of a run (a bigram.runs.Run): its training counts, or a model's P."""
    kind = run.pick_model(model)
    lp = run.log_probs(kind) if what == "probs" else None
    by_mass = kind == "arpa" and lp is not None  # an imported run has no counts: rank by probability
    counts = listed_mass(lp) if by_mass else run.counts("train")
    return figure_for(run.vocab, counts, lp, what, kind, top)


def listed_mass(table) -> torch.Tensor:
    """Pseudo-counts for a model without counts (an imported one): P × 10⁶ of each entry its
    full-length contexts list, as a sparse C×V matrix, so that the figure shows the contexts and
    tokens that hold the most probability among those the model has seen."""
    top = table.top()
    rows = torch.repeat_interleave(top.keys, top.ptr.diff())
    mass = (top.logp.exp() * 1e6).round().long()
    # the table's own keys and tokens, in range by construction: no invariant check (torch warns otherwise)
    idx = torch.stack([rows, top.cols])
    return torch.sparse_coo_tensor(idx, mass, table.shape, check_invariants=False).coalesce()


def save_png(fig: Heatmap, path: Path) -> None:
    # zlib level 3: 6 % larger than the default 6, in 60 % of the time (a plot command's biggest step)
    atomic.write_with(path, lambda tmp: fig.image.save(tmp, format="PNG", compress_level=3))


def plot_to(run, what: str, model: str | None, top: int, out: Path | None = None) -> Path:
    """`bigram plot`: without --out (or with --out naming it), the figure written into the run as
    layout.plot_file, recorded as bigram's (rundir.claim: a file of that name bigram did not write
    is never replaced); else to --out, never one of the run's own files (rundir.target)."""
    name = layout.plot_file(what, run.pick_model(model))
    path = rundir.target(out, run.path, name, "pass --out FILE.png to write the figure elsewhere")
    save_png(figure_of_run(run, what, model, top), path)
    return path
