"""The chain of a mix kept as its parts (bigram.mixture.Mixture), in the parts' memory.

A mix of parts over different vocabularies (or with different unigram rows) is no compact table
in backoff form: written as one, every context lists every token (bigram.mixture.backoff_form),
V² entries for two runs over disjoint alphabets. Its chain is built from the parts instead.

The states are S of exact/sparse.py for the contexts the mix knows (`Mixture.known_keys`): a
mix's row depends only on its longest known suffix, and each part's known contexts are among
the mix's, so part i's row at state s is its row at s, and for every token w it does not list
there, Pᵢ(w | s) = β̃ᵢ(s)·Pᵢ(w | parent(s)) (β̃ᵢ = βᵢ where part i knows s, else 1): each part is
a SparseChain over the mix's states (its own rows, the mix's successors). The mix's row is a
weighted sum of the parts' rows, with weights that depend on the state (a part sits out after a
token it lacks, and the others are renormalized: `mixture.leaf_weights`):

    Q(s, c) = Σᵢ cᵢ(s)·Qᵢ(s, c) + u(s)/V,    so (Q·v)(s) = Σᵢ cᵢ(s)·(Qᵢ·v)(s) + u(s)·(uniform·v)(s)

and every product costs the parts' entries plus K per part, never K×V. A small chain (K·V ≤
DENSE_CHAIN) is made dense from the same rows. Temperature reshapes the sum's rows, which no
longer split by part: for it (and for --pattern, whose plan reads one backoff table), the mix is
written as one table in backoff form where that is affordable, and refused in one line where not.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

from bigram.backoff import Level, Table
from bigram.exact.sparse import RowReads, SparseChain, States, _ranges

_I64 = torch.int64
MAX_PART_STATES = 1 << 24  # a part's chain per table and state: ~100 bytes each (1.6 GB at most)


def _shell(mix) -> Table:
    """A table that knows the mix's contexts and lists nothing: what States needs of its keys."""
    z = torch.zeros(0, dtype=_I64)
    levels: list[Level | None] = []
    for j in range(mix.order):
        keys = mix.known_keys(j)
        if keys is None:
            levels.append(None)
        else:
            none = torch.zeros(len(keys), dtype=torch.float64)
            levels.append(Level(keys, torch.zeros(len(keys) + 1, dtype=_I64), z, z.double(), none))
    return Table(mix.V, mix.order, levels)


def _part_states(shared: States, table: Table) -> States:
    """The mix's states, reading one part's rows: the same keys, parents and children, with the
    part's own rows (−1 where it does not know a state) and its levels (none above its order)."""
    st = copy.copy(shared)
    N = shared.N
    st.table = Table(table.V, N, [*table.levels, *([None] * (N - table.order))])
    st.own = torch.full((shared.K,), -1, dtype=_I64)
    for i in range(N):
        lv = st.table.levels[i]
        if lv is not None and len(lv):
            lo, hi = shared.offset[i], shared.offset[i + 1]
            row, known = lv.find(shared.keys[i])
            st.own[lo:hi] = torch.where(known, row, -1)
    st._root_row = None
    return st


class MixChain(RowReads):
    """What chain.Chain and SparseChain answer (the products, rows, draws' and searches' needs),
    for a mix: a SparseChain per part over the mix's states, summed with per-state weights."""

    merged = True
    cut = False
    exact_max = False  # Qmax: Σ of the parts' bounds

    def __init__(self, mix, states: States | None = None):
        from bigram.errors import BigramError
        from bigram.mixture import _leaves

        self.mix = mix
        self.states = st = states if states is not None else States(_shell(mix))
        self.K, self.V, self.order = st.K, st.V, st.N
        n = len(_leaves(mix)) + 1  # and the uniform row's
        if n * self.K > MAX_PART_STATES:
            raise BigramError(
                f"sampling this mix walks each of its {n - 1} tables over its {self.K:,} states "
                f"({n * self.K:,}, more than {MAX_PART_STATES:,}): sample a mix of fewer runs"
            )
        self.C, self.locate = self.V ** (self.order - 1), st.locate
        leaves, uniform = _weights(mix, st)
        if bool((uniform > 0).any()):  # states where only parts of weight 0 take part
            leaves.append((Table(self.V, self.order, [None] * self.order), uniform))
        taking = [(t, c) for t, c in leaves if bool((c > 0).any())]
        self.parts = [(c, SparseChain(_part_states(st, t), torch.exp)) for t, c in taking]
        self.end = sum(c * ch.end for c, ch in self.parts)

    def Qv(self, v: torch.Tensor) -> torch.Tensor:
        """Σ_{c ≥ 1} Q(s, c)·v[next(s, c)] for every state s: each part's product, weighted."""
        return sum(c * ch.Qv(v) for c, ch in self.parts).clamp_(min=0)

    def reach(self, can: torch.Tensor) -> torch.Tensor:
        """can, or some part taking part at s moves (c ≥ 1) to a state that can."""
        out = can.clone()
        for c, ch in self.parts:
            out |= (c > 0) & ch.reach(can)
        return out

    def Qmax(self, lv: torch.Tensor) -> torch.Tensor:
        """An upper bound of max_c log Q(s, c) + lv[next(s, c)]: max of a sum ≤ the sum of the maxes."""
        terms = torch.stack([c.log() + ch.Qmax(lv) for c, ch in self.parts])
        return torch.logsumexp(terms, 0)

    def rows(self, states: torch.Tensor, succ: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(P rows, next-state rows or None) of a block of states: len × V each; each part's rows
        made only where it takes part (after a character one part lacks, the others' alone)."""
        P = torch.zeros(len(states), self.V, dtype=torch.float64)
        filled = torch.zeros(len(states), dtype=torch.bool)
        for c, ch in self.parts:
            w = c[states]
            sel = (w > 0).nonzero().squeeze(1)
            if not len(sel):
                continue
            p = ch.rows(states[sel], False)[0].mul_(w[sel, None])
            if len(sel) == len(states):
                P.add_(p)
            elif bool(filled[sel].any()):
                P.index_add_(0, sel, p)
            else:  # rows no part wrote yet: copied (several times faster than adding)
                P.index_copy_(0, sel, p)
            filled[sel] = True
        return P, self._succ(states) if succ else None

    def _succ(self, states: torch.Tensor) -> torch.Tensor:
        """The state after each token from each of the states (States.block's second half)."""
        st = self.states
        out = st.root_succ.expand(len(states), self.V).clone()
        for cur, rows in reversed(st.ancestors(states)):
            which, child = _ranges(st.child_lo[cur], st.child_hi[cur])
            out[rows[which], st.key[child] % self.V] = child
        return out

    def prob(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """P(token | state) for tensors of one shape."""
        states, tokens = torch.broadcast_tensors(torch.as_tensor(states), torch.as_tensor(tokens))
        return sum(c[states] * ch.prob(states, tokens) for c, ch in self.parts)

    def prob_all(self, token: int) -> torch.Tensor:
        """P(token | s) for every state s."""
        return sum(c * ch.prob_all(token) for c, ch in self.parts)


def _weights(mix, st: States) -> tuple[list[tuple[Table, torch.Tensor]], torch.Tensor]:
    """Each table of the mix with its weight at every state, and the uniform row's."""
    from bigram.mixture import leaf_weights

    tables: list[Table] = []
    per: list[list[torch.Tensor]] = []
    uniform = torch.zeros(st.K, dtype=torch.float64)
    for i in range(st.N):
        lo, hi = st.offset[i], st.offset[i + 1]
        leaves, u = leaf_weights(mix, st.keys[i], i)
        if not tables:
            tables, per = [t for t, _ in leaves], [[] for _ in leaves]
        for k, (_, c) in enumerate(leaves):
            per[k].append(c)
        uniform[lo:hi] = u
    return [(t, torch.cat(c)) for t, c in zip(tables, per, strict=True)], uniform


def of_mixture(mix, adjust: Callable[[Tensor], Tensor], temperature: float, cut: bool, dense: int):
    """What chain.of_table makes of a mix (`adjust` reshapes its rows): the MixChain, for the
    table as it is; cut by --top-k/--top-p, every row listed (as SparseChain lists a table's);
    else, and wherever K·V ≤ `dense` (chain.of_table then holds it as K×V matrices), its one
    backoff table (a Table: a small one always fits; a large one may be refused in one line)."""
    from bigram.mixture import backoff_form

    states = States(_shell(mix))
    big = dense < states.K * states.V
    if big and temperature == 1 and not cut:
        return MixChain(mix, states)
    if big and cut:
        return SparseChain(_MixRows(MixChain(mix, states)), adjust, temperature, cut=True)
    return backoff_form(mix, "the mix, reshaped by --temperature,", fix="sample it without --temperature")


class _MixRows(States):
    """The MixChain's states, whose rows are the mix's: what a cut chain lists (SparseChain._cut)."""

    def __init__(self, mc: MixChain):  # the states are made: the MixChain's
        self.__dict__.update(mc.states.__dict__)
        self.mc = mc

    def block(self, states: torch.Tensor, succ: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        P, out = self.mc.rows(states, succ)
        return P.log(), out


def one_table(mix) -> Table:
    """The mix as one backoff table, for a --pattern's plan (exact/sparse_automaton.py reads one
    backoff weight per state): refused in one line where it would list too many entries."""
    from bigram.mixture import backoff_form

    fix = "sample it without --pattern/--contains/--not-contains/--blocklist, or sample its runs"
    return backoff_form(mix, "the mix, under a pattern or blocklist,", fix=fix)
