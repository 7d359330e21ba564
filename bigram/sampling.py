"""Generating names from a table of log P(next | context) (bigram.backoff.Table, or a C×V tensor).

The lecture's loop, batched: start every name at the boundary, draw its next character from its
row of P, stop a name when it draws the boundary again (`sample_plain`; the rows of the names'
contexts are read a block at a time, never the whole table). What `bigram sample` adds on top,
each in one place:

- `adjust`: temperature, top-k and top-p, applied to every row of P before anything else;
- `sample_blocks` / `sample`: any number of names in blocks of constant memory, the same seed
  giving the same names, `--novel`/`--unique` by redrawing, and constraints (a prefix, a suffix,
  a length range, patterns) met *exactly*, by conditioning rather than rejection. The drawing is
  the exact plan's walk (exact/plans.py chooses conditioning.py's, or automaton.py's for
  patterns): without constraints it is the loop above, one searchsorted per character position
  for all names at once;
- `most_likely`: the K most probable names meeting the constraints (the same plan's A*).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from bigram.backoff import Table
from bigram.counts import successor
from bigram.errors import BigramError
from bigram.exact import chain, plans
from bigram.exact.constraints import Constraints, Patterns, SearchStopped
from bigram.exact.sparse import SparseChain, chunks
from bigram.options import MAX_STEPS, check_affixes, check_count, check_seed, check_shape
from bigram.vocab import BOUNDARY_ID, Vocab

__all__ = [
    "Constraints", "SearchStopped", "adjust", "most_likely", "plan_for", "sample", "sample_blocks",
    "sample_plain",
]  # fmt: skip


def adjust(
    log_probs: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Each row of P: raised to 1/T and renormalized, then cut to its top-k entries, then to the
    smallest set whose mass reaches top-p, renormalized. Returns float64 probabilities."""
    check_shape(temperature, top_k, top_p)
    lp = log_probs.to(torch.float64)
    if temperature == 1 and top_k is None and top_p is None:  # the table as it is: one V×V exp
        return lp.exp_() if lp is not log_probs else lp.exp()  # never change the caller's table
    # one V×V allocation (a V = 4,500 table is 160 MB in float64)
    p = torch.log_softmax(lp if temperature == 1 else lp / temperature, dim=1).exp_()
    V = p.shape[1]
    if top_k is not None and top_k < V:
        kth = p.topk(top_k, dim=1).values[:, -1:]
        p = torch.where(p >= kth, p, 0.0)
    if top_p is not None:
        sp, order = p.sort(dim=1, descending=True)
        before = sp.cumsum(1) - sp  # mass of the entries ranked above each one
        keep_sorted = before < top_p * sp.sum(1, keepdim=True)  # keeps the first entry always
        p = torch.zeros_like(p).scatter(1, order, torch.where(keep_sorted, sp, 0.0))
    return p.div_(p.sum(1, keepdim=True))


def chain_of(
    log_probs: Table | torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> chain.Chain | SparseChain:
    """The Markov chain walks follow: the table adjusted, its contexts merged where a walk cannot
    tell them apart (chain.py; order ≥ 3), or for a sparse table its known contexts and their
    prefixes (exact/sparse.py), so what follows costs the states, not V^(N−1)."""
    check_shape(temperature, top_k, top_p)
    V = log_probs.shape[1]
    cut = (top_k is not None and top_k < V) or (top_p is not None and top_p < 1)
    return chain.of_table(log_probs, lambda rows: adjust(rows, temperature, top_k, top_p), temperature, cut)


def plan_for(
    log_probs: Table | torch.Tensor,
    vocab: Vocab,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    constraints: Constraints = Constraints(),
    patterns: Patterns = Patterns(),
) -> plans.Plan:
    """The exact plan of a request: what the constraints fix under the adjusted table, computed
    once. Its names (`sample_blocks`, `most_likely`, given it as `plan`) and P(the constraints)
    (`plan.log_mass()`) come from the same messages."""
    check_affixes(constraints.start, constraints.end)
    return plans.plan(chain_of(log_probs, temperature, top_k, top_p), vocab, constraints, patterns)


LECTURE_SEED = 2147483647  # the lecture's torch.Generator().manual_seed(2147483647)
LECTURE_MAX = 100_000  # the lecture's loop is one torch call per character: a teaching path, not a fast one


def lecture_names(
    log_probs: Table | torch.Tensor, vocab: Vocab, n: int, seed: int = LECTURE_SEED
) -> Iterator[str]:
    """The lecture's sampling loop, call for call: one generator, names one after another, each
    character one `torch.multinomial(p, num_samples=1, replacement=True, generator=g)` on the
    float32 row of the current context, until the boundary is drawn. Each name is yielded as the
    lecture prints it, the boundary included (the lecture's add-one count model of names.txt with
    its seed starts cexze., momasurailezitynn., konimittain.). No constraint, no reshaping. A
    table held whole is P as the lecture makes it; a large one gives one row a character. A name
    still going after MAX_STEPS characters is a BigramError, as in the other samplers (a model that
    almost never ends a name would otherwise keep the loop going for ever).

    >>> lp = torch.tensor([[0.0, 1.0], [0.5, 0.5]]).log()  # boundary → 'a'; after 'a': end or 'a'
    >>> vocab = Vocab(("a",))
    >>> list(lecture_names(lp, vocab, 3, seed=0))  # each begins with 'a', then ends or not
    ['a.', 'a.', 'aa.']
    """
    if not 0 <= n <= LECTURE_MAX:
        raise BigramError(f"-n {n:,} --lecture: its loop draws one character a call; at most {LECTURE_MAX:,}")
    check_seed(seed)
    C, V = log_probs.shape
    dense = log_probs if isinstance(log_probs, torch.Tensor) else log_probs.dense
    P = None if dense is None else dense.exp().float()  # the lecture's P: float32 rows

    def row_of(context: int) -> torch.Tensor:  # a large table: the one row read when it is needed
        return P[context] if P is not None else log_probs.rows(torch.tensor([context]))[0].exp().float()

    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        out, row = [], 0
        for _ in range(MAX_STEPS + 1):  # the characters, then the boundary
            ix = torch.multinomial(row_of(row), num_samples=1, replacement=True, generator=g).item()
            out.append(vocab.token(ix))
            if ix == BOUNDARY_ID:
                break
            row = 0 if C == 1 else row % (C // V) * V + ix  # successor(): the context after ix
        else:
            raise BigramError(
                f"--lecture: name {i + 1:,} did not end within {MAX_STEPS:,} characters: the model rarely "
                "ends names (the lecture's loop takes no --max-len: sample without --lecture, with --max-len)"
            )
        yield "".join(out)


def make_generator(seed: int | None) -> torch.Generator:
    check_seed(seed)
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


def sample_plain(
    log_probs: Table | torch.Tensor, vocab: Vocab, n: int, *, seed: int, max_len: int
) -> list[str]:
    """The lecture's sampling loop, batched: every unfinished name draws its next character with
    one torch.multinomial per *position*, from its context's row of P (only those rows are ever
    made, a block of rows at a time: a big vocabulary costs n·V a position in bounded memory, not
    V² or C·V; the blocks draw what one call would). A name still going after max_len characters
    is cut there and shown with "…" (an undertrained model over thousands of characters rarely
    ends a name).

    >>> sample_plain(torch.tensor([[-9.0, 0.0], [0.0, -9.0]]), Vocab(("a",)), 2, seed=0, max_len=5)
    ['a', 'a']
    """
    g = make_generator(seed)
    C, V = log_probs.shape
    ids = torch.zeros(n, max_len, dtype=torch.long)
    prev = torch.zeros(n, dtype=torch.long)  # every name starts after the boundary (context row 0)
    going = torch.arange(n)
    for pos in range(max_len):
        if not len(going):
            break
        nxt = torch.empty(len(going), dtype=torch.long)
        ctx = prev[going]
        for sl in chunks(len(going), V):  # rows a block at a time: one generator, the same draws
            nxt[sl] = torch.multinomial(log_probs[ctx[sl]].double().exp(), 1, generator=g).squeeze(1)
        ids[going, pos] = nxt
        prev[going] = successor(prev[going], nxt, C, V)
        going = going[nxt != BOUNDARY_ID]
    names = decode_ids(ids, vocab)
    cut = set(going.tolist())
    return [name + "…" if i in cut else name for i, name in enumerate(names)]


def decode_ids(ids: torch.Tensor, vocab: Vocab) -> list[str]:
    """Rows of ids (0 after each name) to strings, with one tensor gather and one decode."""
    n, L = ids.shape
    ids = torch.cat([ids, torch.zeros(n, 1, dtype=torch.long)], 1)
    lengths = (ids != BOUNDARY_ID).sum(1)
    keep = torch.arange(L + 1)[None, :] <= lengths[:, None]  # each name and the boundary after it
    return vocab.decode_flat(ids[keep])


BLOCK = 1 << 17  # names drawn at once; larger requests stream block after block (constant memory)


def sample_blocks(
    log_probs: Table | torch.Tensor,
    vocab: Vocab,
    n: int,
    *,
    seed: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    constraints: Constraints = Constraints(),
    exclude: set[str] | None = None,
    unique: bool = False,
    max_rounds: int = 50,
    patterns: Patterns = Patterns(),
    plan: plans.Plan | None = None,
) -> Iterator[list[str]]:
    """n names in blocks of at most BLOCK, drawn from the table (adjusted by temperature/top-k/
    top-p) and conditioned exactly on the constraints. One generator runs through all blocks, so
    the same seed gives the same names, and memory stays that of one block whatever n is.

    `exclude` (names to leave out, e.g. the training corpus) and `unique` are met by drawing more
    rounds; after `max_rounds` without enough names it is a BigramError. So is the text rule,
    when the vocabulary holds white space: a walk that begins or ends with it is no name the rule
    can make (it strips every line), so it is drawn again; the names are then exactly the model's
    distribution conditioned on being names, each with the likelihood `score` gives it.

    `plan`: the request's plan_for, when the caller built it already (to print P(the constraints)
    first); the adjustments and constraints are then the plan's."""
    check_count(n, unique)
    if plan is None:
        plan = plan_for(log_probs, vocab, temperature=temperature, top_k=top_k, top_p=top_p,
                        constraints=constraints, patterns=patterns)  # fmt: skip
    g = make_generator(seed)
    seen: set[str] = set()
    spaced = any(ch.isspace() for ch in vocab.chars)

    def keep(name: str) -> bool:  # the text rule, --novel and --unique
        if (spaced and name != name.strip()) or (exclude and name in exclude) or (unique and name in seen):
            return False
        seen.add(name)
        return True

    filtered = spaced or bool(exclude) or unique
    given = 0
    while given < n:
        size = min(n - given, BLOCK)
        block = _draw_kept(plan, size, g, keep, max_rounds) if filtered else plan.draw(size, g)
        if len(block) < size:
            what = " and ".join(w for w, on in (("novel", bool(exclude)), ("unique", unique)) if on)
            why = " (a walk that begins or ends with white space is no name: drawn again)" if spaced else ""
            raise BigramError(
                f"only {given + len(block):,} of {n:,} {what + ' ' if what else ''}names after {max_rounds} "
                f"rounds of sampling{why}: the model (with these constraints) cannot produce enough; ask "
                "for fewer or relax the constraints"
            )
        given += size
        yield block


def _draw_kept(plan: plans.Plan, size: int, g: torch.Generator, keep, max_rounds: int) -> list[str]:
    """Up to `size` names that `keep` accepts, drawn in at most `max_rounds` rounds (each asks for
    twice what is missing, at least 64)."""
    out: list[str] = []
    for _ in range(max_rounds):
        for name in plan.draw(max(2 * (size - len(out)), 64), g):
            if keep(name):
                out.append(name)
                if len(out) == size:
                    return out
    return out


def sample(log_probs: Table | torch.Tensor, vocab: Vocab, n: int, **kwargs) -> list[str]:
    """n names as one list (see sample_blocks for the options); the same seed gives the same names."""
    return [name for block in sample_blocks(log_probs, vocab, n, **kwargs) for name in block]


def most_likely(
    log_probs: Table | torch.Tensor,
    vocab: Vocab,
    k: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    constraints: Constraints = Constraints(),
    exclude: set[str] | None = None,
    max_queued: int = 2_000_000,
    patterns: Patterns = Patterns(),
    plan: plans.Plan | None = None,
) -> list[tuple[str, float]]:
    """The k most probable names meeting the constraints, most probable first, with their log
    probability under the adjusted table (see plans.Plan.best); `plan` as in sample_blocks."""
    if plan is None:
        plan = plan_for(log_probs, vocab, temperature=temperature, top_k=top_k, top_p=top_p,
                        constraints=constraints, patterns=patterns)  # fmt: skip
    return plan.best(k, exclude=exclude, max_queued=max_queued)
