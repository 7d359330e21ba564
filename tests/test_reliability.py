"""Issue 27's hostile cases, each with a small file made here: user files kept, memory bounded by
the model (or a one-line refusal before allocating), damaged run files refused in one line,
exports exact, samples that the text rule can produce."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.conftest import NAMES, one_line_error, train_run
from tests.reference import LN10, arpa_log10, read_arpa


@pytest.fixture
def small(invoke, tmp_path, tiny_corpus) -> Path:
    flags = ("--steps", "3", "--val-frac", "0", "--test-frac", "0")
    return train_run(invoke, tiny_corpus, tmp_path / "r", *flags)


# --- what a run directory may hold -------------------------------------------------------------
def test_a_file_named_like_an_event_file_is_the_users(invoke, tmp_path, small, tiny_corpus):
    notes = small / "events.out.tfevents.my-notes.txt"
    notes.write_text("mine")
    r = invoke("train", "--data", tiny_corpus, "--out", small, "--overwrite", "-q", "--no-figures")
    one_line_error(r, "is not a file bigram writes", "events.out.tfevents.my-notes.txt")
    assert notes.read_text() == "mine"
    r = invoke("sweep", "--reg", "0,0.1", "--data", tiny_corpus, "--out", tmp_path / "sw", "--steps", "2")
    assert r.exit_code == 0, r.output
    inner = tmp_path / "sw" / "reg=0" / "events.out.tfevents.1.host.2.3.notes"
    inner.write_text("mine too")
    r = invoke("train", "--data", tiny_corpus, "--out", tmp_path / "sw", "--overwrite", "-q", "--no-figures")
    one_line_error(r, "is not a file bigram writes")
    assert inner.read_text() == "mine too"
    # what TensorBoard itself wrote is bigram's: the run is replaced
    assert any(p.name.startswith("events.out.tfevents.") for p in small.iterdir())
    notes.unlink()
    r = invoke("train", "--data", tiny_corpus, "--out", small, "--overwrite", "-q", "--no-figures")
    assert r.exit_code == 0, r.output


def test_sweep_into_an_existing_directory_and_under_torchrun(invoke, small, tiny_corpus, monkeypatch):
    r = invoke("sweep", "--reg", "0,0.1", "--data", tiny_corpus, "--out", small)
    one_line_error(r, "already exists and is not empty: choose another --out")
    assert "--overwrite" not in r.output  # sweep has no such option
    monkeypatch.setenv("WORLD_SIZE", "2")
    one_line_error(invoke("sweep", "--reg", "0,0.1", "--data", tiny_corpus), "without torchrun")


# --- memory bounded by the model ---------------------------------------------------------------
def test_flag_values_whose_memory_cannot_be_bounded_are_refused(invoke, tmp_path):
    """A minibatch's logits are batch × V; L-BFGS keeps copies of W: both refused before they are
    allocated, in one line (names.txt: V = 27; order 5 has 27^5 = 14,348,907 entries)."""
    r = invoke("train", "--data", NAMES, "--model", "neural", "--optimizer", "sgd", "--batch-size", "2000000")
    one_line_error(r, "--batch-size 2,000,000", "at most 1,242,756")  # 2^25 // 27
    r = invoke("train", "--data", NAMES, "--model", "neural", "--optimizer", "lbfgs", "--order", "5")
    one_line_error(r, "14,348,907 entries", "--optimizer newton")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    r = invoke("plot", "--top", "101", "--out", "x.png")
    one_line_error(r, "--top 101", "between 2 and 100")


def test_lbfgs_history_is_bounded_by_the_table():
    from bigram.fit import LBFGS_HISTORY_BYTES, RestartingLBFGS

    for entries, want in ((27 * 27, 20), (27**4, 20), (1 << 23, 4)):  # 2^28 / (8 · 2^23) = 4
        W = torch.nn.Parameter(torch.zeros(entries))
        history = RestartingLBFGS([W], 1.0, entries).param_groups[0]["history_size"]
        assert history == want and (history * 2 * 4 * entries <= LBFGS_HISTORY_BYTES or want == 20)


def test_arpa_of_a_dense_table_beyond_the_cap_is_refused(invoke, small, tmp_path, monkeypatch):
    import bigram.formats.export

    monkeypatch.setattr(bigram.formats.export, "ARPA_MAX_NGRAMS", 8)  # the neural table lists 3 × 3 = 9
    one_line_error(invoke("export", small, "--model", "neural", "--out", tmp_path / "m.arpa"), "more than 8")
    assert not (tmp_path / "m.arpa").exists()
    r = invoke("export", small, "--model", "count", "--out", tmp_path / "c.arpa")  # lists only seen n-grams
    assert r.exit_code == 0, r.output


def test_json_export_written_by_blocks_is_what_json_dump_writes(invoke, small, tmp_path, monkeypatch):
    import bigram.formats.export
    from bigram.runs import Run

    original = bigram.formats.export._row_blocks
    monkeypatch.setattr(
        bigram.formats.export, "_row_blocks", lambda t, cells=1: original(t, 1)
    )  # a row per block
    assert invoke("export", small, "--model", "count", "--out", tmp_path / "m.json").exit_code == 0
    run = Run.open(small)
    doc = {
        "model": "count", "order": 2, "boundary_id": 0, "tokens": run.vocab.tokens(),
        "probs": run.log_probs("count").exp().tolist(), "counts": run.counts("train").to_dense().tolist(),
    }  # fmt: skip
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == json.dumps(doc, ensure_ascii=False) + "\n"


# --- damaged or crafted run files --------------------------------------------------------------
def test_a_config_toml_of_random_bytes_or_empty_is_refused(invoke, small):
    (small / "config.toml").write_bytes(bytes(random.Random(0).randrange(256) for _ in range(300)))
    for args in (["sample", small], ["eval", small], ["train", "--resume", small]):
        one_line_error(invoke(*args), "config.toml", "damaged")
    (small / "config.toml").write_text("")
    for args in (["sample", small], ["eval", small]):
        one_line_error(invoke(*args), "config.toml lacks data, model", "damaged")


@pytest.mark.parametrize("smoothing", ["1", "kn"])
def test_a_sparse_checkpoint_with_an_index_past_its_table_refused(invoke, tmp_path, tiny_corpus, smoothing):
    run = train_run(invoke, tiny_corpus, tmp_path / "r", "--model", "count", "--smoothing", smoothing)
    bad = torch.sparse_coo_tensor(
        torch.tensor([[0, 1], [1, 7]]), torch.tensor([3, 1]), (3, 3), check_invariants=False
    )  # column 7 of a 3-column table
    ckpt = torch.load(run / "count.pt", weights_only=True)
    torch.save({**ckpt, "counts": bad}, run / "count.pt")
    for args in (["sample", run], ["eval", run], ["export", run, "--out", tmp_path / "m.arpa"]):
        one_line_error(invoke(*args), "count indices outside its 3×3 table")
    splits = torch.load(run / "counts.pt", weights_only=True)
    torch.save({**splits, "splits": {"train": bad}}, run / "counts.pt")
    one_line_error(invoke("eval", run), "count indices outside")


# --- exact results -----------------------------------------------------------------------------
def test_arpa_keeps_log_probabilities_below_minus_99(invoke, tmp_path):
    """add-k with k = 1e-120 at order 4: unseen n-grams have log10 P ≈ −120, not "never" (−99)."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("anna\nanne\nbob\nbobby\nann\n")
    no_split = ("--val-frac", "0", "--test-frac", "0")
    run = train_run(
        invoke, corpus, tmp_path / "r", "--order", "4", "--smoothing", "1e-120", "--model", "count", *no_split
    )
    assert invoke("export", run, "--out", tmp_path / "m.arpa").exit_code == 0
    grams = read_arpa(tmp_path / "m.arpa")
    names = ["anna", "bob", "nab", "yyy", "abba"]
    scores = json.loads(invoke("score", run, *names, "--json").output)
    import kenlm

    lm = kenlm.Model(str(tmp_path / "m.arpa"))
    for s in scores:
        tokens = " ".join(s["name"])
        assert arpa_log10(grams, tokens.split(" ")) * LN10 == pytest.approx(s["log_likelihood"], rel=1e-8)
        assert lm.score(tokens, bos=True, eos=True) * LN10 == pytest.approx(s["log_likelihood"], rel=1e-6)
    assert min(s["log_likelihood"] for s in scores) < -99 * LN10  # below what the clamp to −99 let through


def _spaced_corpus(path: Path) -> Path:
    rng = random.Random(1)
    first = ["anna", "bob", "li", "jean", "mo", "x"]
    seps = [" ", "\t", "\u00a0", " "]
    lines = (f"{rng.choice(first)}{rng.choice(seps)}{rng.choice(first)}\n" for _ in range(400))
    path.write_text("".join(lines))
    return path


def test_samples_never_begin_or_end_with_white_space_and_score_as_sampled(invoke, tmp_path):
    run = train_run(invoke, _spaced_corpus(tmp_path / "ws.txt"), tmp_path / "r", "--order", "3",
                    "--smoothing", "kn", "--model", "count")  # fmt: skip
    r = invoke("sample", run, "-n", "2000", "--seed", "1", "--json")
    drawn = json.loads(r.stdout)
    assert len(drawn) == 2000 and all(d["name"] == d["name"].strip() for d in drawn)
    some = [d for d in drawn if d["name"] != d["name"].replace(" ", "")][:40]
    scored = json.loads(invoke("score", run, *[d["name"] for d in some], "--json").stdout)
    want = [d["log_likelihood"] for d in some]
    assert [s["log_likelihood"] for s in scored] == pytest.approx(want, rel=1e-12)
    best = invoke("sample", run, "--most-likely", "300").stdout.splitlines()
    assert len(best) == 300 and all(b == b.strip() for b in best)
    one_line_error(invoke("sample", run, "--start", " an"), "begins with white space")


def test_conditioning_on_producible_names_is_exact():
    """V = 3 (boundary, 'a', ' '): the names' frequencies equal the model's probabilities of the
    names without white space at either end, renormalized (enumerated here in plain Python)."""
    from bigram.sampling import sample
    from bigram.vocab import Vocab

    vocab = Vocab((" ", "a"))  # ids: 0 boundary, 1 ' ', 2 'a'
    P = torch.tensor([[0.0, 0.3, 0.7], [0.2, 0.3, 0.5], [0.4, 0.3, 0.3]], dtype=torch.float64)

    def prob(name: str) -> float:
        ids = [0, *(1 if c == " " else 2 for c in name), 0]
        return math.prod(float(P[a, b]) for a, b in itertools.pairwise(ids))

    names = [""]
    for _ in range(12):
        names += [n + c for n in names if len(n) == max(map(len, names)) for c in " a"]
    ok = {n: prob(n) for n in names if n and n == n.strip()}
    total = sum(ok.values())
    drawn = Counter(sample(P.log(), vocab, 100_000, seed=3))
    assert all(n == n.strip() for n in drawn)
    for n in ("a", "aa", "a a", "a  a", "aaa"):
        p = ok[n] / total
        assert abs(drawn[n] / 100_000 - p) < 4 * math.sqrt(p * (1 - p) / 100_000) + 1e-4, n


def test_most_likely_says_when_fewer_names_exist(invoke, small):
    r = invoke("sample", small, "--most-likely", "1000", "--max-len", "2")
    assert r.exit_code == 0
    found = r.stdout.split()
    assert len(found) == len({"a", "b", "aa", "ab", "ba", "bb"}) and len(found) < 1000
    assert f"only {len(found)} names meet the constraints" in r.stderr


def test_unique_is_bounded_before_anything_is_read(invoke, small):
    one_line_error(invoke("sample", small, "-n", "1000001", "--unique"), "at most 1,000,000")
