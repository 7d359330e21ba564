"""The lecture's labelled heatmap (plots.py): values, legibility, `bigram plot`."""

from __future__ import annotations

import torch


def test_plot_writes_the_labelled_heatmap(invoke, lecture_runs, tmp_path):
    from matplotlib.image import imread

    for what in ("counts", "probs"):
        out = tmp_path / f"{what}.png"
        r = invoke("plot", lecture_runs[1], "--what", what, "--out", out)
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = imread(out)
        assert img.shape[0] >= 480 and img.shape[1] >= 480  # legible: ≥ 8 inches at 60 dpi
        assert img[..., :3].std() > 0.05  # not blank
    r = invoke("plot", lecture_runs[1], "--out", tmp_path / "counts.png")
    assert r.exit_code == 1 and "--overwrite" in r.output
    r = invoke("plot", lecture_runs[1], "--what", "logits", "--out", tmp_path / "x.png")
    assert r.exit_code == 1 and "counts or probs" in r.output


def test_plot_cells_are_the_counts():
    from bigram.formats.plots import figure_for
    from bigram.vocab import Vocab

    vocab = Vocab(("a", "b"))
    N = torch.tensor([[0, 2, 1], [1, 0, 1], [2, 0, 0]])
    fig = figure_for(vocab, N, None, "counts", "count", 40)
    texts = sorted(fig.labels)
    assert texts == sorted(["..\n0", ".a\n2", ".b\n1", "a.\n1", "aa\n0", "ab\n1", "b.\n2", "ba\n0", "bb\n0"])


def test_plot_labels_are_large_and_readable_on_every_cell():
    """Labels ≥ 9 px at the saved size; white on the darkest cells, near-black on light ones, and
    really drawn: the darkest cell's pixels include its white label."""

    from bigram.formats.plots import CELL_PX, FONT_PX, MARGIN_PX, TITLE_PX, figure_for
    from bigram.vocab import Vocab

    vocab = Vocab(("a", "b"))
    N = torch.tensor([[0, 900, 10], [5, 0, 1], [800, 0, 0]])
    fig = figure_for(vocab, N, None, "counts", "count", 40)
    assert FONT_PX >= 9 and CELL_PX >= 2 * FONT_PX + 8
    by_label = dict(zip(fig.labels, fig.inks, strict=True))
    assert by_label[".a\n900"] == "white" and by_label["b.\n800"] == "white"
    assert by_label["..\n0"] != "white" and by_label["ab\n1"] != "white"
    img = fig.array()
    cell = img[TITLE_PX : TITLE_PX + CELL_PX, MARGIN_PX + CELL_PX : MARGIN_PX + 2 * CELL_PX]  # ".a"
    assert (cell.min(axis=2) > 240).sum() > 20  # white glyph pixels on a dark blue cell


def test_plot_at_order_3_shows_the_most_frequent_contexts():
    """Rows are contexts (two tokens), columns next tokens; each cell is the plain-Python trigram
    count, the rows the `top` contexts seen most often, the boundary column always shown."""
    from collections import Counter

    from bigram.formats.plots import figure_for
    from bigram.vocab import Vocab

    names = ["abba", "abc", "cab", "bb", "a", "acca", "bab"]
    vocab = Vocab(("a", "b", "c"))
    tri, per_context = Counter(), Counter()
    for w in names:
        s = ".." + w + "."
        for i in range(2, len(s)):
            tri[s[i - 2 : i + 1]] += 1
            per_context[s[i - 2 : i]] += 1
    V = 4
    N = torch.zeros(V * V, V, dtype=torch.int64)
    for g, n in tri.items():
        i, j, k = (" abc".index(x.replace(".", " ")) for x in g)
        N[i * V + j, k] = n
    fig = figure_for(vocab, N, None, "counts", "count", 3)
    ranked = sorted(per_context, key=lambda c: -per_context[c])
    top3 = ranked[:3]
    assert per_context[ranked[2]] > per_context[ranked[3]]  # no tie decides which rows are shown
    shown = {label.split("\n")[0][:2] for label in fig.labels}
    assert shown == set(top3)
    for label in fig.labels:
        gram, n = label.split("\n")
        assert int(n) == tri[gram], gram
    assert any(label.startswith(top3[0] + ".") for label in fig.labels)  # the boundary column
    assert "trigram counts" in fig.title and f"of {len(per_context)} contexts seen" in fig.title


def test_a_large_alphabet_at_order_4_shows_its_most_frequent_contexts_from_its_seen_rows(tmp_path):
    """~540 characters at order 4: V³ = 1.6e8 possible contexts, never one value each. The rows
    shown are the contexts seen most often (counted in plain Python), the model's cells its P."""
    from collections import Counter

    from bigram.formats.plots import figure_for
    from bigram.reader.corpus import read_counts
    from bigram.table import count_table
    from tests.conftest import NAMES
    from tests.reference import plain_names, wide_names

    names = wide_names(plain_names(NAMES))
    path = tmp_path / "wide.txt"
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    read = read_counts(path, split="random", val_frac=0, test_frac=0, order=4)
    counts, vocab = read.splits["train"], read.vocab
    per_context: Counter = Counter()
    for w in names:
        s = "..." + w  # the boundary shows as "."
        for i in range(3, len(s) + 1):
            per_context[s[i - 3 : i]] += 1
    fig = figure_for(vocab, counts, count_table(counts, "kn"), "probs", "count", 10)
    shown = sorted((per_context[r] for r in {label.split("\n")[0][:3] for label in fig.labels}), reverse=True)
    assert shown == sorted(per_context.values(), reverse=True)[:10]
    assert f"of {len(per_context):,} contexts seen" in fig.title


def test_the_colours_are_matplotlibs_blues_without_importing_it():
    """plots.blues rebuilds matplotlib's "Blues" lookup table (plot no longer imports matplotlib,
    0.3 s of its start-up); every value, the table's edges included, gets matplotlib's colour."""
    import numpy as np
    from matplotlib import colormaps

    from bigram.formats.plots import blues

    x = np.concatenate([np.linspace(0, 1, 100_001), np.arange(257) / 256, np.arange(256) / 255, [1 - 1e-16]])
    assert np.array_equal(blues(x), colormaps["Blues"](x)[..., :3])


def test_plot_does_not_import_matplotlib(lecture_runs, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\nfrom bigram.cli import main\n"
        f"sys.argv = ['bigram', 'plot', {str(lecture_runs[1])!r}, '--out', {str(tmp_path / 'p.png')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr


def test_without_out_the_figure_goes_into_the_run_and_a_users_file_is_never_replaced(invoke, small, tmp_path):
    """No --out: RUN/counts.png, or RUN/probs-<model>.png, listed in the marker as bigram's and
    rewritten when drawn again; the name taken by a file bigram did not write: refused, kept."""
    import json

    r = invoke("plot", small)
    assert r.exit_code == 0 and r.stdout == f"wrote {small / 'counts.png'}\n", r.output
    r = invoke("plot", small, "--what", "probs", "--model", "count")
    assert r.exit_code == 0 and r.stdout == f"wrote {small / 'probs-count.png'}\n", r.output
    listed = json.loads((small / ".bigram-run").read_text())["files"]
    assert {"counts.png", "probs-count.png"} <= set(listed)
    assert (small / "counts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (small / "counts.png").write_bytes(b"stale")  # bigram's own: drawn again without --overwrite
    assert invoke("plot", small).exit_code == 0 and (small / "counts.png").read_bytes()[:4] == b"\x89PNG"
    (small / "probs-neural.png").write_text("mine")
    for extra in ([], ["--overwrite"]):
        r = invoke("plot", small, "--what", "probs", "--model", "neural", *extra)
        assert r.exit_code == 1 and "bigram did not write it" in r.output and "--out FILE.png" in r.output
    assert (small / "probs-neural.png").read_text() == "mine"
