"""The review app through its HTTP interface (Starlette's test client: the real app, middleware and store)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from serve_kit import XSS, A, B, N, client, make_store, state_for
from typer.testing import CliRunner

from ragharness.analysis.labels import HumanLabel, calibrate
from ragharness.cli import app
from ragharness.runs.pins import read_pins
from ragharness.runs.store import LocalRunStore
from ragharness.serve.auth import create_key, read_keys, revoke_key
from ragharness.serve.state import ServeState


@pytest.fixture
def store(tmp_path: Path) -> LocalRunStore:
    return make_store(tmp_path / "runs")


@pytest.fixture
def state(store: LocalRunStore, tmp_path: Path) -> ServeState:
    return state_for(store, tmp_path / "cache", local=True)


@pytest.fixture
def keyed(store: LocalRunStore, tmp_path: Path) -> ServeState:
    """The app as a team serves it: keys only, no local mode."""
    return state_for(store, tmp_path / "cache")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]*)"', html)
    assert m, "no CSRF token in the form"
    return m.group(1)


def test_local_mode_serves_this_machine_only(state: ServeState) -> None:
    assert client(state).get("/").status_code == 200
    far = client(state, host="10.1.2.3")
    assert far.get("/").status_code == 401
    assert far.get("/api/runs").status_code == 401


def test_keys_are_hashed_shown_once_and_revocable(store: LocalRunStore, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["keys", "create", "--role", "reviewer", "--name", "ana", "--store", str(store.root)]
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("rhk_")
    stored = (store.root / "_store" / "keys.json").read_text()
    secret = key.split("_", 2)[2]
    assert secret not in stored and key not in stored
    record = read_keys(store).keys[0]
    assert record.role == "reviewer" and len(record.hash) == 64 and record.salt
    listed = CliRunner().invoke(app, ["keys", "list", "--store", str(store.root)])
    assert record.id in listed.stdout and secret not in listed.stdout
    state = state_for(store, tmp_path / "cache")
    assert client(state, key).get("/api/me").json()["role"] == "reviewer"
    assert client(state, key[:-2] + "xx").get("/api/me").status_code == 401
    revoke_key(store, record.id)
    state.keys.reload()
    assert client(state, key).get("/api/me").status_code == 401
    bad = CliRunner().invoke(app, ["keys", "create", "--role", "owner", "--store", str(store.root)])
    assert bad.exit_code == 3 and "viewer, reviewer or admin" in bad.output


def test_no_key_401_viewer_403_reviewer_and_admin_allowed(store: LocalRunStore, keyed: ServeState) -> None:
    state = keyed
    viewer, _ = create_key(store, "viewer")
    reviewer, r = create_key(store, "reviewer")
    admin, _ = create_key(store, "admin")
    state.keys.reload()
    anon = client(state)
    page = anon.get("/")
    assert page.status_code == 401 and 'name="key"' in page.text  # the login form
    api = anon.get("/api/runs")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    assert anon.get("/healthz").status_code == 200 and anon.get("/static/app.css").status_code == 200
    label = {"run_id": "run-b", "item_id": "q001", "candidate": A, "correctness": "correct"}
    v = client(state, viewer)
    assert v.get("/runs/run-b").status_code == 200
    assert v.post("/api/labels", json=label).status_code == 403
    assert v.get("/runs/run-b/review?blind=1").status_code == 403
    assert v.post("/runs/run-b/pin").status_code == 403
    rv = client(state, reviewer)
    made = rv.post("/api/labels", json=label)
    assert made.status_code == 201 and made.json()[0]["reviewer"] == r.id
    assert rv.post("/runs/run-a/pin").status_code == 403
    assert client(state, admin).post("/runs/run-a/pin").status_code == 303
    assert read_pins(store).pins["nightly-demo"].run_id == "run-a"


def test_session_login_and_csrf_on_every_form(store: LocalRunStore, keyed: ServeState) -> None:
    state = keyed
    key, _ = create_key(store, "reviewer")
    state.keys.reload()
    c = client(state)
    login = c.get("/login")
    bad = c.post("/login", data={"key": key, "csrf": "forged"})
    assert bad.status_code == 403  # login CSRF: the form's token must match its cookie
    wrong = c.post("/login", data={"key": "rhk_nope_nope", "csrf": csrf_of(bad.text)})
    assert wrong.status_code == 401
    login = c.get("/login")
    ok = c.post("/login", data={"key": key, "csrf": csrf_of(login.text), "next": "/runs/run-b"})
    assert ok.status_code == 303 and ok.headers["location"] == "/runs/run-b"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and key not in cookie
    form = c.get("/runs/run-b/review/q002?blind=1")
    assert form.status_code == 200
    fields = {"blind": "1", "n": "2", "row_0": re.findall(r'name="row_0" value="([^"]+)"', form.text)[0]}
    fields["correctness_0"] = "incorrect"
    assert c.post("/runs/run-b/review/q002", data=fields).status_code == 403  # no token: refused
    assert c.post("/runs/run-b/review/q002", data={**fields, "csrf": "x" * 32}).status_code == 403
    saved = c.post("/runs/run-b/review/q002", data={**fields, "csrf": csrf_of(form.text)})
    assert saved.status_code == 303
    # a cookie-authenticated API write needs the token in a header too
    body = {"run_id": "run-b", "item_id": "q003", "candidate": A, "correctness": "correct"}
    assert c.post("/api/labels", json=body).status_code == 403
    assert c.post("/api/labels", json=body, headers={"X-CSRF-Token": csrf_of(form.text)}).status_code == 201
    # a session ends when its key is revoked
    key2, _ = create_key(store, "viewer")
    revoke_key(store, read_keys(store).keys[0].id)
    state.keys.reload()
    assert c.get("/runs/run-b").status_code == 401
    # the login's next page stays on this site
    login = c.get("/login")
    for target in ("//evil.example/x", "/\\evil.example", "https://evil.example"):
        r = c.post("/login", data={"key": key2, "csrf": csrf_of(login.text), "next": target})
        assert r.status_code == 303 and r.headers["location"] == "/", target
        login = c.get("/login")


def test_rate_limit_answers_429_with_retry_after_per_key(store: LocalRunStore, tmp_path: Path) -> None:
    state = state_for(store, tmp_path / "cache", rate_per_minute=20)
    k1, _ = create_key(store, "viewer")
    k2, _ = create_key(store, "viewer")
    state.keys.reload()
    c1 = client(state, k1)
    codes = [c1.get("/api/me") for _ in range(25)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and codes[0].status_code == 200
    assert int(limited[0].headers["retry-after"]) >= 1
    assert client(state, k2).get("/api/me").status_code == 200  # another key has its own budget
    guesses = [client(state, f"rhk_{n:012x}_guess").get("/api/me").status_code for n in range(15)]
    assert 429 in guesses  # wrong keys are rate-limited per address


def test_host_header_must_name_this_server(state: ServeState) -> None:
    c = client(state)
    assert c.get("/", headers={"Host": "attacker.example"}).status_code == 400
    assert c.get("/", headers={"Host": "localhost:8321"}).status_code == 200


def test_incomplete_and_damaged_runs_show_as_incomplete_never_500(state: ServeState) -> None:
    c = client(state)
    page = c.get("/")
    assert page.status_code == 200
    for run_id in ("run-stopped", "run-torn"):
        row = re.search(rf'<tr class="run incomplete first" data-run="{run_id}">.*?</tr>', page.text, re.DOTALL)
        assert row and "incomplete" in row.group(0)
        run_page = c.get(f"/runs/{run_id}")
        assert run_page.status_code == 200 and 'id="incomplete"' in run_page.text
        for path in (f"/runs/{run_id}/report.html", f"/runs/{run_id}/items/q000", f"/api/runs/{run_id}/summary"):
            r = c.get(path)
            assert r.status_code == 400 and "incomplete" in r.text, path
    listed = {r["run_id"]: r for r in c.get("/api/runs").json()["runs"]}
    assert listed["run-stopped"]["status"] == "incomplete" and "prepared" in listed["run-stopped"]["problem"]
    assert "summary.json" in listed["run-torn"]["problem"]
    assert c.get("/compare?a=run-a&b=run-torn&ca=model-alpha&cb=model-alpha").status_code == 400
    assert c.get("/runs/..%2Fescape").status_code in (400, 404)
    assert c.get("/runs/nope").status_code == 404


def test_runs_filter_sort_and_headline_columns(state: ServeState) -> None:
    c = client(state)
    data = c.get("/api/runs", params={"sort": "started_at", "order": "asc"}).json()
    assert [r["run_id"] for r in data["runs"]] == ["run-a", "run-b", "run-stopped", "run-torn"]
    assert data["runs"][0]["config_hash"] and data["runs"][0]["candidates"][0]["prompt"] == "support-answer@v1"
    assert [r["run_id"] for r in c.get("/api/runs", params={"gate": "regressed"}).json()["runs"]] == ["run-b"]
    assert [r["run_id"] for r in c.get("/api/runs", params={"q": "support-answer@v2"}).json()["runs"]] == ["run-b"]
    by_metric = c.get("/api/runs", params={"sort": "metric:correctness", "order": "desc"}).json()["runs"]
    assert by_metric[0]["run_id"] in ("run-a", "run-b")
    page = c.get("/", params={"gate": "pass"}).text
    assert "run-a" in page and 'data-run="run-b"' not in page


def test_answers_are_escaped_everywhere_and_pages_carry_a_strict_csp(state: ServeState) -> None:
    c = client(state)
    for path in ("/runs/run-b/items/q000", "/compare?a=run-a&b=run-b&ca=model-alpha&cb=model-alpha"):
        r = c.get(path)
        assert r.status_code == 200
        assert XSS not in r.text and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in r.text
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    report = c.get("/runs/run-b/report.html")
    assert XSS not in report.text
    assert "'sha256-" in report.headers["content-security-policy"]
    assert "unsafe-inline" not in report.headers["content-security-policy"].split("style-src")[0]


def test_blind_review_hides_names_and_shuffles_per_reviewer(store: LocalRunStore, state: ServeState) -> None:
    keys = [create_key(store, "reviewer")[0] for _ in range(6)]
    state.keys.reload()
    orders = set()
    for key in keys:
        page = client(state, key).get("/runs/run-b/review/q004?blind=1").text
        body = page.split('id="label-form"')[1]
        assert A not in body and B not in body and "Answer 1" in body
        orders.add(tuple(re.findall(r'name="row_\d" value="([^"]+)"', page)))
    assert len(orders) == 2, "six reviewers should not all see the same order"
    named = client(state, keys[0]).get("/runs/run-b/review/q004?blind=0").text
    assert A in named.split('id="label-form"')[1]


def test_labels_are_appended_with_reviewer_and_feed_calibrate_and_the_report(
    store: LocalRunStore, state: ServeState
) -> None:
    key, rec = create_key(store, "reviewer")
    state.keys.reload()
    c = client(state, key)
    for n in range(5):
        for cand, label in ((A, "correct"), (B, "incorrect")):
            body = {"run_id": "run-a", "item_id": f"q{n:03d}", "candidate": cand, "correctness": label}
            body["groundedness"] = "grounded"
            assert c.post("/api/labels", json=body).status_code == 201
    # a correction is a new record; the latest one counts
    fix = {"run_id": "run-a", "item_id": "q001", "candidate": B, "correctness": "correct", "notes": "call 415-555-0100"}
    assert c.post("/api/labels", json=fix).status_code == 201
    lines = (store.root / "run-a" / "labels.jsonl").read_text().splitlines()
    assert len(lines) == 11
    labels = [HumanLabel.model_validate_json(x) for x in lines]
    assert {h.reviewer for h in labels} == {rec.id} and all(h.at for h in labels)
    assert labels[-1].notes == "call [PHONE]"  # comments are redacted before they are stored
    agreement = client(state, key).get("/api/runs/run-a/agreement").json()
    correctness = next(a for a in agreement["agreements"] if a["metric"] == "correctness")
    # B is scored correct on q001, q002, q004 (k % 3 != 0), labelled incorrect but for the q001 correction
    assert correctness["n"] == 10 and correctness["accuracy"] == pytest.approx(0.8)
    page = c.get("/runs/run-a").text
    assert 'id="agreement"' in page and "0.800" in page
    assert "Agreement with human labels" in c.get("/runs/run-a/report.html").text
    cli = CliRunner().invoke(app, ["calibrate", str(store.root / "run-a")])
    assert cli.exit_code == 0 and "agreement with 10 human labels" in cli.stdout
    assert calibrate(store.root / "run-a").n_labels == 10


def test_csv_round_trip_still_works_and_appends(store: LocalRunStore, tmp_path: Path) -> None:
    run = store.root / "run-a"
    out = tmp_path / "labels.csv"
    assert CliRunner().invoke(app, ["annotate", "export", str(run), "--csv", str(out)]).exit_code == 0
    rows = out.read_text().splitlines()
    header, first = rows[0], rows[1]
    out.write_text("\n".join([header, first.replace(",,,", ",grounded,correct,")]) + "\n")
    for _ in range(2):
        res = CliRunner().invoke(app, ["annotate", "import", str(run), "--csv", str(out), "--reviewer", "ops"])
        assert res.exit_code == 0, res.output
    assert len((run / "labels.jsonl").read_text().splitlines()) == 2
    assert calibrate(run).n_labels == 1  # one reviewer, one answer: the latest label counts once


def test_votes_randomise_positions_and_give_a_win_rate_with_ci(store: LocalRunStore, state: ServeState) -> None:
    key, rec = create_key(store, "reviewer")
    state.keys.reload()
    c = client(state, key)
    nxt = c.get("/vote", params={"a": "run-b", "ca": A, "b": "run-b", "cb": B})
    assert nxt.status_code == 303
    lefts = []
    for _ in range(6):
        page = c.get(nxt.headers["location"], follow_redirects=True)
        assert page.status_code == 200 and A not in page.text.split("Which answer")[1].split("<form")[0]
        item = re.search(r'name="item" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        left_text = re.search(
            r'id="left"><div class="meta">Left</div><div class="text">(.*?)</div>', page.text, re.DOTALL
        )
        lefts.append(left_text.group(1) if left_text else "")  # type: ignore[union-attr]
        nxt = c.post(
            "/vote/item",
            data={
                "csrf": csrf_of(page.text),
                "a": "run-b",
                "ca": A,
                "b": "run-b",
                "cb": B,
                "item": item,
                "choice": "right",
            },
        )
        assert nxt.status_code == 303
    votes = [json.loads(x) for x in (store.root / "run-b" / "votes.jsonl").read_text().splitlines()]
    assert len(votes) == 6
    # positions are randomised per (pair, item, reviewer): over this reviewer's 6 votes and three more reviewers'
    # pages of every item both sides appear (all one side by chance: about 2 in 2^32), A shown on the left when
    # the left answer is A's ("Answer k.")
    sides = {v["left"] for v in votes}
    for _ in range(3):
        other_key, _ = create_key(store, "reviewer")
        state.keys.reload()
        other = client(state, other_key)
        for k in range(1, N):
            shown = other.get("/vote/item", params={"a": "run-b", "ca": A, "b": "run-b", "cb": B, "item": f"q{k:03d}"})
            left = re.search(r'id="left"><div class="meta">Left</div><div class="text">(.*?)</div>', shown.text, re.S)
            assert left is not None, shown.text[:500]
            sides.add("a" if f"Answer {k}." in left.group(1) else "b")
    assert sides == {"a", "b"}, "positions are randomised"
    for v in votes:  # "right is better" means the candidate shown on the right
        assert v["choice"] == ("b" if v["left"] == "a" else "a") and v["reviewer"] == rec.id
    human = c.get("/api/votes", params={"a": "run-b", "ca": A, "cb": B}).json()
    assert human["votes"] == 6 and human["a"] + human["b"] == 6
    assert 0 <= human["ci_low"] <= human["win_rate_b"] <= human["ci_high"] <= 1
    page = c.get("/compare", params={"a": "run-b", "b": "run-b", "ca": A, "cb": B}).text
    assert 'id="human-pref"' in page and 'id="n-votes">6<' in page
    # scores say the two are equal except q000 (A wrong): any item humans gave to A there is a disagreement
    if any(v["item_id"] == "q000" and v["choice"] == "a" for v in votes):
        assert 'id="disagreements"' in page
    assert (
        c.post("/api/votes", json={"a": "run-b", "ca": A, "cb": A, "item_id": "q001", "choice": "a"}).status_code == 400
    )


def test_item_view_tracks_the_item_across_runs(state: ServeState) -> None:
    page = client(state).get("/runs/run-b/items/q000").text
    history = page.split('id="history"')[1]
    assert "run-a" in history and "run-b" in history and "regressed" in history
    assert history.index("run-a") < history.index("run-b")


def test_trends_page_filters_and_points_carry_their_run(state: ServeState) -> None:
    c = client(state)
    page = c.get("/trends", params={"candidate": A}).text
    figs = [
        json.loads(x)
        for x in re.findall(r'<script type="application/json" id="fig-\d+">(.*?)</script>', page, re.DOTALL)
    ]
    assert figs
    names = {t.get("name") for t in figs[0]["data"] if t.get("showlegend") is not False}
    series = {n for n in names if n and "@" in n}  # candidate@prompt series (retrieval and guardrails are per run)
    assert series and all(A in n for n in series) and not any(B in n for n in series)
    assert any("run-b" in (t.get("customdata") or []) for t in figs[0]["data"])
    trend = c.get("/api/trends", params={"metric": "correctness", "candidate": B}).json()
    assert {r["run_id"] for r in trend["metrics"]} == {"run-a", "run-b"}


def test_openapi_documents_the_json_api(state: ServeState) -> None:
    spec = client(state).get("/openapi.json").json()
    for path in ("/api/runs", "/api/runs/{run_id}/summary", "/api/compare", "/api/trends", "/api/labels", "/api/votes"):
        assert path in spec["paths"], path
    assert "post" in spec["paths"]["/api/labels"] and "RunSummary" in json.dumps(spec)
    assert client(state).get("/docs").status_code == 404  # the interactive docs would load a CDN script


def test_pinned_baseline_is_what_the_nightly_compares_with(store: LocalRunStore, state: ServeState) -> None:
    assert client(state).post("/runs/run-a/pin").status_code == 403  # local mode still needs the CSRF token
    page = client(state).get("/runs/run-a").text
    assert client(state).post("/runs/run-a/pin", data={"csrf": csrf_of(page)}).status_code == 303
    assert read_pins(store).pins["nightly-demo"].run_id == "run-a"
    assert 'data-run="run-a"' in client(state).get("/").text and "baseline" in client(state).get("/").text
    page = client(state).get("/runs/run-a").text
    assert client(state).post("/runs/run-a/pin", data={"csrf": csrf_of(page), "action": "unpin"}).status_code == 303
    assert read_pins(store).pins == {}


def test_keys_and_labels_never_reach_the_logs(
    store: LocalRunStore, state: ServeState, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, _ = create_key(store, "reviewer")
    state.keys.reload()
    c = client(state, key)
    c.post(
        "/api/labels",
        json={
            "run_id": "run-a",
            "item_id": "q000",
            "candidate": A,
            "correctness": "correct",
            "notes": "secret reviewer remark",
        },
    )
    c.get("/runs/nope")
    c.get("/api/labels", params={"run": "run-a"})
    assert key not in caplog.text and "secret reviewer remark" not in caplog.text


def test_a_score_without_a_value_shows_its_label_not_none(store: LocalRunStore, state: ServeState) -> None:
    from ragharness.core.types import Score

    extra = Score(
        item_id="q000",
        candidate=A,
        metric="citation_precision",
        value=None,
        label="n/a",
        reason="no citations",
        scorer="citation",
        scorer_version="1",
    )
    with (store.root / "run-b" / "scores.jsonl").open("a") as fh:
        fh.write(extra.model_dump_json() + "\n")
    page = client(state).get("/compare", params={"a": "run-a", "b": "run-b", "ca": A, "cb": A}).text
    assert "citation_precision: n/a" in page and "None n/a" not in page
    item = client(state).get("/runs/run-b/items/q000").text
    assert "None n/a" not in item
