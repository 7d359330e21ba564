"""optim/: the neural model's own optimizer, beyond torch's SGD, Adam and L-BFGS.

    newton.py         --optimizer newton (the default): Newton's method row by row (the math; torch for CUDA)
    newton_kernel.py  its row step as compiled loops, and the constants of its line search

Layer 3 (models): imports bigram.reader.numba_cache, bigram.safety and the standard layers below;
fit.py imports it, never the other way.
"""
