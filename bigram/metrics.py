"""How well a V×V table of log-probabilities explains text: NLL, perplexity, bits, per-name scores.

likelihood      = Π P(next | prev) over the bigrams
log-likelihood  = Σ log P(next | prev)
NLL             = −log-likelihood / number of bigrams   (nats per bigram; = cross-entropy)
perplexity      = exp(NLL);  bits per char = NLL / ln 2
entropy         = the NLL of the data's own bigram frequencies, the floor no bigram model beats
KL(data‖model)  = cross-entropy − entropy ≥ 0
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator

import torch

from bigram.backoff import Table
from bigram.counts import context_ids, context_rows, dense, gram_name, nonzero, row_totals, total
from bigram.text import escaped, json_safe
from bigram.vocab import BOUNDARY_ID, Vocab

BLOCK = 1 << 16  # counted n-grams whose log P is read at a time


def log_likelihood(log_probs, counts: torch.Tensor) -> float:
    """Σ_ij N_ij log P_ij in float64; a counted bigram of probability 0 makes it −inf.
    `log_probs`: the table (a Table or a V×V tensor), or a function (i, j) ↦ log P_ij."""
    # only counted bigrams contribute: a big vocabulary's matrix is mostly zeros
    if callable(log_probs):
        i, j, n = nonzero(counts)
        read = log_probs
    else:
        i, j, n = (t.to(log_probs.device) for t in nonzero(counts))

        def read(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            return log_probs[rows, cols]

    terms = torch.empty(len(n), dtype=torch.float64, device=n.device)
    for a in range(0, len(n), BLOCK):  # a block at a time (bounded temporaries), summed once
        terms[a : a + BLOCK] = read(i[a : a + BLOCK], j[a : a + BLOCK]).to(torch.float64) * n[a : a + BLOCK]
    return float(terms.sum())


def summarize(log_lik: float, bigrams: int) -> dict[str, float | int]:
    """The per-bigram figures every report uses: NLL in nats, perplexity = exp(NLL), bits = NLL / ln 2.

    Two bigrams of probability 1/4 each: log-likelihood 2·ln(1/4), NLL ln 4, perplexity 4, 2 bits.
    >>> summarize(2 * math.log(1 / 4), 2)
    {'nll': 1.3862943611198906, 'perplexity': 4.0, 'bits_per_char': 2.0, 'bigrams': 2}
    """
    nll = -log_lik / bigrams if bigrams else math.nan
    return {
        "nll": nll,
        "perplexity": math.exp(nll) if nll < 700 else math.inf,
        "bits_per_char": nll / math.log(2),
        "bigrams": bigrams,
    }


def nll(log_probs: torch.Tensor, counts: torch.Tensor) -> float:
    """Mean −log P per counted bigram: the one figure a training curve needs."""
    return -log_likelihood(log_probs, counts) / total(counts)


def evaluate(log_probs: torch.Tensor, counts: torch.Tensor) -> dict[str, float | int]:
    """NLL, perplexity, bits per char of the table on the bigrams counted in `counts`, and how
    the NLL splits into the data's own entropy plus the KL divergence of the model from it."""
    m = summarize(log_likelihood(log_probs, counts), total(counts))
    h = data_entropy(counts)
    m.update(entropy=h, cross_entropy=m["nll"], kl=m["nll"] - h)
    return m


def lecture_float32(counts: torch.Tensor, k: float, batches: Iterable[torch.Tensor]) -> dict:
    """The lecture notebook's log-likelihood and NLL, computed as it computes them: P = N + k in
    float32, each row divided by its float32 sum, then each bigram's log P added, in the
    corpus's order, one at a time to a float32 total. float32 keeps 24 bits, so near the final
    −559,952 each addition rounds to a multiple of 1/16: the notebook's −559951.5625 against
    the float64 sum −560,001.9 (bigram's figures), and NLL 2.4544 against 2.454577.

    `batches`: the corpus as id sequences (Vocab.encode_corpus of consecutive names), in order.
    """
    import numpy as np

    P = (dense(counts) + k).float()
    P /= P.sum(1, keepdim=True)
    total, n = np.float32(0.0), 0
    for ids in batches:  # the running total carried from batch to batch: one sum, in order
        lp = P[ids[:-1], ids[1:]].log().numpy()
        total = np.cumsum(np.concatenate([[total], lp]), dtype=np.float32)[-1]
        n += len(lp)
    return {"log_likelihood": float(total), "nll": float(np.float32(-total) / np.float32(n)), "bigrams": n}


def data_entropy(counts: torch.Tensor) -> float:
    """H(next | prev) of the counted bigrams' empirical distribution, in nats per bigram:
    −Σ_ij N_ij log(N_ij / N_i) / ΣN — the NLL of the maximum-likelihood (smoothing 0) table."""
    i, _, n = nonzero(counts)
    keys, totals = row_totals(counts)
    terms = torch.empty(len(n), dtype=torch.float64, device=n.device)
    for a in range(0, len(n), BLOCK):  # a block at a time (bounded temporaries), summed once
        m = n[a : a + BLOCK].to(torch.float64)
        rows = totals[torch.searchsorted(keys, i[a : a + BLOCK])].to(torch.float64)
        terms[a : a + BLOCK] = m * (m / rows).log()
    bigrams = float(n.sum())  # exact: an integer
    return -float(terms.sum()) / bigrams if bigrams else math.nan


def kl_between(log_p, log_q, counts: torch.Tensor) -> float:
    """Σ_i w_i KL(P_i ‖ Q_i): the rows' divergences weighted by how often each context occurs in
    `counts` (w_i = N_i / ΣN), in nats per prediction. P and Q are tables (a Table or a C×V
    tensor); only the rows of contexts that occur are read, a block of rows at a time."""
    i, _, n = nonzero(counts)
    ctx, inv = torch.unique_consecutive(i, return_inverse=True)  # i is sorted
    w = torch.zeros(len(ctx), dtype=torch.float64).index_add_(0, inv, n.double())
    w /= w.sum()
    if _one_level(log_p) and _one_level(log_q):
        return float((w * _kl_one_level(log_p, log_q, ctx)).sum())
    out = 0.0
    step = max(1, (1 << 20) // counts.shape[1])
    for lo in range(0, len(ctx), step):
        rows = ctx[lo : lo + step]
        lp, lq = log_p[rows].to(torch.float64), log_q[rows].to(torch.float64)
        diff = torch.where(lp > -math.inf, lp.exp() * (lp - lq), 0.0)
        out += float((w[lo : lo + step] * diff.sum(1)).sum())
    return out


def _one_level(t) -> bool:
    """A sparse table whose rows all back off straight onto the uniform root (add-k, neural)."""
    return (
        isinstance(t, Table)
        and t.dense is None
        and not any(lv is not None and len(lv) for lv in t.levels[:-1])
    )


def _kl_one_level(P: Table, Q: Table, ctx: torch.Tensor) -> torch.Tensor:
    """KL(P_h ‖ Q_h) of each context h in ctx, in O(listed entries): the tokens either row lists
    are read one by one; every other token has P = β_P(h)/V and Q = β_Q(h)/V (1/V where h is
    unknown), so they add (V − listed)·(β_P/V)·(log β_P − log β_Q)."""
    V = P.V
    pairs, log_beta = [], []
    for t in (P, Q):
        level = t.levels[-1]
        rows, known = level.find(ctx)
        which, pos = level.slices(rows[known])
        pairs.append(known.nonzero().squeeze(1)[which] * V + level.cols[pos])
        log_beta.append(torch.where(known, level.backoff[rows], torch.zeros_like(ctx, dtype=torch.float64)))
    both = torch.unique(torch.cat(pairs))
    h, w = both // V, both % V
    lp, lq = P.at(ctx[h], w), Q.at(ctx[h], w)
    terms = torch.where(lp > -math.inf, lp.exp() * (lp - lq), 0.0)
    kl = torch.zeros(len(ctx), dtype=torch.float64).index_add_(0, h, terms)
    rest = V - torch.bincount(h, minlength=len(ctx)).double()
    bp, bq = log_beta
    kl += torch.where(bp > -math.inf, rest * (bp - math.log(V)).exp() * (bp - bq), 0.0)
    return kl


def score_name(log_probs: torch.Tensor, vocab: Vocab, name: str) -> dict:
    """Every prediction in .name. (its context and next character, a bigram at order 2) with P and
    log P, the total log-likelihood and the NLL per prediction."""
    ids = torch.tensor([BOUNDARY_ID, *vocab.encode(name), BOUNDARY_ID])
    lp = log_probs.to(torch.float64).cpu()
    C, V = lp.shape
    rows, nxt = context_rows(ids, C, V)
    logp = lp[rows, nxt].tolist()

    def context(row: int) -> str:  # the N−1 tokens before, oldest first
        return "".join(map(vocab.token, context_ids(row, C, V)))

    # the keys keep their bigram names at every order (one schema for scripts): "bigram" is the
    # context followed by the predicted token
    bigrams = [
        {"bigram": context(r) + vocab.token(y), "context": context(r), "next": vocab.token(y)}
        | {"prob": math.exp(v), "log_prob": v}
        for r, y, v in zip(rows.tolist(), nxt.tolist(), logp, strict=True)
    ]
    ll = math.fsum(logp) if all(v > -math.inf for v in logp) else -math.inf
    return {"name": name, "log_likelihood": ll, "nll": -ll / len(logp), "bigrams": bigrams}


def format_table(results: dict[str, dict[str, dict]], order: int = 2) -> str:
    """{model: {split: metrics}} as a text table, its columns as wide as their longest entry
    (a long split label, or a count of 9+ digits, widens its column instead of shifting the row).
    The count column is named after the order's n-grams: one per predicted character."""
    cells = [
        (model, split, f"{m['bigrams']:,}") for model, per in results.items() for split, m in per.items()
    ]
    w_model, w_split, w_n = (
        max([least] + [len(c[i]) + 2 for c in cells]) for i, least in enumerate((8, 12, 10))
    )
    grams = gram_name(order) + "s"
    w_n = max(w_n, len(grams) + 2)
    head = (
        f"{'model':<{w_model}}{'split':<{w_split}}{grams:>{w_n}}{'NLL':>10}{'perplexity':>12}"
        f"{'bits/char':>11}{'entropy':>10}{'KL(data‖model)':>16}"
    )
    rows = [head, "-" * len(head)]
    for model, per in results.items():
        for split, m in per.items():
            rows.append(
                f"{model:<{w_model}}{split:<{w_split}}{m['bigrams']:>{w_n},}{cell(m['nll'], 10, 6)}"
                f"{cell(m['perplexity'], 12, 4)}{cell(m['bits_per_char'], 11, 4)}"
                f"{cell(m.get('entropy', math.nan), 10, 6)}{cell(m.get('kl', math.nan), 16, 6)}"
            )
    return "\n".join(rows)


def cell(x: float, width: int, digits: int) -> str:
    """x right-aligned in `width` with at least one space before it: fixed point where it fits,
    else scientific; inf and nan as they are. So a diverged model's row keeps the columns.

    >>> cell(2.5, 10, 6), cell(5.8e21, 10, 6), cell(float("inf"), 10, 6)
    ('  2.500000', '   5.8e+21', '       inf')
    """
    text = f"{x:.{digits}f}"
    if len(text) >= width:
        text = f"{x:.{max(0, width - 9)}e}"
    return f"{text:>{width}}"


def format_score(s: dict) -> str:
    """A score_name result as text: one line per bigram, then the totals."""
    lines = [f"{s['name']}"]
    width = max([4] + [len(b["bigram"]) + 1 for b in s["bigrams"]])
    lines += [
        f"  {b['bigram']:<{width}} P = {b['prob']:.6f}   log P = {b['log_prob']:9.4f}" for b in s["bigrams"]
    ]
    n = len(s["bigrams"])
    unit = "bigram" if all(len(b["bigram"]) == 2 for b in s["bigrams"]) else "prediction"
    lines.append(
        f"  likelihood = {math.exp(s['log_likelihood']):.4g}   log-likelihood = {s['log_likelihood']:.4f}"
        f"   NLL = {s['nll']:.4f} nats/{unit} over {n} {unit}s"
    )
    return "\n".join(lines)


def format_kl(kl: dict[str, float], order: int) -> str:
    """eval's KL(count ‖ neural) per split, under a line that says how the rows are weighted."""
    each = "previous character" if order == 2 else "context"
    lines = [f"KL(count ‖ neural), rows weighted by how often each {each} occurs:"]
    return "\n".join(lines + [f"  {s:<10} {v:.6f} nats/{gram_name(order)}" for s, v in kl.items()])


def format_reg_sweep(rows: list[dict]) -> str:
    """One line per reg: the neural model's NLL on each split, the add-k k it is closest to, and
    its KL from that count model."""
    splits = list(rows[0]["metrics"])
    head = "".join(f"{s + ' NLL':>12}" for s in splits)
    lines = [f"{'reg':>8}{head}{'≈ add-k':>11}{'KL':>10}"]
    for r in rows:
        nll = "".join(cell(r["metrics"][s]["nll"], 12, 6) for s in splits)
        lines.append(f"{r['reg']:>8g}{nll}{r['equivalent_k']:>11.4g}{r['kl']:>10.2e}")
    return "\n".join(lines)


def format_order_sweep(rows: list[dict]) -> str:
    """One line per order and model: its NLL on each split, and its k or reg."""
    splits = list(next(iter(rows[0]["metrics"].values())))
    head = "".join(f"{s + ' NLL':>12}" for s in splits)
    lines = [f"{'order':>5}  {'model':<8}{head}   smoothing/reg"]
    for r in rows:
        for model, per in r["metrics"].items():
            columns = [(per, "Kneser-Ney" if r["k"] == "kn" else f"k = {r['k']:.4g}")]
            if model == "neural":
                columns = [(per, f"reg = {r['reg']:.4g}")]
            elif "candidates" in r:  # auto weighed both on val: the saved one is marked
                mark = {True: "  ← best on val, saved", False: ""}
                knobs = {"add-k": f"add-k k = {r['add_k']:.4g}", "kn": "Kneser-Ney"}
                columns = [(m, knobs[name] + mark[(name == "kn") == (r["k"] == "kn")]) for name, m in
                         r["candidates"].items()]  # fmt: skip
            for m, knob in columns:
                nll = "".join(cell(m[s]["nll"], 12, 6) if s in m else f"{'':>12}" for s in splits)
                lines.append(f"{r['order']:>5}  {model:<8}{nll}   {knob}")
    return "\n".join(lines)


def format_mix(nll: list[float], parents: list[dict], test_nll: dict[str, float], where: str) -> str:
    """mix's report: EM's held-out NLL on `where` per iteration, six to a line (none for given
    weights), each parent's weight, and the test NLL of each parent and the mix (if a test split)."""
    lines = [f"EM on {where}: held-out NLL per iteration"] if nll else []
    lines += [f"  {i:>3}: " + " ".join(f"{x:.6f}" for x in nll[i : i + 6]) for i in range(0, len(nll), 6)]
    lines.append("weights:")
    lines += [
        f"  {p['weight']:.6f}  {escaped(p['run'])} ({p['model']} model, order {p['order']})" for p in parents
    ]
    if test_nll:
        lines.append("test NLL: " + ", ".join(f"{escaped(k)} {v:.6f}" for k, v in test_nll.items()))
    return "\n".join(lines)


def names_json(
    blocks: Iterable[list[str]], log_probs: torch.Tensor, vocab: Vocab, extra: dict | None = None
) -> Iterator[str]:
    """One JSON list of each name's log_likelihoods (and the keys of `extra`, the same in every
    entry), as text a block of names at a time (a list of millions is never held): "[" once the
    first block is drawn, so a refusal before it prints nothing, and no raw control character
    (text.json_safe)."""
    opened, written = False, 0
    for names in blocks:
        text, opened = ("" if opened else "["), True
        if names:
            entries = log_likelihoods(log_probs, vocab, names)
            if extra:
                entries = [{**e, **extra} for e in entries]
            items = json.dumps(entries, indent=2, ensure_ascii=False)
            text += ("," if written else "") + "\n" + json_safe(items)[1:-1].strip("\n")  # no brackets
            written += len(names)
        yield text
    yield ("" if opened else "[") + "\n]\n"


def log_likelihoods(log_probs: torch.Tensor, vocab: Vocab, names: list[str]) -> list[dict]:
    """{"name", "log_likelihood", "nll"} for many names at once: one gather, one index_add."""
    ll, n_bigrams = name_log_likelihoods(log_probs, vocab, names)
    return [
        {"name": w, "log_likelihood": x, "nll": -x / b}
        for w, x, b in zip(names, ll.tolist(), n_bigrams.tolist(), strict=True)
    ]


def name_log_likelihoods(log_probs, vocab: Vocab, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-likelihood, predictions) of each name, vectorized over all of them: the corpus's ids,
    one read of the table, one index_add. A name holding a character outside the vocabulary has
    probability 0 under the model: log-likelihood −inf.

    >>> t = torch.tensor([[0.1, 0.9], [0.5, 0.5]]).log()  # boundary, then "a"
    >>> ll, n = name_log_likelihoods(t, Vocab(("a",)), ["a", "b"])
    >>> round(float(ll[0]), 4), float(ll[1]), n.tolist()  # log(0.9 · 0.5); "b" is unknown
    (-0.7985, -inf, [2, 2])
    """
    if not names:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.int64)
    ids = vocab.encode_corpus(names, unknown=-1)
    starts = ids[:-1] == BOUNDARY_ID  # a name's first prediction reads the boundary before it
    seg = starts.cumsum(0) - 1  # each prediction's name
    n_bigrams = torch.bincount(seg, minlength=len(names))
    unknown = torch.zeros(len(names), dtype=torch.bool)
    unknown[seg[(ids[1:] < 0).nonzero().squeeze(1)]] = True  # the name a position's bigram ends in
    ids[ids < 0] = min(1, vocab.size - 1)  # a character, not a boundary: the names stay apart
    rows, nxt = context_rows(ids, *log_probs.shape)
    lp = log_probs[rows, nxt].to(torch.float64).cpu()
    ll = torch.zeros(len(names), dtype=torch.float64).index_add_(0, seg, lp)
    return ll.masked_fill_(unknown, -math.inf), n_bigrams
