"""The review app in headless Chromium against a real server: log in, open a run, compare two runs, label five
items blind, vote on three pairs, watch agreement and the human win rate update; roles, 401, 429, escaping, CSP,
and not one request leaving the machine."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fake_runs import make_run
from serve_kit import XSS, A, B, make_store, state_for

from ragharness.runs.store import LocalRunStore, RunStore
from ragharness.serve.app import create_app
from ragharness.serve.auth import create_key


@contextmanager
def _serve(store: RunStore, cache: Path, **settings: object) -> Iterator[str]:
    state = state_for(store, cache, **settings)
    config = uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serve")
    store = make_store(root / "runs")
    keys = {role: create_key(store, role)[0] for role in ("viewer", "reviewer", "admin")}
    with _serve(store, root / "cache", rate_per_minute=300) as url:
        yield {"url": url, "keys": keys, "store": store}


def _page(chromium: Any, url: str) -> tuple[Any, Any, list[str], list[str]]:
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    network: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)

    def route(r: Any) -> None:
        if r.request.url.startswith(url + "/"):
            r.continue_()
        else:
            network.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    return ctx, page, errors, network


def _login(page: Any, url: str, key: str) -> None:
    resp = page.goto(url + "/")
    assert resp.status == 401  # no key: the login form, with 401
    page.fill("#key", key)
    page.click("#login")
    page.wait_for_selector("#runs")


def test_review_flow_in_chromium(browser: Any, server: dict[str, Any], tmp_path: Path) -> None:
    url, keys = server["url"], server["keys"]
    ctx, page, errors, network = _page(browser, url)
    _login(page, url, keys["reviewer"])
    errors.clear()  # the 401 of the first page load is logged by the browser as a failed resource
    assert page.locator("tr.run.first").count() == 4 and page.locator("tr.run.incomplete").count() == 2
    assert page.locator("tr.run[data-candidate]").count() == 4  # one row per candidate of the two finished runs

    # open a run and its report
    page.click("a[href='/runs/run-b']")
    page.wait_for_selector("#candidates")
    assert "regressed" in page.locator("p.meta").first.inner_text()

    # compare two runs
    page.goto(url + "/compare")
    page.select_option("#run-a", "run-a")
    page.select_option("#run-b", "run-b")
    # the candidate fields are choices: the candidates of the run picked beside each
    assert page.locator("#cand-a option").all_inner_texts() == ["(the one both runs share)", A, B]
    page.select_option("#cand-a", A)
    page.select_option("#cand-b", A)
    page.click("#do-compare")
    page.wait_for_selector("#summary")
    assert page.locator("#summary tr").count() >= 3
    assert XSS in page.locator("#item-1 .ans").nth(1).inner_text()  # shown as text
    assert page.evaluate("window.__pwned") is None

    # label five items blind
    page.goto(url + "/runs/run-b")
    page.click("#label-blind")
    for _ in range(5):
        page.wait_for_selector("#label-form")
        form = page.locator("#label-form").inner_text()
        assert A not in form and B not in form, "blind: no candidate names"
        page.check("input[name=correctness_0][value=correct]")
        page.check("input[name=correctness_1][value=incorrect]")
        page.check("input[name=groundedness_0][value=grounded]")
        page.click("#save-label")
        page.wait_for_load_state("load")
    page.goto(url + "/runs/run-b")
    assert "10 label records" in page.locator("#n-labels").inner_text()
    kappa_rows = page.locator("#agreement tr").count()
    assert kappa_rows >= 2

    # vote on three pairs; the comparison page shows the human win rate
    page.goto(url + f"/compare?a=run-b&b=run-b&ca={A}&cb={B}")
    assert "No votes yet" in page.locator("#human").inner_text()
    page.click("#vote-link")
    for choice in ("#vote-right", "#vote-left", "#vote-right"):
        page.wait_for_selector("#vote-form")
        page.click(choice)
        page.wait_for_load_state("load")
    page.goto(url + f"/compare?a=run-b&b=run-b&ca={A}&cb={B}")
    assert page.locator("#n-votes").inner_text() == "3"
    votes = [json.loads(x) for x in (server["store"].root / "run-b" / "votes.jsonl").read_text().splitlines()]
    b_wins = sum(v["choice"] == "b" for v in votes)
    assert page.locator("#win-rate").inner_text() == f"{b_wins / 3:.3f}"

    # trends: charts drawn from /static (no inline script), a click on a point opens that run
    page.goto(url + "/trends")
    page.wait_for_selector("#chart-0 .main-svg")
    assert page.locator(".js-plotly-plot").count() >= 1
    page.evaluate("document.getElementById('chart-0').emit('plotly_click', {points: [{customdata: 'run-a'}]})")
    page.wait_for_url(url + "/runs/run-a")

    # the hostile answer in the item view and the report stays text
    page.goto(url + "/runs/run-b/items/q000")
    assert XSS in page.locator(".answer .text").first.inner_text()
    page.goto(url + "/runs/run-b/report.html")
    assert XSS in page.locator(".answer .text").first.inner_text()
    page.fill("#q", "Answer 1")  # the report's own inline script still runs under the hashed CSP
    assert page.locator(".item:visible").count() >= 1
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(tmp_path / "serve.png"))
    assert errors == [] and network == []
    ctx.close()


def test_viewer_cannot_label_and_a_flood_is_limited(browser: Any, server: dict[str, Any]) -> None:
    url, keys = server["url"], server["keys"]
    ctx, page, _errors, network = _page(browser, url)
    _login(page, url, keys["viewer"])
    resp = page.goto(url + "/runs/run-a/review?blind=1")
    assert resp.status == 403 and "reviewer role" in page.locator("#error").inner_text()
    page.goto(url + "/runs/run-a")
    assert page.locator("#label-blind").count() == 0
    statuses = page.evaluate(
        """async () => { const out = [];
           for (let i = 0; i < 200; i++) { const r = await fetch('/api/me'); out.push(r.status); }
           return out; }"""
    )
    assert statuses[0] == 200 and 429 in statuses
    assert network == []
    ctx.close()
    anon = browser.new_context()
    p = anon.new_page()
    assert p.goto(url + "/api/runs").status == 401
    anon.close()


@pytest.mark.security
def test_a_browser_without_a_key_is_no_admin_even_after_the_last_key_goes(
    browser: Any,
    tmp_path: Path,
) -> None:
    """Chromium at a server whose last key is revoked while it runs: the login form, never the local admin."""
    from serve_kit import start_server

    from ragharness.serve.auth import revoke_key

    store = make_store(tmp_path / "runs")
    key, record = create_key(store, "admin")
    proc, url = start_server(store.root, tmp_path / "cache", tmp_path / "log")
    try:
        ctx, page, _, network = _page(browser, url)
        _login(page, url, key)
        revoke_key(store, record.id)
        deadline = time.monotonic() + 60
        while page.goto(url + "/").status != 401 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert page.locator("#key").count() == 1  # the login form: the revoked session and no local admin
        me = page.evaluate("fetch('/api/me').then(r => r.status)")
        assert me == 401 and not network
        ctx.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_real_browser_logs_in_and_labels_without_interception(
    browser: Any,
    server: dict[str, Any],
) -> None:
    """No request interception: Chromium asks for /favicon.ico (and its assets) on its own, as it does for a user.
    The favicon must not rotate the login cookie under the form on screen; the key logs in and a label is saved."""
    url, keys = server["url"], server["keys"]
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    resp = page.goto(url + "/")
    assert resp.status == 401
    page.wait_for_timeout(300)  # let the browser fetch its favicon as it does after a page loads
    icon = ctx.request.get(url + "/favicon.ico")
    assert icon.status == 200 and "svg" in icon.headers["content-type"]
    page.fill("#key", keys["reviewer"])
    page.click("#login")
    page.wait_for_selector("#runs")
    assert "login form expired" not in page.content()
    page.goto(url + "/runs/run-a")
    page.click("#label-blind")
    page.wait_for_selector("#label-form")
    page.check("input[name=correctness_0][value=correct]")
    page.click("#save-label")
    page.wait_for_load_state("load")
    assert all(u.startswith(url) for u in seen), [u for u in seen if not u.startswith(url)]
    ctx.close()


def test_the_runs_list_fits_1400_px_and_each_candidates_figures_sit_on_its_row(
    browser: Any,
    tmp_path: Path,
) -> None:
    """Long provider model ids, a versioned prompt and nine metric columns (what a judged run shows): the page does
    not overflow a 1400 px viewport, and every figure is on its candidate's row (before, the names were stacked in
    one cell and the figures in others, so a wrapped name shifted every figure below it by a line)."""
    long_a, long_b = "anthropic.claude-3-5-sonnet-20241022-v2:0", "meta.llama3-1-70b-instruct-v1:0-eu-west-1"
    extra = ("citation_coverage", "citation_validity", "citation_precision", "assertions", "judge_correctness")
    make_run(
        tmp_path / "runs",
        "20261206-012207-support-demo-67de",
        {long_a: [True] * 4, long_b: [False] * 4},
        prompt_version=12,
        extra_metrics=extra,
    )
    make_run(tmp_path / "runs", "20261207-012207-support-demo-9f1c", {long_a: [True] * 4}, extra_metrics=extra)
    store = LocalRunStore(tmp_path / "runs")
    key = create_key(store, "viewer")[0]
    with _serve(store, tmp_path / "cache") as url:
        ctx, page, errors, _ = _page(browser, url)
        _login(page, url, key)
        errors.clear()  # the 401 of the first page load is logged by the browser as a failed resource
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400
        box = page.locator("#runs").bounding_box()
        assert box["x"] + box["width"] <= 1400, box  # the whole table, its report links included, is in view
        rows = page.locator("tr.run[data-candidate]")
        assert rows.count() == 3
        for i in range(rows.count()):
            row = rows.nth(i)
            name_top = row.locator("td.cand").bounding_box()["y"]
            figures = row.locator("td.num")
            assert figures.count() == page.locator("#runs thead th").count() - 6  # a figure per metric, and cost
            for j in range(figures.count()):
                assert abs(figures.nth(j).bounding_box()["y"] - name_top) < 1
        texts = [rows.nth(i).locator("td.cand").inner_text() for i in range(3)]
        assert any(long_b in t for t in texts) and any("@v12" in t for t in texts)
        assert errors == []
        ctx.close()
