"""The scoring seam's bugs (each failed before the judge became a registered Scorer): configuration checked before
any model call, judge changes on --resume, `score` on an unfinished run, the run's own `scoring:` overrides in
compare and calibrate, and judge options on the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_runs import make_run
from judge_kit import claims_responder
from typer.testing import CliRunner

from fake_openai import FakeOpenAI, Reply, completion, serve
from ragharness.analysis.compare import compare
from ragharness.analysis.labels import calibrate
from ragharness.cli import app

CANDIDATE_ON_SERVER = """
  - name: served
    provider: openai:cand-model
    options: {{base_url: "{base_url}", api_key: "${{CAND_KEY}}"}}
"""


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from serve()


def _responder(body: dict[str, object]) -> Reply:
    """Judge requests get judge JSON; candidate requests a short cited answer."""
    user = str(body["messages"][-1]["content"])  # type: ignore[index]
    if "<answer>" in user:
        return claims_responder(body)  # type: ignore[arg-type]
    return Reply(body=completion("Annual plans can be refunded within 30 days [1]."))


@pytest.fixture
def counted(mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The mini project with a third candidate answered by the fake server, whose requests are counted."""
    monkeypatch.setenv("CAND_KEY", "k")
    monkeypatch.setenv("JUDGE_KEY", "k")
    server.responder = _responder
    cfg = mini_project / "harness.yaml"
    text = cfg.read_text().replace(
        "candidates:\n", "candidates:" + CANDIDATE_ON_SERVER.format(base_url=server.base_url), 1
    )
    cfg.write_text(text)
    return cfg


JUDGES = {
    "unknown provider": ('provider: "nosuch:model"', "judge.provider: unknown provider 'nosuch'"),
    "missing ${ENV}": (
        'provider: "openai:j"\n  options: {base_url: "http://127.0.0.1:9", api_key: "${NOT_SET_ANYWHERE}"}',
        "NOT_SET_ANYWHERE",
    ),
    "missing prompt": ('provider: "mock"\n  prompt: {id: no-such-judge-prompt, version: 4}', "no-such-judge-prompt"),
    "v1 prompt with context metrics": ('provider: "mock"\n  prompt: {id: judge-claims, version: 1}', "version 2"),
}


@pytest.mark.parametrize("case", list(JUDGES))
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_misconfigured_judge_exits_3_before_any_model_call(
    counted: Path, server: FakeOpenAI, case: str, dry_run: bool
) -> None:
    section, expected = JUDGES[case]
    counted.write_text(counted.read_text() + f"scorers: [correctness, judge]\njudge:\n  {section}\n")
    res = CliRunner().invoke(app, ["run", str(counted), *(["--dry-run"] if dry_run else [])])
    assert res.exit_code == 3, res.output
    assert expected in res.output
    assert server.requests == [], "no candidate (and no judge) was called"
    assert not (counted.parent / "runs").exists() or not any((counted.parent / "runs").iterdir())


def test_dry_run_prices_the_judge_calls_too(counted: Path, server: FakeOpenAI) -> None:
    judge = '  provider: "openai:gpt-4o-mini"\n  options: {base_url: "http://127.0.0.1:9", api_key: "${JUDGE_KEY}"}\n'
    counted.write_text(counted.read_text() + f"scorers: [correctness, judge]\njudge:\n{judge}")
    res = CliRunner().invoke(app, ["run", str(counted), "--dry-run"])
    assert res.exit_code == 0, res.output
    judge_lines = [line for line in res.output.splitlines() if line.startswith("call judge (scorer)")]
    assert len(judge_lines) == 3 * 3  # one judge call per (item, candidate) answer
    assert all("$" in line and "unpriced" not in line for line in judge_lines), judge_lines[:2]
    assert "judge (scorer)" in res.output.split("dry run:")[1]  # its own row in the totals table
    assert server.requests == []


def test_a_judge_change_is_accepted_on_resume(counted: Path, server: FakeOpenAI) -> None:
    base = counted.read_text() + "scorers: [correctness, judge]\n"
    counted.write_text(
        base + 'judge:\n  provider: "mock"\n  context_metrics: false\n  prompt: {id: judge-claims, version: 1}\n'
    )
    first = CliRunner().invoke(app, ["run", str(counted)])
    run_dir = next((counted.parent / "runs").iterdir())
    assert first.exit_code in (0, 1, 4), first.output
    calls_before = len(server.requests)
    counted.write_text(
        base + f'judge:\n  provider: "openai:judge-model"\n  options: {{base_url: "{server.base_url}", '
        'api_key: "${JUDGE_KEY}"}\n'
    )
    res = CliRunner().invoke(app, ["run", str(counted), "--resume", str(run_dir)])
    assert res.exit_code in (0, 1), res.output
    assert "cannot resume" not in res.output
    judged = [
        s
        for s in map(json.loads, (run_dir / "scores.jsonl").read_text().splitlines())
        if s["scorer"] == "judge:openai:judge-model"
    ]
    assert len(judged) == 9 * 7  # every answer judged again by the new judge, context metrics included
    assert len(server.requests) - calls_before == 9, "no candidate was called again; one judge call per answer"
    assert "judge-model" in (run_dir / "config.yaml").read_text(), "the snapshot says what scored the run"


def test_score_recreates_a_lost_summary_and_says_how_to_finish_an_unfinished_run(mini_project: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(mini_project / "harness.yaml")])
    run_dir = next((mini_project / "runs").iterdir())
    assert res.exit_code in (0, 1), res.output
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").unlink()
    (run_dir / "scores.jsonl").unlink()
    res = CliRunner().invoke(app, ["score", str(run_dir)])
    assert res.exit_code in (0, 1), res.output
    again = json.loads((run_dir / "summary.json").read_text())
    assert [c["metrics"] for c in again["candidates"]] == [c["metrics"] for c in summary["candidates"]]

    manifest = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**manifest, "stage": "prepared"}))  # as if killed while generating
    res = CliRunner().invoke(app, ["score", str(run_dir)])
    assert res.exit_code == 3 and res.exception is not None and isinstance(res.exception, SystemExit)
    assert "stopped at stage 'prepared'" in res.output and f"--resume {run_dir}" in res.output


def test_compare_and_calibrate_use_the_runs_scoring_overrides(tmp_path: Path) -> None:
    flags = [True, False, True, False, True, False, True, False]
    a = make_run(tmp_path, "run-a", {"bot": [True] * 8})
    b = make_run(tmp_path, "run-b", {"bot": flags})  # a wrong answer has groundedness 0.5
    g = next(m for m in compare(a, b, "bot", "bot").metrics if m.metric == "groundedness").result
    assert g.discordant_a == 0  # 0.5 >= the shipped groundedness_faithful_min (0.5): faithful
    (b.path / "config.yaml").write_text("name: nightly-demo\nscoring: {groundedness_faithful_min: 0.9}\n")
    g = next(m for m in compare(a, b, "bot", "bot").metrics if m.metric == "groundedness").result
    assert g.discordant_a == 4, "run B was scored with faithful_min 0.9: 0.5 is not faithful"

    labels = b.file("labels.jsonl")
    labels.write_text(
        "\n".join(
            json.dumps({"item_id": f"q{i:03d}", "candidate": "bot", "groundedness": "grounded"}) for i in range(8)
        )
    )
    assert next(x for x in calibrate(b.path).agreements if x.metric == "groundedness").accuracy == 0.5
    (b.path / "config.yaml").write_text("name: nightly-demo\n")
    assert next(x for x in calibrate(b.path).agreements if x.metric == "groundedness").accuracy == 1.0


def test_score_takes_judge_options_and_a_judge_only_config(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUDGE_KEY", "k")
    server.responder = claims_responder
    assert CliRunner().invoke(app, ["run", str(mini_project / "harness.yaml")]).exit_code in (0, 1)
    run_dir = next((mini_project / "runs").iterdir())
    res = CliRunner().invoke(
        app,
        [
            "score",
            str(run_dir),
            "--judge",
            "openai:judge-model",
            "--judge-option",
            f"base_url={server.base_url}",
            "--judge-option",
            "api_key=${JUDGE_KEY}",
        ],
    )
    assert res.exit_code in (0, 1), res.output
    assert "scored: judge:openai:judge-model@judge-claims@v2: 42 records" in res.output
    assert len(server.requests) == 6
    assert {k.lower(): v for k, v in server.requests[0]["headers"].items()}["authorization"] == "Bearer k"

    only = mini_project / "judge.yaml"
    only.write_text(
        f'judge:\n  provider: "openai:other-judge"\n  options: {{base_url: "{server.base_url}", '
        'api_key: "${JUDGE_KEY}"}\n  context_metrics: false\n'
    )
    res = CliRunner().invoke(app, ["score", str(run_dir), "--judge-config", str(only)])
    assert res.exit_code in (0, 1), res.output
    assert "scored: judge:openai:other-judge@judge-claims@v2: 30 records" in res.output

    res = CliRunner().invoke(
        app, ["score", str(run_dir), "--judge", "openai:x", "--judge-option", "api_key=sk-live-1234"]
    )
    assert res.exit_code == 3 and "sk-live-1234" not in res.output and "environment references" in res.output
    only.write_text("judge: {provider: mock}\nscorers: [judge]\n")
    res = CliRunner().invoke(app, ["score", str(run_dir), "--judge-config", str(only)])
    assert res.exit_code == 3 and "expected only a `judge:` section" in res.output


def test_judge_without_a_judge_section_exits_3_naming_the_fix(counted: Path, server: FakeOpenAI) -> None:
    counted.write_text(counted.read_text() + "scorers: [correctness, judge]\n")
    res = CliRunner().invoke(app, ["run", str(counted)])
    assert res.exit_code == 3 and "scorer `judge` needs a `judge:` section" in res.output
    assert server.requests == []
