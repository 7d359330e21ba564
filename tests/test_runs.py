"""Reading a run back (runs.py): the Python API, bigram.load_run and Run, against plain-Python
values; a damaged config.toml refused."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
import torch

import bigram
from tests.conftest import one_line_error
from tests.reference import plain_counts


def test_python_api(lecture_runs, names):
    run = bigram.load_run(lecture_runs[1])
    assert run.vocab.size == 27
    assert run.counts("train").sum() == 228_146
    lp = run.log_probs("count")
    assert lp.shape == (27, 27) and torch.allclose(
        lp.to_dense().exp().sum(1), torch.ones(27, dtype=torch.float64)
    )
    s = run.score("emma", model="count")[0]
    assert s["name"] == "emma" and len(s["bigrams"]) == 5
    assert run.sample(5, seed=0) == run.sample(5, seed=0)
    from bigram.sampling import Constraints

    assert all(w.startswith("ka") for w in run.sample(20, seed=1, constraints=Constraints(start="ka")))
    # the three most likely names by enumeration in plain Python (add-one counts, length ≤ 3),
    # and no longer name beats the third
    c = plain_counts(names)
    letters = [chr(i) for i in range(97, 123)]
    rows = Counter()
    for (a, _), n in c.items():
        rows[a] += n

    def p(a, b):
        return (c[a, b] + 1) / (rows[a] + 27)

    def prob(w):
        chs = [None, *w, None]
        return math.prod(p(a, b) for a, b in itertools.pairwise(chs))

    cands = [a + b + d for a in letters for b in ["", *letters] for d in ["", *letters] if b or not d]
    best = sorted(cands, key=prob, reverse=True)[:3]
    # the most probable name of each length L ≥ 4, by a max-product pass over lengths
    f = {b: p(None, b) for b in letters}
    longest_best = 0.0
    for L in range(1, 80):
        if L >= 4:
            longest_best = max(longest_best, max(f[a] * p(a, None) for a in letters))
        f = {b: max(f[a] * p(a, b) for a in letters) for b in letters}
    assert prob(best[2]) > longest_best
    got = run.most_likely(3, model="count")
    assert [w for w, _ in got] == best
    assert [lp for _, lp in got] == pytest.approx([math.log(prob(w)) for w in best])


def test_a_config_toml_of_random_bytes_or_empty_is_refused(invoke, small):
    (small / "config.toml").write_bytes(bytes(random.Random(0).randrange(256) for _ in range(300)))
    for args in (["sample", small], ["eval", small], ["train", "--resume", small]):
        one_line_error(invoke(*args), "config.toml", "damaged")
    (small / "config.toml").write_text("")
    for args in (["sample", small], ["eval", small]):
        one_line_error(invoke(*args), "config.toml lacks data, model", "damaged")
