"""The OpenAI Batch API against the local fake OpenAI-compatible server (`/v1/files`, `/v1/batches`): the contract,
partial failures, an expired batch, malformed output lines, a run whose candidate and judge go batch (same scores
as online for the same responses), and SIGKILL at every step followed by `--resume` (same results, no second
batch)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from judge_kit import ANSWER, claims_responder, responder

from fake_openai import FakeOpenAI, Reply, completion, serve
from faultkit import cli
from ragharness.batch.base import BatchRecord
from ragharness.batch.openai import OpenAIBatch, parse_output_line
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run
from ragharness.testing.batch import check_batch_backend


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from serve()


def backend(server: FakeOpenAI) -> OpenAIBatch:
    return OpenAIBatch(
        "gpt-4o-mini", base_url=server.base_url, client=httpx.Client(headers={"Authorization": "Bearer k"})
    )


def records(n: int) -> list[BatchRecord]:
    return [
        BatchRecord(key=f"{i:064x}", body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]})
        for i in range(n)
    ]


def test_openai_batch_meets_the_contract(server: FakeOpenAI, tmp_path: Path) -> None:
    server.batch_api.polls = 3
    check_batch_backend(backend(server), tmp_path, records(12))
    api = server.batch_api
    assert api.creates == 1 and api.uploads == 1
    batch = next(iter(api.batches.values()))
    assert batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"
    line = json.loads(api.files[batch["input_file_id"]].decode().splitlines()[0])
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions" and line["body"]["model"] == "gpt-4o-mini"


def test_output_lines_answers_http_errors_and_damage() -> None:
    ok = parse_output_line(json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": completion("x")}}))
    assert ok is not None and ok.output is not None
    rate = parse_output_line(
        json.dumps({"custom_id": "b", "response": {"status_code": 429, "body": {"error": {"message": "slow down"}}}})
    )
    assert rate is not None and rate.error is not None and (rate.error.code, rate.error.retryable) == ("HTTP429", True)
    bad = parse_output_line(json.dumps({"custom_id": "c", "response": {"status_code": 400, "body": {"error": {}}}}))
    assert bad is not None and bad.error is not None and not bad.error.retryable
    expired = parse_output_line(json.dumps({"custom_id": "d", "error": {"code": "batch_expired", "message": "late"}}))
    assert expired is not None and expired.error is not None and expired.error.code == "batch_expired"
    torn = parse_output_line('{"id": "r1", "custom_id": "e", "response": {"status_co')
    assert torn is not None and torn.key == "e" and torn.error is not None and torn.error.code == "MalformedOutput"


def project(root: Path, server: FakeOpenAI, mode: str, *, judge_mode: str = "batch", extra: str = "") -> Path:
    from conftest import MINIMAL_CONFIG, write

    base = MINIMAL_CONFIG.format(mode="hybrid").replace(
        "candidates:\n",
        "candidates:\n"
        f"  - name: gpt\n    provider: openai:gpt-4o-mini\n    mode: {mode}\n"
        f'    options: {{base_url: "{server.base_url}", api_key: "${{OPENAI_KEY}}"}}\n',
    )
    judge = (
        f'judge:\n  provider: openai:judge-model\n  mode: {judge_mode}\n  options: {{base_url: "{server.base_url}"}}\n'
        "scorers: [citation, groundedness, correctness, refusal, retrieval, judge]\n"
        "prices:\n  gpt-4o-mini: {input_per_1k: 0.15, output_per_1k: 0.6}\n"
        f"batch: {{poll_interval_s: 0.01{extra}}}\n"
    )
    write(root / "harness.yaml", base + judge)
    return root / "harness.yaml"


def _scores(run_dir: Path) -> list[tuple[str, str, str, Any, str]]:
    rows = [json.loads(x) for x in (run_dir / "scores.jsonl").read_text().splitlines()]
    return sorted((s["item_id"], s["candidate"], s["metric"], s["value"], s["label"]) for s in rows)


def _gens(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "generations.jsonl").read_text().splitlines()]


def test_candidate_and_judge_in_batch_mode_score_the_same_as_online(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    server.responder = responder
    lines: list[str] = []
    batch_run = execute_run(
        load_config(project(mini_project, server, "batch")), log=lines.append, use_cache=False
    ).run_dir
    assert server.batch_api.creates == 2  # one job for the candidate, one for the judge
    online = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert online == [], "nothing went online"
    gpt = [g for g in _gens(batch_run) if g["candidate"] == "gpt"]
    assert gpt and all(g["mode"] == "batch" and g["batch_job"].startswith("batch_") for g in gpt)
    assert gpt[0]["cost_usd"] == pytest.approx((400 * 0.15 + 20 * 0.6) / 1000 * 0.5)  # the batch price
    judge_calls = [json.loads(x) for x in (batch_run / "judge_calls.jsonl").read_text().splitlines()]
    assert judge_calls and all(c["mode"] == "batch" for c in judge_calls)

    online_run = execute_run(
        load_config(project(mini_project, server, "online", judge_mode="online")), log=lines.append, use_cache=False
    ).run_dir
    assert _scores(online_run) == _scores(batch_run)
    summary = json.loads((batch_run / "summary.json").read_text())
    assert summary["status"] in ("pass", "fail")


def test_partial_failures_go_to_a_second_job_or_online_and_expired_records_are_retried(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    server.responder = responder
    api = server.batch_api
    api.answer_limit = 2  # the first batch expires after answering two requests
    api.outcome = "expired"
    cfg = load_config(project(mini_project, server, "batch", judge_mode="online", extra=", online_retry_max: 0"))
    calls: list[str] = []

    def create_hook(*_: Any) -> None:
        calls.append("create")
        if len(calls) == 1:  # the second round completes normally
            return
        api.outcome, api.answer_limit = "completed", None

    original = api.post

    def post(path: str, headers: Any, raw: bytes) -> tuple[int, Any]:
        if path == "/v1/batches":
            create_hook()
        return original(path, headers, raw)

    api.post = post  # type: ignore[method-assign]
    lines: list[str] = []
    run_dir = execute_run(cfg, log=lines.append, use_cache=False).run_dir
    assert api.creates == 2, lines
    gpt = [g for g in _gens(run_dir) if g["candidate"] == "gpt"]
    assert all(g["error"] is None and g["mode"] == "batch" for g in gpt)
    assert len({g["batch_job"] for g in gpt}) == 2  # two from the first job, the rest from the second
    assert any("expired" in line for line in lines), lines


def test_record_failures_within_the_online_allowance_are_made_online_and_malformed_lines_are_not_lost(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    server.responder = responder
    server.batch_api.malformed = 1
    run_dir = execute_run(
        load_config(project(mini_project, server, "batch", judge_mode="online")), log=lambda s: None, use_cache=False
    ).run_dir
    gpt = [g for g in _gens(run_dir) if g["candidate"] == "gpt"]
    assert all(g["error"] is None for g in gpt)
    assert sorted(g["mode"] for g in gpt).count("online") == 1  # the one unreadable line, made online
    assert server.batch_api.creates == 1


def test_a_whole_failed_job_is_reported_with_the_providers_message_and_resumes(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    server.responder = responder
    server.batch_api.outcome = "failed"
    server.batch_api.failure_message = "line 3: invalid model"
    cfg = load_config(
        project(mini_project, server, "batch", judge_mode="online", extra=", max_rounds: 1, online_retry_max: 0")
    )
    lines: list[str] = []
    run_dir = execute_run(cfg, log=lines.append, use_cache=False).run_dir
    gpt = [g for g in _gens(run_dir) if g["candidate"] == "gpt"]
    assert gpt and all(g["error"]["type"] == "BatchJobFailed" for g in gpt)
    assert all("line 3: invalid model" in g["error"]["message"] for g in gpt)
    assert any("failed at openai:gpt-4o-mini: line 3: invalid model" in line for line in lines), lines
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "incomplete"
    server.batch_api.outcome = "completed"
    execute_run(cfg, resume=run_dir, log=lines.append, use_cache=False)
    assert all(g["error"] is None for g in _gens(run_dir) if g["candidate"] == "gpt")
    assert server.batch_api.creates == 2


@pytest.mark.faults
@pytest.mark.parametrize(
    "point",
    ["batch:uploading", "batch:uploaded", "batch:created", "batch:polling", "batch:downloading", "batch:downloaded"],
)
def test_sigkill_at_any_batch_step_then_resume_gives_the_same_results_and_no_second_batch(
    mini_project: Path, server: FakeOpenAI, point: str
) -> None:
    server.responder = responder
    server.batch_api.polls = 3
    cfg = project(mini_project, server, "batch", judge_mode="online")
    env = {"OPENAI_KEY": "sk-test"}
    killed = cli("run", str(cfg), "--out", "runs/r1", "--no-cache", cwd=mini_project, kill_at=point, env=env)
    assert killed.returncode == -9, killed.stderr
    for raw in (mini_project / "runs/r1").rglob("results-*.jsonl"):  # sealed: no model output readable on disk
        assert ANSWER not in raw.read_text(errors="replace"), point
    if point == "batch:polling":  # the batch finishes while the harness is down
        for bid in server.batch_api.batches:
            server.batch_api.finish(bid)
    resumed = cli("run", str(cfg), "--resume", "runs/r1", "--no-cache", cwd=mini_project, env=env)
    assert resumed.returncode in (0, 1), resumed.stdout + resumed.stderr
    assert server.batch_api.creates == 1, f"killed at {point}: a second batch was created"
    gpt = [g for g in _gens(mini_project / "runs/r1") if g["candidate"] == "gpt"]
    assert len(gpt) == 3 and all(g["text"] == ANSWER and g["mode"] == "batch" for g in gpt)


def test_dry_run_shows_online_and_batch_cost_and_jobs_and_the_budget_covers_batch(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ragharness.cli import app
    from ragharness.pipeline.dryrun import plan

    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    cfg_file = project(mini_project, server, "batch", judge_mode="online", extra=", openai: {max_records: 2}")
    result = plan(load_config(cfg_file))
    totals = result.totals()["gpt"]
    assert totals["batch_cost_usd"] == pytest.approx(float(totals["cost_usd"] or 0) / 2)
    assert (result.batch["gpt"].mode, result.batch["gpt"].jobs) == ("batch", 2)  # 3 calls, 2 per job
    assert not result.batch["ext"].capable and result.batch["judge (scorer)"].mode == "online"
    out = CliRunner().invoke(app, ["run", str(cfg_file), "--dry-run"])
    assert out.exit_code == 0, out.output
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.output.splitlines() if "│" in line]
    gpt = next(r for r in rows if r[0] == "gpt")
    assert gpt[-2:] == ["batch", "2"] and float(gpt[-3]) == pytest.approx(float(gpt[-4]) / 2, abs=1e-4), gpt
    assert server.batch_api.creates == 0 and not server.requests  # nothing was called

    # a budget smaller than one job's estimate: the job is not submitted, its calls stay pending
    budget = project(mini_project, server, "batch", judge_mode="online").read_text() + "budget_usd: 0.00001\n"
    cfg_file.write_text(budget)
    lines: list[str] = []
    run = execute_run(load_config(cfg_file), log=lines.append, use_cache=False)
    assert server.batch_api.creates == 0 and run.summary.pending == 3
    assert any("exceeds what is left of budget_usd" in line for line in lines), lines


def test_raw_batch_outputs_never_stay_in_the_run_directory(
    mini_project: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Downloaded outputs are the model's words before the output guardrails: once the answers are recorded
    (redacted), they are deleted; no raw PII value is left in any run file."""
    monkeypatch.setenv("OPENAI_KEY", "sk-test")

    def leaky(body: dict[str, Any]) -> Reply:
        if "<answer>" in body["messages"][-1]["content"]:
            return claims_responder(body)
        return Reply(body=completion("Write to jane.roe@example.org, IBAN DE89 3704 0044 0532 0130 00 [1]."))

    server.responder = leaky
    run_dir = execute_run(load_config(project(mini_project, server, "batch")), log=lambda s: None).run_dir
    assert not list((run_dir / "batch").rglob("results-*.jsonl"))
    for path in run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "jane.roe@example.org" not in text and "0532 0130" not in text, path
    gpt = [g for g in _gens(run_dir) if g["candidate"] == "gpt"]
    assert gpt and all(g["mode"] == "batch" and "jane.roe" not in g["text"] for g in gpt)
