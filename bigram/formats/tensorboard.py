"""What a run shows in TensorBoard: the neural model's curves beside the count model's NLL, the
smoothing curve, and end-of-run images, samples, figures and hparams, each in its model's
directory (RUN/neural/, RUN/count/), which TensorBoard shows as a run of its own colour."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import torch

from bigram import fit, text
from bigram.config import TrainConfig
from bigram.counts import figure_ids
from bigram.errors import BigramError
from bigram.metrics import nll as nll_of
from bigram.models import NeuralBigram
from bigram.safety import layout
from bigram.safety.interrupt import held_ctrl_c
from bigram.safety.rundir import mark, own, read_marker
from bigram.sampling import sample_plain
from bigram.smoothing import choose_smoothing
from bigram.table import count_table
from bigram.vocab import Vocab

N_SAMPLES = 10  # names written to TensorBoard per model
SAMPLE_MAX_LEN = 40  # their length cap
IMAGE_TOKENS = 64  # a larger vocabulary shows its most frequent characters
FIGURE_TOKENS = 27  # the labelled figures: the lecture's size (each cell costs drawing time)


def open_writer(run: Path) -> Writers:
    """The run's TensorBoard writers (TensorBoard's import is heavy: only when training, and not
    interruptible midway)."""
    with held_ctrl_c():
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401 (imported here, used below)
    return Writers(run)


class Writers:
    """A run's TensorBoard writers, one per model, each in its own directory (RUN/count/,
    RUN/neural/): TensorBoard colours the lines of a chart by run and names each by its
    directory, so the neural model's curve and the count model's line on one chart are told
    apart by colour and by name. A model's writer is opened when something is first logged for it."""

    def __init__(self, run: Path) -> None:
        self.run, self._open = run, {}

    def __getitem__(self, model: str):
        if model not in self._open:
            self._open[model] = _model_writer(self.run, model)
        return self._open[model]

    def close(self) -> None:
        """Close every writer (each flushes its events), then raise the first error if any."""
        error = None
        for writer in self._open.values():
            try:
                writer.close()
            except OSError as e:
                error = error or e
        if error is not None:
            raise error


def _model_writer(run: Path, model: str):
    """A SummaryWriter into RUN/MODEL/, a directory recorded in the run's marker and marked as
    bigram's, with the event file recorded in its own marker (what --overwrite may replace): by
    the name the writer chose, or else as the one event file that appeared."""
    from torch.utils.tensorboard import SummaryWriter

    assert model in layout.EVENT_DIRS, model
    sub = run / model
    # checked before the name is recorded as bigram's: --overwrite deletes what the marker lists
    if sub.is_symlink() or (sub.exists() and not (sub.is_dir() and _tensorboard_dir(sub))):
        raise BigramError(
            f"{text.escaped(sub)} is already there and bigram did not make it: move it away and run again"
        )
    own(run, model)
    sub.mkdir(exist_ok=True)
    if read_marker(sub)[0] is None:
        mark(sub, "tensorboard")
    before = set(os.listdir(sub))
    writer = SummaryWriter(log_dir=str(sub))
    name = getattr(getattr(writer.file_writer, "event_writer", None), "_file_name", None)
    made = [os.path.basename(name)] if name else set(os.listdir(sub)) - before
    try:
        for n in made:
            if n.startswith("events.out.tfevents."):
                own(sub, n)
    except BaseException:
        writer.close()
        raise
    return writer


def _tensorboard_dir(sub: Path) -> bool:
    """Whether an existing RUN/MODEL/ is one bigram made for TensorBoard (a resumed run's)."""
    info, _ = read_marker(sub)
    return info is not None and info.get("kind") == "tensorboard"


class QuietWriterThread:
    """While active, an exception in TensorBoard's background writer thread (a full disk) is not
    printed as a thread traceback: the writer re-raises it in the main thread, which reports it
    as one line."""

    def __enter__(self) -> QuietWriterThread:
        self._old = threading.excepthook

        def hook(args) -> None:
            if args.thread is None or "Writer" not in type(args.thread).__name__:
                self._old(args)

        threading.excepthook = hook
        return self

    def __exit__(self, *exc) -> None:
        threading.excepthook = self._old


LAYOUT_CATEGORY = "1. training meets counting"  # sorts before the raw tags' groups; SGD or Newton alike


def chart_title(split: str) -> str:
    """A Custom Scalars chart's title: what its two lines are (their colours are the runs',
    TensorBoard's choice, named in the chart's tooltip and its list of matches)."""
    return f"{split} NLL: neural (curve) vs count (flat line)"


def curves_layout(splits: list[str]) -> dict:
    """The Custom Scalars tab's charts: per split, {split}/nll of every run, which is the neural
    model's NLL curve (run …/neural) and the count model's NLL, a flat line (run …/count), on the
    same axes: the lecture's central picture. A tag is a regular expression matched in every
    run, so TensorBoard opened on several runs overlays them all.

    >>> curves_layout(["train", "val"])["1. training meets counting"][chart_title("val")]
    ['Multiline', ['^val/nll$']]
    """
    return {LAYOUT_CATEGORY: {chart_title(s): ["Multiline", [f"^{s}/nll$"]] for s in splits}}


class Curves(fit.Curves):
    """The neural model's curves, in the run's neural/ directory: loss, NLL and L2 term of every
    step (train/…), and every eval_every steps its NLL on the held-out splits ({split}/nll); and
    at those steps, in count/, the count model's NLL on every split under the same tag: the line
    training heads for (by SGD or Newton's method alike), over exactly the steps the curve spans.
    Without writers, nothing."""

    def __init__(
        self, writer: Writers | None, splits: dict[str, torch.Tensor], smoothing: float | str, count_lp=None
    ) -> None:
        self.writer, self.splits, self.smoothing, self.count_lp = writer, splits, smoothing, count_lp

    def start(self) -> None:
        """The count model's NLL on every split and the chart layout, once training has started."""
        if self.writer is None:
            return
        count_lp, splits = self.count_lp, self.splits
        if count_lp is None:  # not given: the count model made here (the neural model trains alone)
            smoothing = self.smoothing
            if smoothing == "auto":
                smoothing = choose_smoothing(splits["train"], splits.get("val"))[0]
            count_lp = count_table(splits["train"], smoothing)  # its seen rows only, any order
        self.reference = {s: nll_of(count_lp, c) for s, c in splits.items()}
        self.writer["neural"].add_custom_scalars(curves_layout(list(splits)))

    def train(self, step: int, loss: float, nll: float, reg: float, with_nll: bool = True) -> None:
        if self.writer is not None:
            neural = self.writer["neural"]
            neural.add_scalar("train/loss", loss, step)
            if with_nll:
                neural.add_scalar("train/nll", nll, step)
            neural.add_scalar("train/reg", reg, step)

    @torch.no_grad()
    def evaluate(self, model: NeuralBigram, step: int, final: bool = False) -> None:
        """The held-out NLLs and the count model's line at this step. train/nll comes from every
        update (`train`); the final model's point ends that curve, so every curve's last point
        is the final NLL (what the HParams tab reads)."""
        if self.writer is None:
            return
        lp = model.log_probs()
        for split, c in self.splits.items():
            if split != "train" or final:
                self.writer["neural"].add_scalar(f"{split}/nll", nll_of(lp, c), step)
            self.writer["count"].add_scalar(f"{split}/nll", self.reference[split], step)


def log_smoothing_curve(
    writer: Writers, chosen: float, curve: list[tuple[float, float]], on: str = "val",
    kneser_ney: float | None = None,
) -> None:  # fmt: skip
    """The count model's val (or leave-one-out) NLL against add-k's k, as a figure in count/ (k
    on a log axis: TensorBoard's scalar charts take only whole steps on x), and what was chosen:
    the best k, or Kneser-Ney when a sweep weighed it too (`kneser_ney`: its val NLL) and it won."""
    what = "val NLL" if on == "val" else "leave-one-out NLL"
    tag = "smoothing/val_nll" if on == "val" else "smoothing/leave_one_out_nll"
    best = dict(curve)[chosen]
    won = kneser_ney is not None and kneser_ney < best
    add_png(writer["count"], tag, smoothing_figure(curve, chosen, what, kneser_ney if won else None), 0)
    said = f"k = {chosen:.6g} ({what} {best:.6f})"
    if won:
        said = f"Kneser-Ney ({what} {kneser_ney:.6f}), below the best add-k, {said}"
    writer["count"].add_text("smoothing/chosen", said)


def log_summary(
    writer: Writers,
    cfg: TrainConfig,
    vocab: Vocab,
    tables: dict,
    metrics: dict,
    counts_train,
    step: int,
    swept: tuple[str, ...] = (),
) -> None:
    """End-of-run entries, each in its model's directory: probability images, sampled names,
    labelled figures, hparams (the keys a sweep varies first, so that the HParams table shows them
    without scrolling)."""
    rows, cols = figure_ids(counts_train, IMAGE_TOKENS)  # the most frequent characters (and contexts)
    for model, lp in tables.items():  # a table's rows, those the image shows only
        p = lp[rows][:, cols].exp().float()
        w = writer[model]
        w.add_image(f"probs/{model}", (p / p.max()).unsqueeze(0), step, dataformats="CHW")
        names = sample_plain(lp, vocab, N_SAMPLES, seed=cfg.seed, max_len=SAMPLE_MAX_LEN)
        # four-space indent: a Markdown code block, so names show verbatim
        w.add_text(f"samples/{model}", "\n".join("    " + n for n in names), step)
    if cfg.figures:  # the lecture's labelled heatmaps (bigram plot draws the same)
        from bigram.formats.plots import figure_for

        model = "neural" if "neural" in tables else "count"
        fig = figure_for(vocab, counts_train, None, "counts", model, FIGURE_TOKENS)
        add_png(writer["count"], "figures/counts", fig.image, step)  # N: what the count model is
        fig = figure_for(vocab, counts_train, tables[model], "probs", model, FIGURE_TOKENS)
        add_png(writer[model], f"figures/probs_{model}", fig.image, step)
    if "neural" not in metrics:  # no curves were drawn: the count model's NLL as one point at
        # step 0 (it has no steps; HParams reads it), and no curves' layout
        for split, m in metrics["count"].items():
            writer["count"].add_scalar(f"{split}/nll", m["nll"], 0)
    # a string as it is safe to show (a data path's non-UTF-8 bytes as \xff: protobuf takes UTF-8 only)
    hp = {k: (v if isinstance(v, int | float | bool) else text.escaped(v)) for k, v in cfg.to_dict().items()}
    for model, per in metrics.items():
        if model in layout.EVENT_DIRS:
            first = {k: hp[k] for k in swept} | {"model": model}  # the row's model, not the run's models
            for summary in hparams_summaries(first | {k: v for k, v in hp.items() if k not in first}, per):
                writer[model]._get_file_writer().add_summary(summary)


# px: the figure of the k search, small and in large type (TensorBoard shrinks it to its ~350 px card)
SMOOTHING_FIGURE = (480, 330)
PLOT_BOX = (74, 58, 460, 266)  # its plot area (left, top, right, bottom), room for the labels


def smoothing_figure(
    curve: list[tuple[float, float]], chosen: float, what: str, kneser_ney: float | None = None
):
    """The k search as a PIL figure: `what` (the NLL k was chosen by) against k on a log axis
    from 10^-4 to 10^3, every k evaluated a blue dot, the best one red, named in the subtitle (as
    the best add-k, with Kneser-Ney's NLL, when Kneser-Ney was chosen over it: `kneser_ney`)."""
    from PIL import Image, ImageDraw

    from bigram.formats.plots import _font

    finite = [(k, y) for k, y in curve if math.isfinite(y)]
    ticks = nice_ticks(min(y for _, y in finite), max(y for _, y in finite))
    y0, y1 = ticks[0], ticks[-1]
    left, top, right, bottom = PLOT_BOX
    x0, x1 = min(-4.0, *(math.log10(k) for k, _ in finite)), max(3.0, *(math.log10(k) for k, _ in finite))

    def at(k: float, y: float) -> tuple[float, float]:
        fx = (math.log10(k) - x0) / (x1 - x0)
        return left + fx * (right - left), bottom - (y - y0) / ((y1 - y0) or 1) * (bottom - top)

    img = Image.new("RGB", SMOOTHING_FIGURE, "white")
    draw, font = ImageDraw.Draw(img), _font(15)
    for y in ticks:  # horizontal grid lines, labelled on the left
        py = at(1.0, y)[1]
        draw.line([(left, py), (right, py)], fill="#e0e0e0")
        draw.text((left - 6, py), f"{y:g}", fill="black", font=font, anchor="rm")
    for e in range(math.ceil(x0), math.floor(x1) + 1):  # a tick per power of ten
        px = at(10.0**e, y0)[0]
        draw.line([(px, bottom), (px, bottom + 4)], fill="black")
        draw.text((px, bottom + 7), f"{10.0**e:g}", fill="black", font=font, anchor="mt")
    best = dict(curve)[chosen]
    px = at(chosen, best)[0]
    draw.line([(px, top), (px, bottom)], fill="#d62728")  # the chosen k
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.line([at(k, y) for k, y in finite], fill="#1f77b4", width=2)
    for k, y in finite:
        px, py = at(k, y)
        r = 5 if k == chosen else 2
        draw.ellipse([px - r, py - r, px + r, py + r], fill="#d62728" if k == chosen else "#1f77b4")
    mid = (left + right) / 2
    draw.text((mid, 14), f"count model: {what} against add-k's k", fill="black", font=_font(17), anchor="mm")
    draw.text(
        (mid, 38),
        f"chosen (red): k = {chosen:.4g}, {what} {best:.6f}"
        if kneser_ney is None
        else f"best k (red) {chosen:.4g}: {best:.4f}; Kneser-Ney {kneser_ney:.4f}, chosen",
        fill="#d62728",
        font=font,
        anchor="mm",
    )
    draw.text((mid, bottom + 30), "k (log scale)", fill="black", font=font, anchor="mt")
    label = Image.new("RGB", (bottom - top, 20), "white")  # the y axis's name, turned upright
    ImageDraw.Draw(label).text((label.width / 2, 10), f"{what} (nats)", fill="black", font=font, anchor="mm")
    img.paste(label.rotate(90, expand=True), (2, top))
    return img


def nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round values spanning [lo, hi] for an axis: steps of 1, 2 or 5 times a power of ten.

    >>> nice_ticks(2.46, 3.31)
    [2.4, 2.6, 2.8, 3.0, 3.2, 3.4]
    """
    span = (hi - lo) or abs(hi) or 1.0
    step = 10 ** math.floor(math.log10(span / most))
    for m in (1, 2, 5, 10):
        if span / (m * step) <= most - 1:
            step *= m
            break
    first = math.floor(lo / step)
    n = math.ceil(hi / step) - first
    return [round((first + i) * step, 12) for i in range(n + 1)]


def add_png(writer, tag: str, image, step: int) -> None:
    """A PIL image as TensorBoard's image summary, encoded once as PNG (add_image would first make
    a float32 copy of the pixels, four times their size)."""
    import io

    from tensorboard.compat.proto.summary_pb2 import Summary

    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=3)  # the level save_png uses: much faster than 6
    picture = Summary.Image(
        height=image.height, width=image.width, colorspace=3, encoded_image_string=png.getvalue()
    )
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=picture)]), step)


def metric_tags(splits) -> dict[str, str]:
    """The HParams tab's metrics of one model's session (its directory): each final NLL is the
    last point of a curve that directory already logs ({split}/nll), so no single-point chart is
    written for it. Tag → the column's name.

    >>> metric_tags({"train": {}, "val": {}})
    {'train/nll': 'train NLL', 'val/nll': 'val NLL'}
    """
    return {f"{s}/nll": f"{s} NLL" for s in splits}


def hparams_summaries(hp: dict, splits) -> list:
    """The HParams plugin's experiment, session-start and session-end summaries (torch's
    `hparams`), with the metrics named for people (torch gives them only the tag)."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from torch.utils.tensorboard.summary import hparams

    tags = metric_tags(splits)
    exp, ssi, sei = hparams(hp, dict.fromkeys(tags, 0.0))  # metric values come from the curves
    plugin = exp.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(plugin.content)
    for info in data.experiment.metric_infos:
        info.display_name = tags[info.name.tag]
    plugin.content = data.SerializeToString()
    return [exp, ssi, sei]
