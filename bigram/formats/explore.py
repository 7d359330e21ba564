"""`bigram explore`: the likelihood story of one run as a single self-contained HTML page.

The page reads the run's own tables and nothing else: the data below goes into the page as one
JSON document, the page draws five parts from it. Its source sits beside this module as three files,
explore_page.html (the markup), explore_page.css and explore_page.js (plain JavaScript and SVG), which
`render` inlines into one self-contained file: the page loads nothing (its Content-Security-Policy
forbids it), so it works offline and in a notebook's iframe.

    table      counts N and P of the most frequent contexts × characters (the lecture's figure)
    row        one context's P(next | context), count vs neural, its entropy and KL, and what the
               row lists and leaves to the shorter context (β × …)
    name       a typed name, prediction by prediction: P, log P, the running product and sum, NLL
    sampling   a seeded walk through the table, one draw at a time
    training   the neural model's logged NLL curves against the count model's line, the eval table

The page carries each model whole, as the table holds it (bigram.backoff: the known contexts'
rows, each its listed tokens and one backoff weight; a mix as its parts, bigram.mixture), and
reads it as `bigram score` does: the longest known suffix, β down to the uniform root. Numbers
travel as base64 of their bytes (float64 exactly, token ids as 16 or 32 bits), so the page and
`bigram score` add the same floats. What it carries is bounded (PAGE_BUDGET bytes of numbers):
beyond, the rows of the contexts seen least often are left out, and the page says in words which
and why, and where a name or a walk needs one of them. Names are data, never markup: the JSON is
escaped so that no corpus text can close the script element, and the page inserts text only as text.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import stat
import struct
from pathlib import Path

import numpy as np
import torch

from bigram.backoff import Level
from bigram.config import OPTIMIZER_NAMES
from bigram.counts import context_ids, gram_name, row_totals
from bigram.errors import BigramError
from bigram.mixture import Mixture
from bigram.safety import layout, rundir
from bigram.text import escaped

PAGE = Path(__file__).with_name("explore_page.html")  # the markup: {{TITLE}}, {{STYLE}}, {{SCRIPT}}, {{DATA}}
STYLE = PAGE.with_suffix(".css")
SCRIPT = PAGE.with_suffix(".js")
PAGE_BUDGET = 4_000_000  # bytes of the models' numbers (base64) a page carries: it stays under 5 MB
HEAT_ROWS = 30  # contexts × characters the heatmap shows at most
HEAT_COLS = 30
SAFE = 1 << 53  # context keys below this travel as float64 (exact in JavaScript); beyond, as int64


def _b64(t: torch.Tensor, dtype: str) -> str:
    """A tensor's values as little-endian `dtype` bytes in base64 (a typed array in the page)."""
    return base64.b64encode(np.ascontiguousarray(t.numpy()).astype(dtype).tobytes()).decode("ascii")


EVENT_BYTES = 1 << 30  # the event files a page reads, in all (a long run's curves are far below)
RECORD_BYTES = 64 << 20  # one TensorBoard record (a figure is well below)
CURVES = ("/nll", "/nll_count_model")


def _curves(run_dir: Path) -> tuple[dict[str, list[list[float]]], list[str]]:
    """The run's logged NLL scalars ({split}/nll, {split}/nll_count_model), read from its
    TensorBoard event files: TFRecords (length, crc, an Event message, crc) parsed with
    TensorBoard's own Event message, without its event loader's imports (~0.25 s). And, in words,
    what could not be read: a damaged file is read up to the damage (its points before it kept)."""
    from tensorboard.compat.proto.event_pb2 import Event

    curves: dict[str, dict[int, float]] = {}
    unread, budget = [], EVENT_BYTES
    # the neural model's in neural/, the count model's line in count/ as {split}/nll (in a run
    # made before those directories: both in the run's own event files, the line as …_count_model)
    where = [("", ""), ("neural/", ""), ("count/", "_count_model")]
    for sub, suffix in where:
        for path in sorted(run_dir.glob(f"{sub}events.out.tfevents.*")):
            why, budget = _read_events(path, Event, curves, budget, suffix)
            if why:
                name = escaped(sub + path.name)
                unread.append(f"The TensorBoard event file {name} could not be read whole ({why}).")
    points = {tag: [[s, x] for s, x in sorted(p.items())] for tag, p in sorted(curves.items())}
    return points, unread


def _read_events(path: Path, Event, curves: dict, budget: int, suffix: str = "") -> tuple[str | None, int]:
    """Add one event file's NLL points to `curves` (each tag + `suffix`); (why it stopped early or
    None, budget left)."""
    from google.protobuf.message import DecodeError

    try:  # not blocking on a FIFO: only a regular file is read
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return e.strerror or str(e), budget
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return "it is not a regular file", budget
    with os.fdopen(fd, "rb") as f:
        at, size = 0, st.st_size
        while at + 12 <= size:
            (n,) = struct.unpack("<Q", f.read(12)[:8])
            if n > size - at - 16 or n > RECORD_BYTES:
                return f"the record at byte {at:,} claims {n:,} bytes, more than the file holds", budget
            if n > budget:
                return f"the page reads at most {EVENT_BYTES >> 20:,} MiB of events", budget
            budget -= n
            try:
                event = Event.FromString(f.read(n))
            except DecodeError:
                return f"the record at byte {at:,} is not a TensorBoard event", budget
            f.read(4)
            at += 16 + n
            for v in event.summary.value:
                if v.tag.endswith(CURVES) and v.HasField("simple_value") and math.isfinite(v.simple_value):
                    curves.setdefault(v.tag + suffix, {})[event.step] = v.simple_value
        if at != size:
            return f"it ends inside a record, at byte {at:,}", budget
    return None, budget


def page_data(run) -> dict:
    """Everything the page draws, from a runs.Run."""
    C, V = run.shape
    order = run.config.order
    models = run.models
    train = run.counts("train") if "arpa" not in models else None
    seen, sums = row_totals(train) if train is not None else (torch.zeros(0, dtype=torch.int64),) * 2
    tables = {m: run.log_probs(m) for m in models}
    carried, left_out = _carry(tables, seen, sums, V)
    metrics, unread = _read_metrics(run, models)
    curves, unread_curves = _curves(run.path) if "neural" in models else ({}, [])
    return {
        "run": escaped(run.path),
        "order": order,
        "gram": gram_name(order),
        "V": V,
        "C": f"{C:,}",
        "seen_contexts": len(seen),
        "tokens": run.vocab.tokens(),
        "labels": [shown(t) for t in run.vocab.tokens()],
        "optimizer": run.config.optimizer if "neural" in models else None,
        "describe": run.vocab.describe(),
        "rule": {"normalize": run.config.normalize, "lowercase": run.config.lowercase},
        "spaces": [c for c in range(0x3000 + 1) if chr(c).isspace()],  # what str.strip strips
        "models": models,
        "model_names": layout.MODEL_NAMES,  # the words the CLI uses, one copy
        "default_model": run.pick_model(None),  # what sample, score and export read: the first view
        "model_notes": _model_notes(run, metrics, tables),
        "tables": carried,
        "left_out": left_out,
        "heat": _heat(train, seen, sums, C, V),
        "metrics": _eval_table(metrics, models, unread),
        "curves": curves,
        "unread": unread + unread_curves,
    }


def shown(token: str) -> str:
    """A token as the page labels it, visibly: the space as "␣" (as `bigram plot` shows it), what a
    terminal must not be sent as its escape (as every command prints it, bigram.text.escaped), any
    other white space or invisible character as \\uXXXX; every other character as itself.

    >>> [shown(t) for t in ("a", " ", "\\t", "\\u00a0", "\\u200b", "\\u202e", "é")]
    ['a', '␣', '\\\\x09', '\\\\xa0', '\\\\u200b', '\\\\u202e', 'é']
    """
    if token == " ":
        return "␣"
    if escaped(token) != token:
        return escaped(token)
    if len(token) == 1 and (token.isspace() or not token.isprintable()):
        c = ord(token)
        return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"
    return token


def _heat(train, seen: torch.Tensor, sums: torch.Tensor, C: int, V: int) -> dict:
    """The heatmap's rows (the contexts seen most often, as token ids), columns (the next tokens
    seen most often, the boundary among them) and the training counts of its cells."""
    if train is None or not len(seen):
        return {"rows": [], "cols": list(range(min(V, HEAT_COLS))), "counts": [], "totals": []}
    rows = seen[torch.argsort(sums, descending=True, stable=True)[:HEAT_ROWS]]
    if C == V and V <= HEAT_ROWS:
        rows = rows.sort().values
    from bigram.counts import nonzero, rows_of

    _, col, n = nonzero(train)
    per_col = torch.zeros(V, dtype=torch.float64).index_add_(0, col, n.double())
    cols = torch.argsort(per_col, descending=True, stable=True)[: min(HEAT_COLS, V)].tolist()
    cols = sorted(set(cols) | {0}) if V > HEAT_COLS else list(range(V))
    block = rows_of(train, rows)
    return {
        "rows": [context_ids(r, C, V) for r in rows.tolist()],
        "cols": cols,
        "counts": block[:, cols].tolist(),
        "totals": block.sum(1).tolist(),
    }


def _levels_of(table, path: tuple = ()) -> list[tuple[tuple, int, Level]]:
    """Every level of a model (of each part of a mix): (the part's path, context length, level)."""
    if isinstance(table, Mixture):
        return [x for i, p in enumerate(table.parts) for x in _levels_of(p, (*path, i))]
    return [(path, j, lv) for j, lv in enumerate(table.levels) if lv is not None and len(lv)]


def _suffix_freq(seen: torch.Tensor, sums: torch.Tensor, V: int, j: int, keys: torch.Tensor) -> torch.Tensor:
    """How often each context of j tokens (keys) was seen in training as the end of a full context."""
    if not len(seen):
        return torch.zeros(len(keys), dtype=torch.float64)
    uniq, inv = torch.unique(seen % V**j, return_inverse=True)
    total = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, sums.double())
    pos = torch.searchsorted(uniq, keys).clamp_(max=len(uniq) - 1)
    return torch.where(uniq[pos] == keys, total[pos], 0.0)


ROW_BYTES = (8 + 4 + 8) * 4 / 3  # a carried context: its key, row offset and backoff, in base64


def _entry_bytes(V: int) -> float:
    return (8 + (2 if V <= 1 << 16 else 4)) * 4 / 3  # log P as float64, the token as 16 or 32 bits


def _cost(levels: list, V: int) -> float:
    """The bytes a model's levels take in the page."""
    return sum(len(lv) * ROW_BYTES + lv.entries * _entry_bytes(V) for _, _, lv in levels)


def _shares(models: list[str], levels: list, V: int) -> dict[str, float]:
    """Each model's part of PAGE_BUDGET: the smallest models first, each whole if its equal share of
    what is left holds it, so that a large model does not cost a small one its rows."""
    cost = {m: _cost([lv for k, *lv in levels if k == m], V) for m in models}
    left, out = float(PAGE_BUDGET), {}
    for i, m in enumerate(sorted(models, key=lambda m: cost[m])):
        out[m] = min(cost[m], left / (len(models) - i))
        left -= out[m]
    return out


def _choose(levels: list, freqs: list[torch.Tensor], V: int, budget: float) -> tuple[set[int], list]:
    """Which levels travel (the others are dropped whole: their contexts alone would not fit) and,
    in each, which rows are left out (None: none): the rows of the contexts seen most often first,
    shorter contexts first among equals, until the budget is spent."""
    dropped: set[int] = set()
    if _cost(levels, V) <= budget:
        return dropped, [None] * len(levels)
    key_bytes = sum(len(lv) for _, _, lv in levels) * ROW_BYTES
    for i in sorted(range(len(levels)), key=lambda i: (-levels[i][1], -len(levels[i][2]))):
        if key_bytes <= budget / 2:
            break
        dropped.add(i)
        key_bytes -= len(levels[i][2]) * ROW_BYTES
    kept = [i for i in range(len(levels)) if i not in dropped]
    gone: list = [None] * len(levels)
    if not kept:
        return dropped, gone
    freq = torch.cat([freqs[i] for i in kept])
    size = torch.cat([levels[i][2].ptr.diff() for i in kept]).double() * _entry_bytes(V)
    j = torch.cat([torch.full((len(levels[i][2]),), levels[i][1]) for i in kept])
    by = torch.argsort(j, stable=True)
    by = by[torch.argsort(freq[by], descending=True, stable=True)]
    keep = torch.zeros(len(freq), dtype=torch.bool)
    keep[by[size[by].cumsum(0) <= budget - key_bytes + 1e-6]] = True
    at = 0
    for i in kept:
        n = len(levels[i][2])
        gone[i] = None if bool(keep[at : at + n].all()) else ~keep[at : at + n]
        at += n
    return dropped, gone


def _level_json(lv: Level, V: int, j: int, gone: torch.Tensor | None) -> dict:
    """A level as the page reads it: typed arrays in base64; a row left out lists nothing and is
    marked in `gone`."""
    big = V**j >= SAFE
    ptr, cols, logp = lv.ptr, lv.cols, lv.logp
    if gone is not None:
        lens = ptr.diff().masked_fill(gone, 0)
        listed = torch.repeat_interleave(~gone, ptr.diff())
        ptr, cols, logp = (
            torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)]),
            cols[listed],
            logp[listed],
        )
    return {
        "n": len(lv),
        "big": big,
        "keys": _b64(lv.keys, "<i8" if big else "<f8"),
        "ptr": _b64(ptr, "<i4"),
        "cols": _b64(cols, "<u2" if V <= 1 << 16 else "<i4"),
        "logp": _b64(logp, "<f8"),
        "backoff": _b64(lv.backoff, "<f8"),
        "gone": None if gone is None else _b64(gone, "u1"),
    }


def _tree(table, done: dict, path: tuple = ()) -> dict:
    """A model as the page reads it: a table's levels (None: none known; {"dropped"}: not carried),
    or a mix's parts with their weights and the tokens each has (None: all)."""
    if isinstance(table, Mixture):
        parts = []
        for i, (p, w, own) in enumerate(zip(table.parts, table.weights, table.own, strict=True)):
            has = None if len(own) == table.V else _b64(own, "<i4")  # None: every token
            parts.append({"weight": w, "own": has, "model": _tree(p, done, (*path, i))})
        return {"kind": "mix", "order": table.order, "parts": parts}
    levels = [done.get((path, j)) for j in range(table.order)]
    return {"kind": "table", "order": table.order, "levels": levels}


def _carry(tables: dict, seen: torch.Tensor, sums: torch.Tensor, V: int) -> tuple[dict, list[str]]:
    """Each model as the page carries it, and what it leaves out, in words."""
    levels = [(m, path, j, lv) for m, t in tables.items() for path, j, lv in _levels_of(t)]
    freqs = [_suffix_freq(seen, sums, V, j, lv.keys) for _, _, j, lv in levels]
    dropped: set[int] = set()
    gone: list = [None] * len(levels)
    for m, budget in _shares(list(tables), levels, V).items():
        mine = [i for i, lv in enumerate(levels) if lv[0] == m]
        d, g = _choose([levels[i][1:] for i in mine], [freqs[i] for i in mine], V, budget)
        dropped |= {mine[k] for k in d}
        for k, i in enumerate(mine):
            gone[i] = g[k]
    done: dict = {m: {} for m in tables}
    left = {m: [0, 0, 0, 0] for m in tables}  # contexts, entries; left out of them
    for i, (m, path, j, lv) in enumerate(levels):
        left[m][0] += len(lv)
        left[m][1] += lv.entries
        if i in dropped:
            done[m][path, j] = {"n": len(lv), "dropped": True}
            left[m][2] += len(lv)
            left[m][3] += lv.entries
            continue
        done[m][path, j] = _level_json(lv, V, j, gone[i])
        if gone[i] is not None:
            left[m][2] += int(gone[i].sum())
            left[m][3] += int(lv.ptr.diff()[gone[i]].sum())
    words = [
        f"The {layout.MODEL_NAMES[m]} knows {c:,} contexts listing {e:,} entries in all, about "
        f"{(c * ROW_BYTES + e * _entry_bytes(V)) / 1e6:.0f} MB as this page writes numbers; it carries the "
        f"rows of the contexts seen most often and leaves out {lc:,} contexts ({le:,} entries), to stay "
        f"within {PAGE_BUDGET / 1e6:.0f} MB. A name or a walk that needs one of them stops there and "
        "says so: bigram score and bigram sample read them all."
        for m, (c, e, lc, le) in left.items()
        if lc
    ]
    return {m: _tree(t, done[m]) for m, t in tables.items()}, words


_NON_FINITE = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}  # as JavaScript's Number() reads them
METRIC_KEYS = ("bigrams", "nll", "perplexity", "bits_per_char", "entropy", "kl")  # the eval table's


def _read_metrics(run, models: list[str]) -> tuple[dict, list[str]]:
    """metrics.json as a dict ({} for an imported run, measured on nothing), and in words why not
    when it cannot be read: the page does without it."""
    if "arpa" in models and not (run.path / layout.METRICS).exists():
        return {}, []
    try:
        metrics = run.metrics()
    except BigramError as e:
        return {}, [f"{str(e).removesuffix('; retrain')}: the page shows no evaluation table."]
    if not isinstance(metrics, dict):
        return {}, [f"{layout.METRICS} is not a JSON object: the page shows no evaluation table."]
    return metrics, []


def _number(x: object, whole: bool = False) -> bool:
    """A JSON number (not a bool); `whole`: a non-negative integer."""
    if whole:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _eval_table(metrics: dict, models: list[str], unread: list[str]) -> dict:
    """The eval table's rows {model: {split: the METRIC_KEYS}}, each checked: a row with a value
    that is not a number is left out and named in `unread`. inf and nan travel as text (JSON has
    no such numbers); the page reads them back."""
    table, bad = {}, []
    for m in models:
        splits = metrics.get(m, {})
        for split, x in splits.items() if isinstance(splits, dict) else [("all splits", None)]:
            ok = isinstance(x, dict) and split in ("train", "val", "test")
            ok = ok and _number(x.get("bigrams"), whole=True) and all(_number(x.get(k)) for k in METRIC_KEYS)
            if not ok:
                bad.append(f"{m} {escaped(split)[:40]}")
                continue
            row = {k: x[k] if math.isfinite(x[k]) else _NON_FINITE[str(float(x[k]))] for k in METRIC_KEYS}
            table.setdefault(m, {})[split] = row
    if bad:
        unread.append(
            f"{layout.METRICS} holds something other than numbers for {', '.join(bad[:5])}"
            f"{', …' if len(bad) > 5 else ''}: the evaluation table leaves those rows out."
        )
    return table


def _model_notes(run, metrics: dict, tables: dict) -> dict[str, str]:
    """A line on how each model was made, in the words of train's summary: from its checkpoint
    (the count model's smoothing, a mix's weights), and from metrics.json what only it records (the
    optimizer's steps, a k or reg chosen on val, a mix's parents), each checked, and left out of the
    line when it is not what bigram writes."""
    notes, cfg = {}, run.config
    on_val = ", chosen on the val split"
    if "count" in tables:
        k = run.count_checkpoint().get("smoothing")
        auto = metrics.get("smoothing")  # smoothing = auto: how it was chosen
        by = auto.get("chosen_by", "val") if isinstance(auto, dict) and auto.get("chosen") == k else None
        notes["count"] = "interpolated modified Kneser-Ney" if k == "kn" else f"add-k smoothing, k = {k:.4g}"
        notes["count"] += {"val": on_val, "leave-one-out": ", chosen by leave-one-out"}.get(by, "")
    if "mix" in tables:
        notes["mix"] = _mix_note(metrics.get("mix_recipe"), tables["mix"])
    if "arpa" in tables:
        notes["arpa"] = _arpa_note(run.path / layout.recipe("arpa"))
    t = metrics.get("neural_training")
    if "neural" in tables:
        done = isinstance(t, dict) and _number(t.get("steps"), whole=True)
        steps = f", {t['steps']} steps" if done else ""
        auto = metrics.get("reg")  # reg = auto: chosen on val
        chosen = isinstance(auto, dict) and _number(auto.get("chosen"))
        reg = auto["chosen"] if chosen else cfg.reg
        shown = f"{reg:.4g}" if isinstance(reg, int | float) else str(reg)
        how = on_val if chosen and auto.get("on") == "val" else ""
        name = OPTIMIZER_NAMES.get(cfg.optimizer, cfg.optimizer)
        notes["neural"] = f"{name} (lr {cfg.learning_rate:g}){steps}, reg = {shown}{how}"
    return notes


def _arpa_note(path: Path) -> str:
    """An imported model's line: the ARPA file it was read from, as its recipe names it."""
    try:  # bounded, and only a regular file: a FIFO there must not hang the page
        source = json.loads(rundir.read_bytes(path, 1 << 20)).get("source")
    except (OSError, ValueError, AttributeError):
        source = None
    where = f" {escaped(Path(source).name)[:80]}" if isinstance(source, str) and source else ""
    return f"read from the ARPA file{where}, not trained here"


def _mix_note(recipe: object, table) -> str:
    """A mix's weights and parents, as its recipe in metrics.json records them; the weights from its
    table itself (a Mixture's) where the recipe is not what bigram writes."""
    parents = recipe.get("parents") if isinstance(recipe, dict) else None
    ok = isinstance(parents, list) and all(isinstance(q, dict) for q in parents)
    ok = ok and all(isinstance(q.get(k), str) for q in parents for k in ("run", "model"))
    weights = getattr(table, "weights", None)  # a Mixture's
    if weights is None and ok and all(_number(q.get("weight")) for q in parents):
        weights = [q["weight"] for q in parents]
    if weights is None:
        return "interpolated"
    if not ok or len(parents) != len(weights):
        return "interpolated: " + " + ".join(f"{w:.3g}" for w in weights)
    names = [f"{escaped(Path(q['run']).name)}:{escaped(q['model'])}"[:80] for q in parents]
    return "interpolated: " + " + ".join(f"{w:.3g}·{n}" for w, n in zip(weights, names, strict=True))


def _script_json(data: dict) -> str:
    """JSON that is safe inside <script>: no "<", ">" or "&" (so no "</script>"), and the two line
    separators JavaScript once refused, all as \\uXXXX escapes."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    # a lone surrogate (a byte of a name that was not UTF-8) as its escape: the page stays UTF-8
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _source(path: Path) -> str:
    """A style or script file's text, less its last line end (the markup puts it on a line of its own)."""
    return path.read_text(encoding="utf-8").removesuffix("\n")


def render(run) -> str:
    """The page for a run, as HTML text: the markup with its title, style, script and data filled in,
    in one pass, so that nothing filled in (a name in the data, a run's path) is read for a placeholder."""
    fill = {
        "TITLE": html.escape(f"bigram explore: {escaped(run.path)}"),
        "STYLE": _source(STYLE),
        "SCRIPT": _source(SCRIPT),
        "DATA": _script_json(page_data(run)),
    }
    parts = re.split(r"\{\{([A-Z]+)\}\}", PAGE.read_text(encoding="utf-8"))
    parts[1::2] = [fill[name] for name in parts[1::2]]
    return "".join(parts)


def write(run, out: Path) -> Path:
    """Write the page to `out` (atomically) and return it. The run's own page (explore.html in
    it) is recorded in its marker as bigram's, and a file of that name bigram did not write is
    never replaced (rundir.claim); a page elsewhere, or named otherwise, is the user's."""
    from bigram.safety import atomic, rundir

    out = Path(out)
    text = render(run)
    own = out.name == layout.EXPLORE and out.parent.resolve() == run.path.resolve()
    elsewhere = "pass --out FILE to write the page elsewhere"
    path = rundir.target(out, run.path, layout.EXPLORE, elsewhere)  # never a page of the user's
    try:
        atomic.write_text(path, text)
    except BigramError as e:
        raise BigramError(f"{e}; {elsewhere}" if own else str(e)) from None
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
