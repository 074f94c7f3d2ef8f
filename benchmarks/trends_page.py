"""Load time of the trend dashboard in headless Chromium for a long history (300 runs by default).

    python benchmarks/trends_page.py [--runs 300] [--repeat 3]

Builds a fabricated history (one candidate, 30 items a run, a prompt change half way, one regressed run), writes
`trends.html` with `ragharness trends`, and times, from navigation to every panel drawn, (a) the dashboard and
(b) the ideal measured in the same run: a page holding only the same inlined plotly.js and one empty chart (what
any self-contained plotly page costs). Median of `--repeat` loads each. Headline figures last, `name: value`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from plotly.offline import get_plotlyjs  # noqa: E402
from test_compare_history import history  # noqa: E402 - the tests' history fabricator
from typer.testing import CliRunner  # noqa: E402

from ragharness.cli import app  # noqa: E402


def timed_load(page: object, path: Path, selector: str) -> float:
    t0 = time.perf_counter()
    page.goto(path.as_uri())  # type: ignore[attr-defined]
    page.wait_for_selector(selector)  # type: ignore[attr-defined]
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(null)))")  # type: ignore[attr-defined]
    return time.perf_counter() - t0


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rh-trends-"))
    t0 = time.perf_counter()
    history(tmp / "runs", a.runs)
    made = time.perf_counter() - t0
    out = tmp / "trends.html"
    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["trends", "--runs", str(tmp / "runs"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = time.perf_counter() - t0
    ideal = tmp / "ideal.html"
    ideal.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><script>{get_plotlyjs()}</script></head><body>"
        "<div id='c'></div><script>Plotly.newPlot('c', [{x: [0], y: [0]}]);</script></body></html>",
        encoding="utf-8",
    )
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        timed_load(page, ideal, "#c .main-svg")  # warm-up
        dash = [timed_load(page, out, "#chart-0 .main-svg") for _ in range(a.repeat)]
        base = [timed_load(page, ideal, "#c .main-svg") for _ in range(a.repeat)]
        browser.close()
    print(f"runs: {a.runs}")
    print(f"history_built_s: {made:.1f}")
    print(f"dashboard_written_s: {written:.2f}")
    print(f"page_bytes: {out.stat().st_size}")
    print(f"ideal_load_s: {statistics.median(base):.2f}")
    print(f"load_vs_ideal: {statistics.median(dash) / statistics.median(base):.2f}")
    print(f"load_s: {statistics.median(dash):.2f}")


if __name__ == "__main__":
    main()
