"""reader/: any names file → per-split n-gram counts, streamed in bounded memory.

    corpus.py       the one reader: chunks, the random and hash splits, torchrun byte ranges
    kernels.py      its inner loops, compiled by numba
    numba_cache.py  where numba caches the compiled loops, and the one line said at the first compile

Layer 1 (reading): imports the base layer (bigram.errors, text, config, safety/), bigram.vocab and
each other; never counts, models or anything above them.
"""
