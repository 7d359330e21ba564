"""What a run shows in TensorBoard: the neural model's curves beside the count model's NLL, the
smoothing curve, and end-of-run images, samples, figures and hparams."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import torch

from bigram import fit, text
from bigram.config import TrainConfig
from bigram.counts import figure_ids
from bigram.metrics import nll as nll_of
from bigram.models import NeuralBigram
from bigram.safety.interrupt import held_ctrl_c
from bigram.safety.rundir import own
from bigram.sampling import sample_plain
from bigram.smoothing import choose_smoothing
from bigram.table import count_table
from bigram.vocab import Vocab

N_SAMPLES = 10  # names written to TensorBoard per model
SAMPLE_MAX_LEN = 40  # their length cap
IMAGE_TOKENS = 64  # a larger vocabulary shows its most frequent characters
FIGURE_TOKENS = 27  # the labelled figures: the lecture's size (each cell costs drawing time)


def open_writer(run: Path):
    """A SummaryWriter into the run directory (TensorBoard's import is heavy: only when training,
    and not interruptible midway)."""
    with held_ctrl_c():
        from torch.utils.tensorboard import SummaryWriter

    before = set(os.listdir(run))
    writer = SummaryWriter(log_dir=str(run))
    # its event file, recorded in the run's marker as bigram's (what --overwrite may replace): by
    # the name the writer chose, or else as the one event file that appeared
    name = getattr(getattr(writer.file_writer, "event_writer", None), "_file_name", None)
    made = [os.path.basename(name)] if name else set(os.listdir(run)) - before
    try:
        for n in made:
            if n.startswith("events.out.tfevents."):
                own(run, n)
    except BaseException:
        writer.close()
        raise
    return writer


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


LAYOUT_CATEGORY = "1. gradient descent meets counting"  # sorts before the raw tags' groups


def curves_layout(splits: list[str]) -> dict:
    """The Custom Scalars tab's charts: per split, the neural model's NLL curve and the count
    model's NLL (a flat line) on the same axes, the lecture's central picture. The tags are
    regular expressions matched in every run, so a sweep's logdir overlays all its runs.

    >>> curves_layout(["train", "val"])["1. gradient descent meets counting"]["val NLL"]
    ['Multiline', ['^val/nll$', '^val/nll_count_model$']]
    """
    charts = {f"{s} NLL": ["Multiline", [f"^{s}/nll$", f"^{s}/nll_count_model$"]] for s in splits}
    return {LAYOUT_CATEGORY: charts}


class Curves(fit.Curves):
    """The neural model's curves: loss, NLL and L2 term of every step (train/…), and every
    eval_every steps its NLL on the held-out splits beside the count model's NLL on every split
    (…/nll_count_model): the line gradient descent heads for. Without a writer, nothing."""

    def __init__(
        self, writer, splits: dict[str, torch.Tensor], smoothing: float | str, count_lp=None
    ) -> None:
        self.writer, self.splits, self.smoothing, self.count_lp = writer, splits, smoothing, count_lp

    def start(self) -> None:
        """The count model's line (its NLL on every split) and the chart layout, once training has
        started."""
        if self.writer is None:
            return
        count_lp, splits = self.count_lp, self.splits
        if count_lp is None:  # not given: the count model made here (the neural model trains alone)
            smoothing = self.smoothing
            if smoothing == "auto":
                smoothing = choose_smoothing(splits["train"], splits.get("val"))[0]
            count_lp = count_table(splits["train"], smoothing)  # its seen rows only, any order
        self.reference = {s: nll_of(count_lp, c) for s, c in splits.items()}
        self.writer.add_custom_scalars(curves_layout(list(splits)))

    def train(self, step: int, loss: float, nll: float, reg: float, with_nll: bool = True) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            if with_nll:
                self.writer.add_scalar("train/nll", nll, step)
            self.writer.add_scalar("train/reg", reg, step)

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
                self.writer.add_scalar(f"{split}/nll", nll_of(lp, c), step)
            self.writer.add_scalar(f"{split}/nll_count_model", self.reference[split], step)


def log_smoothing_curve(writer, chosen: float, curve: list[tuple[float, float]], on: str = "val") -> None:
    """The val (or leave-one-out) NLL of the count model against k. TensorBoard's x axis takes
    integers, so the step is 1000·log10(k) + 4000 (k = 1e-4 → 0, k = 1 → 4000, k = 1000 → 7000)."""
    tag = "smoothing/val_nll" if on == "val" else "smoothing/leave_one_out_nll"
    for k, nll in curve:
        writer.add_scalar(tag, nll, round(1000 * math.log10(k)) + 4000)
    what = "val NLL" if on == "val" else "leave-one-out NLL"
    writer.add_text("smoothing/chosen", f"k = {chosen:.6g} ({what} {dict(curve)[chosen]:.6f})")


def log_summary(
    writer,
    cfg: TrainConfig,
    vocab: Vocab,
    tables: dict,
    metrics: dict,
    counts_train,
    step: int,
    swept: tuple[str, ...] = (),
) -> None:
    """End-of-run entries: probability images, sampled names, labelled figures, hparams (the keys
    a sweep varies first, so that the HParams table shows them without scrolling)."""
    rows, cols = figure_ids(counts_train, IMAGE_TOKENS)  # the most frequent characters (and contexts)
    for model, lp in tables.items():  # a table's rows, those the image shows only
        p = lp[rows][:, cols].exp().float()
        writer.add_image(f"probs/{model}", (p / p.max()).unsqueeze(0), step, dataformats="CHW")
        names = sample_plain(lp, vocab, N_SAMPLES, seed=cfg.seed, max_len=SAMPLE_MAX_LEN)
        # four-space indent: a Markdown code block, so names show verbatim
        writer.add_text(f"samples/{model}", "\n".join("    " + n for n in names), step)
    if cfg.figures:  # the lecture's labelled heatmaps (bigram plot draws the same)
        from bigram.formats.plots import figure_for

        model = "neural" if "neural" in tables else "count"
        fig = figure_for(vocab, counts_train, None, "counts", model, FIGURE_TOKENS)
        add_png(writer, "figures/counts", fig.image, step)
        fig = figure_for(vocab, counts_train, tables[model], "probs", model, FIGURE_TOKENS)
        add_png(writer, f"figures/probs_{model}", fig.image, step)
    if "neural" not in metrics:  # no curves were drawn: the count model's line alone, over the
        # steps a neural run spans, so that it overlays their curves in a shared logdir
        writer.add_custom_scalars(curves_layout(list(metrics["count"])))
        for split, m in metrics["count"].items():
            for s in (0, max(cfg.steps, 1)):
                writer.add_scalar(f"{split}/nll_count_model", m["nll"], s)
    # a string as it is safe to show (a data path's non-UTF-8 bytes as \xff: protobuf takes UTF-8 only)
    hp = {k: (v if isinstance(v, int | float | bool) else text.escaped(v)) for k, v in cfg.to_dict().items()}
    hp = {k: hp[k] for k in swept} | {k: v for k, v in hp.items() if k not in swept}
    for summary in hparams_summaries(hp, metrics):
        writer._get_file_writer().add_summary(summary)


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


def metric_tags(metrics: dict) -> dict[str, str]:
    """The HParams tab's metrics: each final NLL is the last point of a curve the run already
    logs (the neural model's {split}/nll, the count model's {split}/nll_count_model), so no
    single-point chart is written for it. Tag → the column's name.

    >>> metric_tags({"count": {"val": {}}, "neural": {"val": {}}})
    {'val/nll_count_model': 'count val NLL', 'val/nll': 'neural val NLL'}
    """
    suffix = {"count": "_count_model", "neural": ""}
    return {f"{s}/nll{suffix[model]}": f"{model} {s} NLL" for model, per in metrics.items() for s in per}


def hparams_summaries(hp: dict, metrics: dict) -> list:
    """The HParams plugin's experiment, session-start and session-end summaries (torch's
    `hparams`), with the metrics named for people (torch gives them only the tag)."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from torch.utils.tensorboard.summary import hparams

    tags = metric_tags(metrics)
    exp, ssi, sei = hparams(hp, dict.fromkeys(tags, 0.0))  # metric values come from the curves
    plugin = exp.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(plugin.content)
    for info in data.experiment.metric_infos:
        info.display_name = tags[info.name.tag]
    plugin.content = data.SerializeToString()
    return [exp, ssi, sei]
