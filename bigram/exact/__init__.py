"""exact/: sampling under constraints, exactly: conditioning instead of rejection.

    chain.py         the Markov chain a table defines, contexts no walk can tell apart merged
    conditioning.py  --start/--end/--min-len/--max-len: backward messages, and the K most likely names
    automaton.py     --pattern/--contains/--not-contains/--blocklist: regex → DFA, on (context, state)

Both plans (conditioning.Plan, automaton.Plan) answer `.draw(n, generator)` and `.best(k, ...)`.
Layer 4 (sampling): imports bigram.counts, bigram.vocab, bigram.options and the layers below;
bigram.sampling imports it, never the other way.
"""
