"""bigram import: ARPA files of characters read into a run's table (bigram.formats.arpa)."""

from __future__ import annotations

import math

import pytest
import torch

from bigram.formats.arpa import read_arpa
from bigram.runs import Run
from tests.conftest import NAMES, train_run


def reachable(C: int, V: int) -> torch.Tensor:
    """The contexts a name can be in: boundaries only before its first character."""
    N = round(math.log(C, V)) + 1 if C > 1 else 1
    rows = torch.arange(C)
    if N <= 1:
        return torch.ones(C, dtype=torch.bool)
    digits = torch.stack([(rows // V ** (N - 2 - i)) % V for i in range(N - 1)], 1)
    started = torch.cummax((digits != 0).int(), 1).values.bool()
    return ~(started & (digits == 0)).any(1)


@pytest.mark.parametrize(("order", "smoothing"), [(2, "auto"), (2, "kn"), (4, "auto"), (4, "kn")])
def test_an_exported_model_reads_back_as_the_same_table(invoke, tmp_path, order, smoothing):
    """bigram export → bigram import gives the run's table again, to 1e-6 in every row a name
    can reach (a row whose context holds the boundary after a character is never reached, and
    ARPA cannot write it: it backs off to the history that starts at that boundary)."""
    run = train_run(invoke, NAMES, tmp_path / "r", "--no-figures", "--model", "count",
                    "--order", str(order), "--smoothing", smoothing)  # fmt: skip
    assert invoke("export", run, "--out", tmp_path / "m.arpa").exit_code == 0
    r = invoke("import", tmp_path / "m.arpa", "--out", tmp_path / "imp")
    assert r.exit_code == 0, r.output
    want, got = Run.open(run), Run.open(tmp_path / "imp")
    assert got.vocab == want.vocab and got.config.order == order and got.models == ["arpa"]
    a, b = want.log_probs("count"), got.log_probs()
    ok = reachable(*a.shape)
    assert (a.exp() - b.exp())[ok].abs().max() < 1e-6
    assert torch.allclose(b.exp().sum(1), torch.ones(len(b), dtype=torch.float64))
    for name in ("emma", "zoë" if "ë" in want.vocab.chars else "kai"):
        s1 = invoke("score", run, name, "--json", "--model", "count")
        s2 = invoke("score", tmp_path / "imp", name, "--json")
        import json

        assert json.loads(s1.stdout)[0]["nll"] == pytest.approx(json.loads(s2.stdout)[0]["nll"], abs=1e-6)


LMPLZ_LIKE = """\\data\\
ngram 1=7
ngram 2=9
ngram 3=4

\\1-grams:
-1.8	<unk>	0
-99	<s>	-0.42
-0.71	</s>	0
-0.62	a	-0.31
-0.88	b	-0.25
-0.93	n	-0.38
-0.79	<U+0020>	-0.1

\\2-grams:
-0.35	<s> a	-0.2
-0.61	<s> b	-0.18
-0.52	a n	-0.11
-0.47	n a	-0.27
-0.45	a </s>
-0.69	b a	-0.3
-0.40	n </s>
-0.9	a <U+0020>	-0.05
-0.6	<U+0020> b	-0.02

\\3-grams:
-0.21	<s> a n
-0.33	a n a
-0.28	n a </s>
-0.5	b a n

\\end\\
"""


def test_a_kenlm_style_file_gives_kenlms_probabilities_renormalized_over_real_tokens(tmp_path):
    """A hand-written trigram file as lmplz writes one for characters (backoffs, pruned n-grams,
    <unk> with mass, an escaped space): every P(next | context) bigram reads equals KenLM's own
    query of the same history, divided by KenLM's mass on the real tokens (<unk> left out), to 1e-4."""
    kenlm = pytest.importorskip("kenlm")
    path = tmp_path / "lmplz.arpa"
    path.write_text(LMPLZ_LIKE, encoding="utf-8")
    table, vocab, order = read_arpa(path)
    assert order == 3 and vocab.chars == (" ", "a", "b", "n")
    lm = kenlm.Model(str(path))
    words = {0: "</s>"} | {i: ("<U+0020>" if c == " " else c) for i, c in enumerate(vocab.chars, 1)}
    V = vocab.size
    for h1 in range(V):
        for h2 in range(V):
            if h1 != 0 and h2 == 0:
                continue  # unreachable: the boundary after a character
            state = kenlm.State()
            if h1 == 0 and h2 == 0:
                lm.BeginSentenceWrite(state)
            else:
                start = kenlm.State()
                lm.BeginSentenceWrite(start) if h1 == 0 else lm.NullContextWrite(start)
                hist = [words[h2]] if h1 == 0 else [words[h1], words[h2]]
                for w in hist:
                    nxt = kenlm.State()
                    lm.BaseScore(start, w, nxt)
                    start = nxt
                state = start
            scores = []
            for w in range(V):
                out = kenlm.State()
                scores.append(lm.BaseScore(state, words[w], out))
            p = torch.tensor(scores, dtype=torch.float64).mul(math.log(10)).exp()
            want = (p / p.sum()).log()
            assert torch.allclose(table[h1 * V + h2], want, atol=1e-4), (h1, h2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\n", "not an ARPA file"),
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n-1\t</s>\n", "without \\end\\"),
        ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\ta\n-1\t</s>\n\\end\\\n", "announces 3"),
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-x\ta\n-1\t</s>\n\\end\\\n", "is not a number"),
        ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\thello\n-1\tworld\n-1\t</s>\n\\end\\\n", "word-level model"),
    ],
)
def test_bad_files_are_one_line_errors(invoke, tmp_path, text, message):
    path = tmp_path / "bad.arpa"
    path.write_text(text, encoding="utf-8")
    r = invoke("import", path, "--out", tmp_path / "x")
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x").exists()


def test_an_imported_run_samples_scores_and_evaluates_on_data(invoke, tmp_path):
    run = train_run(invoke, NAMES, tmp_path / "r", "--no-figures", "--model", "count", "--order", "3")
    assert invoke("export", run, "--out", tmp_path / "m.arpa").exit_code == 0
    assert invoke("import", tmp_path / "m.arpa", "--out", tmp_path / "imp").exit_code == 0
    imp = tmp_path / "imp"
    names = invoke("sample", imp, "-n", "5", "--start", "ka", "--end", "a", "--seed", "1").output.split()
    assert len(names) == 5 and all(w.startswith("ka") and w.endswith("a") for w in names)
    r = invoke("eval", imp, "--data", NAMES)
    assert r.exit_code == 0 and "arpa" in r.output
    r = invoke("eval", imp)
    assert r.exit_code == 1 and "--data FILE" in r.output
    assert invoke("plot", imp, "--what", "probs", "--out", tmp_path / "p.png").exit_code == 0
