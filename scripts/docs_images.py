"""Regenerate the pictures of README.md and docs/ under docs/ from fresh runs of names.txt.

    python scripts/docs_images.py            # needs Debian's `chromium` for the TensorBoard one

docs/heatmap.png            `bigram plot` of the lecture run: the 27×27 counts, each cell labelled
docs/tensorboard_nll.png    TensorBoard's Custom Scalars tab on the lecture run, as the README
                            opens it (headless Chromium driven by Selenium, "Ignore outliers"
                            unticked): the neural model's train NLL curve meeting the count
                            model's flat line, each in its run's colour, named on the left
docs/explore.png            the top of `bigram explore`'s page for the lecture run (headless
                            Chromium): the table and one clicked row

    python scripts/docs_images.py --explore-only --pages /tmp/pages

--explore-only              docs/explore.png alone (no heatmap, no TensorBoard)
--pages DIR                 also the whole explore page, top to bottom, of three runs, to look
                            at every word: DIR/explore_lecture.png (the lecture config),
                            DIR/explore_kn3.png (names.txt's Kneser-Ney trigram, val and test held
                            out) and DIR/explore_wide.png (a large alphabet: --wide FILE, else
                            names.txt written in ~450 letters of five scripts, spaces inside)

Look at both before committing them: the screenshot's crop box is TensorBoard's layout at the
window size below, and a TensorBoard upgrade can move it.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WINDOW = (1100, 900)  # CSS pixels; the screenshot is taken at twice that (device scale 2)
CHART = (286, 76, 664, 486)  # the first Custom Scalars chart, its heading and its legend, in CSS pixels
# a chart's list of matches, opened: its legend, each series in its run's colour (a Polymer
# element's button, inside shadow roots)
OPEN_MATCHES = """
const found = [];
(function walk(root) {
  root.querySelectorAll(".toggle-matches-button").forEach(b => found.push(b));
  root.querySelectorAll("*").forEach(e => e.shadowRoot && walk(e.shadowRoot));
})(document);
found.slice(0, 1).forEach(b => b.click());
return found.length;
"""


def bigram(*args: str, cwd: Path = ROOT) -> None:
    subprocess.run([sys.executable, "-m", "bigram", *args], check=True, cwd=cwd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_for(url: str, needle: str, timeout: float = 60.0) -> None:
    """Until TensorBoard answers `url` with `needle` in it (it loads event files after starting)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if needle in urllib.request.urlopen(url, timeout=5).read().decode():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"TensorBoard did not serve {url} within {timeout:.0f} s")


def screenshot_tensorboard(logdir: Path, out: Path, cwd: Path) -> None:
    """TensorBoard's Custom Scalars tab on `logdir` (relative to `cwd`, as the page shows it),
    smoothing 0 and "Ignore outliers in chart scaling" unticked (TensorBoard keeps that box in the
    browser's localStorage, not in the URL, hence Selenium): ticked, the curve's first steps fall
    outside the chart. The first chart's list of matches is opened: it names each line's run."""
    from PIL import Image  # matplotlib's dependency
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("no chromium: `apt-get install chromium chromium-driver` (Debian's) and run again")
    port = free_port()
    tb = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
    )
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=2"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = str(Path(chromium).resolve())
    browser = None
    try:
        base = f"http://localhost:{port}"
        wait_for(f"{base}/data/plugin/custom_scalars/layout", "training meets counting")
        browser = webdriver.Chrome(service=Service(driver), options=options)
        browser.get(f"{base}/")
        browser.execute_script("localStorage.setItem('_ignoreYOutliers', 'false')")
        browser.get(f"{base}/#custom_scalars&_smoothingWeight=0")
        browser.refresh()  # the dashboard reads the box's state as it loads
        time.sleep(8)  # TensorBoard draws its charts after loading their data
        if not browser.execute_script(OPEN_MATCHES):
            raise SystemExit("TensorBoard drew no Custom Scalars chart: look at its page by hand")
        time.sleep(1)
        full = out.with_suffix(".full.png")
        browser.save_screenshot(str(full))
        Image.open(full).convert("RGB").crop(tuple(2 * c for c in CHART)).save(out, optimize=True)
        full.unlink()
    finally:
        if browser is not None:
            browser.quit()
        tb.terminate()
        tb.wait()


def chromium_shot(page: Path, out: Path, height: int):
    """A headless Chromium screenshot of a local page, 1150 CSS pixels wide and `height` tall, as
    a PIL image (the PNG Chromium wrote is removed)."""
    from PIL import Image

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium: `apt-get install chromium` (Debian's package) and run again")
    full = out.with_suffix(".full.png")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size=1150,{height}", f"--screenshot={full}", page.resolve().as_uri()],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    image = Image.open(full).convert("RGB")
    full.unlink()
    return image


def screenshot_explore(page: Path, out: Path) -> None:
    """The first two parts of the explore page, as a learner's window shows them."""
    chromium_shot(page, out, 1850).save(out, optimize=True)


def screenshot_page(page: Path, out: Path) -> None:
    """The whole explore page, top to bottom: a window taller than any page, cut below the last
    thing drawn (the rows that are all the page's background are dropped)."""
    from PIL import Image, ImageChops

    image = chromium_shot(page, out, 9000)
    paper = Image.new("RGB", image.size, image.getpixel((2, 2)))
    box = ImageChops.difference(image, paper).getbbox() or (0, 0, *image.size)
    image.crop((0, 0, image.width, min(image.height, box[3] + 40))).save(out, optimize=True)


def wide_corpus(path: Path) -> None:
    """names.txt in ~450 letters of five scripts (Latin, Cyrillic, Greek, Armenian, Georgian: ones
    the DejaVu fonts draw), each name in one of 20 variants of them, every fifth name joined to the
    next by a space: a large alphabet whose contexts are many and sparse, and a space to show."""
    import unicodedata

    blocks = ((0xC0, 0x24F), (0x400, 0x4FF), (0x391, 0x3CE), (0x561, 0x586), (0x10D0, 0x10FA))
    letters = [chr(c) for a, b in blocks for c in range(a, b + 1)]
    letters = [c for c in letters if unicodedata.category(c).startswith("L") and c.lower() == c
               and unicodedata.is_normalized("NFC", c) and c.isprintable()]  # fmt: skip
    names = (ROOT / "data" / "names.txt").read_text(encoding="utf-8").split()
    out = []
    for i, w in enumerate(names):
        v = (i * 7919) % 20
        out.append("".join(letters[(v * 26 + ord(c) - ord("a")) % len(letters)] for c in w))
    out = [f"{w} {out[i + 1]}" if i % 5 == 0 and i + 1 < len(out) else w for i, w in enumerate(out)]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def explore_pictures(tmp: Path, out: Path, pages: Path | None, wide: Path | None) -> list[Path]:
    """docs/explore.png from the lecture run's page; with `pages`, the whole page of the lecture
    run, of a Kneser-Ney trigram and of a large alphabet. The pictures written."""
    runs = tmp / "runs"
    if not (runs / "lecture").exists():
        bigram("train", "--config", "lecture", "--out", str(runs / "lecture"), "-q", "--no-figures")
    bigram("explore", "runs/lecture", cwd=tmp)  # the page names the run as a user's would
    screenshot_explore(runs / "lecture" / "explore.html", out / "explore.png")
    if pages is None:
        return [out / "explore.png"]
    pages.mkdir(parents=True, exist_ok=True)
    if wide is None:
        wide = tmp / "wide.txt"
        wide_corpus(wide)
    bigram("train", "--order", "3", "--smoothing", "kn", "--out", "runs/kn3", "-q", "--no-figures", cwd=tmp)
    bigram("train", "--data", str(wide.resolve()), "--out", "runs/wide", "-q", "--no-figures", cwd=tmp)
    shots = [out / "explore.png"]
    for name in ("lecture", "kn3", "wide"):
        bigram("explore", f"runs/{name}", "--out", f"{name}.html", cwd=tmp)
        screenshot_page(tmp / f"{name}.html", pages / f"explore_{name}.png")
        shots.append(pages / f"explore_{name}.png")
    return shots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default docs/)")
    ap.add_argument("--explore-only", action="store_true", help="docs/explore.png alone (and --pages)")
    ap.add_argument("--pages", type=Path, help="also the three runs' whole explore pages, into this folder")
    ap.add_argument("--wide", type=Path, help="large-alphabet corpus for --pages (default: from names.txt)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.explore_only:
            shots = explore_pictures(Path(tmp), args.out, args.pages, args.wide)
            print(f"wrote {', '.join(map(str, shots))}: look at them")
            return
        run = Path(tmp) / "runs" / "lecture"
        bigram("train", "--config", "lecture", "--out", str(run), "-q", "--no-figures")
        heatmap = args.out / "heatmap.png"
        bigram("plot", str(run), "--what", "counts", "--top", "27", "--out", str(heatmap), "--overwrite")
        screenshot_tensorboard(Path("runs/lecture"), args.out / "tensorboard_nll.png", cwd=Path(tmp))
        explore_pictures(Path(tmp), args.out, args.pages, args.wide)
    print(f"wrote {heatmap}, {args.out / 'tensorboard_nll.png'} and {args.out / 'explore.png'}: look at them")


if __name__ == "__main__":
    main()
