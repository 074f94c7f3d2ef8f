"""The records of a run that count: re-scoring appends, the latest record per (item, candidate, metric) wins, and
every consumer (summary, report, compare, review app, calibration) reads the same winners through one place."""

from __future__ import annotations

from pathlib import Path

from fake_runs import make_run

from ragharness.analysis.compare import compare
from ragharness.core.types import Candidate, ErrorInfo, Generation, PromptRef, Score
from ragharness.reporting.report import _context
from ragharness.runs.latest import current_generations
from ragharness.runs.rundir import RunDir
from ragharness.runs.store import LocalRunStore
from ragharness.runs.summary import summarise
from ragharness.serve.catalog import RunCatalog


def _rescored(root: Path) -> RunDir:
    """q001 was scored incorrect, then a re-score (a newer scorer version) appended `correct`."""
    run = make_run(root, "r1", {"bot": [True, False, True]})
    newer = Score(
        item_id="q001",
        candidate="bot",
        metric="correctness",
        value=1.0,
        label="correct",
        reason="re-scored",
        scorer="correctness",
        scorer_version="2",
    )
    run.append("scores.jsonl", [newer])
    return run


def test_every_reader_takes_the_latest_record_per_item_candidate_and_metric(tmp_path: Path) -> None:
    run = _rescored(tmp_path / "runs")
    current = run.current_scores()
    assert current[("q001", "bot", "correctness")].reason == "re-scored"
    assert len(current) == len({(s.item_id, s.candidate, s.metric) for s in run.scores()}) < len(run.scores())
    only_q1 = run.current_scores(where=lambda s: s.item_id == "q001")
    assert {k[0] for k in only_q1} == {"q001"} and only_q1[("q001", "bot", "correctness")].value == 1.0

    gold, bot = (
        run.goldset(),
        Candidate(name="bot", provider="replay", prompt=PromptRef(id="support-answer", version=1)),
    )
    summary = summarise("r1", "nightly-demo", gold.items, [bot], run.generations(), run.scores(), [], [])
    assert summary.candidates[0].metrics["correctness"].mean == 1.0  # 3 of 3 once q001 is re-scored

    page = _context(run)
    assert page["scores"][("q001", "bot")]["correctness"].reason == "re-scored"

    before = make_run(tmp_path / "runs", "r0", {"bot": [True, False, True]})
    diff = compare(before, run, "bot", "bot")
    changed = {(c.item_id, c.label_a, c.label_b) for c in diff.changed}
    assert ("q001", "incorrect", "correct") in changed, diff.changed

    catalog = RunCatalog(LocalRunStore(tmp_path / "runs"), tmp_path / "cache")
    assert catalog.outcomes("r1")[("q001", "bot")].label == "correct"


def test_a_resumed_call_supersedes_the_failure_it_retried() -> None:
    failed = Generation(
        item_id="q1",
        candidate="a",
        text="",
        error=ErrorInfo(type="ThrottlingException", message="slow down"),
        latency_ms=0.0,
    )
    retried = Generation(item_id="q1", candidate="a", text="Answer.", latency_ms=5.0)
    other = Generation(item_id="q2", candidate="a", text="B.", latency_ms=5.0)
    assert current_generations([failed, other, retried]) == {("q1", "a"): retried, ("q2", "a"): other}
