"""The trend dashboard and the comparison page in headless Chromium: rendered, charts present, no script errors,
no network, and model output containing <script> does not run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_runs import XSS, history, make_run
from typer.testing import CliRunner

from ragharness.cli import app


def load(browser: Any, path: Path, shot: Path) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    network: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)

    def route(r: Any) -> None:
        if not r.request.url.startswith("file://"):
            network.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(shot), full_page=False)
    return page, errors, network


SERIES_JS = """() => {
  const gd = document.getElementById('chart-0');
  const colours = {}, legend = {};
  for (const t of gd.data) {
    if (!t.name || t.name === 'regressed run') continue;
    (colours[t.name] = colours[t.name] || new Set()).add(t.line && t.line.color);
    if (t.showlegend !== false) legend[t.name] = (legend[t.name] || 0) + 1;
  }
  return {
    colours: Object.fromEntries(Object.entries(colours).map(([k, v]) => [k, [...v]])),
    legend,
    panels: (gd.layout.annotations || []).filter(a => a.name !== 'version-change').length,
    perName: Object.fromEntries(Object.keys(colours).map(k => [k, gd.data.filter(t => t.name === k).length])),
    hover: gd.data.filter(t => t.name && t.name.includes('@')).flatMap(t => t.hovertext || []),
    changes: (gd.layout.annotations || []).filter(a => a.name === 'version-change').map(a => a.text),
    lines: (gd.layout.shapes || []).length,
  };
}"""


def _dashboard(browser: Any, tmp_path: Path, n: int, shot: str) -> tuple[Any, dict[str, Any], list[str], float]:
    import time

    history(tmp_path / "runs", n)
    out = tmp_path / "trends.html"
    res = CliRunner().invoke(app, ["trends", "--runs", str(tmp_path / "runs"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    t0 = time.perf_counter()
    page, errors, network = load(browser, out, tmp_path / shot)
    page.wait_for_selector("#chart-0 .main-svg")
    seconds = time.perf_counter() - t0
    assert errors == [] and network == []
    return page, page.evaluate(SERIES_JS), errors, seconds


def test_trend_dashboard_one_colour_and_legend_entry_per_series_with_ci_and_version_markers(
    browser: Any, tmp_path: Path
) -> None:
    page, info, _, _ = _dashboard(browser, tmp_path, 30, "trends.png")
    series = [k for k in info["colours"] if "@" in k]
    assert sorted(series) == ["bot@support-answer@v5", "bot@support-answer@v6"]  # the prompt changed at run 15
    assert all(len(c) == 1 for c in info["colours"].values()), info["colours"]  # one colour per series, all panels
    assert all(count == 1 for count in info["legend"].values()), info["legend"]  # one legend entry each
    assert info["colours"]["bot@support-answer@v5"] != info["colours"]["bot@support-answer@v6"]
    assert info["perName"]["bot@support-answer@v5"] >= 6  # the series is drawn in every candidate panel
    assert info["panels"] >= 8
    assert any("(n 30, 95% CI " in h for h in info["hover"]), info["hover"][:3]
    assert any("prompt bot: support-answer@v5 → support-answer@v6" in c for c in info["changes"]), info["changes"]
    assert info["lines"] >= 1
    assert page.locator("#summary table tr").count() > 1 and "run-29" in page.locator("#summary").inner_text()
    # the legend covers neither the title nor a panel
    legend, title = page.locator(".legend").first.bounding_box(), page.locator(".gtitle").first.bounding_box()
    plots = page.locator(".nsewdrag").all()
    assert legend and title and plots
    assert legend["y"] > title["y"] + title["height"], (legend, title)
    lowest = max(b["y"] + b["height"] for b in (p.bounding_box() for p in plots) if b)
    assert legend["y"] >= lowest - 1, (legend, lowest)
    # a click on a legend entry hides that series in every panel
    item = page.locator(".legend .traces", has_text="bot@support-answer@v6").first
    item.scroll_into_view_if_needed()
    box = item.bounding_box()
    page.mouse.click(box["x"] + 10, box["y"] + box["height"] / 2)
    page.wait_for_timeout(1000)  # plotly waits out its double-click delay before toggling
    hidden = page.evaluate(
        "() => document.getElementById('chart-0').data.filter(t => t.name === 'bot@support-answer@v6')"
        ".map(t => t.visible)"
    )
    assert hidden and all(v == "legendonly" for v in hidden), hidden
    assert (tmp_path / "trends.png").stat().st_size > 10_000


@pytest.mark.parametrize("n", [3, 300])
def test_trend_dashboard_renders_with_three_and_three_hundred_runs(browser: Any, tmp_path: Path, n: int) -> None:
    page, info, _, seconds = _dashboard(browser, tmp_path, n, f"trends-{n}.png")
    assert page.locator("#runs tr").count() == n + 1
    assert all(len(c) == 1 for c in info["colours"].values())
    print(f"trends page with {n} runs drawn in {seconds:.2f} s")  # the bound is measured in benchmarks/


def test_comparison_page_escapes_model_output(browser: Any, tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", {"bot": [True] * 10})
    b = make_run(tmp_path, "b", {"bot": [False] + [True] * 9}, answers={"bot": [XSS] + ["Answer 1. [1]"] * 9})
    out = tmp_path / "cmp"
    assert CliRunner().invoke(app, ["compare", str(a.path), str(b.path), "--out", str(out)]).exit_code == 0
    page, errors, network = load(browser, out / "comparison.html", tmp_path / "compare.png")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#summary tr").count() >= 3
    assert XSS in page.locator("#item-1 .ans").nth(1).inner_text()
    assert errors == [] and network == []


def test_run_report_escapes_model_output(browser: Any, tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", {"bot": [False, True]}, answers={"bot": [XSS, "Answer 1. [1]"]})
    page, errors, network = load(browser, run.path / "report.html", tmp_path / "report.png")
    assert page.evaluate("window.__pwned") is None
    assert XSS in page.locator(".answer .text").first.inner_text()
    assert page.locator(".item").count() == 2
    page.fill("#q", "Answer 1")
    assert page.locator(".item:visible").count() == 1
    assert errors == [] and network == []
