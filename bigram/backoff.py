"""The table in backoff form: rows only for the contexts a model knows, each listing the next
tokens it has seen, and one weight for every other token.

A context of j tokens (oldest first; a name's leading boundaries are token 0) is stored at level j
under its key Σ cᵢ·V^(j−1−i), the key `bigram.counts` gives a row of an order-(j+1) table. A
level's known contexts are sorted keys; row r lists the tokens cols[ptr[r]:ptr[r+1]] (sorted)
with their log P, and log β, its backoff weight. Reading P(w | h) for a full context h of N − 1
tokens is the ARPA rule:

    P(w | h) = P listed at the longest known suffix s of h, if s lists w
             = β(s) · P(w | s without its oldest token), otherwise (down the known suffixes),
             = 1 / V at the root, below every level.

Memory is what the model has seen: a row per known context and an entry per listed token, never
V^(N−1) rows. A small table (the bigram of a small alphabet) is kept dense too, as a fast path
that gives the same numbers.

    >>> t = Table.of_dense(torch.tensor([[0.5, 0.5], [0.25, 0.75]]).log())
    >>> t.at(torch.tensor([1]), torch.tensor([1])).exp()
    tensor([0.7500], dtype=torch.float64)
    >>> up = Table(2, 2, [None, Level.of_rows([1], [[1]], [[0.9]], [0.1 / 0.5])])  # row 1 lists token 1
    >>> up.rows(torch.tensor([0, 1])).exp()  # row 0 is unknown: uniform; row 1: 0.9, then 0.2 · 1/2
    tensor([[0.5000, 0.5000],
            [0.1000, 0.9000]], dtype=torch.float64)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DENSE_LIMIT = 1 << 20  # entries of a table also kept dense (8 MiB as float64): the fast path


@dataclass
class Level:
    """The known contexts of one length: keys (sorted), their rows in CSR form, their backoffs."""

    keys: torch.Tensor  # int64, sorted: each known context's digits base V
    ptr: torch.Tensor  # int64, len(keys) + 1: row r lists entries ptr[r] … ptr[r + 1] − 1
    cols: torch.Tensor  # int64: the listed next tokens, sorted within each row
    logp: torch.Tensor  # float64: log P(col | context) of each listed entry
    backoff: torch.Tensor  # float64, len(keys): log β(context); −inf where nothing else may follow

    @classmethod
    def of_rows(cls, keys, cols, probs, betas) -> Level:
        """A level from Python lists (one list of tokens and of probabilities per key): for examples."""
        lens = torch.tensor([len(c) for c in cols], dtype=torch.int64)
        return cls(
            torch.tensor(keys, dtype=torch.int64),
            torch.cat([torch.zeros(1, dtype=torch.int64), lens.cumsum(0)]),
            torch.tensor([c for row in cols for c in row], dtype=torch.int64),
            torch.tensor([p for row in probs for p in row], dtype=torch.float64).log(),
            torch.tensor(betas, dtype=torch.float64).log(),
        )

    @classmethod
    def of_entries(cls, rows: torch.Tensor, cols: torch.Tensor, logp: torch.Tensor, backoff_of) -> Level:
        """A level from its entries (context key, token, log P), in any order; `backoff_of(keys)`
        gives the sorted known contexts' log β."""
        V = int(cols.max()) + 1 if len(cols) else 1
        order = torch.argsort(rows * V + cols) if len(rows) else rows
        rows, cols, logp = rows[order], cols[order], logp[order]
        keys, counts = torch.unique_consecutive(rows, return_counts=True)
        ptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        return cls(keys, ptr, cols, logp.to(torch.float64), backoff_of(keys).to(torch.float64))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def entries(self) -> int:
        return len(self.cols)

    def find(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row of each key, whether it is known); the row is meaningless where it is not."""
        if not len(self.keys):
            return torch.zeros_like(keys), torch.zeros(len(keys), dtype=torch.bool)
        pos = torch.searchsorted(self.keys, keys).clamp_(max=len(self.keys) - 1)
        return pos, self.keys[pos] == keys

    def lookup(self, keys: torch.Tensor, cols: torch.Tensor, V: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(index of entry (context key, col), whether it is listed): one search among the level's
        n-gram keys key·V + col, which are sorted (keys sorted, cols sorted within a row)."""
        grams = self.grams(V)
        if not len(grams):
            return torch.zeros_like(keys), torch.zeros(len(keys), dtype=torch.bool)
        want = keys * V + cols
        pos = torch.searchsorted(grams, want).clamp_(max=len(grams) - 1)
        return pos, grams[pos] == want

    def grams(self, V: int) -> torch.Tensor:
        """The listed n-grams' keys, context·V + token, sorted (made once)."""
        if getattr(self, "_grams", None) is None:
            which = torch.repeat_interleave(torch.arange(len(self.keys)), self.ptr.diff())
            self._grams = self.keys[which] * V + self.cols
        return self._grams

    def slices(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(for every entry of the given rows, in order: which of `rows` it belongs to, its index)."""
        lo = self.ptr[rows]
        lens = self.ptr[rows + 1] - lo
        which = torch.repeat_interleave(torch.arange(len(rows)), lens)
        pos = torch.arange(int(lens.sum())) - torch.repeat_interleave(lens.cumsum(0) - lens - lo, lens)
        return which, pos

    def nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size() for t in (self.keys, self.ptr, self.cols, self.logp, self.backoff)
        )


class Table:
    """A model's table of log P(next | context) over V tokens at order N, in backoff form
    (module docstring); `dense`, when set, is the same table as a V^(N−1)×V tensor."""

    def __init__(self, V: int, order: int, levels: list[Level | None], dense: torch.Tensor | None = None):
        if len(levels) != order:
            raise ValueError(f"an order-{order} table has {order} levels (context lengths 0 … {order - 1})")
        self.V, self.order, self.levels, self.dense = V, order, levels, dense

    # --- what a C×V tensor offered ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(C, V): C = V^(N−1), the contexts an order-N table addresses (most of them unknown)."""
        return self.V ** (self.order - 1), self.V

    device = torch.device("cpu")

    def to(self, *args, **kwargs) -> Table:
        """Itself: a table is float64 on the CPU (what consumers of a tensor asked for)."""
        return self

    def cpu(self) -> Table:
        return self

    def double(self) -> Table:
        return self

    def __getitem__(self, index):
        """table[i, j]: log P at index tensors (contexts, tokens); table[rows]: those rows whole."""
        if isinstance(index, tuple):
            return self.at(*index)
        return self.rows(index)

    # --- reading ------------------------------------------------------------------------------
    def at(self, ctx: torch.Tensor, nxt: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """log P(nxt | ctx) (float64) for tensors of full context keys and tokens, by the ARPA rule
        (or of contexts of `length` < N − 1 tokens: what a shorter context reads)."""
        ctx, nxt = torch.as_tensor(ctx, dtype=torch.int64), torch.as_tensor(nxt, dtype=torch.int64)
        top = self.order - 1 if length is None else length
        if self.dense is not None and top == self.order - 1:
            return self.dense[ctx, nxt].to(torch.float64)
        shape, ctx, nxt = ctx.shape, ctx.reshape(-1), nxt.reshape(-1)
        out = torch.zeros(len(ctx), dtype=torch.float64)
        done = torch.zeros(len(ctx), dtype=torch.bool)
        for j in range(top, -1, -1):  # longest context first
            level = self.levels[j]
            if level is None or not len(level):
                continue
            idx = (~done).nonzero().squeeze(1)
            keys = ctx[idx] if j == self.order - 1 else ctx[idx] % self.V**j
            pos, hit = level.lookup(keys, nxt[idx], self.V)
            out[idx[hit]] += level.logp[pos[hit]]
            done[idx[hit]] = True
            rows, known = level.find(keys[~hit])  # the others take this context's backoff, if known
            out[idx[~hit][known]] += level.backoff[rows[known]]
        out[~done] -= math.log(self.V)  # the uniform root
        return out.view(shape)

    def rows(self, ctx: torch.Tensor) -> torch.Tensor:
        """The whole rows log P(· | ctx) of a tensor of full context keys: len(ctx) × V, float64
        (callers ask for a block of rows at a time)."""
        ctx = torch.as_tensor(ctx, dtype=torch.int64)
        if self.dense is not None:
            return self.dense[ctx].to(torch.float64)
        out = torch.full((len(ctx), self.V), -math.log(self.V), dtype=torch.float64)
        for j, level in enumerate(self.levels):  # shortest context first: longer ones overwrite
            if level is None or not len(level):
                continue
            rows, known = level.find(ctx % self.V**j)
            idx, rows = known.nonzero().squeeze(1), rows[known]
            out[idx] += level.backoff[rows].unsqueeze(1)
            which, pos = level.slices(rows)
            out[idx[which], level.cols[pos]] = level.logp[pos]
        return out

    def known(self, ctx: torch.Tensor) -> torch.Tensor:
        """The length of each full context's longest known suffix (−1: none, the root)."""
        ctx = torch.as_tensor(ctx, dtype=torch.int64)
        out = torch.full(ctx.shape, -1, dtype=torch.int64)
        for j, level in enumerate(self.levels):
            if level is not None and len(level):
                out[level.find(ctx % self.V**j)[1]] = j
        return out

    def to_dense(self) -> torch.Tensor:
        """The C×V tensor (only for a table whose C·V is small enough to hold)."""
        if self.dense is not None:
            return self.dense
        C, V = self.shape
        out = torch.empty(C, V, dtype=torch.float64)
        step = max(1, (1 << 20) // V)
        for lo in range(0, C, step):
            out[lo : lo + step] = self.rows(torch.arange(lo, min(C, lo + step)))
        return out

    @property
    def entries(self) -> int:
        """How many entries the table lists (C·V for a dense one)."""
        if self.dense is not None:
            return self.dense.numel()
        return sum(lv.entries for lv in self.levels if lv is not None)

    @property
    def contexts(self) -> int:
        """How many contexts the table knows (C for a dense one)."""
        if self.dense is not None:
            return self.dense.shape[0]
        return sum(len(lv) for lv in self.levels if lv is not None)

    def top(self) -> Level:
        """The full-length contexts' level (every one of a dense table's rows, every token listed)."""
        if self.dense is not None:
            C, V = self.dense.shape
            return Level(
                torch.arange(C), torch.arange(C + 1) * V, torch.arange(V).repeat(C),
                self.dense.reshape(-1).to(torch.float64), torch.full((C,), -math.inf, dtype=torch.float64),
            )  # fmt: skip
        return self.levels[-1] or _empty()

    # --- making one ---------------------------------------------------------------------------
    @classmethod
    def of_dense(cls, log_probs: torch.Tensor) -> Table:
        """A C×V tensor of log P as a table: every context known, every token listed."""
        from bigram.counts import order_of

        N = order_of(tuple(log_probs.shape))
        t = cls(log_probs.shape[1], N, [None] * N, log_probs.to(torch.float64))
        t.levels[-1] = t.top()
        t.levels[-1].backoff = torch.full((log_probs.shape[0],), -math.inf, dtype=torch.float64)
        return t

    def with_dense(self) -> Table:
        """The same table, kept dense too where that is small (DENSE_LIMIT entries)."""
        C, V = self.shape
        if self.dense is None and C * V <= DENSE_LIMIT:
            self.dense = self.to_dense()
        return self


def _empty() -> Level:
    z = torch.zeros(0, dtype=torch.int64)
    return Level(z, torch.zeros(1, dtype=torch.int64), z, z.double(), z.double())


def table_state(t: Table) -> dict:
    """What a checkpoint stores of a table: its order and levels (the dense copy is remade)."""
    return {
        "order": t.order,
        "levels": [
            None if lv is None else {k: getattr(lv, k) for k in ("keys", "ptr", "cols", "logp", "backoff")}
            for lv in t.levels
        ],
    }


def table_of_state(state, V: int, where: str) -> Table:
    """A table read back from a checkpoint, every part checked before it is used: a damaged or
    crafted file is one BigramError naming it, never an out-of-bounds read or a wrong number."""
    from bigram.errors import BigramError

    def bad(what: str) -> BigramError:
        return BigramError(f"{where} holds a table whose {what}: it is damaged; retrain or re-import")

    order = state.get("order") if isinstance(state, dict) else None
    levels = state.get("levels") if isinstance(state, dict) else None
    if not isinstance(order, int) or isinstance(order, bool) or order < 1 or not isinstance(levels, list):
        raise bad("order or levels are missing")
    if len(levels) != order or V**order >= 1 << 62:
        raise bad(f"levels do not match order {order}")
    out: list[Level | None] = []
    for j, lv in enumerate(levels):
        if lv is None:
            out.append(None)
            continue
        parts = [
            lv.get(k) if isinstance(lv, dict) else None for k in ("keys", "ptr", "cols", "logp", "backoff")
        ]
        dtypes = (torch.int64, torch.int64, torch.int64, torch.float64, torch.float64)
        if not all(isinstance(x, torch.Tensor) and x.dim() == 1 and x.dtype == d and x.layout == torch.strided
                   for x, d in zip(parts, dtypes, strict=True)):  # fmt: skip
            raise bad(f"level {j} is not five 1-D tensors")
        keys, ptr, cols, logp, backoff = parts
        n = len(keys)
        if len(ptr) != n + 1 or len(backoff) != n or len(logp) != len(cols) or int(ptr[0]) != 0:
            raise bad(f"level {j} has parts of mismatched lengths")
        if int(ptr[-1]) != len(cols) or bool((ptr.diff() < 0).any()):
            raise bad(f"level {j} has row offsets out of order")
        if n and (int(keys[0]) < 0 or int(keys[-1]) >= V**j or bool((keys.diff() <= 0).any())):
            raise bad(f"level {j} has context keys unsorted or outside V^{j}")
        if len(cols) and (int(cols.min()) < 0 or int(cols.max()) >= V):
            raise bad(f"level {j} lists tokens outside the vocabulary")
        which = torch.repeat_interleave(torch.arange(n), ptr.diff())
        if len(cols) > 1 and bool(((which[1:] == which[:-1]) & (cols[1:] <= cols[:-1])).any()):
            raise bad(f"level {j} lists a row's tokens unsorted or twice")
        if bool(logp.isnan().any()) or bool((logp > 1e-9).any()) or bool(backoff.isnan().any()):
            raise bad(f"level {j} holds log-probabilities that are NaN or above 0")
        if bool((backoff == math.inf).any()):
            raise bad(f"level {j} holds an infinite backoff weight")
        out.append(Level(keys, ptr, cols, logp, backoff))
    table = Table(V, order, out)
    worst = row_sum_error(table)
    if not worst <= 1e-6:
        raise bad(f"rows do not sum to one (off by {worst:.3g})")
    return table.with_dense()


def row_sum_error(table: Table) -> float:
    """The largest |Σ_w P(w | h) − 1| over the known contexts h: a row sums its listed entries
    plus β(h) times what its shorter context gives every other token, 1 − Σ_listed P(w | h′)."""
    worst = 0.0
    for j, level in enumerate(table.levels):
        if level is None or not len(level):
            continue
        which = torch.repeat_interleave(torch.arange(len(level)), level.ptr.diff())
        listed = torch.zeros(len(level), dtype=torch.float64).index_add_(0, which, level.logp.exp())
        if j == 0:
            below = level.ptr.diff().double() / table.V  # the root gives each token 1/V
        else:
            lower = _lower(table, j, level.keys[which] % table.V ** (j - 1), level.cols).exp()
            below = torch.zeros(len(level), dtype=torch.float64).index_add_(0, which, lower)
        total = listed + level.backoff.exp() * (1 - below).clamp(min=0)
        worst = max(worst, float((total - 1).abs().max()))
    return worst


def _lower(table: Table, j: int, keys: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """log P(cols | the j − 1 tokens `keys`): read straight from level j − 1 where it lists the
    entry (a Kneser-Ney table always does), by the whole ARPA rule for the others."""
    out = torch.empty(len(keys), dtype=torch.float64)
    rest = torch.ones(len(keys), dtype=torch.bool)
    below = table.levels[j - 1]
    if below is not None and len(below):
        pos, hit = below.lookup(keys, cols, table.V)
        out[hit], rest = below.logp[pos[hit]], ~hit
    out[rest] = table.at(keys[rest], cols[rest], length=j - 1)
    return out
