"""A mix of models, P(w | h) = Σᵢ λᵢ Pᵢ(w | h) / Σ of the λᵢ taking part at h, kept as its parts.

`bigram mix` interpolates models that may differ in order and vocabulary. The mix is kept as
its parts, each lifted onto the union vocabulary (`lift`), and read the way a table is read
(`at`, `rows`, `known`, `levels`, `shape`): exact at any order, in the parts' memory.

Why not one table in backoff form: a mixed row would have to list every token any part lists
anywhere on its backoff chain above the uniform root, and a Kneser-Ney part's unigram row lists
every token, so every mixed row would list all V of them. Backing off to one shared mixed
unigram row instead is not exact: a token no row lists reads Σᵢ λᵢ Cᵢ(h) P⁰ᵢ(w), with Cᵢ(h) the
product of part i's backoff weights from h down, and these products differ from part to part,
so no single β(h) times one row gives it. `backoff_form` writes a mix as one such table exactly,
listing what the parts' chains list, where that is affordable (an ARPA file of a mix).

The vocabularies. A token a part lacks has probability 0 in its rows. A part never knows a
context holding a token it lacks, so it reads such a context at its longest suffix after that
token, as it reads any context it never saw. The mix knows a context when some part knows it
and, where the vocabularies differ, every single token too. Where the context's longest suffix
the mix knows holds, among the tokens a part reads, one that part lacks, the part sits out and
the others' weights are renormalized: after "è" a mix of an Italian and an English run is the
Italian run's row, as it always was. (At order 2, and wherever every context a part could read
is known, as in dense tables, this is exactly "a part sits out a context holding a token it
lacks"; only a longer context that no part knows reads differently.) Everything a row depends
on lies in that known suffix, so a walk's state is its longest known suffix, as in a table: the
states are the parts' known contexts and, where vocabularies differ, the V single tokens.

    >>> from bigram.backoff import Table
    >>> a = Table.of_dense(torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64).log())
    >>> b = Table.of_dense(torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64).log())
    >>> m = Mixture([a, b], [0.5, 0.5])
    >>> m.rows(torch.tensor([0, 1])).exp().round(decimals=12).tolist()
    [[0.7, 0.3], [0.75, 0.25]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from bigram.backoff import DENSE_LIMIT, Level, Table, _empty, table_of_state, table_state
from bigram.vocab import Vocab

MAX_DEPTH = 8  # mixes of mixes a stored mix may nest (a crafted file cannot recurse for ever)


def token_map(vocab: Vocab, union: Vocab) -> torch.Tensor:
    """Each of the vocabulary's ids → its id in the union (increasing: both are in code-point order)."""
    return torch.tensor([0, *(union.id(c) for c in vocab.chars)], dtype=torch.int64)


def _remap(keys: torch.Tensor, j: int, V: int, to_union: torch.Tensor, U: int) -> torch.Tensor:
    """Context keys of j tokens base V → base U (an increasing map of digits keeps them sorted)."""
    out = torch.zeros_like(keys)
    for d in range(j):  # oldest token first
        out = out * U + to_union[(keys // V ** (j - 1 - d)) % V]
    return out


def lift(table, vocab: Vocab, union: Vocab):
    """A table (or a mix) over `vocab` as the same model over the `union` vocabulary: its known
    contexts and listed tokens renumbered, and its root, uniform over its own V tokens, listed as
    a row of its own, so that a token it lacks reads 0 everywhere."""
    if vocab == union:
        return table
    if isinstance(table, Mixture):
        to_union = token_map(vocab, union)
        parts = [lift(p, vocab, union) for p in table.parts]
        return Mixture(parts, table.weights, [to_union[own] for own in table.own]).with_dense()
    V, U, to_union = vocab.size, union.size, token_map(vocab, union)
    root = table.at(torch.zeros(V, dtype=torch.int64), torch.arange(V), length=0)
    levels: list[Level | None] = [
        Level(torch.zeros(1, dtype=torch.int64), torch.tensor([0, V]), to_union.clone(), root,
              torch.full((1,), -math.inf, dtype=torch.float64))
    ]  # fmt: skip
    for j, lv in enumerate(table.levels[1:], 1):
        levels.append(
            None
            if lv is None
            else Level(_remap(lv.keys, j, V, to_union, U), lv.ptr, to_union[lv.cols], lv.logp, lv.backoff)
        )
    return Table(U, table.order, levels).with_dense()


def known_keys(table, j: int) -> torch.Tensor | None:
    """The sorted keys of the contexts of j tokens a table (or a mix) knows; None: none."""
    if isinstance(table, Mixture):
        return table.known_keys(j)
    level = table.levels[j] if j < table.order else None
    return level.keys if level is not None and len(level) else None


def known_within(table, ctx: torch.Tensor, length: int) -> torch.Tensor:
    """The length of the longest suffix of each context (of `length` tokens) the table knows (−1: none)."""
    out = torch.full(ctx.shape, -1, dtype=torch.int64)
    for j in range(min(length, table.order - 1) + 1):
        keys = known_keys(table, j)
        if keys is not None:
            pos = torch.searchsorted(keys, ctx % table.V**j).clamp_(max=len(keys) - 1)
            out[keys[pos] == ctx % table.V**j] = j
    return out


class Mixture:
    """Parts (tables, or mixes, over one vocabulary of V tokens) and their weights λ (summing to
    one), read as one table of order max(order of the parts). `own[i]`: the tokens part i has
    (all V when None)."""

    def __init__(self, parts: Sequence, weights: Sequence[float], own: Sequence | None = None):
        self.parts, self.weights = list(parts), [float(w) for w in weights]
        self.V, self.order = self.parts[0].V, max(p.order for p in self.parts)
        self.own = list(own) if own is not None else [torch.arange(self.V) for _ in self.parts]
        self._mask = []
        for ids in self.own:
            m = torch.zeros(self.V, dtype=torch.bool)
            m[ids] = True
            self._mask.append(None if bool(m.all()) else m)
        self._merged = any(m is not None for m in self._mask)  # vocabularies differ
        self.dense: torch.Tensor | None = None
        self._levels: list[Level | None] | None = None
        self._keys: dict[int, torch.Tensor | None] = {}

    shape = Table.shape
    device = Table.device
    to = Table.to
    cpu = Table.cpu
    double = Table.double
    __getitem__ = Table.__getitem__
    to_dense = Table.to_dense

    def _known_within(self, ctx: torch.Tensor, length: int) -> torch.Tensor:
        """The length of the longest suffix the mix knows: one some part knows or, where the
        vocabularies differ, at least the newest token (so that a part sits out after a token it
        lacks however little any part knows there)."""
        out = torch.full(ctx.shape, min(1, length) if self._merged else -1, dtype=torch.int64)
        for p in self.parts:
            out = torch.maximum(out, known_within(p, ctx, length))
        return out

    def _taking_part(self, ctx: torch.Tensor, length: int) -> list[tuple[int, torch.Tensor | None]]:
        """For each part: how many of the context's newest tokens it reads, and where it takes
        part (None: everywhere): not where the known suffix holds, among those, a token it lacks."""
        ell = self._known_within(ctx, length) if self._merged else None
        out = []
        for p, mask in zip(self.parts, self._mask, strict=True):
            n = min(length, p.order - 1)
            ok = None
            for d in range(n if mask is not None else 0):  # d: the d-th newest token
                lacks = (d < ell) & ~mask[(ctx // self.V**d) % self.V]
                ok = ~lacks if ok is None else ok & ~lacks
            out.append((n, ok))
        return out

    def _mixed(self, ctx: torch.Tensor, length: int, read) -> torch.Tensor:
        """Σ λᵢ Pᵢ / Σ λᵢ over the parts taking part, in logs; `read(part, suffix, n)` gives log Pᵢ."""
        acc, mass = None, torch.zeros(ctx.shape, dtype=torch.float64)
        for p, w, (n, ok) in zip(self.parts, self.weights, self._taking_part(ctx, length), strict=True):
            lp = read(p, ctx % self.V**n, n) + (math.log(w) if w > 0 else -math.inf)
            if ok is not None:
                lp = lp.masked_fill(~(ok.view(-1, *([1] * (lp.dim() - 1)))), -math.inf)
            acc = lp if acc is None else torch.logaddexp(acc, lp)
            mass += w if ok is None else ok.double() * w
        shape = (-1, *([1] * (acc.dim() - 1)))
        # where only parts of weight 0 take part, no row is defined: uniform, so that rows sum to one
        return torch.where(mass.view(shape) > 0, acc - mass.log().view(shape), -math.log(self.V))

    def at(self, ctx: torch.Tensor, nxt: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """log P(nxt | ctx) (float64), as Table.at (contexts of `length` tokens when given)."""
        ctx, nxt = torch.as_tensor(ctx, dtype=torch.int64), torch.as_tensor(nxt, dtype=torch.int64)
        L = self.order - 1 if length is None else length
        if self.dense is not None and length in (None, self.order - 1):
            return self.dense[ctx, nxt]
        shape, ctx, nxt = ctx.shape, ctx.reshape(-1), nxt.reshape(-1)

        def read(p, c, n):
            return p.at(c, nxt, length=None if n == p.order - 1 else n)

        return self._mixed(ctx, L, read).view(shape)

    def rows(self, ctx: torch.Tensor) -> torch.Tensor:
        """The whole rows log P(· | ctx) of full contexts: len(ctx) × V, float64."""
        ctx = torch.as_tensor(ctx, dtype=torch.int64)
        if self.dense is not None:
            return self.dense[ctx]
        return self._mixed(ctx, self.order - 1, lambda p, c, n: p.rows(c))

    def known(self, ctx: torch.Tensor) -> torch.Tensor:
        """The length of each full context's longest suffix the mix knows (−1: none): P(· | ctx)
        is the row of that suffix."""
        return self._known_within(torch.as_tensor(ctx, dtype=torch.int64), self.order - 1)

    def part_probs(self, ctx: torch.Tensor, nxt: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each part's (P(nxt | ctx), whether it takes part) at full contexts: what EM weighs."""
        out = []
        for p, (n, ok) in zip(self.parts, self._taking_part(ctx, self.order - 1), strict=True):
            P = p.at(ctx % self.V**n, nxt, length=None if n == p.order - 1 else n).exp()
            out.append((P, torch.ones_like(ctx, dtype=torch.bool) if ok is None else ok))
        return out

    @property
    def levels(self) -> list[Level | None]:
        """The contexts the mix knows (`known`), each listing the tokens some part lists there, at
        the mix's P. A mix has no single backoff weight (the module docstring): backoff is NaN; read
        every other token with `at` or `rows`."""
        if self._levels is None:
            self._levels = [self._level(j) for j in range(self.order)]
        return self._levels

    def known_keys(self, j: int) -> torch.Tensor | None:
        """The sorted keys of the contexts of j tokens the mix knows (`known`; None: none): what
        some part knows and, where the vocabularies differ, every single token. Their union only
        (no row is read): the parts' contexts, and V more."""
        if j >= self.order:
            return None
        if j not in self._keys:
            have = [k for p in self.parts if (k := known_keys(p, j)) is not None]
            if j == 1 and self._merged:  # _known_within
                have.append(torch.arange(self.V))
            self._keys[j] = torch.unique(torch.cat(have)) if have else None
        return self._keys[j]

    def _level(self, j: int) -> Level | None:
        keys, V = self.known_keys(j), self.V
        if keys is None:
            return None
        have = [p.levels[j] for p in self.parts if j < p.order and p.levels[j] is not None]
        flat = torch.unique(torch.cat([torch.zeros(0, dtype=torch.int64)] + [
            torch.repeat_interleave(lv.keys, lv.ptr.diff()) * V + lv.cols for lv in have
        ]))  # fmt: skip
        rows, cols = flat // V, flat % V
        ptr = torch.searchsorted(rows, torch.cat([keys, keys[-1:] + 1]))
        nan = torch.full((len(keys),), math.nan, dtype=torch.float64)
        return Level(keys, ptr, cols, self.at(rows, cols, length=j), nan)

    def top(self) -> Level:
        return self.levels[-1] or _empty()

    @property
    def entries(self) -> int:
        """What the parts list (the mix's memory)."""
        return sum(p.entries for p in self.parts)

    @property
    def contexts(self) -> int:
        return sum(len(lv) for lv in self.levels if lv is not None)

    def with_dense(self) -> Mixture:
        """The same mix, kept dense too where that is small (DENSE_LIMIT entries)."""
        C, V = self.shape
        if self.dense is None and C * V <= DENSE_LIMIT:
            self.dense = self.to_dense()
        return self

    # --- stored ---------------------------------------------------------------------------------
    def state(self) -> dict:
        """What a checkpoint stores: each part's table (or mix) in the union vocabulary, the tokens
        it has, its weight."""
        return {
            "order": self.order,
            "weights": torch.tensor(self.weights, dtype=torch.float64),
            "parts": [
                {"mixture": p.state()} if isinstance(p, Mixture) else {"table": table_state(p)}
                for p in self.parts
            ],
            "own": list(self.own),
        }

    @classmethod
    def of_state(cls, state, V: int, where: str, depth: int = 0) -> Mixture:
        """A mix read back from a checkpoint, every part checked (`table_of_state`)."""
        from bigram.errors import BigramError

        def bad(what: str) -> BigramError:
            return BigramError(f"{where} holds a mix whose {what}: it is damaged; re-run bigram mix")

        parts = state.get("parts") if isinstance(state, dict) else None
        weights = state.get("weights") if isinstance(state, dict) else None
        own = state.get("own") if isinstance(state, dict) else None
        if not (isinstance(parts, list) and isinstance(own, list) and len(parts) == len(own) >= 1):
            raise bad("parts are missing")
        if depth > MAX_DEPTH:
            raise bad(f"mixes nest deeper than {MAX_DEPTH}")
        w = weights if isinstance(weights, torch.Tensor) else torch.zeros(0)
        if not (w.dtype == torch.float64 and w.shape == (len(parts),) and bool(w.isfinite().all())
                and bool((w >= 0).all()) and math.isclose(float(w.sum()), 1.0)):  # fmt: skip
            raise bad("weights are not a distribution, one per part")
        for ids in own:
            if not (isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and ids.dim() == 1 and len(ids)
                    and int(ids[0]) == 0 and int(ids[-1]) < V and bool((ids.diff() > 0).all())):  # fmt: skip
                raise bad("tokens of a part are not sorted ids of the vocabulary")
        tables = []
        for p in parts:
            if isinstance(p, dict) and "mixture" in p:
                tables.append(cls.of_state(p["mixture"], V, where, depth + 1))
            else:
                tables.append(table_of_state(p.get("table") if isinstance(p, dict) else None, V, where))
        if state.get("order") != max(t.order for t in tables):
            raise bad("order is not its parts' highest")
        return cls(tables, weights.tolist(), own).with_dense()


def leaf_weights(mix: Mixture, ctx: torch.Tensor, length: int) -> tuple[list[tuple[Table, Tensor]], Tensor]:
    """A mix at contexts of `length` tokens as a sum of its tables (through mixes of mixes):
    ([(table, its weight at each context)], the weight of the uniform row), so that
    P(· | ctx) = Σ weight · P_table(· | ctx) + uniform / V, as `Mixture._mixed` reads it. What a
    walk over the mix needs, in the parts' memory (bigram.exact.mixed)."""
    shares, mass = [], torch.zeros(ctx.shape, dtype=torch.float64)
    for w, (n, ok) in zip(mix.weights, mix._taking_part(ctx, length), strict=True):
        share = torch.full(ctx.shape, w, dtype=torch.float64) if ok is None else ok.double() * w
        shares.append((n, share))
        mass += share
    norm = torch.where(mass > 0, 1 / mass, 0.0)
    leaves, uniform = [], (mass == 0).double()
    for p, (n, share) in zip(mix.parts, shares, strict=True):
        c = share * norm
        if isinstance(p, Mixture):
            inner, u = leaf_weights(p, ctx % mix.V**n, n)
            leaves += [(t, c * x) for t, x in inner]
            uniform += c * u
        else:
            leaves.append((p, c))
    return leaves, uniform


BACKOFF_LIMIT = 1 << 24  # entries a mix written as one backoff table may list (~24 bytes each)
EXPORT_FIX = "export the runs it mixes instead (mix.json names them)"


def nesting(table) -> int:
    """How deep mixes nest in a mix (0: its parts are tables; a stored mix holds at most MAX_DEPTH)."""
    if not isinstance(table, Mixture):
        return -1
    return 1 + max(nesting(p) for p in table.parts)


def _leaves(table) -> list[Table]:
    """The tables a mix is made of, through mixes of mixes."""
    return [t for p in table.parts for t in _leaves(p)] if isinstance(table, Mixture) else [table]


def _listed_on_chains(mix: Mixture, keys: torch.Tensor, j: int) -> torch.Tensor:
    """For contexts of j tokens (keys): every token some part lists at a known suffix of it, as
    sorted unique (index in keys)·V + token."""
    V, found = mix.V, [torch.zeros(0, dtype=torch.int64)]
    for t in _leaves(mix):
        for k in range(min(j, t.order - 1) + 1):
            lv = t.levels[k]
            if lv is None or not len(lv):
                continue
            rows, known = lv.find(keys % V**k)
            which, pos = lv.slices(rows[known])
            found.append(known.nonzero().squeeze(1)[which] * V + lv.cols[pos])
    return torch.unique(torch.cat(found))


def _first_unlisted(ptr: torch.Tensor, cols: torch.Tensor, V: int) -> torch.Tensor:
    """Each row's smallest token it does not list (V where it lists every token)."""
    n = len(ptr) - 1
    lens = ptr.diff()
    q = torch.arange(len(cols)) - torch.repeat_interleave(ptr[:-1], lens)  # place within the row
    which = torch.repeat_interleave(torch.arange(n), lens)
    gap = torch.where(cols != q, q, V)  # sorted cols: the first place that is not its own token
    return torch.minimum(torch.full((n,), V).scatter_reduce(0, which, gap, "amin"), lens)


def backoff_form(
    mix: Mixture, where: str = "the mix", limit: int | None = None, fix: str = EXPORT_FIX
) -> Table:
    """The mix as one table in backoff form, exactly (what an ARPA file holds). Each context the
    mix knows lists every token some part lists on its backoff chain from it (above the uniform
    root), at the mix's P. Every other token w reads, in every part, its chain's backoff weights
    times that part's root, the same for every such w: so P(w | h) = β(h) · P(w | h′) with one
    β(h) = P(w* | h) / P(w* | h′), w* the first token h does not list, h′ its longest known proper
    suffix. (Where h′ gives w* nothing, h lists every token.) A Kneser-Ney part's unigram row
    lists every token, and so does the root of a part lifted onto a larger vocabulary: such a mix
    lists V tokens per context. Refused beyond `limit` entries (default BACKOFF_LIMIT) before
    they are made: at once where every context must list a part's whole unigram row, else as soon
    as a block of contexts passes it (memory: what is listed, and one block); `fix` says what to
    do instead."""
    from bigram.errors import BigramError

    limit = BACKOFF_LIMIT if limit is None else limit
    V, leaves = mix.V, _leaves(mix)
    keys_of = [mix.known_keys(j) for j in range(mix.order)]
    widest = max((t.levels[0].entries for t in leaves if t.levels[0] is not None), default=0)
    at_least = sum(len(k) for k in keys_of if k is not None) * widest  # each context lists a whole row 0

    def refuse(n: int, why: str = ""):
        return BigramError(
            f"{where} as one backoff table would list more than {limit:,} entries "
            f"(at least {n:,}{why}): {fix}"
        )

    if at_least > limit:
        raise refuse(at_least, f": its parts' vocabularies or unigram rows differ, and V = {V:,}")
    levels = _backoff_levels(mix, keys_of, limit, refuse)
    return Table(V, mix.order, levels).with_dense()


def _backoff_levels(mix: Mixture, keys_of: list, limit: int, refuse) -> list[Level | None]:
    """backoff_form's levels, a block of contexts at a time, refused once they list over `limit`."""
    V = mix.V
    levels: list[Level | None] = []
    total, step = 0, max(1, BLOCK_ENTRIES // (V * len(_leaves(mix))))
    for j, keys in enumerate(keys_of):
        if keys is None:
            levels.append(None)
            continue
        below = Table(V, j, list(levels)) if j else None
        blocks = []
        for lo in range(0, len(keys), step):
            lens, cols, beta = _backoff_rows(mix, keys[lo : lo + step], j, below)
            total += len(cols)
            if total > limit:
                raise refuse(total)
            blocks.append((lens, cols, beta))
        lens, cols, beta = (torch.cat(x) for x in zip(*blocks, strict=True))
        ptr = torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)])
        rows = torch.repeat_interleave(keys, lens)
        levels.append(Level(keys, ptr, cols, mix.at(rows, cols, length=j), beta))
    return levels


BLOCK_ENTRIES = 1 << 20  # contexts × V × parts looked at at once by backoff_form


def _backoff_rows(mix: Mixture, keys: torch.Tensor, j: int, below: Table | None):
    """backoff_form's rows of a block of contexts of j tokens: (how many tokens each lists, the
    tokens, its log β), given the levels below (`below`)."""
    V = mix.V
    flat = _listed_on_chains(mix, keys, j)
    for _ in range(2):  # the second pass lists every token where h′ gives w* nothing
        rows, cols = flat // V, flat % V
        ptr = torch.searchsorted(rows, torch.arange(len(keys) + 1))
        star = _first_unlisted(ptr, cols, V)
        some = star < V
        lower = torch.full((len(keys),), -math.log(V), dtype=torch.float64)
        if below is not None:
            lower[some] = below.at(keys[some] % V ** (j - 1), star[some], length=j - 1)
        beta = torch.full((len(keys),), -math.inf, dtype=torch.float64)
        beta[some] = mix.at(keys[some], star[some], length=j) - lower[some]
        bad = some & (lower == -math.inf) & (beta > -math.inf)
        if not bool(bad.any()):
            break
        every = bad.nonzero().squeeze(1).unsqueeze(1) * V + torch.arange(V)
        flat = torch.unique(torch.cat([flat, every.reshape(-1)]))
    return ptr.diff(), cols, beta
