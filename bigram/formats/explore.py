"""`bigram explore`: the likelihood story of one run as a single self-contained HTML page.

The page reads the run's own tables and nothing else: the data below goes into the page as one
JSON document, the page draws five parts from it. Its source sits beside this module as three files,
explore_page.html (the markup), explore_page.css and explore_page.js (plain JavaScript and SVG), which
`render` inlines into one self-contained file: the page loads nothing (its Content-Security-Policy
forbids it), so it works offline and in a notebook's iframe.

    table      counts N and P of the most frequent contexts × characters (the lecture's figure)
    row        one context's P(next | context), count vs neural, its entropy and KL
    name       a typed name, prediction by prediction: P, log P, the running product and sum, NLL
    sampling   a seeded walk through the table, one draw at a time
    training   the neural model's logged NLL curves against the count model's line, the eval table

What it carries is bounded: every row of a table of up to ROW_BUDGET entries (names.txt up to
order 3); beyond, the rows of the most frequent contexts that fit, and the page says so where a
name or a walk needs a row it does not carry. Names are data, never markup: the JSON is escaped
so that no corpus text can close the script element, and the page inserts text only as text.
"""

from __future__ import annotations

import html
import json
import math
import re
import struct
from pathlib import Path

import torch

from bigram.counts import gram_name, row_sums

PAGE = Path(__file__).with_name("explore_page.html")  # the markup: {{TITLE}}, {{STYLE}}, {{SCRIPT}}, {{DATA}}
STYLE = PAGE.with_suffix(".css")
SCRIPT = PAGE.with_suffix(".js")
ROW_BUDGET = 1 << 17  # table entries carried per model (two models: ~3 MB of numbers at most)
HEAT_ROWS = 30  # contexts × characters the heatmap shows at most
HEAT_COLS = 30


def _numbers(t: torch.Tensor) -> list:
    """log P rows as JSON numbers with 9 significant digits (what the page prints is 6 at most);
    −inf (a probability of 0) as null."""
    return [[None if v == -math.inf else float(f"{v:.9g}") for v in row] for row in t.tolist()]


def _curves(run_dir: Path) -> dict[str, list[list[float]]]:
    """The run's logged NLL scalars ({split}/nll, {split}/nll_count_model), read from its
    TensorBoard event files: TFRecords (length, crc, an Event message, crc) parsed with
    TensorBoard's own Event message, without its event loader's imports (~0.25 s)."""
    from tensorboard.compat.proto.event_pb2 import Event

    curves: dict[str, dict[int, float]] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at + 12 <= len(data):
            (n,) = struct.unpack_from("<Q", data, at)
            record = data[at + 12 : at + 12 + n]
            at += 12 + n + 4
            event = Event.FromString(record)
            for v in event.summary.value:
                if v.tag.endswith(("/nll", "/nll_count_model")) and v.HasField("simple_value"):
                    curves.setdefault(v.tag, {})[event.step] = v.simple_value
    return {tag: [[s, x] for s, x in sorted(points.items())] for tag, points in sorted(curves.items())}


def page_data(run) -> dict:
    """Everything the page draws, from a runs.Run."""
    C, V = run.shape
    order = run.config.order
    models = run.models
    train = run.counts("train")
    occurs = row_sums(train).to(torch.float64)
    ranked = torch.argsort(occurs, descending=True, stable=True)
    seen = int((occurs > 0).sum())
    if C * V <= ROW_BUDGET:
        rows = torch.arange(C)
    else:  # the most frequent contexts that fit, the start of every name (row 0) first among them
        rows = ranked[: max(1, ROW_BUDGET // V)]
        rows = torch.cat([torch.tensor([0]), rows[rows != 0]])[: max(1, ROW_BUDGET // V)]
    rows = rows.sort().values
    counts = train.index_select(0, rows)
    counts = counts.to_dense() if counts.is_sparse else counts
    tables = {m: run.log_probs(m).index_select(0, rows) for m in models}
    # the heatmap: the most frequent contexts seen and, as columns, the most frequent next tokens
    carried = set(rows.tolist())
    heat_rows = [r for r in ranked[:HEAT_ROWS].tolist() if occurs[r] > 0 and r in carried]
    per_col = counts.sum(0).to(torch.float64)
    cols = torch.argsort(per_col, descending=True, stable=True)[: min(HEAT_COLS, V)].tolist()
    cols = sorted(set(cols) | {0}) if V > HEAT_COLS else list(range(V))
    heat_rows = sorted(heat_rows) if C == V and V <= HEAT_ROWS else heat_rows
    metrics = run.metrics()
    tokens = run.vocab.tokens()
    return {
        "run": str(run.path),
        "order": order,
        "gram": gram_name(order),
        "V": V,
        "C": C,
        "seen_contexts": seen,
        "tokens": tokens,
        "describe": run.vocab.describe(),
        "rule": {"normalize": run.config.normalize, "lowercase": run.config.lowercase},
        "spaces": [c for c in range(0x3000 + 1) if chr(c).isspace()],  # what str.strip strips
        "models": models,
        "model_notes": _model_notes(metrics, run.config, models),
        "rows": rows.tolist(),
        "all_rows": len(rows) == C,
        "logp": {m: _numbers(t) for m, t in tables.items()},
        "counts": counts.tolist(),
        "heat": {"rows": heat_rows, "cols": cols},
        "metrics": {m: metrics[m] for m in models if m in metrics},
        "curves": _curves(run.path) if "neural" in models else {},
    }


def _model_notes(metrics: dict, cfg, models: list[str]) -> dict[str, str]:
    notes = {}
    smoothing = metrics.get("smoothing", {}).get("chosen", cfg.smoothing)
    if "count" in models:
        kn = "kneser_ney" in metrics or smoothing == "kn"
        notes["count"] = (
            "interpolated modified Kneser-Ney" if kn else f"add-k smoothing, k = {float(smoothing):.4g}"
        )
    recipe = metrics.get("mix_recipe")
    if recipe:
        notes["mix"] = "interpolated: " + " + ".join(
            f"{q['weight']:.3g}·{Path(q['run']).name}:{q['model']}" for q in recipe["parents"]
        )
    t = metrics.get("neural_training")
    if t:
        notes["neural"] = f"{t['optimizer']} (lr {t['lr']:g}), {t['steps']} steps, reg {cfg.reg:g}"
    return notes


def _script_json(data: dict) -> str:
    """JSON that is safe inside <script>: no "<", ">" or "&" (so no "</script>"), and the two line
    separators JavaScript once refused, all as \\uXXXX escapes."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _source(path: Path) -> str:
    """A style or script file's text, less its last line end (the markup puts it on a line of its own)."""
    return path.read_text(encoding="utf-8").removesuffix("\n")


def render(run) -> str:
    """The page for a run, as HTML text: the markup with its title, style, script and data filled in,
    in one pass, so that nothing filled in (a name in the data, a run's path) is read for a placeholder."""
    fill = {
        "TITLE": html.escape(f"bigram explore: {run.path}"),
        "STYLE": _source(STYLE),
        "SCRIPT": _source(SCRIPT),
        "DATA": _script_json(page_data(run)),
    }
    parts = re.split(r"\{\{([A-Z]+)\}\}", PAGE.read_text(encoding="utf-8"))
    parts[1::2] = [fill[name] for name in parts[1::2]]
    return "".join(parts)


def write(run, out: Path) -> Path:
    """Write the page to `out` (atomically) and return it."""
    from bigram.safety import atomic

    atomic.write_text(out, render(run))
    return out


class Page:
    """The page in a notebook: Jupyter shows `_repr_html_` (the page in an isolated iframe)."""

    def __init__(self, text: str) -> None:
        self.html = text

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
            'style="width:100%;height:900px;border:1px solid #ccc" sandbox="allow-scripts"></iframe>'
        )
