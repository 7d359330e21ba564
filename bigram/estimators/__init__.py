"""estimators/: count models beyond add-k, estimated from the count table.

    kneser_ney.py   --smoothing kn: interpolated modified Kneser-Ney, as KenLM's lmplz estimates it

Layer 2 (counts): imports bigram.counts, bigram.vocab and the layers below; never a model,
sampling, a format or a run.
"""
