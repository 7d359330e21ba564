"""NLL, perplexity, bits, entropy and KL: metrics.py against hand and plain-Python values."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

import bigram
from tests.conftest import NAMES
from tests.reference import plain_counts


def plain_entropy(names: list[str]) -> float:
    """H(next | prev) of names.txt's bigram frequencies, by hand: −Σ N_ij log(N_ij/N_i) / ΣN."""
    c = plain_counts(names)
    rows: Counter = Counter()
    for (a, _), n in c.items():
        rows[a] += n
    total = sum(c.values())
    return -math.fsum(n * math.log(n / rows[a]) for (a, _), n in c.items()) / total


def test_entropy_cross_entropy_kl(names, lecture_runs):
    h = plain_entropy(names)
    m0 = json.loads((lecture_runs[0] / "metrics.json").read_text())
    c0 = m0["count"]["train"]
    assert c0["entropy"] == pytest.approx(h, abs=1e-12)
    assert c0["nll"] == pytest.approx(2.454014, abs=5e-7)  # the smoothing-0 figure
    assert c0["cross_entropy"] == c0["nll"]
    assert abs(c0["kl"]) < 1e-12  # the ML table is the data's own distribution
    m1 = json.loads((lecture_runs[1] / "metrics.json").read_text())
    for model in ("count", "neural"):
        m = m1[model]["train"]
        assert m["kl"] == pytest.approx(m["cross_entropy"] - m["entropy"]) and m["kl"] > 0
    assert m1["count"]["train"]["kl"] == pytest.approx(2.454577 - h, abs=1e-6)


def test_kl_count_neural_by_hand(lecture_runs):
    run = bigram.load_run(lecture_runs[1])
    res = run.evaluate()
    P = run.log_probs("count").to_dense().exp()
    Q = run.log_probs("neural").to_dense().exp()
    N = run.counts("train").double()
    w = N.sum(1) / N.sum()
    by_hand = sum(
        float(w[i]) * sum(float(P[i, j]) * math.log(float(P[i, j]) / float(Q[i, j])) for j in range(27))
        for i in range(27)
    )
    assert res["kl_count_neural"]["train"] == pytest.approx(by_hand, rel=1e-9)
    assert 0 < by_hand < 0.05  # reg 0.01 keeps the converged neural model close to add-one counts


def test_table_columns_stay_aligned_for_long_labels_and_big_counts():
    from bigram.metrics import format_table

    m = {"nll": 2.4, "perplexity": 11.0, "bits_per_char": 3.4, "entropy": 2.3, "kl": 0.1}
    rows = format_table(
        {
            "count": {
                "train": {**m, "bigrams": 228146},
                "names-from-another-file.txt": {**m, "bigrams": 123456789012},
            }
        }
    ).splitlines()
    head, body = rows[0], rows[2:]
    # every row ends each column where the heading does: the right edge of "bigrams" and of "NLL"
    for label in ("bigrams", "NLL"):
        edge = head.index(label) + len(label)
        assert all(row[edge - 1] != " " and row[edge] == " " for row in body), (label, rows)
    assert len({len(row) for row in rows}) == 1
    assert body[1].split()[1] == "names-from-another-file.txt" and body[1].split()[2] == "123,456,789,012"


def test_lecture_float32_gives_the_notebooks_printed_numbers(invoke, tmp_path):
    """The notebook prints log_likelihood=-559951.5625 and 2.4544 (its float32 sum); the same
    counts summed as bigram sums them give the float64 figures (2.454577). A run that holds
    out val and test is refused: the notebook sums over every name."""
    run = tmp_path / "lecture"
    invoke("train", "--config", "lecture", "--data", str(NAMES), "--model", "count", "--out", str(run), "-q")
    out = json.loads(invoke("eval", str(run), "--lecture-float32", "--json").stdout)
    assert out["log_likelihood"] == -559951.5625 and f"{out['nll']:.4f}" == "2.4544"
    assert out["bigrams"] == 228146 and f"{out['float64_nll']:.6f}" == "2.454577"
    held_out = tmp_path / "held-out"
    invoke("train", "--data", str(NAMES), "--model", "count", "--smoothing", "1", "--out", held_out, "-q")
    r = invoke("eval", str(held_out), "--lecture-float32")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "--val-frac 0 --test-frac 0" in r.output
