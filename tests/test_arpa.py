"""bigram import: ARPA files of characters read into a run's table (bigram.formats.arpa)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from bigram.formats.arpa import read_arpa, read_arpa_text
from bigram.formats.export import arpa_sentence
from bigram.runs import Run
from bigram.vocab import Vocab
from tests.conftest import NAMES, train_run
from tests.reference import LN10, plain_names
from tests.reference import read_arpa as read_grams


def world_corpus(path) -> Path:
    """names.txt's first 4,000 names spelled in 20 blocks of 26 code points (CJK, each name in
    one block): an alphabet of ~520 characters, as a multilingual list has."""
    names = plain_names(NAMES)[:4000]
    lines = ["".join(chr(0x4E00 + 26 * (i % 20) + ord(c) - ord("a")) for c in w) for i, w in enumerate(names)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    return {"names": NAMES, "world": world_corpus(tmp_path_factory.mktemp("world") / "world.txt")}


ROUND_TRIPS = [
    (corpus, order, k) for corpus in ("names", "world") for order in (2, 3, 4, 5) for k in ("0.5", "kn")
]


@pytest.mark.parametrize(("corpus", "order", "smoothing"), ROUND_TRIPS)
def test_an_exported_model_reads_back_as_the_same_model(invoke, tmp_path, corpora, corpus, order, smoothing):
    """train → export ARPA → import: the imported run scores every name (seen, unseen, with
    unseen n-grams) and evaluates held-out names as the run did, to 1e-6; KenLM reading the
    exported file agrees with `bigram score`; the imported table is sparse (no more contexts
    than the file has histories)."""
    data = corpora[corpus]
    run = train_run(invoke, data, tmp_path / "r", "--model", "count", "--order", str(order),
                    "--smoothing", smoothing)  # fmt: skip
    assert invoke("export", run, "--out", tmp_path / "m.arpa").exit_code == 0
    r = invoke("import", tmp_path / "m.arpa", "--out", tmp_path / "imp")
    assert r.exit_code == 0, r.output
    want, got = Run.open(run), Run.open(tmp_path / "imp")
    assert got.vocab == want.vocab and got.config.order == order and got.models == ["arpa"]
    lines = plain_names(Path(data))
    names = [*lines[::397], lines[5][::-1] + lines[9], lines[3][:1]]
    for a, b in zip(want.score(names, model="count"), got.score(names), strict=True):
        assert b["log_likelihood"] == pytest.approx(a["log_likelihood"], abs=1e-6), a["name"]
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("\n".join(lines[1::50]) + "\n", encoding="utf-8")
    nll = [
        r.evaluate(m, {"x": r.counts_of(heldout)})[m]["x"]["nll"] for r, m in ((want, "count"), (got, "arpa"))
    ]
    assert nll[1] == pytest.approx(nll[0], abs=1e-6)
    grams = read_grams(tmp_path / "m.arpa")  # sparse: a context per history the file lists, at most
    histories = sum(1 for g in grams if len(g) < order and g[-1] not in ("</s>", "<unk>"))
    assert sum(len(lv) for lv in got.log_probs().levels if lv is not None) <= histories + 1
    kenlm = pytest.importorskip("kenlm")
    lm = kenlm.Model(str(tmp_path / "m.arpa"))
    for s in want.score(names[:12], model="count"):
        tokens = arpa_sentence(s["name"])
        assert lm.score(tokens, bos=True, eos=True) * LN10 == pytest.approx(s["log_likelihood"], abs=1e-4)


@pytest.mark.parametrize("smoothing", [0.5, "kn"])
def test_order_5_over_500_characters_reads_back_sparse(tmp_path, corpora, smoothing):
    """The count table of the ~520-character corpus at order 5 (V^4 ≈ 7e10 contexts: only the
    seen ones exist) → ARPA → table: every counted n-gram and unseen ones read back to 1e-6."""
    import io

    from bigram.formats.export import write_arpa
    from bigram.reader.corpus import read_counts
    from bigram.table import count_table

    counts = read_counts(corpora["world"], split="random", val_frac=0, test_frac=0, order=5)
    train, vocab = counts.splits["train"].coalesce(), counts.vocab
    table = count_table(train, smoothing)
    text = io.StringIO()
    write_arpa(text, table, vocab)
    back, vocab2, order = read_arpa_text(text.getvalue().splitlines())
    assert (vocab2, order, back.dense) == (vocab, 5, None)
    ctx, nxt = train.indices()
    g = torch.Generator().manual_seed(0)
    V, lead = vocab.size, torch.randint(0, 5, (2000,), generator=g)  # contexts a name can be in:
    chars = torch.randint(1, V, (2000, 4), generator=g) * (torch.arange(4) >= lead.unsqueeze(1))
    ctx = torch.cat(
        [ctx, (chars * V ** torch.arange(3, -1, -1)).sum(1)]
    )  # leading boundaries, then characters
    nxt = torch.cat([nxt, torch.randint(0, vocab.size, (2000,), generator=g)])
    assert (table.at(ctx, nxt) - back.at(ctx, nxt)).abs().max() < 1e-6


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
-0.35	<s> a	-0.3
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
            got = table.rows(torch.tensor([h1 * V + h2]))[0]
            assert torch.allclose(got, want, atol=1e-4), (h1, h2)


UNI = "\\1-grams:\n-1\t</s>\n-1\ta\n"  # a whole 1-grams section for the header "ngram 1=2"
HEAD = "\\data\\\nngram 1=2\n"  # with UNI: the smallest whole file (order 1)


def one_char(token: str) -> str:
    """An order-1 file over one character, written as `token`."""
    return f"{HEAD}\\1-grams:\n-1\t</s>\n-1\t{token}\n\\end\\\n"


# (file, what the one-line error says, naming the line): issue 44's cases first, then others
BAD_FILES = [
    ("hello\n", "line 1 is not \\data\\"),
    ("", "has no \\data\\ line (it is empty or blank)"),
    ("\n\n  \n", "has no \\data\\ line"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n-1\t</s>\n", "ends at line 6 without \\end\\"),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\ta\n-1\t</s>\n\\end\\\n", "line 7: the header announces 3"),
    (
        "\\data\\\nngram 1=2\n\n\\1-grams:\n-x\ta\n-1\t</s>\n\\end\\\n",
        "line 5: '-x' is not a number: its log10 probability",
    ),
    ("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\thello\n-1\tworld\n-1\t</s>\n\\end\\\n", "line 5: token 'hello'"),
    # sections out of order, missing or twice
    (
        HEAD + "ngram 2=1\n\\2-grams:\n-1\ta </s>\n" + UNI + "\\end\\\n",
        "line 4: \\2-grams: where the 1-grams",
    ),
    ("\\data\\\nngram 2=1\n\\2-grams:\n-1\ta </s>\n\\end\\\n", "line 3: the header announces no 1-grams"),
    (HEAD + "ngram 2=1\n" + UNI + "\\2-grams:\n-1\ta </s>\n" + UNI + "\\end\\\n", "line 9: \\1-grams: where"),
    (HEAD + "ngram 2=1\n" + UNI + "\\end\\\n", "line 7: \\end\\ before the 2-grams"),
    (HEAD + "ngram 1=2\n" + UNI + "\\end\\\n", "line 3: the header announces 1-grams twice"),
    # tokens no name can hold, each at its line
    (one_char("<U+FFFFFF>"), "line 5: token '<U+FFFFFF>' is no character a name can hold (beyond U+10FFFF)"),
    (one_char("<U+110000>"), "line 5: token '<U+110000>' is no character a name can hold (beyond U+10FFFF)"),
    (one_char("<U+D800>"), "line 5: token '<U+D800>' is no character a name can hold (a surrogate)"),
    (one_char("<U+DFFF>"), "(a surrogate)"),
    (one_char("<U+000A>"), "line 5: token '<U+000A>' is no character a name can hold (a line break)"),
    (one_char("<U+000D>"), "(a line break)"),
    (one_char("<U+0000>"), "(NUL)"),
    (one_char("ab"), "line 5: token 'ab' is not one character"),
    (one_char("<U+00>"), "line 5: token '<U+00>' is not one character"),
    # absurd headers: refused by the digits, before any arithmetic on them
    (HEAD + "ngram 1000000=0\n" + UNI + "\\end\\\n", "line 3: order 1000000: bigram reads orders 1 … 12"),
    (HEAD + "ngram 1000000000=0\n" + UNI + "\\end\\\n", "line 3: order 1000000000: bigram reads"),
    (HEAD + "ngram 1000000000000000000=0\n" + UNI + "\\end\\\n", "line 3: order 100000000000…: bigram"),
    (HEAD + "ngram 13=0\n" + UNI + "\\end\\\n", "line 3: order 13: bigram reads orders 1 … 12, as train"),
    (HEAD + "ngram 0=0\n" + UNI + "\\end\\\n", "line 3: order 0: bigram reads orders 1 … 12"),
    ("\\data\\\nngram 1=" + "9" * 40 + "\n", "line 2: the header announces 999999999999… 1-grams"),
    ("\\data\\\nngram 1=" + "9" * 41 + "\n", "line 2: expected 'ngram K=COUNT'"),
    ("\\data\\\nngram 1=-2\n", "line 2: expected 'ngram K=COUNT'"),
    ("\\data\\\nngram \u0661=2\n", "line 2: expected 'ngram K=COUNT'"),  # an Arabic-Indic digit
    ("\\data\\\nngram 1=2 3\n", "line 2: expected 'ngram K=COUNT'"),
    # absurd or non-finite values
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-1\ta\t1e308\n\\end\\\n", "line 5: a log10 probability must be in"),
    (f"{HEAD}\\1-grams:\n-1e308\t</s>\n-1e308\ta\n\\end\\\n", "line 4: a log10 probability must be in"),
    (
        f"{HEAD}\\1-grams:\n-1\t</s>\nnan\ta\n\\end\\\n",
        "line 5: 'nan' is not a number: its log10 probability",
    ),
    (
        f"{HEAD}\\1-grams:\n-1\t</s>\n-inf\ta\n\\end\\\n",
        "line 5: '-inf' is not a number: its log10 probability",
    ),
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-1\ta\tinf\n\\end\\\n", "line 5: 'inf' is not a number: its backoff"),
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-1\ta\tnan\n\\end\\\n", "line 5: 'nan' is not a number: its backoff"),
    (f"{HEAD}\\1-grams:\n-1\t</s>\n0.5\ta\n\\end\\\n", "line 5: a log10 probability must be in"),
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-1_0\ta\n\\end\\\n", "line 5: '-1_0' is not a number"),
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-\u0661\ta\n\\end\\\n", "is not a number"),  # an Arabic-Indic digit
    (f"{HEAD}\\1-grams:\n\u22121\t</s>\n-1\ta\n\\end\\\n", "line 4: '−1' is not a number"),  # U+2212
    (f"{HEAD}\\1-grams:\n-0x1p-2\t</s>\n-1\ta\n\\end\\\n", "line 4: '-0x1p-2' is not a number"),
    (
        f"{HEAD}\\1-grams:\n-99\t</s>\n-99\ta\n\\end\\\n",
        "line 4: a history of 0 tokens (its row begins here)",
    ),
    # rows that give the characters more than everything, before or after their backoffs
    (
        f"{HEAD}\\1-grams:\n-0.1\t</s>\n-0.1\ta\n\\end\\\n",
        "line 4: a history of 0 tokens (its row begins here) gives its characters probability 1.58",
    ),
    (
        HEAD + "ngram 2=1\n\\1-grams:\n-0.302\t</s>\n-0.302\ta\t2\n\\2-grams:\n-1\ta a\n\\end\\\n",
        "line 8: a history of 1 tokens",
    ),
    (
        HEAD + "ngram 2=1\n\\1-grams:\n-0.302\t</s>\n-0.302\ta\t500\n\\2-grams:\n-1\ta </s>\n\\end\\\n",
        "probability about 10^500 in all",
    ),
    # n-grams the file cannot hold
    (HEAD + "ngram 2=1\n" + UNI + "\\2-grams:\n-1\t</s> a\n\\end\\\n", "line 8: </s> inside an n-gram"),
    (
        HEAD + "ngram 2=1\n" + UNI + "\\2-grams:\n-1\ta <s> a\n\\end\\\n",
        "line 8: 'a' is not a number: its backoff (or one of more than 2 tokens)",
    ),
    (HEAD + "ngram 2=1\n" + UNI + "\\2-grams:\n-1\ta b\n\\end\\\n", "line 8: token 'b' has no 1-gram"),
    (
        HEAD + "ngram 2=1\n" + UNI + "\\2-grams:\n-1 a a a a\n\\end\\\n",
        "line 8: should hold a log-probability, 2",
    ),
    (HEAD + "ngram 2=1\n" + UNI + "\\2-grams:\n-1\n\\end\\\n", "line 8: should hold a log-probability, 2"),
    (
        HEAD + "ngram 2=2\n" + UNI + "\\2-grams:\n-1\ta a\n-2\ta a\n\\end\\\n",
        "line 9: this 2-gram was listed already (line 8)",
    ),
    (
        HEAD + "ngram 2=2\n" + UNI + "\\2-grams:\n-1\ta a\n-2\ta <U+0061>\n\\end\\\n",
        "line 9: this 2-gram was listed already",
    ),
    (
        "\\data\\\nngram 1=3\n\\1-grams:\n-1\t</s>\n-1\ta\n-1\t<U+0061>\n\\end\\\n",
        "line 6: the 1-grams list 'a' twice (first at line 5",
    ),
    (
        "\\data\\\nngram 1=3\n\\1-grams:\n-1\t</s>\n-1\ta\n-1\t</s>\n\\end\\\n",
        "line 6: the 1-grams list '</s>' twice",
    ),
    # counts that disagree with the lines: at the first line too many, or where the section ends
    (
        HEAD + "\\1-grams:\n-1\t</s>\n-1\ta\n-1\tb\n\\end\\\n",
        "line 6: the header announces 2 1-grams, and this is one more",
    ),
    (
        "\\data\\\nngram 1=3\nngram 2=1\n" + UNI + "\\2-grams:\n-1\ta a\n\\end\\\n",
        "line 7: the header announces 3 1-grams but this line ends",
    ),
    # orders that cannot be keyed, files with nothing to model
    (
        "\\data\\\nngram 1=2\n"
        + "".join(f"ngram {k}=0\n" for k in range(2, 13))
        + "\\1-grams:\n-1\t</s>\n-99\t<s>\n"
        + "".join(f"\\{k}-grams:\n" for k in range(2, 13))
        + "\\end\\\n",
        "line 17: the 1-grams list no character",
    ),  # an order-12 file of <s> and </s> only
    (
        "\\data\\\nngram 1=42\n"
        + "".join(f"ngram {k}=0\n" for k in range(2, 13))
        + "\\1-grams:\n-1.62\t</s>\n"
        + "".join(f"-1.62\t{chr(0x4E00 + i)}\n" for i in range(41))
        + "".join(f"\\{k}-grams:\n" for k in range(2, 13))
        + "\\end\\\n",
        "line 57: order 12 over V = 42 tokens: its n-grams are 64-bit keys",
    ),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1\t</s>\n-99\t<s>\n\\end\\\n", "the 1-grams list no character"),
    ("\\data\\\nngram 1=2\n\\1-grams:\n-1\t</s>\n-1\t<unk>\n\\end\\\n", "the 1-grams list no character"),
    # lines that are no ARPA: too long (the cap, in bytes), not UTF-8, text after \end\
    ("\\data\\\n" + "x" * 20_000 + "\n", "line 2 is longer than 16,384 bytes"),
    (
        "\\data\\\n" + "é" * 8_200 + "\n",
        "line 2 is longer than 16,384 bytes",
    ),  # 8,200 characters, 16,400 bytes
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-1\ta\n\\end\\\ngarbage\n", "line 7: text after \\end\\"),
    (f"{HEAD}\\1-grams:\n-1\t</s>\n-1\ta\n\\end\\\n\\end\\\n", "line 7: text after \\end\\"),
    (
        f"{HEAD}\\1-grams:\n-1\t</s>\n-1\ta\n\\end\\\n" * 2,
        "line 7: text after \\end\\ (is it two files in one?)",
    ),
]
BAD_BYTES = [
    (b"\\data\\\nngram 1=2\n\xff\xfe\n", "line 3 is not UTF-8 text (its byte 1)"),
    ("\\data\\\nngram 1=2\n".encode("utf-16"), "line 1 is not UTF-8 text"),  # UTF-16, with its BOM
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "line 1 is not UTF-8 text (its byte 1)"),  # an image
    (
        b"\\data\\\n" + b"\x00" * 100_000,
        "line 2 is longer than 16,384 bytes",
    ),  # no line break: never read whole
    (b"\\data\\\nngram 1=2\n\x00\x00\n", "line 3: expected 'ngram K=COUNT'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES + BAD_BYTES)
def test_bad_files_are_one_line_errors_naming_the_line(invoke, tmp_path, text, message):
    """Each damaged, hostile or foreign file is refused in one line saying where (the line) and
    what, whatever its size; nothing is written."""
    path = tmp_path / "bad.arpa"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    r = invoke("import", path, "--out", tmp_path / "x")
    assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.startswith("error: ") and len(r.output) < 400
    assert not (tmp_path / "x").exists()


def test_an_imported_run_samples_scores_and_evaluates_on_data(invoke, tmp_path):
    run = train_run(invoke, NAMES, tmp_path / "r", "--no-figures", "--model", "count", "--order", "3")
    assert invoke("export", run, "--out", tmp_path / "m.arpa").exit_code == 0
    assert invoke("import", tmp_path / "m.arpa", "--out", tmp_path / "imp").exit_code == 0
    imp = tmp_path / "imp"
    names = invoke("sample", imp, "-n", "5", "--start", "ka", "--end", "a", "--seed", "1").stdout.split()
    assert len(names) == 5 and all(w.startswith("ka") and w.endswith("a") for w in names)
    r = invoke("eval", imp, "--data", NAMES)
    assert r.exit_code == 0 and "arpa" in r.output
    r = invoke("eval", imp)
    assert r.exit_code == 1 and "--data FILE" in r.output
    assert invoke("plot", imp, "--what", "probs", "--out", tmp_path / "p.png").exit_code == 0


def test_an_imported_table_is_stored_sparse_and_checked_when_read(invoke, tmp_path):
    """arpa.pt holds the table's levels (what the file lists), never a C×V tensor; a stored table
    whose rows no longer sum to one is a one-line error; a run stored before (a dense "log_probs")
    still reads, with the same numbers."""
    from tests.conftest import one_line_error

    path = tmp_path / "lmplz.arpa"
    path.write_text(LMPLZ_LIKE, encoding="utf-8")
    assert invoke("import", path, "--out", tmp_path / "imp").exit_code == 0
    where = tmp_path / "imp" / "arpa.pt"
    ckpt = torch.load(where, weights_only=True)
    assert "log_probs" not in ckpt and ckpt["table"]["order"] == 3
    stored = sum(len(lv["cols"]) for lv in ckpt["table"]["levels"] if lv is not None)
    assert stored <= 7 + 9 + 4  # at most an entry per n-gram of the file
    want = json.loads(invoke("score", tmp_path / "imp", "anna", "bab", "--json").stdout)
    table = Run.open(tmp_path / "imp").log_probs()
    old = {k: v for k, v in ckpt.items() if k != "table"} | {"log_probs": table.to_dense()}
    torch.save(old, where)
    got = json.loads(invoke("score", tmp_path / "imp", "anna", "bab", "--json").stdout)
    assert [s["log_likelihood"] for s in got] == pytest.approx([s["log_likelihood"] for s in want], abs=1e-12)
    ckpt["table"]["levels"][2]["logp"][0] -= 0.5
    torch.save(ckpt, where)
    one_line_error(invoke("score", tmp_path / "imp", "anna"), "arpa.pt", "do not sum to one")


# --- issue 44: hostile files that are still ARPA read as the clean file; limits; every command --------
CLEAN = (
    "\\data\\\nngram 1=5\nngram 2=3\n\n\\1-grams:\n-99\t<s>\t-0.2\n-0.6\t</s>\n-0.5\ta\t-1\n-0.7\tb\n"
    "-0.9\t<U+0020>\n\n\\2-grams:\n-0.2\t<s> a\n-0.4\ta b\n-0.3\ta </s>\n\n\\end\\\n"
)
SAME_FILE = {
    "BOM": ("\ufeff" + CLEAN).encode("utf-8"),
    "CRLF": CLEAN.replace("\n", "\r\n").encode("utf-8"),
    "lone CR": CLEAN.replace("\n", "\r").encode("utf-8"),
    "spaces for tabs": CLEAN.replace("\t", " ").encode("utf-8"),
    "runs of both": CLEAN.replace("\t", " \t  ").encode("utf-8"),
    "indented, trailing space": "\n".join(f"  {line} " for line in CLEAN.split("\n")).encode("utf-8"),
    "a character escaped where its 1-gram is not": CLEAN.replace(
        "-0.4\ta b", "-0.4\t<U+0061> <U+0062>"
    ).encode(),
    "blank lines after \\end\\": (CLEAN + "\n\n  \n").encode("utf-8"),
    "no line break at the end": CLEAN.rstrip("\n").encode("utf-8"),
}


@pytest.mark.parametrize("variant", SAME_FILE)
def test_files_that_differ_only_in_form_read_as_the_same_table(tmp_path, variant):
    clean, other = tmp_path / "clean.arpa", tmp_path / "other.arpa"
    clean.write_text(CLEAN, encoding="utf-8")
    other.write_bytes(SAME_FILE[variant])
    (want, wv, wo), (got, gv, go) = read_arpa(clean), read_arpa(other)
    assert (gv, go) == (wv, wo) == (Vocab((" ", "a", "b")), 2)
    assert torch.equal(got.to_dense(), want.to_dense())


@pytest.mark.parametrize("space", ["\u00a0", "\u3000"])
def test_tokens_are_split_on_spaces_and_tabs_only(tmp_path, space):
    """A raw no-break space or ideographic space is a character (str.split would take it for a
    separator): the file's tokens are what ARPA's separators leave."""
    path = tmp_path / "m.arpa"
    path.write_text(CLEAN.replace("<U+0020>", space), encoding="utf-8")
    _, vocab, _ = read_arpa(path)
    assert vocab.chars == ("a", "b", space)


def test_a_history_with_a_backoff_but_no_longer_ngram_reads_as_its_suffix(tmp_path):
    """'b a' carries a backoff but begins no 3-gram: its row is β · P(· | a), renormalized, which
    is P(· | a) exactly: (</s> 0.15, a 0.15, b 0.7) by hand from the values below."""
    text = (
        "\\data\\\nngram 1=4\nngram 2=2\nngram 3=1\n\\1-grams:\n-99\t<s>\n-0.47712125\t</s>\n"
        "-0.47712125\ta\t-0.34678749\n-0.47712125\tb\t-0.12493874\n"
        "\\2-grams:\n-0.15490196\ta b\t-0.3858\n-0.30103\tb a\t-0.30103\n"
        "\\3-grams:\n-0.1\ta b a\n\\end\\\n"
    )
    table, vocab, order = read_arpa_text(text.splitlines())
    assert vocab.chars == ("a", "b") and order == 3
    b_a = table.rows(torch.tensor([2 * 3 + 1]))[0].exp()  # context (b, a): digits base V = 3
    assert b_a.tolist() == pytest.approx([0.15, 0.15, 0.7], abs=1e-7)
    assert table.levels[2].find(torch.tensor([7]))[1].item()  # it is a known context, listing nothing


def test_characters_a_trained_vocabulary_holds_round_trip(tmp_path):
    """Control, separator and bidirectional characters a corpus may hold inside its names are
    written <U+XXXX> by export and read back as themselves (only NUL and line ends are refused)."""
    import io

    from bigram.formats.export import write_arpa
    from bigram.reader.corpus import read_counts
    from bigram.table import count_table

    odd = ["a\x0bb", "a\x85c", "a\u2028b", "x\u202ey\u202c", "\u200eq\u200f", "a\x1cb", "a\u00a0b"]
    corpus = tmp_path / "odd.txt"
    corpus.write_text("\n".join(odd * 5 + ["ab", "ba"]) + "\n", encoding="utf-8")
    counts = read_counts(corpus, split="random", val_frac=0, test_frac=0, order=2)
    table = count_table(counts.splits["train"], 0.5)
    text = io.StringIO()
    write_arpa(text, table, counts.vocab)
    back, vocab, _ = read_arpa_text(text.getvalue().splitlines())
    assert vocab == counts.vocab and set("\x0b\x85\u2028\u202e\u200e\x1c\u00a0") <= set(vocab.chars)
    assert (back.to_dense() - table.to_dense()).abs().max() < 1e-6


def test_inputs_without_bound_are_refused_at_their_first_line(invoke, tmp_path):
    """The issue's unbounded files, small but decisive: 20,001 one-character tokens (header honest
    or not), a header announcing 300,000 unigrams, 16,384 characters with an honest header (one
    beyond train's V), a 1 MB token: each refused at the line where the limit is passed, with
    at most 40 characters of a token quoted."""
    toks = [chr(0x4E00 + i) for i in range(20_001)]
    body = "\\1-grams:\n-99\t<s>\n-5\t</s>\n" + "".join(f"-4.3\t{t}\n" for t in toks) + "\\end\\\n"
    cases = {
        "honest": (
            f"\\data\\\nngram 1={len(toks) + 2}\n" + body,
            "line 2: the header announces 20003 1-grams",
        ),
        "lying": (
            "\\data\\\nngram 1=5\n" + body,
            "line 9: the header announces 5 1-grams, and this is one more",
        ),
        "300k": ("\\data\\\nngram 1=300002\n\\1-grams:\n", "line 2: the header announces 300002 1-grams"),
        "V + 1": (
            "\\data\\\nngram 1=16386\n"
            + body.split("\n", 3)[0]
            + "\n-5\t</s>\n-99\t<s>\n"
            + "".join(f"-4.3\t{t}\n" for t in toks[:16_384]),
            "line 16389: more than 16,383 characters",
        ),
        "1 MB token": (
            "\\data\\\nngram 1=2\n\\1-grams:\n-1\t" + "x" * 1_000_000 + "\n",
            "line 4 is longer than",
        ),
        "10 KB token": (
            "\\data\\\nngram 1=2\n\\1-grams:\n-1\t</s>\n-1\t" + "y" * 10_000 + "\n\\end\\\n",
            "token '" + "y" * 40 + "…' is not one character",
        ),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / f"{len(name)}.arpa"
        path.write_text(text, encoding="utf-8")
        r = invoke("import", path, "--out", tmp_path / "x")
        assert r.exit_code == 1 and message in r.output, (name, r.output[:500])
        assert len(r.output) < 400 and not (tmp_path / "x").exists(), name


def test_a_path_that_is_no_file_says_what_it_is(invoke, tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, what in (
        (tmp_path, "is a directory"),
        (fifo, "is a named pipe (FIFO)"),
        (tmp_path / "no", "does not exist"),
    ):
        r = invoke("import", path, "--out", tmp_path / "x")
        assert r.exit_code == 1 and f"ARPA file {path} {what}" in r.output, r.output
        assert not (tmp_path / "x").exists()


def order_12_file() -> str:
    """An order-12 model over {a, b}: P(a | a^m) = 0.8 for m = 1 … 11 (the rest backs off), P(a)
    = P(b) = P(</s>) = 1/3 alone, bo(a) = 0.2 / (2/3) = 0.3 so that the row after 'a' sums to one."""
    head = "\\data\\\nngram 1=4\n" + "".join(f"ngram {k}=1\n" for k in range(2, 13))
    uni = "\\1-grams:\n-99\t<s>\n-0.47712125\t</s>\n-0.47712125\ta\t-0.52287875\n-0.47712125\tb\n"
    grams = "".join(f"\\{k}-grams:\n-0.09691001\t{' '.join('a' * k)}\n" for k in range(2, 13))
    return head + uni + grams + "\\end\\\n"


def test_an_order_12_file_gives_a_run_every_command_reads(invoke, tmp_path):
    """The highest order train allows, over {a, b}: imported, then sampled (plain, the lecture's
    loop, the most likely), scored (P(aa) = 1/3 · 0.8 · P(</s> | a) = 1/3 · 0.8 · 0.3/3 by hand),
    evaluated, exported and explored."""
    path = tmp_path / "o12.arpa"
    path.write_text(order_12_file(), encoding="utf-8")
    run = tmp_path / "imp"
    r = invoke("import", path, "--out", run)
    assert r.exit_code == 0 and "order 12" in r.output, r.output
    data = tmp_path / "names.txt"
    data.write_text("ab\naaa\nb\n", encoding="utf-8")
    for args in (
        ("sample", run, "-n", "5", "--seed", "1"),
        ("sample", run, "-n", "3", "--lecture"),
        ("sample", run, "--most-likely", "3"),
        ("eval", run, "--data", data),
        ("export", run, "--out", tmp_path / "back.arpa"),
        ("explore", run, "--out", tmp_path / "page.html"),
    ):
        r = invoke(*args)
        assert r.exit_code == 0, (args, r.output)
    got = json.loads(invoke("score", run, "aa", "--json").stdout)[0]["log_likelihood"]
    assert got == pytest.approx(math.log(1 / 3 * 0.8 * 0.1), abs=1e-6)


def test_a_model_that_almost_never_ends_names_is_refused_by_every_sampler(invoke, tmp_path):
    """P(</s>) = 1e-98: plain sampling and the lecture's loop both stop at 10,000 characters with
    one line (the lecture's loop ran for ever); the most likely names and score still answer."""
    path = tmp_path / "endless.arpa"
    path.write_text("\\data\\\nngram 1=3\n\\1-grams:\n-99\t<s>\n-98\t</s>\n0\ta\n\\end\\\n", encoding="utf-8")
    run = tmp_path / "imp"
    assert invoke("import", path, "--out", run).exit_code == 0
    from tests.conftest import one_line_error

    one_line_error(invoke("sample", run, "-n", "2", "--lecture"), "did not end within 10,000 characters")
    one_line_error(invoke("sample", run, "-n", "2", "--seed", "0"), "did not end within 10000 characters")
    r = invoke("sample", run, "--most-likely", "2")
    assert r.exit_code == 0 and r.stdout.split() == ["a", "aa"], r.output


def test_without_out_an_import_is_a_new_dated_run_as_train_makes(invoke, tmp_path, monkeypatch):
    """No --out: runs/<date>_<time> in the working directory, never one that exists (a user's
    directory of that name is left as it is, the run goes to <stamp>-1), and the newest run is
    what a command without RUN reads; with --out and --overwrite the run's own name is printed."""
    import datetime as dt

    from bigram.safety import rundir

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2031, 5, 6, 7, 8, 9)

    monkeypatch.setattr(rundir.dt, "datetime", Frozen)
    path = tmp_path / "lmplz.arpa"
    path.write_text(LMPLZ_LIKE, encoding="utf-8")
    theirs = tmp_path / "runs" / "2031-05-06_07-08-09"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("mine")
    for made in ("2031-05-06_07-08-09-1", "2031-05-06_07-08-09-2"):
        r = invoke("import", path)
        assert r.exit_code == 0, r.output
        assert r.stdout.splitlines()[-1] == f"wrote runs/{made}"
        assert Run.open(tmp_path / "runs" / made).models == ["arpa"]
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
    assert (theirs / "notes.txt").read_text() == "mine"
    r = invoke("score", "a")
    assert r.exit_code == 0 and "using run runs/2031-05-06_07-08-09-2 " in r.stderr, r.output
    r = invoke("import", path, "--out", tmp_path / "runs" / "2031-05-06_07-08-09-1", "--overwrite")
    assert r.stdout.splitlines()[-1] == f"wrote {tmp_path / 'runs' / '2031-05-06_07-08-09-1'}", r.output
