"""Nothing shown as free, fast or passing that is not: unpriced calls, why calls failed and how to resume, per-intent
figures without a retrieval scorer, the run's time in its report, and one rate-limit pool per account and model."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from conftest import write
from ragharness.cli import ExitCode, app
from ragharness.testing.model_server import ModelServer

cli = CliRunner()


def project(root: Path, url: str, *, concurrency: int = 4, scorers: str = "[correctness, refusal]") -> Path:
    write(root / "corpus/plans.md", "# Plans\n\nEvery plan includes 5 GB of storage.\n")
    items = [
        {
            "id": f"q{n}",
            "question": f"How much storage does plan {n} include?",
            "intent": "limits" if n % 2 else "billing",
            "reference_answer": "5 GB.",
            "expected_sources": ["plans"],
        }
        for n in range(8)
    ]
    write(root / "gold.yaml", yaml.safe_dump({"name": "truth", "items": items}))
    options = f'{{base_url: "{url}", api_key: "${{OPENAI_KEY}}"}}'
    cand = f'{{provider: "openai:house-model-7b", concurrency: {concurrency}, options: {options}'
    write(
        root / "harness.yaml",
        f"""
name: truth
data_dir: data
output_dir: runs
corpus: {{path: corpus}}
embedder: {{kind: hashing}}
retrieval: {{mode: bm25, k: 2}}
goldset: gold.yaml
guardrails: {{input: [], output: []}}
runner: {{max_attempts: 1}}
scorers: {scorers}
candidates:
  - {{name: v1, {cand[1:]}}}
  - {{name: v2, prompt: {{id: support-answer, version: 1}}, {cand[1:]}}}
""",
    )
    return root / "harness.yaml"


def answer(body: dict[str, Any], worse: bool) -> str:
    return "Every plan includes 5 GB of storage [1]."


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_KEY", "sk-test")


def test_unpriced_is_shown_as_unpriced_and_intents_without_a_retrieval_scorer(tmp_path: Path) -> None:
    with ModelServer(answer, latency_ms=5, jitter_ms=2) as server:
        res = cli.invoke(app, ["run", str(project(tmp_path, server.base_url))])
    assert res.exit_code == 0, res.output
    table = res.output.split("correctness per intent")[0]
    rows = [line for line in table.splitlines() if line.strip().startswith(("│ v1", "│ v2"))]
    assert rows and all("unpriced" in r and "0.0000" not in r for r in rows), rows
    intents = res.output.split("correctness per intent")[1]
    assert "billing" in intents and "limits" in intents  # shown without a retrieval scorer
    report = next((tmp_path / "runs").glob("*/report.html")).read_text()
    assert "unpriced" in report and ">0.0000<" not in report
    seconds = re.search(r"· ([\d.]+) s ·", report)
    assert seconds and float(seconds.group(1)) > 0, "the report says how long the run took"


def test_an_endpoint_that_is_down_says_why_and_how_to_resume(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = cli.invoke(app, ["run", str(project(tmp_path, f"http://127.0.0.1:{port}/v1"))])
    assert res.exit_code == ExitCode.INCOMPLETE, res.output
    assert "ConnectError" in res.output and "--resume" in res.output


def test_two_prompt_versions_of_one_model_share_its_limits(tmp_path: Path) -> None:
    with ModelServer(answer, latency_ms=40, jitter_ms=5) as server:
        res = cli.invoke(app, ["run", str(project(tmp_path, server.base_url, concurrency=2))])
        assert res.exit_code == 0, res.output
        assert server.requests() == 16 and server.max_in_flight <= 2, server.max_in_flight


def test_a_wrong_source_id_is_an_error_with_and_without_ingest_and_in_lint(tmp_path: Path) -> None:
    with ModelServer(answer, latency_ms=5, jitter_ms=2) as server:
        cfg = project(tmp_path, server.base_url)
        res = cli.invoke(app, ["goldset", "lint", str(tmp_path / "gold.yaml"), "--config", str(cfg)])
        assert res.exit_code == 3 and "ingest" in res.output  # nothing ingested yet: says what to do
        assert cli.invoke(app, ["ingest", str(cfg)]).exit_code == 0
        gold = tmp_path / "gold.yaml"
        gold.write_text(gold.read_text().replace("- plans", "- plan"))
        for args in (
            ["run", str(cfg)],
            ["run", str(cfg), "--no-ingest"],
            ["goldset", "lint", str(gold), "--config", str(cfg)],
        ):
            res = cli.invoke(app, args)
            assert res.exit_code == 3, (args, res.output)
            assert "['plan'] not found in the ingested corpus" in res.output, (args, res.output)
        assert cli.invoke(app, ["goldset", "lint", str(gold)]).exit_code == 0  # without a config: the file alone


def test_retrieval_eval_embeds_redacted_questions_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ragharness.retrieval.embedders import HashingEmbedder

    seen: list[str] = []
    real = HashingEmbedder.embed

    def spy(self: HashingEmbedder, texts: Any) -> Any:
        seen.extend(texts)
        return real(self, texts)

    monkeypatch.setattr(HashingEmbedder, "embed", spy)
    cfg = project(tmp_path, "http://127.0.0.1:9/v1")
    cfg.write_text(cfg.read_text().replace("guardrails: {input: [], output: []}", "guardrails: {input: [{kind: pii}]}"))
    gold = tmp_path / "gold.yaml"
    gold.write_text(gold.read_text().replace("How much storage", "I am jane.roe@acme-billing.io, how much storage"))
    res = cli.invoke(app, ["retrieval-eval", str(cfg)])
    assert res.exit_code == 0, res.output
    assert seen and not any("jane.roe@acme-billing.io" in t for t in seen)
    assert any("[REDACTED_EMAIL_ADDRESS]" in t for t in seen)
