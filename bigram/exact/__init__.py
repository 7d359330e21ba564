"""exact/: sampling under constraints, exactly: conditioning instead of rejection.

    constraints.py   what a request asks (Constraints, Patterns) and SearchStopped: plain dataclasses
    plans.py         the one interface: `plan(...)` chooses the engine; every plan answers
                     `.draw(n, generator)` and `.best(k, ...)`
    chain.py         the Markov chain a table defines, contexts no walk can tell apart merged
    conditioning.py  --start/--end/--min-len/--max-len: backward messages, and the K most likely names
    automaton.py     --pattern/--contains/--not-contains/--blocklist: the plan on (context, DFA state)
    dfa.py           automata by character class: Aho–Corasick, prefix, suffix, product (tensor-built)
    regex.py         --pattern → DFA, its size bounded from the parse before anything is built
    sparse.py        the chain of a sparse table (bigram.backoff): its known contexts and their
                     prefixes as states, rows and products without any K×V matrix
    sparse_automaton.py  automaton.py's plan over that chain
    mixed.py         the chain of a mix kept as its parts (bigram.mixture): their sparse chains summed

plans.py imports an engine only when a request needs it (automaton.py only for patterns).
Layer 4 (sampling): imports bigram.counts, bigram.vocab, bigram.options and the layers below;
bigram.sampling imports it, never the other way.
"""
