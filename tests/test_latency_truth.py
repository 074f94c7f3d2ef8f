"""Recorded latency is the model's: a server on 127.0.0.1 sleeps a known, jittered time per request and times
itself; the latencies a run records (concurrency 16, PII guardrails on every answer, the judge scoring) must match
what the server saw, also for the calls a resumed run makes after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import write
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run
from ragharness.runs.summary import percentile
from ragharness.testing.model_server import ModelServer

N_ITEMS = 80
CANDIDATE = "gpt-4o-mini"
JUDGE = (
    '{"claims": [{"text": "Plans include storage.", "verdict": "supported", "supporting_passages": [1], '
    '"cited_passages": [1]}], "correctness": {"label": "correct", "reason": "ok"}, "is_refusal": false}'
)


def answer(body: dict[str, Any], worse: bool) -> str:
    if body.get("model") == "judge-model":
        return JUDGE
    return "Plans include storage [1]. Write to help@example.com for more [1]."


def project(root: Path, url: str, *, stream: bool = False) -> Path:
    write(root / "corpus/plans.md", "# Plans\n\nEvery plan includes 5 GB of storage and files up to 250 MB.\n")
    items = [
        {
            "id": f"q{n:03d}",
            "question": f"How much storage does plan number {n} include?",
            "intent": "limits",
            "reference_answer": "5 GB.",
            "expected_sources": ["plans"],
        }
        for n in range(N_ITEMS)
    ]
    write(root / "gold.yaml", yaml.safe_dump({"name": "latency", "items": items}))
    options = f'{{base_url: "{url}", api_key: "${{OPENAI_KEY}}", stream: {str(stream).lower()}}}'
    write(
        root / "harness.yaml",
        f"""
name: latency
data_dir: data
output_dir: runs
corpus: {{path: corpus}}
embedder: {{kind: hashing}}
retrieval: {{mode: hybrid, k: 2}}
goldset: gold.yaml
guardrails:
  input: [{{kind: pii}}]
  output: [{{kind: pii}}]
runner: {{max_attempts: 3, base_delay_s: 0}}
candidates:
  - {{name: a, provider: "openai:{CANDIDATE}", concurrency: 16, options: {options}}}
  - name: b
    provider: "openai:{CANDIDATE}"
    concurrency: 16
    prompt: {{id: support-answer, version: 1}}
    options: {options}
judge: {{provider: "openai:judge-model", concurrency: 16, context_metrics: false, options: {options}}}
scorers: [correctness, refusal, judge]
""",
    )
    return root / "harness.yaml"


def excess(run_dir: Path, server: ModelServer) -> list[float]:
    """Per answer: the latency the run recorded minus what the server measured for the same request (paired by the
    answer's id); every answer of the run is paired."""
    truth = server.by_id()
    gens = [json.loads(x) for x in (run_dir / "generations.jsonl").read_text().splitlines()]
    ok = [g for g in gens if g["error"] is None]
    assert len(ok) == 2 * N_ITEMS and all(g["request_id"] in truth for g in ok)
    return [g["latency_ms"] - truth[g["request_id"]] for g in ok]


def assert_is_the_models(extra: list[float], server: ModelServer) -> None:
    """Not less than what the server took (within its own scheduling), and no harness time on top. The bounds hold
    on a loaded machine (two CPU hogs on two cores add ~20 ms); before this fix the harness added ~245 ms at the
    median (357 vs 112 ms).
    The tight figures (within 10 % and 15 ms on a quiet machine) are measured by benchmarks/latency_truth.py."""
    base = percentile(server.latencies(CANDIDATE), 50)
    # the server reads its clock after the last byte is written; on a busy machine its thread may get the CPU back
    # only after the client has read the answer, so a few ms below zero are the server's, not the harness's
    assert min(extra) >= -20.0, f"recorded {min(extra):.1f} ms less than the server took"
    assert percentile(extra, 50) <= 0.25 * base + 15.0, f"median excess {percentile(extra, 50):.1f} ms"
    assert percentile(extra, 95) <= 0.5 * base + 30.0, f"p95 excess {percentile(extra, 95):.1f} ms"


@pytest.fixture
def server() -> Any:
    with ModelServer(answer, latency_ms=120, jitter_ms=60, fail_every=37) as s:
        yield s


def test_recorded_latency_matches_the_server_at_concurrency_16(
    tmp_path: Path, server: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    run = execute_run(load_config(project(tmp_path, server.base_url)), log=lambda s: None)
    assert server.requests("judge-model") >= 2 * N_ITEMS  # the judge scored every answer
    assert_is_the_models(excess(run.run_dir, server), server)


def test_streamed_calls_record_the_models_time_to_first_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed answers (first token after the jittered latency, then a word every 15 ms): the run records both
    the time to first token and the whole call as the server saw them, paired by answer id, with the guardrails and
    the judge (also streaming) running."""
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    with ModelServer(answer, latency_ms=120, jitter_ms=60, fail_every=37, token_ms=15) as server:
        run = execute_run(load_config(project(tmp_path, server.base_url, stream=True)), log=lambda s: None)
        first = server.ttfts()
    gens = [json.loads(x) for x in (run.run_dir / "generations.jsonl").read_text().splitlines()]
    ok = [g for g in gens if g["error"] is None]
    assert len(ok) == 2 * N_ITEMS and all(g["request_id"] in first for g in ok)
    assert all(g["text"].startswith("Plans include storage [1].") for g in ok)
    ttft_extra = [g["ttft_ms"] - first[g["request_id"]] for g in ok]
    assert min(ttft_extra) >= -20.0 and percentile(ttft_extra, 50) <= 45.0, ttft_extra
    # the words after the first one count: the server spent them on every answer, and the recorded call is not
    # shorter than the server's whole answer (a lower bound load cannot break: no byte arrives before it is sent)
    total = server.by_id()
    assert all(total[g["request_id"]] >= first[g["request_id"]] + 8 * 15 - 2 for g in ok)
    assert all(g["latency_ms"] >= total[g["request_id"]] - 20 for g in ok)
    assert_is_the_models(excess(run.run_dir, server), server)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    a = summary["candidates"][0]
    assert a["ttft_p50_ms"] is not None and a["ttft_p50_ms"] < a["latency_p50_ms"]
    assert "TTFT p50/p95 ms" in (run.run_dir / "report.html").read_text()


@pytest.mark.faults
def test_after_a_sigkill_and_resume_the_latency_is_still_the_models(tmp_path: Path, server: ModelServer) -> None:
    cfg = project(tmp_path, server.base_url)
    env = {**os.environ, "OPENAI_KEY": "sk-test", "PYTHONUNBUFFERED": "1"}
    run_dir = tmp_path / "runs/r1"
    command = [sys.executable, "-m", "ragharness", "run", str(cfg), "--out", str(run_dir)]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while server.requests(CANDIDATE) < N_ITEMS // 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = server.requests(CANDIDATE)
    assert 0 < before < 2 * N_ITEMS, "the kill came mid-generation"
    resumed = subprocess.run(
        [*command[:4], str(cfg), "--resume", str(run_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode in (0, 1), resumed.stderr.decode()[-2000:]
    assert server.requests(CANDIDATE) > before  # the resumed session made calls
    assert_is_the_models(excess(run_dir, server), server)


class Clock:
    """A clock only the test moves: latencies come out exact, whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_timer_brackets_the_provider_call_alone() -> None:
    """Waiting for a concurrency slot, backing off after a 429, the output guardrails' CPU work and recording the
    answer all happen outside the timer: each call records exactly the time its provider took."""
    import asyncio

    from ragharness.core.retry import RetryPolicy
    from ragharness.generation.providers.base import ProviderCallError, ProviderResponse
    from ragharness.generation.runner import Runner
    from ragharness.guardrails.base import GuardrailChain, Verdict
    from ragharness.testing.provider import candidate, make_request

    clock = Clock()
    throttled = {"i1"}

    class Slow:
        id = "mock:slow"
        cacheable = False

        async def generate(self, request: Any) -> ProviderResponse:
            await asyncio.sleep(0)
            clock.now += 0.200  # the model: 200 ms
            if request.item_id in throttled:
                throttled.discard(request.item_id)
                raise ProviderCallError("rate_limit", "RateLimited", "slow down", retry_after=0.0)
            return ProviderResponse(text="ok [1]")

    class Busy:
        name = "busy"

        def check(self, text: str) -> Verdict:
            clock.now += 0.500  # CPU work of the harness on every answer
            return Verdict(text=text)

    cand = candidate("mock:slow")
    runner = Runner(
        {cand.name: Slow()},  # type: ignore[dict-item]
        {cand.name: 1},
        policy=RetryPolicy(max_attempts=3, base_delay_s=0),
        output_guardrails=GuardrailChain([Busy()], "output"),  # type: ignore[list-item]
        on_done=lambda g, a: setattr(clock, "now", clock.now + 1.0),
        clock=clock,
    )
    gens = asyncio.run(runner.run([make_request(cand, item_id=f"i{n}") for n in range(4)]))
    assert [round(g.latency_ms, 6) for g in gens] == [200.0] * 4
    retried = next(g for g in gens if g.item_id == "i1")
    assert [a.latency_ms for a in retried.attempt_log] == [pytest.approx(200.0)] * 2
