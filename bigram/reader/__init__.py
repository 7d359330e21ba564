"""reader/: any names file → per-split n-gram counts, streamed in bounded memory.

    corpus.py       the one reader: chunks, the random and hash splits, torchrun byte ranges
    lines.py        its first pass, compiled: how many names a chunk holds; line ends made "\\n"
    counting.py     its inner loop, compiled: a chunk's names → per-split n-gram counts
    shuffle.py      the random split's labels: torch.randperm's shuffle, its first places only
    numba_cache.py  where numba caches the compiled loops, and the one line said at the first compile

Layer 1 (reading): imports the base layer (bigram.errors, text, config, safety/), bigram.vocab and
each other; never counts, models or anything above them.
"""
