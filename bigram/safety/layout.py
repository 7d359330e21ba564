"""A run directory's layout, declared once: the names of its files and the kinds of model it holds.

    runs/2026-11-21_10-30-05/
        .bigram-run       MARKER        bigram made this directory, and the files it wrote here (JSON)
        config.toml       CONFIG        the resolved configuration
        vocab.json        VOCAB         id 0 = boundary, then the characters
        counts.pt         COUNTS        the per-split (context, next) counts
        count.pt …        checkpoint()  one per model the run holds (MODEL_KINDS)
        mix.json …        recipe()      how a mixed or imported table was made (TABLE_KINDS)
        metrics.json      METRICS       NLL, perplexity, bits per model and split; what training chose
        explore.html      EXPLORE       `bigram explore`'s page, by default
        count/, neural/   EVENT_DIRS    TensorBoard's event files, a directory (a TensorBoard run) per model
        count-model.arpa  export_file() `bigram export`'s table, by default (a model kind, a format)

Who writes and reads each file: bigram.runs; the directory itself: bigram.safety.rundir.

    >>> checkpoint("neural"), recipe("mix"), export_file("mix", "json"), "arpa.pt" in FILES
    ('neural.pt', 'mix.json', 'mix-model.json', True)
"""

from __future__ import annotations

MARKER = ".bigram-run"
CONFIG = "config.toml"
VOCAB = "vocab.json"
COUNTS = "counts.pt"
METRICS = "metrics.json"
EXPLORE = "explore.html"
# a run's models: trained (count, neural), interpolated by `bigram mix`, imported by `bigram import`
MODEL_KINDS = ("count", "neural", "mix", "arpa")
MODEL_NAMES = {
    "count": "count model",
    "neural": "neural model",
    "mix": "mixed model",
    "arpa": "imported model",
}
TABLE_KINDS = ("mix", "arpa")  # the models stored as their table, with a recipe
# TensorBoard's event files, one directory per trained model, each with its own marker: TensorBoard
# colours and names a chart's lines by directory (a run made before them holds its event files itself)
EVENT_DIRS = ("count", "neural")
EXPORTS = ("arpa", "json", "csv")  # the formats `bigram export` writes


def checkpoint(kind: str) -> str:
    """The file holding a model of this kind."""
    return f"{kind}.pt"


def recipe(kind: str) -> str:
    """The file saying how a table model of this kind was made."""
    return f"{kind}.json"


def export_file(kind: str, fmt: str) -> str:
    """The file `bigram export` writes into the run when not given --out: named after the model
    and the format, never a recipe's name (a mixed run's JSON export is not mix.json). Not in
    FILES: only a run whose marker lists it holds it as bigram's (rundir.claim)."""
    return f"{kind}-model.{fmt}"


def plot_file(what: str, kind: str) -> str:
    """The figure `bigram plot` writes into the run when not given --out: counts.png (the
    training counts, whatever the model), or probs-<model>.png. Not in FILES, as export_file."""
    return "counts.png" if what == "counts" else f"probs-{kind}.png"


# every file name bigram writes into a run (TensorBoard's event files aside)
FILES = frozenset(
    {
        MARKER,
        CONFIG,
        VOCAB,
        COUNTS,
        METRICS,
        EXPLORE,
        *map(checkpoint, MODEL_KINDS),
        *map(recipe, TABLE_KINDS),
    }
)
