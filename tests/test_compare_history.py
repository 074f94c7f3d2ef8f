"""A/B comparison, run stores (local, S3 with moto), history index and the trend dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from fake_runs import XSS, flags, history, make_run
from moto import mock_aws
from typer.testing import CliRunner

from ragharness.analysis.compare import compare, pick_candidates
from ragharness.cli import _app, app, print_summary
from ragharness.core.errors import RunError
from ragharness.runs.history import HistoryIndex
from ragharness.runs.store import LocalRunStore, S3RunStore
from ragharness.runs.summary import RunSummary


def test_significant_drop_and_noise(tmp_path: Path) -> None:
    base = flags(90, 80)
    worse = [ok and i % 3 != 0 for i, ok in enumerate(base)]  # loses ~27 correct answers, gains none
    noisy = list(base)
    noisy[0], noisy[1] = not noisy[0], not noisy[1]
    a = make_run(tmp_path, "a", {"bot": base})
    b = make_run(tmp_path, "b", {"bot": worse})
    c = make_run(tmp_path, "c", {"bot": noisy})
    drop = compare(a, b, "bot", "bot")
    corr = next(m for m in drop.metrics if m.metric == "correctness").result
    assert corr.significant and corr.diff < 0 and corr.discordant_b == 0
    assert corr.ci_high < 0 and corr.losses > 20 and corr.wins == 0
    assert [m.metric for m in drop.significant_drops(["correctness"])] == ["correctness"]
    assert len(drop.changed) == corr.losses
    assert {m.intent for m in drop.by_intent} == {"billing", "access", "limits"}
    noise = compare(a, c, "bot", "bot")
    assert not any(m.result.significant for m in noise.metrics)


def test_two_candidates_of_one_run_and_candidate_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path, "one", {"v5": flags(60, 50), "v6": flags(60, 55, seed=1)})
    with pytest.raises(RunError, match="name them with --candidate-a"):
        pick_candidates(run, run, None, None)
    assert compare(run, run, "v5", "v6").n_items == 60
    with pytest.raises(RunError, match="no candidate 'nope'"):
        compare(run, run, "v5", "nope")


def test_compare_cli_writes_escaped_html(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", {"bot": [True] * 10})
    b = make_run(tmp_path, "b", {"bot": [False] + [True] * 9}, answers={"bot": [XSS] + ["Answer 1. [1]"] * 9})
    res = CliRunner().invoke(app, ["compare", str(a.path), str(b.path), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "cmp/comparison.html").read_text()
    assert "<script>window.__pwned" not in html and "&lt;script&gt;window.__pwned" in html
    data = json.loads((tmp_path / "cmp/comparison.json").read_text())
    assert data["changed"][0]["item_id"] == "q000"


def test_a_judge_only_run_follows_the_judges_correctness_everywhere_correctness_is_tracked(tmp_path: Path) -> None:
    """A run scored only by the LLM judge (no offline correctness): the comparison's changed items, the report's
    items needing attention and the terminal's per-intent table follow judge_correctness instead of coming out empty."""
    a = make_run(tmp_path, "a", {"bot": [True] * 12}, correctness_metric="judge_correctness")
    b = make_run(tmp_path, "b", {"bot": [False, False] + [True] * 10}, correctness_metric="judge_correctness")
    result = compare(a, b, "bot", "bot")
    assert result.changed_metric == "judge_correctness"
    assert [c.item_id for c in result.changed] == ["q000", "q001"]
    html = (b.path / "report.html").read_text()
    assert "<h2>judge_correctness and groundedness per intent</h2>" in html and "bot <span" in html
    big = make_run(tmp_path, "big", {"bot": [k >= 3 for k in range(301)]}, correctness_metric="judge_correctness")
    assert "3 of 3 items where a candidate is not plainly correct" in (big.path / "report.html").read_text()
    res = CliRunner().invoke(app, ["compare", str(a.path), str(b.path), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0 and "items whose judge_correctness changed: 2" in res.output, res.output
    with _app.console.capture() as shown:
        print_summary(RunSummary.model_validate_json((b.path / "summary.json").read_text()))
    table = shown.get()
    assert "judge_correctness per intent" in table, table
    assert table.count("0.75") == 2 and "1.00" in table, table  # q000 and q001 fall in two intents of four items


def test_history_index_rebuilds_and_picks_baseline(tmp_path: Path) -> None:
    history(tmp_path / "runs", 5)
    index = HistoryIndex(tmp_path / "runs/history.sqlite", LocalRunStore(tmp_path / "runs"))
    assert [r.run_id for r in index.runs("nightly-demo")] == [f"run-{k:02d}" for k in range(5)]
    assert index.baseline("nightly-demo", exclude="run-04").run_id == "run-03"  # type: ignore[union-attr]
    rows = [m for m in index.metrics() if m.metric == "correctness" and m.intent == ""]
    assert len(rows) == 5 and all(0 <= (m.value or 0) <= 1 for m in rows)
    index.close()
    (tmp_path / "runs/history.sqlite").unlink()  # missing index: rebuilt from the run store
    again = HistoryIndex(tmp_path / "runs/history.sqlite", LocalRunStore(tmp_path / "runs"))
    assert len(again.runs()) == 5
    again.close()


def test_dashboard_from_thirty_runs(tmp_path: Path) -> None:
    history(tmp_path / "runs", 30)
    res = CliRunner().invoke(app, ["trends", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "t.html")])
    assert res.exit_code == 0 and "trends over 30 runs" in res.output
    page = (tmp_path / "t.html").read_text()
    assert "<script src=" not in page and "<link " not in page  # plotly.js is inlined: works offline
    assert page.count('id="chart-') == 1  # one figure: every panel shares the x axis and one legend
    assert "run-20" in page and "REGRESSED (nightly gate): run run-20" in page
    assert "bot@support-answer@v5" in page and "bot@support-answer@v6" in page
    assert "prompt bot: support-answer@v5 → support-answer@v6" in page  # the version change is marked
    assert page.count("/report.html") == 30
    assert 'id="summary"' in page and "Last run <strong>run-29</strong>" in page


@mock_aws
def test_s3_run_store_layout_and_round_trip(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="evals")
    store = S3RunStore("evals", "ragharness/runs", tmp_path / "cache", client=s3)
    run = make_run(tmp_path / "local", "run-01", {"bot": [True, False, True]})
    store.save(run)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="evals")["Contents"]}
    assert {"ragharness/runs/run-01/prompts/requests.jsonl"} - keys  # the fake run has no requests file
    for key in (
        "run.json",
        "summary.json",
        "report.html",
        "responses/generations.jsonl",
        "scores/scores.jsonl",
        "fixtures/goldset.json",
        "fixtures/context_packs.jsonl",
        "fixtures/config.yaml",
    ):
        assert f"ragharness/runs/run-01/{key}" in keys, key
    assert store.list_runs() == ["run-01"]
    opened = store.open("run-01")
    assert opened.generations() == run.generations() and opened.scores() == run.scores()
    index = HistoryIndex(tmp_path / "h.sqlite", store)
    assert [r.location for r in index.runs()] == ["s3://evals/ragharness/runs/run-01"]
    index.close()
    with pytest.raises(RunError, match="no such run"):
        store.open("run-99")


def test_history_index_from_an_older_layout_is_rebuilt_with_intervals_and_versions(tmp_path: Path) -> None:
    import sqlite3

    history(tmp_path / "runs", 3)
    old = sqlite3.connect(tmp_path / "runs/history.sqlite")
    old.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT, started_at TEXT, status TEXT, gate TEXT,"
        " location TEXT);"
        "CREATE TABLE metrics (run_id TEXT, candidate TEXT, provider TEXT, prompt TEXT, intent TEXT, metric TEXT,"
        " value REAL, n INTEGER, PRIMARY KEY (run_id, candidate, intent, metric));"
    )
    old.close()
    index = HistoryIndex(tmp_path / "runs/history.sqlite", LocalRunStore(tmp_path / "runs"))
    runs = index.runs()
    assert len(runs) == 3 and all(r.versions.get("goldset") for r in runs)
    row = next(m for m in index.metrics() if m.metric == "correctness" and m.intent == "")
    assert row.ci_low is not None and row.ci_high is not None and row.ci_low <= (row.value or 0) <= row.ci_high
    assert {m.metric for m in index.metrics()} >= {"over_refusal", "cost_per_100_items"}
    index.close()


def test_over_refusal_and_cost_per_100_items_are_catalogued_figures_a_run_records_and_a_gate_reads(
    tmp_path: Path,
) -> None:
    """They existed only in the history index (the trend page showed figures no run recorded, and no gate could
    name them); now they are ops specs of the catalog, computed by the run's summary and indexed from it."""
    from ragharness.runs.summary import RunSummary, evaluate_gates
    from ragharness.scoring import metrics as catalog
    from ragharness.scoring.settings import Threshold

    run = make_run(tmp_path / "runs", "r1", {"m": [True, False, True, True]}, cost=0.002)
    summary = RunSummary.model_validate_json(run.file("summary.json").read_text())
    assert catalog.spec("over_refusal").family == "ops" and catalog.spec("cost_per_100_items").direction == "lower"
    cand = summary.candidates[0]
    assert cand.value("over_refusal") == 0.0 and cand.value("cost_per_100_items") == pytest.approx(0.2)
    gates = evaluate_gates(
        summary, [Threshold(metric="over_refusal", max=0.1), Threshold(metric="cost_per_100_items", max=0.1)]
    )
    assert [g.passed for g in gates] == [True, False], [g.message for g in gates]
    assert gates[1].message == "cost_per_100_items for m: 0.200 (needs <= 0.1)"
    index = HistoryIndex(tmp_path / "index.sqlite", LocalRunStore(tmp_path / "runs"))
    got = {r.metric: r.value for r in index.metrics() if r.candidate == "m" and r.intent == ""}
    assert got["over_refusal"] == 0.0 and got["cost_per_100_items"] == pytest.approx(0.2)
