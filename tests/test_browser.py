"""The trend dashboard and the comparison page in headless Chromium: rendered, charts present, no script errors,
no network, and model output containing <script> does not run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_runs import make_run
from test_compare_history import XSS, history
from typer.testing import CliRunner

from ragharness.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


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


def test_trend_dashboard_renders_offline(browser: Any, tmp_path: Path) -> None:
    history(tmp_path / "runs", 30)
    out = tmp_path / "trends.html"
    assert CliRunner().invoke(app, ["trends", "--runs", str(tmp_path / "runs"), "--out", str(out)]).exit_code == 0
    page, errors, network = load(browser, out, tmp_path / "trends.png")
    page.wait_for_selector(".js-plotly-plot .main-svg")
    assert page.locator(".js-plotly-plot").count() == 3
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 6
    assert page.locator("table tr").count() == 31
    assert errors == [] and network == []
    assert (tmp_path / "trends.png").stat().st_size > 10_000


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
