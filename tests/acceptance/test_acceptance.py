"""The product used the way a person uses it, on a corpus the example does not shape (tests/acceptance/project: a
backup tool's documentation full of words like "secret", "token", "kill", "inject" and "attack", and no personal
data), set up with `ragharness init` and the README's steps, against a model server on 127.0.0.1 that behaves like
a real one (known latency with jitter, 429s and 500s, and answers that get worse behind the same model name), and
the review app in Chromium with no request interception. Every assertion is about the truth of a figure."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragharness.testing.model_server import ModelServer

pytestmark = [pytest.mark.acceptance, pytest.mark.integration]

HERE = Path(__file__).parent / "project"
MODEL = "tidepool-llm-8b"  # a model with no price in the shipped table: its cost is unknown, never $0
GOLD = yaml.safe_load((HERE / "gold.yaml").read_text())["items"]
N = len(GOLD)


def answer(body: dict[str, Any], worse: bool) -> str:
    prompt = body["messages"][-1]["content"]
    for item in GOLD:
        if item["question"] in prompt:
            if not item.get("answerable", True):
                return "I can't answer that from the available documentation."
            return "It is not documented anywhere [1]." if worse else f"{item['reference_answer']} [1]"
    return "I can't answer that from the available documentation."


def ragharness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).parent / "ragharness")
    env = {**os.environ, "TIDEPOOL_KEY": "sk-acceptance", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[ModelServer]:
    with ModelServer(answer, latency_ms=90, jitter_ms=40, fail_every=23, error_every=31, token_ms=3) as s:
        yield s


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, server: ModelServer) -> Path:
    """`ragharness init`, then the README's steps: own documents, own questions, own prompt, own model."""
    root = tmp_path_factory.mktemp("acceptance")
    made = ragharness("init", "tidepool", cwd=root)
    assert made.returncode == 0, made.stderr
    folder = root / "tidepool"
    shutil.rmtree(folder / "corpus")
    shutil.copytree(HERE / "corpus", folder / "corpus")
    shutil.copy(HERE / "gold.yaml", folder / "gold.yaml")
    shutil.copy(HERE / "prompts" / "tidepool-answer.v1.yaml", folder / "prompts")
    cfg = yaml.safe_load((folder / "harness.yaml").read_text())
    cfg["name"] = "tidepool"
    cfg["candidates"] = [
        {
            "name": "tidepool-bot",
            "provider": f"openai:{MODEL}",
            "prompt": {"id": "tidepool-answer", "version": 1},
            "concurrency": 8,
            "options": {"base_url": server.base_url, "api_key": "${TIDEPOOL_KEY}", "stream": True},
        }
    ]
    cfg["runner"] = {"max_attempts": 4, "base_delay_s": 0.01, "max_delay_s": 0.05}
    cfg["nightly"] = {"metrics": ["correctness"]}
    cfg["thresholds"] = [{"metric": "guardrail_pii_leaks", "max": 0}, {"metric": "retrieval_hit", "min": 0.5}]
    (folder / "harness.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    lint = ragharness("goldset", "lint", "gold.yaml", cwd=folder)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    return folder


def _runs(folder: Path) -> list[Path]:
    return sorted((p.parent for p in (folder / "runs").glob("*/run.json")), key=lambda p: p.name)


def test_two_nightlies_call_todays_model_and_the_worse_one_is_a_regression(project: Path, server: ModelServer) -> None:
    first = ragharness("nightly", "harness.yaml", cwd=project)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert len(server.latencies(MODEL)) == N, "every item answered by the model"
    server.worse = True
    second = ragharness("nightly", "harness.yaml", cwd=project)
    assert second.returncode == 5, second.stdout[-3000:] + second.stderr[-2000:]
    assert len(server.latencies(MODEL)) == 2 * N, "the second nightly asked today's model every question"
    run = _runs(project)[-1]
    summary = json.loads((run / "summary.json").read_text())
    cand = summary["candidates"][0]
    assert cand["cached"] == 0 and cand["errors"] == 0  # the 429s and 500s were retried, none is lost
    # the figures are true: no leak on a corpus that has none (its "secret" and "token" are words)
    assert summary["guardrail"]["pii_leaks"] == 0
    # unpriced shown as unpriced, in the terminal and the report
    assert "unpriced" in second.stdout and "unpriced" in (run / "report.html").read_text()
    # recorded latency is the model's: paired with what the server measured for the same request
    truth = server.by_id()
    gens = [json.loads(x) for x in (run / "generations.jsonl").read_text().splitlines()]
    excess = [g["latency_ms"] - truth[g["request_id"]] for g in gens if g["error"] is None]
    assert len(excess) == N and min(excess) >= -20.0  # see test_latency_truth.assert_is_the_models
    assert sorted(excess)[len(excess) // 2] <= 0.25 * 90 + 15.0, sorted(excess)
    # it streams, as a real server does: the time to first token is the server's too, and shown
    first_token = server.ttfts()
    ttft_excess = sorted(g["ttft_ms"] - first_token[g["request_id"]] for g in gens if g["error"] is None)
    assert ttft_excess[0] >= -20.0 and ttft_excess[len(ttft_excess) // 2] <= 0.25 * 90 + 15.0, ttft_excess
    assert cand["ttft_p50_ms"] is not None and "TTFT" in second.stdout


def test_a_wrong_source_id_is_an_error_with_and_without_ingest(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("runs"))
    gold = copy / "gold.yaml"
    gold.write_text(gold.read_text().replace("expected_sources: [limits]", "expected_sources: [limit]"))
    for args in (["run", "harness.yaml"], ["run", "harness.yaml", "--no-ingest"]):
        res = ragharness(*args, cwd=copy)
        assert res.returncode == 3, (args, res.stdout[-1500:], res.stderr[-1500:])
        assert "['limit'] not found in the ingested corpus" in res.stderr + res.stdout


def test_the_examples_canaries_are_still_caught() -> None:
    from ragharness.guardrails.leaks import LeakWatch

    canaries = Path(__file__).resolve().parents[2] / "goldsets/support/pii-canaries.txt"
    watch = LeakWatch.from_file(canaries)
    first = next(ln.strip() for ln in canaries.read_text().splitlines() if ln.strip() and not ln.startswith("#"))
    assert watch.hits(f"the answer quoted {first} verbatim") >= 1


def test_chromium_logs_in_to_serve_and_labels_an_item(project: Path, browser: Any) -> None:
    from serve_kit import free_port

    if not _runs(project):
        pytest.skip("needs the nightly runs of the first test")
    key = ragharness("keys", "create", "--role", "reviewer", "--name", "ana", "--store", "runs", cwd=project)
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip().splitlines()[-1]
    port = free_port()
    exe = str(Path(sys.executable).parent / "ragharness")
    proc = subprocess.Popen(
        [exe, "serve", "--store", "runs", "--port", str(port), "--cache-dir", str(project / ".serve-cache")],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                import time

                time.sleep(0.1)
        ctx = browser.new_context()
        page = ctx.new_page()
        seen: list[str] = []
        page.on("request", lambda r: seen.append(r.url))
        assert page.goto(url + "/").status == 401
        page.fill("#key", secret)
        page.click("#login")
        page.wait_for_selector("#runs")
        run_id = _runs(project)[-1].name
        page.goto(f"{url}/runs/{run_id}")
        page.click("#label-blind")
        page.wait_for_selector("#label-form")
        page.check("input[name=correctness_0][value=incorrect]")
        page.click("#save-label")
        page.wait_for_load_state("load")
        labels = (project / "runs" / run_id / "labels.jsonl").read_text().splitlines()
        assert len(labels) == 1 and json.loads(labels[0])["correctness"] == "incorrect"
        assert all(u.startswith(url) for u in seen), [u for u in seen if not u.startswith(url)]
        assert not re.search(r"sk-acceptance", (project / "runs" / run_id / "config.yaml").read_text())
        ctx.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)
