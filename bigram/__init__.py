"""bigram: character-level bigram language models, from counts to a one-hot neural net.

In a notebook:

    import bigram
    run = bigram.load_run()              # the newest run under runs/ (or a path)
    run.sample(10, seed=0)               # names
    run.score("emma")                    # every bigram's P and log P, the log-likelihood, the NLL
    run.log_probs("count")               # the V×V table of log P(next | prev)
    run.counts("train")                  # the V×V count matrix

Importing the package is cheap; torch loads when a submodule that needs it is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from bigram.runs import Run

__version__ = "0.1.0"


def load_run(path: str | Path | None = None) -> Run:
    """A trained run: its vocabulary, config, model tables, counts, and sample/score/evaluate."""
    from bigram.runs import Run

    return Run.open(path)
