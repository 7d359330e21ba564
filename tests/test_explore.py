"""`bigram explore`: the page, driven in a real headless Chromium (Debian's chromium and
chromedriver; .ci/run installs them, nothing is downloaded at run time).

Every expected number comes from bigram's own reading commands (`bigram score`, the run's table),
which the rest of the suite checks against plain-Python references: the page must agree with them."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import NAMES, train_run

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and DRIVER.exists() and shutil.which("chromium")):
        why = (
            "Debian's chromium and chromium-driver are not installed "
            "(as root: apt-get install chromium chromium-driver; .ci/run does it)"
        )
        if os.environ.get("CI"):  # CI must run the browser tests, never skip them
            pytest.fail(why)
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    yield driver
    driver.quit()


def load(browser, page: Path) -> None:
    """Open a page from file://: it must finish drawing with no console message and no request."""
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(page.resolve().as_uri())
    assert browser.execute_script("return document.body.getAttribute('data-ready')") == "1"
    assert browser.get_log("browser") == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    """names.txt without held-out splits, add-one counts and 20 SGD steps: both models, curves."""
    from typer.testing import CliRunner

    from bigram.cli import app

    root = tmp_path_factory.mktemp("explore")
    run = root / "lecture"
    args = ["train", "--config", "lecture", "--data", str(NAMES), "--steps", "20", "--out", str(run), "-q"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["explore", str(run)])
    assert r.exit_code == 0 and f"wrote {run / 'explore.html'}" in r.output, r.output
    return run


def test_the_page_is_its_markup_with_its_style_script_and_data_inlined(lecture):
    """The page's source is three files beside explore.py; the page is one: each file's text verbatim,
    once, in its element, the markup's text all there in order around them, no placeholder left."""
    from bigram.formats import explore
    from bigram.runs import Run

    run = Run.open(lecture)
    page = explore.render(run)
    style, script = (f.read_text(encoding="utf-8") for f in (explore.STYLE, explore.SCRIPT))
    assert "</style" not in style.lower() and "</script" not in script.lower()  # nothing closes them early
    assert page.count(style) == page.count(script) == 1
    assert f"<style>\n{style}</style>" in page and f"<script>\n{script}</script>" in page
    at = 0
    for piece in re.split(r"\{\{[A-Z]+\}\}", explore.PAGE.read_text(encoding="utf-8")):
        at = page.index(piece, at) + len(piece)
    assert at == len(page) and re.search(r"\{\{[A-Z]+\}\}", page) is None
    head = '<script type="application/json" id="data">'
    data = page[page.index(head) + len(head) : page.index("</script>", page.index(head))]
    assert json.loads(data) == explore.page_data(run)
    assert "<script src" not in page and "<link" not in page  # one file: nothing to fetch
    assert not re.search(r"['\"](#[0-9a-f]{3,6}|white|rgb\(\d)", script, re.I)  # colours: CSS variables


def test_every_part_renders_offline_and_the_page_is_small(browser, lecture):
    page = lecture / "explore.html"
    assert page.stat().st_size < 400_000
    load(browser, page)
    js = browser.execute_script
    assert js("return document.querySelectorAll('#heat rect').length") == 27 * 27
    assert js("return document.querySelectorAll('#bars rect.bar').length") == 2 * 27
    assert js("return document.querySelectorAll('table.steps tr').length") == 2 * (1 + 5)  # emma: 5 bigrams
    assert js("return document.querySelectorAll('#drawn li').length") == 20
    assert js("return document.querySelectorAll('#curves .curve').length") == 2  # neural curve, count line
    assert js("return document.querySelectorAll('#eval tr').length") == 1 + 2
    for part in ("part-table", "part-row", "part-name", "part-sample", "part-train"):
        assert browser.find_element("id", part).is_displayed()


def _score(run: Path, *names: str) -> list[dict]:
    from typer.testing import CliRunner

    from bigram.cli import app

    out = {}
    for model in ("count", "neural"):
        r = CliRunner().invoke(app, ["score", str(run), *names, "--model", model])
        out[model] = r
    return out


def test_a_typed_name_shows_the_numbers_bigram_score_prints(browser, lecture):
    from selenium.webdriver.common.by import By

    load(browser, lecture / "explore.html")
    box = browser.find_element(By.ID, "name-input")
    for name in ("emma", "  Zoë ", "andrejq"):
        box.clear()
        box.send_keys(name)
        printed = _score(lecture, name)
        for model, r in printed.items():
            if r.exit_code != 0:  # an unknown character: the same sentence
                said = browser.find_element(By.ID, "name-error").text
                assert r.stderr.strip() == f"error: {said}", (r.stderr, said)
                continue
            want = r.stdout.strip().splitlines()[-1].strip()  # likelihood = …   NLL = … over n bigrams
            got = browser.find_element(By.CSS_SELECTOR, f".totals[data-model={model}] .nll").text
            assert " ".join(got.split()) == " ".join(want.split()), (model, got, want)
            rows = browser.find_elements(By.CSS_SELECTOR, f"table.steps[data-model={model}] tr")[1:]
            for row, line in zip(rows, r.stdout.strip().splitlines()[1:-1], strict=True):
                parts = line.split()  # ".e   P = 0.047785   log P =   -3.0410"
                cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
                assert cells[:3] == [parts[0], parts[3], parts[-1]]


def test_a_clicked_row_shows_that_row_of_the_table(browser, lecture):
    from selenium.webdriver.common.by import By

    from bigram.runs import Run

    run = Run.open(lecture)
    load(browser, lecture / "explore.html")
    a = run.vocab.id("a")
    browser.find_element(By.CSS_SELECTOR, f'#heat g[data-row="{a}"] rect').click()
    assert 'context "a"' in browser.find_element(By.ID, "row-head").text
    for model in ("count", "neural"):
        want = run.log_probs(model)[a].exp().tolist()
        bars = browser.find_elements(By.CSS_SELECTOR, f'#bars rect[data-model="{model}"]')
        got = {int(b.get_attribute("data-token")): float(b.get_attribute("data-p")) for b in bars}
        assert len(got) == 27 and all(abs(got[j] - want[j]) <= 1e-6 for j in range(27))
    entropy = -sum(p * math.log(p) for p in run.log_probs("count")[a].exp().tolist())
    assert f"{entropy:.4f} nats" in browser.find_element(By.ID, "row-stats").text


def test_the_sampler_walks_the_table_honestly_and_repeats_with_its_seed(browser, lecture):
    from selenium.webdriver.common.by import By

    from bigram.runs import Run

    run = Run.open(lecture)
    load(browser, lecture / "explore.html")
    drawn = browser.execute_script("return window.bigramExplore.sampleNames('count', 20000, 11)")
    assert all(not d.get("missing") and set(d["name"]) <= set(run.vocab.chars) for d in drawn)
    again = browser.execute_script("return window.bigramExplore.sampleNames('count', 20000, 11)")
    assert again == drawn
    first = Counter(d["name"][:1] for d in drawn)  # the first character: row 0 of P, given a name
    p0 = run.log_probs("count")[0].exp().tolist()
    for j, ch in enumerate(run.vocab.tokens()[1:], start=1):
        p = p0[j] / (1 - p0[0])  # names are never empty, as in bigram sample
        assert abs(first[ch] / 20000 - p) <= 4 * math.sqrt(p * (1 - p) / 20000) + 1e-3, ch
    assert all(d["name"] and not d.get("cut") for d in drawn)  # each ended at the boundary
    second = Counter(d["name"][1:2] for d in drawn if d["name"][:1] == "a")  # then the row of 'a'
    pa = run.log_probs("count")[run.vocab.id("a")].exp().tolist()
    n_a = sum(second.values())
    for j, ch in enumerate(["", *run.vocab.chars]):
        p = pa[j]
        assert abs(second[ch] / n_a - p) <= 4 * math.sqrt(p * (1 - p) / n_a) + 2e-3, ch

    def walk() -> list[str]:
        browser.find_element(By.ID, "s-reset").click()
        lines = []
        for _ in range(60):
            browser.find_element(By.ID, "s-step").click()
            lines.append(browser.find_element(By.ID, "walk").text)
            if "ended at the boundary" in lines[-1]:
                return lines
        raise AssertionError(lines)

    assert walk() == walk()


HOSTILE = [
    'o"brien', "o'neil", "<b>bold</b>", "a&amp;b", "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>", "مريم", "דוד", "{{DATA}}", "ann", "bob",
]  # fmt: skip


def test_a_hostile_corpus_injects_nothing(browser, invoke, tmp_path):
    corpus = tmp_path / "hostile.txt"
    corpus.write_text("\n".join(HOSTILE * 3) + "\n", encoding="utf-8")
    run = train_run(invoke, corpus, tmp_path / "h", "--steps", "3", "--val-frac", "0", "--test-frac", "0")
    assert invoke("explore", run).exit_code == 0
    load(browser, run / "explore.html")
    js = browser.execute_script
    assert js("return document.querySelectorAll('img, b, script:not([id=data])').length") == 1  # our script
    names = js("return window.bigramExplore.sampleNames('count', 300, 5).map(d => d.name)")
    assert "</script><script>alert(1)</script>" in names or any("<" in n for n in names)
    assert browser.title.startswith("bigram explore:")


@pytest.mark.parametrize(
    "flags",
    [
        ("--model", "count"),
        ("--model", "neural", "--steps", "3"),
        ("--val-frac", "0", "--test-frac", "0", "--steps", "3"),
        ("--smoothing", "kn", "--order", "3", "--steps", "3"),
        ("--order", "5", "--model", "count"),
    ],
)
def test_every_kind_of_run_gives_a_working_page(browser, invoke, tmp_path, flags):
    run = train_run(invoke, NAMES, tmp_path / "r", "--no-figures", *flags)
    out = tmp_path / "page.html"
    r = invoke("explore", run, "--out", out)
    assert r.exit_code == 0, r.output
    load(browser, out)
    assert browser.execute_script("return document.querySelectorAll('#heat rect').length") > 0
    emma = browser.execute_script("return window.bigramExplore.scoreName(arguments[0], 'emma')", "count"
                                  if "neural" not in flags else "neural")  # fmt: skip
    model = "neural" if "neural" in flags else "count"
    want = json.loads(invoke("score", run, "emma", "--json", "--model", model).stdout)[0]["nll"]
    assert emma.get("missing") is None and abs(emma["nll"] - want) < 1e-9
    if "neural" in flags:  # the flat line is a reference count model the run did not keep: said so
        note = browser.find_element("id", "curves-note").text
        assert "this run keeps no count model" in note and "(counts)" not in note
    if "--order" in flags and "5" in flags:
        assert out.stat().st_size < 5_000_000
        assert "most frequent" in browser.find_element("id", "heat-note").text


def test_a_sweep_sub_run_and_the_notebook_object(browser, invoke, tmp_path):
    r = invoke("sweep", "--reg", "0.01,0.1", "--data", NAMES, "--out", tmp_path / "sw", "--steps", "3")
    assert r.exit_code == 0, r.output
    sub = tmp_path / "sw" / "reg=0.1"
    assert invoke("explore", sub).exit_code == 0
    load(browser, sub / "explore.html")
    from bigram.runs import Run

    iframe = Run.open(sub).explore()._repr_html_()
    assert iframe.startswith("<iframe srcdoc=") and "<script" not in iframe  # the page is escaped in it
    # explore.html is one of bigram's files: the run can still be replaced
    r = invoke("train", "--data", NAMES, "--out", sub, "--overwrite", "-q", "--model", "count")
    assert r.exit_code == 0, r.output


def test_a_mixed_run_gives_a_working_page(browser, invoke, tmp_path):
    """A run `bigram mix` wrote (a bigram and a trigram, given weights) draws its table, and the
    page scores a name as `bigram score` does for the mix."""
    two = train_run(invoke, NAMES, tmp_path / "two", "--no-figures", "--model", "count")
    three = train_run(invoke, NAMES, tmp_path / "three", "--no-figures", "--model", "count", "--order", "3")
    mixed = tmp_path / "mixed"
    assert invoke("mix", two, three, "--weights", "0.3,0.7", "--out", mixed).exit_code == 0
    out = tmp_path / "page.html"
    r = invoke("explore", mixed, "--out", out)
    assert r.exit_code == 0, r.output
    load(browser, out)
    assert browser.execute_script("return document.querySelectorAll('#heat rect').length") > 0
    text = browser.execute_script("return document.body.innerText")
    assert "mixed model" in text and "undefined" not in text  # the model is named, as count and neural are
    emma = browser.execute_script("return window.bigramExplore.scoreName(arguments[0], 'emma')", "mix")
    want = json.loads(invoke("score", mixed, "emma", "--json").stdout)[0]["nll"]
    assert emma.get("missing") is None and abs(emma["nll"] - want) < 1e-9


def _page_scores(browser, model: str, names: list[str]) -> list[dict]:
    return browser.execute_script(
        "return arguments[1].map(n => window.bigramExplore.scoreName(arguments[0], n))", model, names
    )


def test_a_large_alphabet_page_carries_the_whole_model_and_reads_it_as_bigram_does(browser, invoke, tmp_path):
    """~520 characters at order 3, Kneser-Ney: the page carries every row (keys, listed tokens,
    backoffs), so every walk ends at the boundary and every name scores as `bigram score` does;
    a row shows what it lists and what it leaves to the shorter context."""
    from tests.reference import plain_names, wide_names

    names = wide_names(plain_names(NAMES))
    corpus = tmp_path / "wide.txt"
    corpus.write_text("\n".join(names) + "\n", encoding="utf-8")
    run = train_run(invoke, corpus, tmp_path / "w", "--model", "count", "--smoothing", "kn", "--order", "3")
    out = tmp_path / "page.html"
    assert invoke("explore", run, "--out", out).exit_code == 0
    assert out.stat().st_size < 5_000_000
    load(browser, out)
    assert "carries every model whole" in browser.find_element("id", "carried").text
    # the counts table shows the top columns' counts (its data holds only those columns)
    heat = browser.find_element("id", "heat").get_attribute("innerHTML")
    assert "undefined" not in heat and "NaN" not in heat
    drawn = browser.execute_script("return window.bigramExplore.sampleNames('count', 300, 3)")
    assert all(not d.get("missing") and not d.get("cut") for d in drawn)
    probe = [*names[::4001], names[5][:2] + names[9][2:], drawn[0]["name"], drawn[1]["name"]]
    want = json.loads(invoke("score", run, *probe, "--json").stdout)
    for got, w in zip(_page_scores(browser, "count", probe), want, strict=True):
        assert got.get("missing") is None and abs(got["nll"] - w["nll"]) < 1e-9, (got, w)
    assert "every other token: β = " in browser.find_element("id", "row-stats").text


def test_a_page_over_its_budget_says_what_it_left_out_and_never_guesses(
    browser, invoke, tmp_path, monkeypatch
):
    """A page given room for a fraction of names.txt's order-4 model carries the rows of the
    contexts seen most often: it says in words how many it left out; a name read through carried
    rows scores as `bigram score` does, one that needs a left-out row stops there."""
    from bigram.formats import explore
    from bigram.runs import Run

    run = train_run(invoke, NAMES, tmp_path / "r", "--model", "count", "--smoothing", "kn", "--order", "4")
    monkeypatch.setattr(explore, "PAGE_BUDGET", 20_000)  # not even the contexts of 3 tokens fit
    load(browser, explore.write(Run.open(run), tmp_path / "tiny.html"))
    assert "leaves out" in browser.find_element("id", "carried").text
    assert _page_scores(browser, "count", ["anna"])[0]["missing"] == "..."  # its first context
    monkeypatch.setattr(explore, "PAGE_BUDGET", 400_000)  # every context, the rows of the frequent ones
    out = explore.write(Run.open(run), tmp_path / "page.html")
    load(browser, out)
    said = browser.find_element("id", "carried").text
    assert "leaves out" in said and "bigram score and bigram sample read them all" in said
    probe = ["anna", "emma", "zzyzx", "qxqxq"]
    want = json.loads(invoke("score", run, *probe, "--json").stdout)
    got = _page_scores(browser, "count", probe)
    assert got[0].get("missing") is None and abs(got[0]["nll"] - want[0]["nll"]) < 1e-9
    assert any(g.get("missing") for g in got[2:])  # rare contexts: left out, and said so
    for g, w in zip(got, want, strict=True):
        steps = g["steps"]  # the predictions read before a left-out row are bigram score's own
        for s, b in zip(steps, w["bigrams"], strict=False):
            assert abs(s["logp"] - b["log_prob"]) < 1e-12
    drawn = browser.execute_script("return window.bigramExplore.sampleNames('count', 200, 1)")
    assert any(d.get("missing") for d in drawn)


def test_a_mix_of_two_alphabets_reads_on_the_page_as_bigram_score_reads_it(browser, invoke, tmp_path):
    """names.txt's trigram and the Italian names' bigram (which has è and ò): on the page as in
    `bigram score`, a run sits out after a character it lacks, and every walk ends."""
    from tests.conftest import ROOT

    a = train_run(invoke, NAMES, tmp_path / "a", "--model", "count", "--smoothing", "kn", "--order", "3")
    b = train_run(invoke, ROOT / "data" / "italian.txt", tmp_path / "b", "--model", "count")
    mixed = tmp_path / "m"
    assert invoke("mix", a, b, "--weights", "0.6,0.4", "--out", mixed).exit_code == 0
    out = tmp_path / "page.html"
    assert invoke("explore", mixed, "--out", out).exit_code == 0
    load(browser, out)
    probe = ["noè", "niccolò", "emma", "wolfgang", "noèmi", "èva"]  # after "èm" names.txt reads "m"
    want = json.loads(invoke("score", mixed, *probe, "--json").stdout)
    for got, w in zip(_page_scores(browser, "mix", probe), want, strict=True):
        assert got.get("missing") is None and abs(got["nll"] - w["nll"]) < 1e-9, (got, w)
    drawn = browser.execute_script("return window.bigramExplore.sampleNames('mix', 300, 2)")
    assert all(not d.get("missing") and not d.get("cut") for d in drawn)


def test_a_damaged_run_gives_a_page_that_says_what_it_could_not_read(browser, invoke, tmp_path):
    """Issue 44: an event file of random bytes, a metrics.json with a non-number, an infinite
    held-out NLL (k = 0): the page draws every part it can, says in words what it could not read,
    and prints inf as inf."""
    data = tmp_path / "d.txt"
    data.write_text("ab\nab\nba\nbb\naa\nab\nzq\n")
    run = train_run(invoke, data, tmp_path / "r", "--smoothing", "0", "--steps", "3", "--val-frac", "0.3",
                    "--test-frac", "0", "--seed", "3")  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["count"]["val"]["nll"] == math.inf  # the case: an unseen bigram in val, k = 0
    metrics["neural"]["train"]["nll"] = "oops"
    (run / "metrics.json").write_text(json.dumps(metrics))
    events = next(run.glob("neural/events.out.tfevents.*"))
    events.write_bytes(bytes(range(256)) * 2)
    assert invoke("explore", run).exit_code == 0
    load(browser, run / "explore.html")
    header = browser.find_element("id", "run").text
    assert f"The TensorBoard event file neural/{events.name} could not be read whole" in header
    assert "metrics.json holds something other than numbers for neural train" in header
    assert "No training curve" in browser.find_element("id", "curves-note").text
    rows = {(r.get_attribute("data-model"), r.get_attribute("data-split")): r.text
            for r in browser.find_elements("css selector", "#eval tr[data-model]")}  # fmt: skip
    assert set(rows) == {("count", "train"), ("count", "val"), ("neural", "val")}
    assert rows["count", "val"].split()[3:6] == ["inf", "inf", "inf"]  # NLL, perplexity, bits


# --- issue 45: the page's words, for the lecture run, a Kneser-Ney trigram and a large alphabet ------


def _cli(*args) -> str:
    """A bigram command, in-process; it must succeed. Its standard output."""
    from typer.testing import CliRunner

    from bigram.cli import app

    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.stdout


def _wide_corpus(path: Path) -> list[str]:
    """A quarter of names.txt over ~520 letters of five scripts (tests.reference.wide_names), every
    fifth name joined to the next by a space, a zero-width space inside every 97th: invisible
    characters the page must label visibly."""
    from tests.reference import plain_names, wide_names

    names = wide_names(plain_names(NAMES))[::4]
    out = []
    for i, w in enumerate(names):
        w = f"{w} {names[i + 1]}" if i % 5 == 0 and i + 1 < len(names) else w
        out.append(w[:2] + "\u200b" + w[2:] if i % 97 == 0 else w)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def kn3(tmp_path_factory):
    """names.txt's trigram, Kneser-Ney counts beside the neural model, val and test names held out."""
    run = tmp_path_factory.mktemp("kn3") / "kn3"
    _cli("train", "--order", "3", "--smoothing", "kn", "--data", NAMES, "--out", run, "-q", "--no-figures")
    _cli("explore", run)
    return run


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A large alphabet (~520 letters, the space and a zero-width space among them), default training."""
    root = tmp_path_factory.mktemp("wide")
    names = _wide_corpus(root / "wide.txt")
    run = root / "wide"
    _cli("train", "--data", root / "wide.txt", "--out", run, "-q", "--no-figures")
    _cli("explore", run)
    return run, names


def _text(browser) -> str:
    return browser.execute_script("return document.body.innerText")


def _lines(browser, selector: str) -> list[str]:
    return [e.text for e in browser.find_elements("css selector", selector)]


def _type(browser, name: str) -> None:
    """A name in the name box, as typing it would (any character: a zero-width space too)."""
    box = browser.find_element("id", "name-input")
    browser.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))", box, name
    )


def _said(browser, id_: str) -> str:
    return browser.find_element("id", id_).text


def test_perplexity_and_bits_are_lines_of_their_own_with_the_right_numbers(browser, lecture, kn3):
    """The totals under a name: bigram score's line as it prints it (its spaces kept), then
    perplexity = exp(NLL) and bits = NLL / ln 2, each on its own line. The lecture's count model
    from names.txt's own counts (add-one), the others from bigram score's NLL."""
    from tests.reference import plain_counts, plain_names

    counts = plain_counts(plain_names(NAMES))
    rows = Counter()
    for (a, _), n in counts.items():
        rows[a] += n
    pairs = list(zip([None, *"emma"], [*"emma", None], strict=True))
    by_hand = -sum(math.log((counts[p] + 1) / (rows[p[0]] + 27)) for p in pairs) / len(pairs)
    for run in (lecture, kn3):
        load(browser, run / "explore.html")
        for model in ("count", "neural"):
            said = json.loads(_cli("score", run, "emma", "--json", "--model", model))[0]["nll"]
            if run == lecture and model == "count":
                assert abs(said - by_hand) < 1e-12
            box = browser.find_element("css selector", f".totals[data-model={model}]")
            lines = [e.text for e in box.find_elements("css selector", "div")]
            printed = _cli("score", run, "emma", "--model", model).strip().splitlines()[-1].strip()
            assert lines == [
                printed,  # "likelihood = …   log-likelihood = …   NLL = …": bigram score's spacing
                f"perplexity = exp(NLL) = {math.exp(said):.4f}",
                f"bits per character = NLL / ln 2 = {said / math.log(2):.4f}",
            ]
            ys = browser.execute_script(
                "return [...arguments[0].children].map(e => e.getBoundingClientRect().top)", box
            )
            assert ys == sorted(ys) and len(set(ys)) == 3  # three lines on the screen, not one
        metrics = json.loads((run / "metrics.json").read_text())
        for tr in browser.find_elements("css selector", "#eval tr[data-model]"):
            m, split = tr.get_attribute("data-model"), tr.get_attribute("data-split")
            nll = metrics[m][split]["nll"]
            cells = tr.text.split()
            assert cells[3:6] == [f"{nll:.6f}", f"{math.exp(nll):.4f}", f"{nll / math.log(2):.4f}"]


def test_the_eval_table_and_the_scores_are_what_the_cli_prints(browser, kn3):
    """The Kneser-Ney trigram's page: its eval table is bigram eval's, row for row, and a typed
    name's numbers are bigram score's, for both models."""
    from selenium.webdriver.common.by import By

    load(browser, kn3 / "explore.html")
    printed = [
        line.split() for line in _cli("eval", kn3).splitlines() if line[:6].strip() in ("count", "neural")
    ]
    shown = [tr.text.split() for tr in browser.find_elements(By.CSS_SELECTOR, "#eval tr[data-model]")]
    assert shown == printed and len(shown) == 6
    for name in ("emma", "zyx"):
        _type(browser, name)
        for model in ("count", "neural"):
            out = _cli("score", kn3, name, "--model", model).strip().splitlines()
            got = browser.find_element(By.CSS_SELECTOR, f".totals[data-model={model}] .nll").text
            assert got == out[-1].strip()
            rows = browser.find_elements(By.CSS_SELECTOR, f"table.steps[data-model={model}] tr")[1:]
            want = [line.split() for line in out[1:-1]]  # ".em   P = 0.181789   log P =   -1.7049"
            assert [r.text.split()[:3] for r in rows] == [[w[0], w[3], w[-1]] for w in want]


def test_no_backticks_no_internal_index_no_blank_label(browser, lecture, kn3, wide):
    """What a learner reads: code is styled (a code element), never shown with backticks; no
    index of the page's own (the "(row 495)" of issue 45); no label left blank or undefined."""
    for run in (lecture, kn3, wide[0]):
        load(browser, run / "explore.html")
        text = _text(browser)
        assert "`" not in text and "(row " not in text, run
        assert not re.search(r"\bundefined\b|\bNaN\b|\bnull\b|\[object", text), run
        assert browser.find_element("css selector", "#name-rule code").text == "bigram score"
        rows, bars = (
            _lines(browser, "#heat g.heat-row > text:last-child"),
            _lines(browser, "#bars text.bar-label"),
        )
        assert rows and bars and all(t.strip() for t in rows + bars), run


def _round(labels: list[str], least: int) -> list[float]:
    """Tick labels that are round: at least `least`, evenly spaced by 1, 2 or 5 × 10^k, each a
    multiple of that step, written with the digits the step needs and no more."""
    values = [float(t) for t in labels]
    assert len(values) >= least, labels
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(values)}
    assert len(gaps) == 1, labels
    step = gaps.pop()
    assert step > 0, labels
    power = math.floor(math.log10(step) + 1e-9)
    assert round(step / 10**power, 6) in (1, 2, 5), labels
    assert all(abs(v / step - round(v / step)) < 1e-6 for v in values), labels
    digits = max(0, -power)
    assert all(len(t.partition(".")[2]) == digits for t in labels), labels
    return values


def test_axes_have_round_ticks_and_labels(browser, lecture, kn3, wide):
    """The bars: P from 0 in round steps up to at least the highest bar, the axis named; the
    curves: NLL and steps in round steps spanning every logged point, zoomed in or not."""
    for run in (lecture, kn3, wide[0]):
        load(browser, run / "explore.html")
        js = browser.execute_script
        ticks = _round(_lines(browser, "#bars text.tick"), 3)
        top = js(
            "return Math.max(...[...document.querySelectorAll('#bars rect.bar')].map(b => +b.dataset.p))"
        )
        assert ticks[0] == 0 and ticks[-1] >= top
        assert "P(next | context)" in _lines(browser, "#bars text.axis-label")
        assert "NLL (nats per " in " ".join(_lines(browser, "#curves text.axis-label"))
        points = js("return Object.values(JSON.parse(data.textContent).curves).flat()")  # every logged point
        ys = _round(_lines(browser, "#curves text.tick.y"), 4)
        xs = _round(_lines(browser, "#curves text.tick.x"), 3)
        assert ys[0] <= min(p[1] for p in points) and ys[-1] >= max(p[1] for p in points)
        assert xs[0] == 0 and xs[-1] >= max(p[0] for p in points) and xs == [int(x) for x in xs]
        browser.find_element("id", "curves-zoom").click()
        _round(_lines(browser, "#curves text.tick.y"), 4)


def _curves_drawn(browser) -> dict[str, str]:
    """Each line the chart draws ({split}/nll or {split}/nll_count_model) and its dash pattern."""
    return {c.get_attribute("data-tag"): c.get_attribute("stroke-dasharray")
            for c in browser.find_elements("css selector", "#curves .curve")}  # fmt: skip


def _legend(browser) -> dict[str, str]:
    lines = browser.find_elements("css selector", "#curves line.legend-line")
    texts = _lines(browser, "#curves text.legend")
    return {t: line.get_attribute("stroke-dasharray") for t, line in zip(texts, lines, strict=True)}


WORDS = {"train": "training names", "val": "validation names", "test": "test names"}
DASHES = {"": "solid", "6 3": "dashed", "2 3": "dotted"}


def _check_caption(browser, run: Path) -> str:
    """The legend names exactly the lines drawn, with their dashes; the caption says what each
    dash is, only for dashes drawn; where the neural model ends against the count line, per split,
    from metrics.json; and the floor (the train entropy) below both."""
    drawn, legend = _curves_drawn(browser), _legend(browser)
    want = {f"{'count' if t.endswith('_count_model') else 'neural'} model, {t.split('/')[0]}": d
            for t, d in drawn.items()}  # fmt: skip
    assert legend == want
    note = browser.find_element("id", "curves-note").text
    assert "minimum gradient descent approaches" not in note
    splits = {t.split("/")[0]: d for t, d in drawn.items()}
    for dash, word in DASHES.items():
        used = [s for s, d in splits.items() if d == dash]
        if len(splits) > 1:
            assert (word in note.lower()) == bool(used), (word, note)
            for s in used:
                assert f"{word}: {WORDS[s]}" in note.lower()
        else:
            assert word not in note.lower()
    metrics = json.loads((run / "metrics.json").read_text())
    for s in splits:
        # the difference of the numbers as printed (6 decimals, the table's), in exact decimals
        n, c = f"{metrics['neural'][s]['nll']:.6f}", f"{metrics['count'][s]['nll']:.6f}"
        d = Decimal(n) - Decimal(c)
        side = "level with" if d == 0 else f"{abs(d)} {'above' if d > 0 else 'below'}"
        assert f"On the {WORDS[s]} the neural model ends at {n}, {side} the count model's {c}." in note
    floor = metrics["count"]["train"]["entropy"]
    assert floor <= min(metrics["count"]["train"]["nll"], metrics["neural"]["train"]["nll"])
    assert f"The floor on the training names is their entropy, {floor:.4f}" in note
    return note


def test_the_training_captions_say_what_each_run_draws(browser, lecture, kn3, wide):
    load(browser, lecture / "explore.html")
    note = _check_caption(browser, lecture)
    assert set(_curves_drawn(browser)) == {"train/nll", "train/nll_count_model"}  # no held-out names
    assert "this run held out no names" in note and "dashed" not in note and "dotted" not in note
    assert "gradient descent (SGD)" in note and "add-k smoothing, k = 1" in note
    load(browser, kn3 / "explore.html")
    note = _check_caption(browser, kn3)
    assert {t.split("/")[0] for t in _curves_drawn(browser)} == {"train", "val", "test"}
    assert "Newton's method" in note and "interpolated modified Kneser-Ney" in note
    metrics = json.loads((kn3 / "metrics.json").read_text())
    if metrics["neural"]["train"]["nll"] < metrics["count"]["train"]["nll"]:  # issue 45's case
        assert "below the count model's" in note and "is not a floor" in note
    load(browser, wide[0] / "explore.html")
    _check_caption(browser, wide[0])


def test_draw_more_gives_new_names_and_a_walk_is_not_a_drawn_name(browser, lecture):
    """'draw 20 more names' goes on along the seed's stream (names 21-40 after 1-20); a walked
    name goes to its own list, never the drawn one; new settings start both again."""
    from selenium.webdriver.common.by import By

    load(browser, lecture / "explore.html")
    first = _lines(browser, "#drawn li")
    assert len(first) == 20 and _lines(browser, "#drawn-head")[0].startswith("Names 1–20 drawn")
    browser.find_element(By.ID, "s-many").click()
    second = _lines(browser, "#drawn li")
    assert len(second) == 20 and browser.find_element(By.ID, "drawn").get_attribute("start") == "21"
    assert _lines(browser, "#drawn-head")[0].startswith("Names 21–40 drawn")
    assert sum(a == b for a, b in zip(first, second, strict=True)) < 5  # new names, not the same 20 again
    model = browser.find_element(By.ID, "s-model").get_attribute("value")
    stream = browser.execute_script("return bigramExplore.sampleNames(arguments[0], 40, 2147483647)", model)
    assert [d["name"] for d in stream] == first + second
    assert not browser.find_element(By.ID, "walked-box").is_displayed()
    for _ in range(60):
        browser.find_element(By.ID, "s-step").click()
        if "ended at the boundary" in browser.find_element(By.ID, "walk").text:
            break
    walked = re.search(r'ended at the boundary: "([^"]*)"', _said(browser, "walk")).group(1)
    assert (
        _lines(browser, "#walked li") == [walked] and browser.find_element(By.ID, "walked-box").is_displayed()
    )
    assert _lines(browser, "#drawn li") == second  # the walk added nothing to the drawn names
    seed = browser.find_element(By.ID, "s-seed")
    seed.clear()
    seed.send_keys("7\n")
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", seed)
    assert _said(browser, "drawn-head").startswith("Names 1–20 drawn") and _lines(browser, "#walked li") == []


def test_a_large_alphabet_page_shows_the_space_and_invisible_characters(browser, wide):
    """The space context's row is labelled ␣ (as bigram plot draws it), a zero-width space shows
    as its escape; a typed name with both reads as bigram score reads it; "emma", outside the
    alphabet, gives way to a name the model can read, and the page says why."""
    from selenium.webdriver.common.by import By

    from bigram.runs import Run

    run, names = wide
    space = Run.open(run).vocab.id(" ")
    load(browser, run / "explore.html")
    row = browser.find_element(By.CSS_SELECTOR, f'#heat g[data-row="{space}"]')
    assert row.find_elements(By.TAG_NAME, "text")[-1].text == "␣"
    assert "the space as “␣”" in browser.find_element(By.ID, "heat-note").text
    assert "U+200B as “\\u200b”" in browser.find_element(By.ID, "heat-note").text
    start = browser.find_element(By.ID, "name-input").get_attribute("value")
    assert start and start != "emma" and browser.find_element(By.ID, "name-error").text == ""
    assert "“emma” has characters outside its vocabulary" in browser.find_element(By.ID, "name-rule").text
    name = names[0]
    assert " " in name and "\u200b" in name
    _type(browser, name)
    for model in ("count", "neural"):
        grams = _lines(browser, f"table.steps[data-model={model}] tr td:first-child")
        assert sum("␣" in g for g in grams) == 2 and sum("\\u200b" in g for g in grams) == 2
        assert not any(" " in g or "\u200b" in g for g in grams)
        want = json.loads(_cli("score", run, name, "--json", "--model", model))[0]
        assert len(grams) == len(want["bigrams"])
        got = browser.find_element(By.CSS_SELECTOR, f".totals[data-model={model}] .nll").text
        assert f"NLL = {want['nll']:.4f} nats/bigram" in got


def test_a_run_that_trained_nothing_says_so_instead_of_describing_a_chart(browser, invoke, tmp_path):
    """An imported model (no counts, no splits, no curve): the page names its ARPA file, shows no
    counts, no occurrences, no eval table and no chart, and says why in words; a unigram's row
    lists every token, so no backoff weight is spoken of."""
    run = train_run(invoke, NAMES, tmp_path / "uni", "--model", "count", "--order", "1")
    assert invoke("explore", run).exit_code == 0
    load(browser, run / "explore.html")
    assert "every other token" not in _said(browser, "row-stats") and "lists all 27 next tokens" in _said(
        browser, "row-stats"
    )
    assert not browser.find_element("id", "train-lead").is_displayed()
    assert "trained no neural model" in _said(browser, "curves-note")
    arpa = tmp_path / "uni.arpa"
    assert invoke("export", run, "--out", arpa).exit_code == 0
    assert invoke("import", arpa, "--out", tmp_path / "imp").exit_code == 0
    assert invoke("explore", tmp_path / "imp").exit_code == 0
    load(browser, tmp_path / "imp" / "explore.html")
    assert "imported model: read from the ARPA file uni.arpa, not trained here." in _said(browser, "run")
    assert "holds no training counts" in _said(browser, "heat-note")
    assert "occurrences" not in _said(browser, "row-head")
    assert not browser.find_element("id", "eval").is_displayed()
    assert "no evaluation of its own" in _said(browser, "chain")
    assert not browser.find_element("id", "train-lead").is_displayed()
    assert "imported from an ARPA file" in _said(browser, "curves-note")


def test_the_page_reads_the_curves_from_each_models_event_directory(invoke, tmp_path):
    """A run's curves are in neural/ and count/ (one TensorBoard run per model, under the same
    tags); the page reads the count model's as its flat line ({split}/nll_count_model), at the
    NLL of metrics.json; a run made before those directories, its event files beside the others,
    reads as it did."""
    from torch.utils.tensorboard import SummaryWriter

    from bigram.formats.explore import _curves

    data = tmp_path / "names.txt"
    data.write_text("\n".join(["anna", "bob", "ab", "ba", "abba", "bab", "aab", "bba"] * 5) + "\n")
    run = train_run(invoke, data, tmp_path / "r", "--val-frac", "0.2", "--test-frac", "0", "--optimizer",
                    "sgd", "--steps", "4")  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    curves, unread = _curves(run)
    assert unread == [] and set(curves) == {
        "train/nll",
        "val/nll",
        "train/nll_count_model",
        "val/nll_count_model",
    }
    for split in ("train", "val"):
        assert [s for s, _ in curves[f"{split}/nll"]] == [s for s, _ in curves[f"{split}/nll_count_model"]]
        assert curves[f"{split}/nll"][-1] == [4, pytest.approx(metrics["neural"][split]["nll"], rel=1e-6)]
        count = metrics["count"][split]["nll"]
        assert [x for _, x in curves[f"{split}/nll_count_model"]] == [pytest.approx(count, rel=1e-6)] * 5
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    with SummaryWriter(str(legacy)) as w:
        for step, (a, b) in enumerate([(3.0, 2.0), (2.5, 2.0)]):
            w.add_scalar("train/nll", a, step)
            w.add_scalar("train/nll_count_model", b, step)
    assert _curves(legacy) == (
        {"train/nll": [[0, 3.0], [1, 2.5]], "train/nll_count_model": [[0, 2.0], [1, 2.0]]},
        [],
    )


def test_an_imported_runs_recipe_that_is_a_fifo_does_not_hang_the_page(tmp_path):
    """The page's line for an imported model reads its recipe bounded and only as a regular file:
    a FIFO there (open() of it would wait for a writer forever) leaves the ARPA file unnamed."""
    import signal

    from bigram.formats.explore import _arpa_note

    fifo = tmp_path / "arpa.json"
    os.mkfifo(fifo)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("reading the FIFO hung"))
    signal.alarm(10)
    try:
        assert _arpa_note(fifo) == "read from the ARPA file, not trained here"
    finally:
        signal.alarm(0)
