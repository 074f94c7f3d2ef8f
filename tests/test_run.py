"""The run end to end on the tiny project (hashing embedder): files, locking, redaction, escaping, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragharness.cli import ExitCode, app
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run
from ragharness.reporting.jinja import cite_links
from ragharness.reporting.report import write_report
from ragharness.runs.rundir import RunDir

cli = CliRunner()


@pytest.fixture
def run_dir(mini_project: Path) -> Path:
    result = execute_run(load_config(mini_project / "harness.yaml"), log=lambda s: None)
    return result.run_dir


def test_run_directory_has_every_artefact(run_dir: Path) -> None:
    for name in (
        "run.json",
        "config.yaml",
        "goldset.json",
        "context_packs.jsonl",
        "requests.jsonl",
        "generations.jsonl",
        "guardrails.jsonl",
        "scores.jsonl",
        "summary.json",
        "report.html",
    ):
        assert (run_dir / name).is_file(), name
    run = RunDir.open(run_dir)
    assert run.manifest().status in ("pass", "fail", "incomplete")
    assert len(run.generations()) == 3 * 2


def test_every_candidate_gets_the_identical_locked_context(run_dir: Path) -> None:
    requests = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    by_item: dict[str, set[str]] = {}
    for r in requests:
        by_item.setdefault(r["item_id"], set()).add(json.dumps(r["passages"], sort_keys=True) + r["user"])
    assert all(len(v) == 1 for v in by_item.values())
    packs = RunDir.open(run_dir).packs()
    assert all(p.content_hash and p.store.startswith("lancedb:") for p in packs)
    assert packs[0] == packs[0].with_hash()


def test_no_raw_personal_data_is_written_anywhere(run_dir: Path) -> None:
    for f in run_dir.iterdir():
        text = f.read_text(encoding="utf-8")
        for raw in ("help@example.com", "415 555 0134"):
            assert raw not in text, f"{raw} leaked into {f.name}"
    # Redacted at ingest: the store itself holds the placeholder, and the passages show it.
    assert json.loads((run_dir / "ingest.json").read_text())["redacted"] is True
    assert "[REDACTED_EMAIL_ADDRESS]" in (run_dir / "context_packs.jsonl").read_text()
    audit = RunDir.open(run_dir).actions()
    assert any(a.stage == "output" and a.where == "answer:rep" for a in audit)


def test_scores_differ_between_candidates_and_failures_are_counted(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    cands = {c["candidate"]: c for c in summary["candidates"]}
    rep = cands["rep"]["metrics"]
    assert rep["correctness"]["labels"].get("incorrect", 0) >= 1  # the 50 GB hallucination
    assert rep["refusal"]["labels"] == {"answered": 2, "should_have_refused": 1}
    assert cands["ext"]["metrics"]["refusal"]["labels"].get("correctly_refused") == 1


def test_report_escapes_model_output(run_dir: Path) -> None:
    gens = (run_dir / "generations.jsonl").read_text().splitlines()
    first = json.loads(gens[0])
    first["text"] = '<script>alert("x")</script><img src=x onerror=alert(1)> see [1] and [9]'
    (run_dir / "generations.jsonl").write_text("\n".join([json.dumps(first), *gens[1:]]) + "\n")
    html = write_report(RunDir.open(run_dir)).read_text()
    assert '<script>alert("x")' not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html
    assert 'class="cite bad"' in html


def test_cite_links_only_link_existing_passages() -> None:
    out = str(cite_links("a <b> [1] [3]", "i-x", 2))
    assert (
        out == 'a &lt;b&gt; <a class="cite" href="#i-x-p1">[1]</a> <span class="cite bad" title="no passage 3 in '
        'the context">[3]</span>'
    )


def test_cli_run_prints_summary_and_report_path_and_gates(mini_project: Path) -> None:
    cfg = mini_project / "harness.yaml"
    cfg.write_text(cfg.read_text() + "thresholds:\n  - {metric: correctness, min: 0.99, candidates: [rep]}\n")
    result = cli.invoke(app, ["run", str(cfg)])
    assert result.exit_code == ExitCode.GATE_FAILED, result.output
    assert "FAIL correctness for rep" in result.output
    assert "report: " in result.output and "report.html" in result.output
    assert f"review in the browser: ragharness serve --store {mini_project / 'runs'} --local" in result.output
    assert "candidate" in result.output and "ext" in result.output


def test_cli_incomplete_run_exit_code(mini_project: Path) -> None:
    (mini_project / "replay.jsonl").write_text('{"item_id": "refund", "answer": "30 days [1]."}\n')
    result = cli.invoke(app, ["run", str(mini_project / "harness.yaml")])
    assert result.exit_code == ExitCode.INCOMPLETE, result.output
    summary = json.loads(next((mini_project / "runs").glob("*/summary.json")).read_text())
    rep = next(c for c in summary["candidates"] if c["candidate"] == "rep")
    assert rep["errors"] == 2 and rep["metrics"]["correctness"]["n"] == 3


def test_cli_config_error_exit_code_and_message(tmp_path: Path) -> None:
    bad = tmp_path / "h.yaml"
    bad.write_text("name: x\ncorpus: {path: c}\ngoldset: g.yaml\ncandidates: []\n")
    result = cli.invoke(app, ["run", str(bad)])
    assert result.exit_code == ExitCode.CONFIG
    assert f"{bad}: candidates: List should have at least 1 item" in result.output


def test_cli_goldset_lint(tmp_path: Path, mini_project: Path) -> None:
    ok = cli.invoke(app, ["goldset", "lint", str(mini_project / "gold.yaml")])
    assert ok.exit_code == 0 and "ok: 3 items, 3 intents, 1 must-refuse" in ok.output
    bad = tmp_path / "g.yaml"
    bad.write_text("name: g\nitems:\n  - {id: a, question: q}\n")
    res = cli.invoke(app, ["goldset", "lint", str(bad)])
    assert res.exit_code == ExitCode.CONFIG and "item 'a': field intent: Field required" in res.output


def test_cli_ingest_and_report_commands(mini_project: Path, run_dir: Path) -> None:
    res = cli.invoke(app, ["ingest", str(mini_project / "harness.yaml")])
    assert res.exit_code == 0 and "4 unchanged" in res.output
    res = cli.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0 and "report.html" in res.output
    res = cli.invoke(app, ["report", str(mini_project)])
    assert res.exit_code == ExitCode.CONFIG and "not a run directory" in res.output


def test_input_block_refuses_without_calling_any_model(mini_project: Path) -> None:
    cfg = mini_project / "harness.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "input: [{kind: pii}]",
            "input: [{kind: pii}, {kind: deny_patterns, options: {patterns: [weather], message: No.}}]",
        )
    )
    result = execute_run(load_config(cfg), log=lambda s: None)
    gens = [g for g in RunDir.open(result.run_dir).generations() if g.item_id == "weather"]
    assert [(g.text, g.attempts, g.blocked_by) for g in gens] == [("No.", 0, "deny_patterns:denied_topic")] * 2


def test_large_runs_page_their_items_and_keep_failures_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faultkit import N_ITEMS, project
    from ragharness.reporting import report as report_module

    monkeypatch.setattr(report_module, "INLINE_ITEMS", 10)
    monkeypatch.setattr(report_module, "PAGE_SIZE", 7)
    monkeypatch.setattr(report_module, "ATTENTION_INLINE", 5)
    cfg = project(tmp_path, latency=1, m2_error_rate=0.3)
    run_dir = execute_run(load_config(cfg), out_dir=tmp_path / "run", log=lambda s: None).run_dir
    gens = (run_dir / "generations.jsonl").read_text().splitlines()
    first = json.loads(gens[0])
    first["text"] = "<script>window.__pwned=1</script> [1]"
    (run_dir / "generations.jsonl").write_text("\n".join([json.dumps(first), *gens[1:]]) + "\n")
    html = write_report(RunDir.open(run_dir)).read_text()
    pages = sorted((run_dir / "report-items").glob("page-*.html"))
    assert len(pages) == 4  # 24 items, 7 to a page
    on_pages = [i for p in pages for i in re.findall(r'<div class="item" id="i-(q\d\d)"', p.read_text())]
    assert sorted(on_pages) == [f"q{i:02d}" for i in range(N_ITEMS)], "every item on exactly one page"
    inline = re.findall(r'<div class="item" id="i-(q\d\d)"', html)
    failed = sorted({json.loads(g)["item_id"] for g in gens if json.loads(g)["error"]})
    assert len(inline) == 5 and failed[0] in inline, "failures come first in gold order, capped"
    assert re.search(r"5 of \d+ items where a candidate is not plainly correct", html)
    assert 'href="report-items/page-0001.html"' in html
    first_page = pages[0].read_text()
    assert "<script>window.__pwned" not in first_page and "&lt;script&gt;window.__pwned" in first_page


def test_run_a_subset_for_quick_iteration(mini_project: Path) -> None:
    cfg = mini_project / "harness.yaml"
    res = cli.invoke(app, ["run", str(cfg), "--items", "refund,weather", "--out", str(mini_project / "runs/s1")])
    assert res.exit_code in (0, 1), res.output
    gens = (mini_project / "runs/s1/generations.jsonl").read_text()
    assert '"refund"' in gens and '"weather"' in gens and '"storage"' not in gens
    assert "subset: items refund,weather" in (mini_project / "runs/s1/report.html").read_text()
    res = cli.invoke(app, ["run", str(cfg), "--intent", "limits", "--out", str(mini_project / "runs/s2")])
    assert res.exit_code in (0, 1) and "1 items" in res.output, res.output
    res = cli.invoke(app, ["run", str(cfg), "--limit", "2", "--out", str(mini_project / "runs/s3")])
    assert res.exit_code in (0, 1) and "2 items" in res.output, res.output
    res = cli.invoke(app, ["run", str(cfg), "--items", "nope"])
    assert res.exit_code == 3 and "'nope'" in res.output


def test_library_calls_print_nothing_and_log_their_notes(
    mini_project: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A notebook or a test calling the library gets no output on stdout: the notes a run writes (ingest counts,
    report path) go to the rooms' loggers, which the caller may show or not."""
    with caplog.at_level("INFO", logger="ragharness"):
        result = execute_run(load_config(mini_project / "harness.yaml"))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    notes = [r.getMessage() for r in caplog.records if r.name.startswith("ragharness.")]
    assert any("ingest" in n for n in notes), notes
    assert result.run_dir.is_dir()
