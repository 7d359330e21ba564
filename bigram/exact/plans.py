"""One interface to exact sampling: `plan` chooses the engine a request needs, and both engines'
plans answer `.draw(n, generator)` and `.best(k, ...)`, so their callers never ask which.

    conditioning.Plan  --start/--end/--min-len/--max-len alone: messages over the chain's states
    automaton.Plan     with --pattern/--contains/--not-contains/--blocklist: over (state, DFA state)
                       (sparse_automaton.Plan over a sparse table's SparseChain)

Each engine is imported when a request first needs it: the regex compiler costs nothing to a
command that never sees a pattern, and neither engine to one that never samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bigram.exact.constraints import Constraints, Patterns

if TYPE_CHECKING:
    import torch

    from bigram.exact.chain import Chain
    from bigram.vocab import Vocab


class Plan(Protocol):
    """What the constraints fix under one table, computed once; then any number of names."""

    def draw(self, n: int, g: torch.Generator) -> list[str]:
        """n names from the model conditioned on the constraints, exactly (the generator's stream
        decides them: the same seed, the same names)."""
        ...

    def log_mass(self) -> float:
        """log P(the constraints): the probability the table gives the names meeting them (−inf
        for none), from the same messages the names are drawn with."""
        ...

    def best(
        self, k: int, *, exclude: set[str] | None = None, max_queued: int = 2_000_000
    ) -> list[tuple[str, float]]:
        """The k most probable names meeting the constraints, most probable first, with their log
        probability; SearchStopped, carrying those found, after `max_queued` partial names."""
        ...


def plan(chain: Chain, vocab: Vocab, constraints: Constraints, patterns: Patterns = Patterns()) -> Plan:
    """The plan of a request: the automaton's when there are patterns (regular constraints are
    conditioned on (context, automaton state)), else conditioning's, which needs no automaton."""
    if patterns:
        from bigram.exact import automaton, mixed

        if isinstance(chain, mixed.MixChain):  # a mix's chain is its parts': patterns read one table
            from bigram.exact.chain import of_table

            chain = of_table(mixed.one_table(chain.mix))

        if not isinstance(chain, automaton.Chain):  # a sparse table's chain: exact/sparse_automaton.py
            from bigram.exact import sparse_automaton

            return sparse_automaton.Plan(chain, vocab, constraints, patterns)
        return automaton.Plan(chain, vocab, constraints, patterns)
    from bigram.exact import conditioning

    return conditioning.Plan(chain, vocab, constraints)
