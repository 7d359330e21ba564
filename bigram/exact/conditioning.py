"""Sampling *exactly* conditioned on constraints, and the K most likely names: the machinery
behind `sample --start/--end/--min-len/--max-len` and `--most-likely` (plans.plan chooses it
when there are no patterns).

A name that starts with S, ends with E and has L ≥ |S| + |E| characters is S + M + E, where the
middle M is m = L − |S| − |E| free characters. Its probability is

    P(S) · P(M | last of S) · P(E | last of M) · P(end | last of E)

so the constraints only touch the walk through M: it starts in `first_state` (last char of S, or
the boundary) and must leave, after m ∈ [min_middle, max_middle] characters, into `target` (first
char of E, or the end boundary), with probability `leave` = P[:, target]. Backward messages

    R_j(d) = Σ_{k allowed after j+1 middle chars} (Q^k · leave)(d),   Q = P without the boundary column

give the exact probability that a walk now at d completes the constraints. Drawing the next
character ∝ P(c, d) · R_j(d) (or leaving ∝ leave(c) when the length allows) samples exactly from
the model conditioned on the constraints: no rejection, whatever their rarity. Names shorter than
|S| + |E| (where S and E overlap, e.g. "ka" starts with "ka" and ends with "a") are whole strings,
mixed in with their exact probabilities.

Every step draws the next character of *all* names with one searchsorted into the step's
cumulative rows laid end to end: one loop iteration per character position, none per name.
`Plan.best` runs A* over the same structure with max-product messages, which are an exact
heuristic, so the K best names come out in order after a handful of expansions.

In code, in this order: `fix_ends` computes what S, E and the lengths fix (`Ends`); `Middle`
holds Q and the sums of its powers; `Plan` builds the messages R_j from both and gives each
step's weights; `Plan.draw` walks all names at once (`_walk`); `Plan.best` searches (`_Search`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import torch

from bigram.counts import context_ids, gram_name, order_of, successor
from bigram.errors import BigramError
from bigram.exact.chain import Chain
from bigram.exact.constraints import Constraints, SearchStopped
from bigram.exact.sparse import chunks
from bigram.options import MAX_STEPS, check_lengths
from bigram.vocab import BOUNDARY_ID, Vocab

_DOUBLINGS = 64  # Σ_k Q^k t by doubling: 2^64 terms at most
_SOLVE_ABOVE = 256  # vocabularies larger than this solve (I − Q) h = t instead of doubling


# --- the fixed parts: S before the middle, E and the end after it ---------------------------------
@dataclass
class Ends:
    """What --start, --end and the lengths fix, whatever the middle: log P(S) and the state the
    middle starts in; `leave`, each state's probability of leaving the middle into E + end (its
    first tokens depend on where the middle left off), then the rest of E's fixed log P; the
    middle's allowed lengths; and the whole names shorter than |S| + |E|, where S and E overlap."""

    log_p_start: float
    first_state: int
    target: int  # the first token after the middle: E's first, or the boundary
    leave: torch.Tensor  # C: P(E + end | the middle left off in this state), its state-dependent part
    log_p_end: float  # the rest of E + end, the same from every state
    min_middle: int
    max_middle: int | None  # None: unbounded; < 0: no room for S + E
    overlaps: list[tuple[str, float]]  # (name, log P)


def fix_ends(chain: Chain, vocab: Vocab, c: Constraints) -> Ends:
    """The Ends of constraints `c` under the chain of a table."""
    check_lengths(c.min_len, c.max_len)
    S = vocab.encode(c.start, where=" (--start)")
    E = vocab.encode(c.end, where=" (--end)")
    log_p_start, context = fixed_path(chain, vocab, BOUNDARY_ID, S, "--start", c.start)
    # the first min(N − 1, |E| + 1) tokens of E + end depend on where the middle left off (one,
    # the first, for the bigram); after them every state has reached the same context, and the
    # rest is one fixed path
    tail, order = [*E, BOUNDARY_ID], order_of((chain.C, chain.V))
    first = max(1, min(order - 1, len(tail)))
    states, leave = torch.arange(chain.K), torch.ones(chain.K, dtype=torch.float64)
    after = BOUNDARY_ID  # any context: after the first tokens of the tail, the one they make
    for tok in tail[:first]:
        leave *= chain.prob_all(tok)[states]
        states = chain.next(states, torch.full_like(states, tok))
        after = successor(after, tok, chain.C, chain.V)
    log_p_end, _ = fixed_path(chain, vocab, after, tail[first:], "--end", c.end)
    k = len(S) + len(E)
    max_middle = None if c.max_len is None else c.max_len - k
    first_state = chain.state_of(context)
    return Ends(log_p_start, first_state, tail[0], leave, log_p_end, max(c.min_len - k, 0), max_middle,
                _overlaps(chain, vocab, c))  # fmt: skip


def _overlaps(chain: Chain, vocab: Vocab, c: Constraints) -> list[tuple[str, float]]:
    """Whole names shorter than |S| + |E| (S and E overlap and must agree), with their log P."""
    out, k = [], len(c.start) + len(c.end)
    hi = k - 1 if c.max_len is None else min(k - 1, c.max_len)
    for L in range(max(c.min_len, len(c.start), len(c.end), 1), hi + 1):
        name = c.start + c.end[k - L :]
        if name.startswith(c.start) and name.endswith(c.end):
            lp, _ = fixed_path(chain, vocab, BOUNDARY_ID, [*vocab.encode(name), BOUNDARY_ID], "", "")
            if lp > -math.inf:
                out.append((name, lp))
    return out


def fixed_path(chain: Chain, vocab: Vocab, context: int, ids: list[int], flag: str, text: str):
    """(log P, the context after) of a fixed run of tokens from one of the table's contexts; for
    a flag's text, probability 0 is an error naming the n-gram it needs."""
    lp, C, V = 0.0, chain.C, chain.V
    for b in ids:
        p = float(chain.prob(torch.tensor(chain.state_of(context)), torch.tensor(b)))
        if p == 0:
            if flag:
                gram = "".join(map(vocab.token, [*context_ids(context, C, V), b]))
                raise BigramError(
                    f"{flag} {text!r} cannot be met: it needs the {gram_name(order_of((C, V)))} {gram!r}, "
                    "which has probability 0 under this model (and its --temperature/--top-k/--top-p)"
                )
            return -math.inf, context
        lp += math.log(p)
        context = successor(context, b, C, V)
    return lp, context


# --- the middle: a walk over the chain's states that never ends -----------------------------------
class Middle:
    """The walk through the middle (data characters only: Q is P without the boundary column)
    over the chain's states, and the sums of Q's powers that the messages need. Every product
    is the chain's (chain.py: the table's contexts or their classes, as K×V matrices; or
    exact/sparse.py's SparseChain, which never makes one)."""

    def __init__(self, chain: Chain):
        self.chain, self.C, self.V = chain, chain.K, chain.V
        # the closed forms below are V×V: the dense bigram's own chain
        self.bigram = isinstance(chain, Chain) and not chain.merged and chain.C == chain.V

    @property
    def Q(self) -> torch.Tensor:
        return self.chain.Q

    def Qv(self, v: torch.Tensor) -> torch.Tensor:
        """(Q·v)(s) = Σ_c Q(s, c) · v(the state after c follows s): one more middle character."""
        return self.chain.Qv(v)

    def times_next(self, v: torch.Tensor, states: torch.Tensor | None = None) -> torch.Tensor:
        """P(s, c) · v(the state after c follows s), for every state s (or those given) and c."""
        return self.chain.weights(states, v)

    def always_ends(self, leave: torch.Tensor) -> bool:
        """From every state a walk through the middle ends with probability 1: every state can
        reach one that ends (a finite chain with no trap is absorbed), found by a reachability
        sweep over the positive entries of Q. Then Σ_k Q^k t is all ones, no solve needed."""
        can = leave > 0
        if bool(can.all()):  # every state ends in one step (any smoothed table): no sweep, no Q
            return True
        for _ in range(self.C):
            if bool(can.all()):
                return True
            new = self.chain.reach(can)
            if torch.equal(new, can):
                return False
            can = new
        return bool(can.all())

    def geometric_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Σ_{k ≥ 0} Q^k t: the probability of eventually leaving into t, from every state.

        For many states, the linear system (I − Q) h = t by GMRES (~40 products Q·v at
        V = 4,500, 0.5 s, where a factorization costs V³/3 flops, 1.7 s); for the bigram then
        one dense solve. Otherwise, or when that system is singular (states that can never
        leave), by doubling for the bigram (s ← s + Q^(2^i) s, exact to rounding after
        log2(expected length) squarings) and term by term for a C×V table (no C×C matrix)."""
        if self.C > _SOLVE_ABOVE:
            h = _gmres(self.Qv, t)
            if h is not None:
                return h.clamp_(min=0)
        if self.bigram:
            return _geometric_sum(self.Q, t)
        s, T = t.clone(), t
        for _ in range(MAX_STEPS):
            T = self.Qv(T)
            s += T
            if float(T.max()) <= 1e-17 * float(s.max()):
                return s
        raise BigramError(
            f"the constraints' sums did not settle within {MAX_STEPS:,} characters: from some contexts "
            "of this model a walk almost never ends a name (an unseen context may read a near-uniform "
            "row); pass --max-len (e.g. --max-len 50)"
        )

    def partial_sums(self, t: torch.Tensor, n: int, max_len: int | None) -> list[torch.Tensor]:
        """S_i = Σ_{k ≤ i} Q^k t for i = 0..n, stopped early once a term is below rounding."""
        sums, T = [t.clone()], t.clone()
        for _ in range(n):
            T = self.Qv(T)
            sums.append(sums[-1] + T)
            # ‖Q^k t‖ never grows (Q is substochastic): once a term is below rounding, every
            # later S_i equals this one, so a --max-len of 10⁹ costs what the names need
            if float(T.max()) <= 1e-18 * float(sums[-1].max()):
                break
            if len(sums) > MAX_STEPS:
                raise BigramError(
                    f"--max-len {max_len}: under this model names often run past {MAX_STEPS:,} "
                    "characters; pass a smaller --max-len"
                )
        return sums


# --- the plan: the fixed parts, the middle, and the backward messages between them -----------------
class Plan:
    """Everything the constraints fix, computed once from the chain of the adjusted table: the
    fixed parts (Ends: fix_ends), the middle's operator (Middle), and from them the backward
    messages R_j (`completion`) and each step's weights (`step_weights`, `row_weights`); then
    names drawn from them (`draw`) and the most probable ones (`best`), what every plan answers
    (plans.Plan)."""

    def __init__(self, chain: Chain, vocab: Vocab, c: Constraints):
        self.chain, self.vocab, self.constraints = chain, vocab, c
        self.C, self.V = chain.K, chain.V  # states (the bigram's: the last character, C = V)
        self.middle = Middle(chain)
        ends = fix_ends(chain, vocab, c)
        self.log_p_start, self.first_state, self.target = ends.log_p_start, ends.first_state, ends.target
        self.leave, self.log_p_end, self.overlaps = ends.leave, ends.log_p_end, ends.overlaps
        self.min_middle, self.max_middle = ends.min_middle, ends.max_middle
        self._messages()
        if self.log_mass_middle() == -math.inf and not self.overlaps:
            raise BigramError(self._why_impossible())

    def _why_impossible(self) -> str:
        c = self.constraints
        k = len(c.start) + len(c.end)
        if c.max_len is not None and c.max_len < k:
            return (
                f"--max-len {c.max_len} is shorter than --start {c.start!r} + --end {c.end!r} "
                f"({k} characters), and they do not overlap into a shorter name"
            )
        return (
            "no name meets these constraints with non-zero probability under this model "
            f"(start {c.start!r}, end {c.end!r}, length {c.min_len}..{c.max_len or '∞'}): relax them"
        )

    def _messages(self) -> None:
        """R after j + 1 middle chars, for every j the walk can reach (sum-product, linear)."""
        t = self.leave
        if self.max_middle is not None and self.max_middle < 0:
            self.tail, self.at_least, self.certain = None, [], False
            return
        ones = False  # base is all ones
        if self.max_middle is None:
            # when every state can end the name at every step, a walk ends with probability 1:
            # Σ_k Q^k t is all ones, no V×V solve needed (unconstrained sampling at any V)
            ones = self.target == BOUNDARY_ID and self.middle.always_ends(t)
            base = torch.ones_like(t) if ones else self.middle.geometric_sum(t)  # Σ_{k ≥ 0} Q^k t
            self.partial_sums = None
        else:
            n = self.max_middle - self.min_middle
            self.partial_sums = self.middle.partial_sums(t, n, self.constraints.max_len)
            base = self.partial_sums[-1]
        at_least = [base]  # [i] = Q^i · base: "at least i more middle chars, then as base allows"
        # ... each times e^-(its log scale): Q^i shrinks geometrically and would underflow float64
        # (--min-len 4000: e^-970). A step's weights are normalized whatever their scale (only
        # log_mass_middle reads one whole, and adds the scale back)
        self.at_least_log = [0.0]
        for i in range(self.min_middle):
            # Q·1 = 1 − P(end | d), as the rows of P sum to 1: --min-len 1 (every name) needs no Q
            nxt = 1 - self.chain.end if ones and i == 0 else self.middle.Qv(at_least[-1])
            top, log = float(nxt.max()), self.at_least_log[-1]
            if 0 < top < 1e-100:
                nxt, log = nxt / top, log + math.log(top)
            at_least.append(nxt)
            self.at_least_log.append(log)
        self.at_least = at_least
        self.tail, self.certain = base, ones  # certain: tail is all ones

    def completion(self, j: int) -> torch.Tensor:
        """R_j: completion mass from each state after j + 1 middle chars."""
        after = j + 1
        if self.max_middle is not None and after > self.max_middle:
            return torch.zeros(self.C, dtype=torch.float64)
        if after <= self.min_middle:
            return self.at_least[self.min_middle - after]
        if self.max_middle is None:
            return self.tail
        sums = self.partial_sums
        return sums[min(self.max_middle - after, len(sums) - 1)]  # past the last: converged

    def may_exit(self, j: int) -> bool:
        return j >= self.min_middle and (self.max_middle is None or j <= self.max_middle)

    def row_weights(self, j: int, states: torch.Tensor) -> torch.Tensor:
        """step_weights(j)[states] without building the V×V matrix (few names, large V)."""
        c = self.completion(j)
        # every walk completes from every state (unconstrained, past --min-len): the weights are P
        w = (
            self.chain.rows(states, False)[0]
            if self.certain and c is self.tail
            else self.middle.times_next(c, states)
        )
        w[:, BOUNDARY_ID] = self.leave[states] if self.may_exit(j) else 0.0
        return w

    def step_weights(self, j: int) -> torch.Tensor:
        """Unnormalized V×V weights of step j: column 0 = leave the middle, d ≥ 1 = go to d."""
        c = self.completion(j)
        # every walk completes from every state (unconstrained, past --min-len): the weights are P
        w = self.chain.P.clone() if self.certain and c is self.tail else self.middle.times_next(c)
        w[:, BOUNDARY_ID] = self.leave if self.may_exit(j) else 0.0
        return w

    def log_mass_middle(self) -> float:
        """log P(S) + log(mass of all allowed middles from first_state) + log P(E, end)."""
        if self.max_middle is not None and self.max_middle < 0:
            return -math.inf
        z = float(self.row_weights(0, torch.tensor([self.first_state])).sum())
        scale = self.at_least_log[self.min_middle - 1] if self.min_middle >= 1 else 0.0  # completion(0)'s
        return self.log_p_start + math.log(z) + scale + self.log_p_end if z > 0 else -math.inf

    def log_mass(self) -> float:
        """log P(the constraints): the mass of every allowed middle and of every overlap."""
        terms = [self.log_mass_middle()] + [lp for _, lp in self.overlaps]
        top = max(terms)
        return top + math.log(math.fsum(math.exp(t - top) for t in terms)) if top > -math.inf else top

    def draw(self, n: int, g: torch.Generator) -> list[str]:
        """n names from the model conditioned on the constraints, exactly: each is the middle's
        walk (_walk) between S and E, or one of the overlaps, in proportion to their mass."""
        if n == 0:
            return []
        options = [self.log_mass_middle()] + [lp for _, lp in self.overlaps]
        names = [""] * n
        which = torch.zeros(n, dtype=torch.long)
        if len(options) > 1:
            m = max(options)
            weights = torch.tensor([math.exp(o - m) for o in options], dtype=torch.float64)
            which = torch.multinomial(weights, n, replacement=True, generator=g)
        mid_rows = (which == 0).nonzero().squeeze(1).tolist()
        if mid_rows:
            middles = _walk(self, len(mid_rows), g)
            s, e = self.constraints.start, self.constraints.end
            for i, mid in zip(mid_rows, middles, strict=True):
                names[i] = s + mid + e
        for k, (name, _) in enumerate(self.overlaps, start=1):
            for i in (which == k).nonzero().squeeze(1).tolist():
                names[i] = name
        return names

    def best(
        self, k: int, *, exclude: set[str] | None = None, max_queued: int = 2_000_000
    ) -> list[tuple[str, float]]:
        """The k most probable names meeting the constraints, most probable first, with their
        log probability. A* over middles with exact max-product heuristics (_Search).

        Memory and time are bounded: after `max_queued` partial names the search stops and raises
        SearchStopped, which carries the names found so far (all exact, in order)."""
        search = _Search(self)
        out: list[tuple[str, float]] = []
        c = self.constraints
        while search.heap and len(out) < k:
            _, _, g, j, cur, path, done = heapq.heappop(search.heap)
            if done:
                name = c.start + self.vocab.decode(path) + c.end if j >= 0 else self.vocab.decode(path)
                # a name with white space at either end is none the text rule can make (it strips)
                if not (exclude and name in exclude) and name == name.strip():
                    out.append((name, g))
                continue
            if search.counter > max_queued:
                raise SearchStopped.bound(k, max_queued, out)
            search.expand(g, j, cur, path)
        return out


def _geometric_sum(Q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Σ_{k ≥ 0} Q^k t for a V×V Q (the bigram; Plan._geometric_sum tries GMRES first): one dense
    solve for a large V, else (or when the system is singular) by doubling."""
    V = Q.shape[0]
    if V > _SOLVE_ABOVE:
        try:
            h = torch.linalg.solve(torch.eye(V, dtype=Q.dtype) - Q, t)
            ok = bool(torch.isfinite(h).all()) and float(h.min()) >= -1e-12
            if ok and float((h - Q @ h - t).abs().max()) <= 1e-9:  # a true solution, not noise
                return h.clamp_(min=0)
        except torch.linalg.LinAlgError:  # singular: some states can never leave
            pass
    s, A = t.clone(), Q.clone()
    for _ in range(_DOUBLINGS):  # s = Σ_{k < 2^i} Q^k t
        inc = A @ s
        s = s + inc
        if float(inc.max()) <= 1e-17 * float(s.max()):
            break
        A = A @ A
    return s


def _gmres(Qv, t: torch.Tensor, tol: float = 1e-13, m: int = 80, restarts: int = 5):
    """h with (I − Q) h = t by restarted GMRES (Saad & Schultz 1986): the h in the span of
    t, (I − Q)t, (I − Q)²t, … that leaves the least residual, grown one product at a time.
    Q's eigenvalues cluster near 0 (most next-character distributions are spread out), so a few
    dozen products suffice. None if the residual is not below `tol`·‖t‖ by then.

    >>> Q = torch.tensor([[0.5, 0.2], [0.1, 0.3]], dtype=torch.float64)
    >>> _gmres(Q.mv, torch.tensor([0.3, 0.6], dtype=torch.float64)).round(decimals=12)  # (I − Q) h = t
    tensor([1., 1.], dtype=torch.float64)
    """
    h, scale = torch.zeros_like(t), float(t.norm())
    if scale == 0:
        return h
    m = max(8, min(m, (1 << 26) // (8 * t.numel())))  # the basis in at most 64 MB
    basis = torch.empty(m + 1, t.numel(), dtype=t.dtype)
    for _ in range(max(restarts, 240 // m)):  # a smaller basis restarts more often
        r = t - h + Qv(h)
        beta = float(r.norm())
        if beta <= tol * scale:
            return h
        basis[0], H = r / beta, torch.zeros(m + 1, m, dtype=t.dtype)
        e1 = torch.zeros(m + 1, dtype=t.dtype)
        e1[0] = beta
        for j in range(m):
            w = basis[j] - Qv(basis[j])
            for _ in range(2):  # classical Gram–Schmidt twice: as exact as modified, in 4 products
                coef = basis[: j + 1] @ w
                w -= coef @ basis[: j + 1]
                H[: j + 1, j] += coef
            H[j + 1, j] = w.norm()
            y = torch.linalg.lstsq(H[: j + 2, : j + 1], e1[: j + 2, None]).solution[:, 0]
            small = float((H[: j + 2, : j + 1] @ y - e1[: j + 2]).norm())
            if small <= tol * scale or float(H[j + 1, j]) == 0:
                break
            basis[j + 1] = w / H[j + 1, j]
        h = h + y @ basis[: len(y)]
    return h if float((t - h + Qv(h)).norm()) <= tol * scale * 10 else None


def _flat_cdf(w: torch.Tensor) -> torch.Tensor:
    """Rows normalized, cumulated and shifted by their index: one sorted vector for searchsorted.
    Works in place on `w` (a fresh V×V table): at V = 4,500 each copy would be 160 MB."""
    V = w.shape[0]
    w[w.sum(1) <= 0] = 1.0  # states that cannot complete are never visited
    w.cumsum_(1)
    w.div_(w[:, -1:].clone())
    w.add_(torch.arange(V, dtype=torch.float64)[:, None])
    return w.view(-1)


def _walk(plan: Plan, n: int, g: torch.Generator) -> list[str]:
    """n middles drawn together, as strings.

    Each step draws all unfinished names' next characters at once: the first from the one row
    they all start in; then, while fewer names than states (contexts) are left, or always for a
    SparseChain, from their own rows (names × V, a block at a time); otherwise with one
    searchsorted into the step's cumulative table laid end to end (C×V, shared by all names,
    reused while the weights stay the same). Each step keeps
    only the unfinished names' (index, character): memory is the characters drawn, not names ×
    the longest name."""
    V = plan.V
    cur = torch.full((n,), plan.first_state, dtype=torch.long)
    alive = torch.arange(n)
    who: list[torch.Tensor] = []  # per step: which names drew a character
    what: list[torch.Tensor] = []  # and which (0 = the middle ended)
    cdf_key, flat = None, None
    shared = plan.chain if isinstance(plan.chain, Chain) else None  # K×V matrices: a shared table pays
    for j in range(MAX_STEPS):
        if len(alive) == 0:
            break
        u = torch.rand(len(alive), generator=g, dtype=torch.float64).clamp_(max=1 - 1e-12)
        # which weights step j uses: without a max length they stop changing after min_middle steps
        key = min(j, plan.min_middle) if plan.max_middle is None else j
        if j == 0:  # every name is at first_state: one row serves them all
            cdf = plan.row_weights(j, cur[:1])[0].cumsum(0)
            nxt = torch.searchsorted(cdf, u * cdf[-1], right=True).clamp_(max=V - 1)
        elif shared is None or (len(alive) < plan.C and key != cdf_key):  # their own rows, a block at a time
            nxt = torch.empty(len(alive), dtype=torch.long)
            for sl in chunks(len(alive), V):
                cdf = plan.row_weights(j, cur[sl]).cumsum(1)
                pick = torch.searchsorted(cdf, (u[sl] * cdf[:, -1])[:, None], right=True)
                nxt[sl] = pick.squeeze(1).clamp_(max=V - 1)
        else:  # one shared table for every name: built once per distinct weights, then reused
            if key != cdf_key:
                cdf_key, flat = key, _flat_cdf(plan.step_weights(j))
            nxt = torch.searchsorted(flat, cur + u, right=True) - cur * V
        who.append(alive)
        what.append(nxt)
        going = nxt != BOUNDARY_ID
        alive, cur = alive[going], plan.chain.next(cur[going], nxt[going])
    else:
        raise BigramError(
            f"sampling did not end within {MAX_STEPS} characters: the model rarely ends names; pass --max-len"
        )
    if not who:
        return [""] * n
    # a stable sort by name puts each name's characters in drawing order, its 0 last
    order = torch.sort(torch.cat(who), stable=True).indices
    return plan.vocab.decode_flat(torch.cat(what)[order])


# --- the K most probable names: Plan.best's search -------------------------------------------------
class _Search:
    """Plan.best's A* queue. An entry is (−f, tie-breaker, g, j, cur, path, done):
    g     = log P of the path so far (with log P(S) and log P(E, end))
    f     = g + a bound on the best log P of any completion (the max-product messages: exact on
            K×V chains, an upper bound on a SparseChain), so the first finished entry popped is
            the most probable name, the next the second, …
    j     = how many middle characters the path has (−1: a name where --start and --end overlap)
    cur   = the state (context) the next step leaves from
    path  = the middle's ids so far
    done  = the path is a whole name (its end already in g), nothing left to extend"""

    def __init__(self, plan: Plan):
        self.plan = plan
        with torch.no_grad():
            self.best = _max_messages(plan)
        self.lt = plan.leave.log()  # leaving the middle
        self.heap: list[tuple[float, int, float, int, int, tuple[int, ...], bool]] = []
        self.counter = 0  # tie-breaker so the heap never compares paths
        for name, lp in plan.overlaps:
            self._push(lp, lp, -1, 0, tuple(plan.vocab.encode(name)), True)
        g = plan.log_p_start + plan.log_p_end
        start_h = self.h(0, plan.first_state)
        if start_h > -math.inf:
            self._push(g + start_h, g, 0, plan.first_state, (), False)
        heapq.heapify(self.heap)

    def _push(self, f: float, g: float, j: int, cur: int, path: tuple[int, ...], done: bool) -> None:
        heapq.heappush(self.heap, (-f, self.counter, g, j, cur, path, done))
        self.counter += 1

    def h(self, j: int, cur: int) -> float:
        """A bound on the best log-prob of completing from state cur having j middle chars."""
        exit_ = float(self.lt[cur]) if self.plan.may_exit(j) else -math.inf
        nxt = self.best(j)
        if nxt is None:
            return exit_
        lq, succ = self.plan.chain.log_row(cur)
        go = float((lq + nxt[succ]).max())
        return max(exit_, go)

    def expand(self, g: float, j: int, cur: int, path: tuple[int, ...]) -> None:
        """Queue a popped partial name's successors: the name ended here, and each next character."""
        if self.plan.may_exit(j) and self.lt[cur] > -math.inf:
            whole = g + float(self.lt[cur])
            self._push(whole, whole, j, cur, path, True)
        nxt = self.best(j)
        if nxt is None:
            return
        lq, succ = self.plan.chain.log_row(cur)  # log Q(cur, d), the state after d
        ahead = lq + nxt[succ]
        for d in torch.nonzero(ahead > -math.inf).squeeze(1).tolist():
            longer = g + float(lq[d])
            self._push(longer + float(nxt[succ[d]]), longer, j + 1, int(succ[d]), (*path, d), False)


_BOUND_ROUNDS = 200  # a SparseChain's unbounded-length bound: rounds from above (each one admissible)


def _max_messages(plan: Plan):
    """best(j): for each state, the max log-prob of completing after j + 1 middle chars
    (the max-product twin of Plan.completion), or None when no more characters are allowed.
    On a SparseChain, whose Qmax is an upper bound, each is an upper bound (what A* needs)."""
    lt, prop = plan.leave.log(), plan.chain.Qmax  # prop: one more middle char, best choice
    if plan.max_middle is not None and plan.max_middle < 0:
        return lambda j: None
    if plan.max_middle is None:
        sums = None
        if plan.chain.exact_max:
            base = lt.clone()
            for _ in range(plan.C + 1):  # Bellman-Ford: best paths are simple, ≤ C steps
                new = torch.maximum(lt, prop(base))
                if torch.equal(new, base):
                    break
                base = new
        else:  # from above: log 1 bounds every completion, and each round keeps a bound
            base = torch.zeros_like(lt)
            for _ in range(_BOUND_ROUNDS):
                new = torch.minimum(base, torch.maximum(lt, prop(base)))
                if torch.equal(new, base):
                    break
                base = new
    else:
        sums = [lt.clone()]
        for _ in range(plan.max_middle - plan.min_middle):
            sums.append(torch.maximum(lt, prop(sums[-1])))  # S_i = max over k ≤ i of B_k
            if torch.equal(sums[-1], sums[-2]):  # best paths are simple: fixed after ≤ C steps
                break
        base = sums[-1]
    at_least = [base]
    for _ in range(plan.min_middle):
        at_least.append(prop(at_least[-1]))

    def best(j: int) -> torch.Tensor | None:
        after = j + 1
        if plan.max_middle is not None and after > plan.max_middle:
            return None
        if after <= plan.min_middle:
            return at_least[plan.min_middle - after]
        return base if sums is None else sums[min(plan.max_middle - after, len(sums) - 1)]

    return best
