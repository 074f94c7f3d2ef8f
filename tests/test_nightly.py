"""The nightly gate's verdicts and exit codes, JUnit and Markdown outputs, webhook, and lock."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import write
from ragharness.cli import ExitCode, app
from ragharness.pipeline.config import load_config
from ragharness.pipeline.nightly import nightly_lock

N = 30
CONFIG = """
name: nightly-test
data_dir: data
output_dir: runs
corpus: {path: corpus}
chunking: {chunk_size: 60, chunk_overlap: 8}
embedder: {kind: hashing}
retrieval: {mode: bm25, k: 2}
goldset: gold.yaml
guardrails: {input: [], output: []}
scorers: [correctness, refusal]
candidates:
  - {name: bot, provider: replay, options: {file: answers.jsonl}}
nightly: {metrics: [correctness], webhook: "${HOOK_URL}"}
"""


def project(root: Path) -> Path:
    write(root / "harness.yaml", CONFIG)
    for i in range(6):
        write(root / f"corpus/doc{i}.md", f"# Plan {i}\n\nPlan {i} includes {i * 5 + 5} GB of storage.\n")
    items = [
        {
            "id": f"q{i:02d}",
            "question": f"How much storage does plan {i % 6} include?",
            "intent": f"i{i % 3}",
            "reference_answer": f"Plan {i % 6} includes {(i % 6) * 5 + 5} GB.",
            "expected_sources": [f"doc{i % 6}"],
        }
        for i in range(N)
    ]
    write(root / "gold.yaml", yaml.safe_dump({"name": "nightly-test", "items": items}))
    return root / "harness.yaml"


def answers(root: Path, wrong: set[int], missing: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    lines = []
    for i in range(N):
        if i in missing:
            continue
        gb = (i % 6) * 5 + 5 + (100 if i in wrong else 0)
        lines.append(json.dumps({"item_id": f"q{i:02d}", "answer": f"Plan {i % 6} includes {gb} GB [1]."}))
    write(root / "answers.jsonl", "\n".join(lines) + "\n")


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                return None

            def do_POST(self) -> None:
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def nightly(cfg: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["nightly", str(cfg), *extra])
    return res.exit_code, res.output


def test_nightly_verdicts_reports_and_webhook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = Hook()
    monkeypatch.setenv("HOOK_URL", hook.url)
    cfg = project(tmp_path)

    answers(tmp_path, wrong=set())
    code, out = nightly(cfg, "--junit", str(tmp_path / "j1.xml"))
    assert code == ExitCode.OK, out
    assert "no baseline yet" in out and "verdict: pass" in out
    first = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())

    answers(tmp_path, wrong={3, 7})  # two answers wrong: a drop within noise
    code, out = nightly(cfg)
    assert code == ExitCode.OK, out
    assert "within noise" in out and f"baseline `{first.name}`" in out

    answers(tmp_path, wrong=set(range(0, N, 2)))  # half wrong: a significant regression
    code, out = nightly(cfg, "--junit", str(tmp_path / "j3.xml"), "--markdown", str(tmp_path / "m3.md"))
    assert code == ExitCode.REGRESSED, out
    suite = ET.parse(tmp_path / "j3.xml").getroot()
    failures = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failures == ["regression correctness bot"]
    assert int(suite.get("tests")) == 2 and int(suite.get("failures")) == 1
    md = (tmp_path / "m3.md").read_text()
    assert "FAIL (regressed)" in md and "| bot | correctness |" in md and "significant drop" in md

    answers(tmp_path, wrong=set(), missing={5})  # a call that fails for good
    code, out = nightly(cfg)
    assert code == ExitCode.INCOMPLETE, out

    cfg.write_text(CONFIG + "thresholds: [{metric: correctness, min: 0.99}]\n")
    answers(tmp_path, wrong={1})
    code, out = nightly(cfg)
    assert code == ExitCode.GATE_FAILED, out
    assert "verdict: below_threshold" in out

    assert len(hook.bodies) == 5 and "ragharness nightly" in hook.bodies[2]["text"]
    gates = [
        json.loads((p / "run.json").read_text())["gate"] for p in sorted((tmp_path / "runs").iterdir()) if p.is_dir()
    ]
    assert sorted(gates) == sorted(["pass", "pass", "regressed", "incomplete", "below_threshold"])
    hook.server.shutdown()
    hook.server.server_close()


def test_regression_baseline_is_the_last_passing_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/unused")
    cfg = project(tmp_path)
    cfg.write_text(CONFIG.replace(', webhook: "${HOOK_URL}"', ""))
    answers(tmp_path, wrong=set())
    assert nightly(cfg)[0] == ExitCode.OK
    answers(tmp_path, wrong=set(range(0, N, 2)))
    assert nightly(cfg)[0] == ExitCode.REGRESSED
    code, out = nightly(cfg)  # still regressed against the last *passing* run, not the regressed one
    assert code == ExitCode.REGRESSED, out


def test_lock_prevents_two_nightly_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/unused")
    cfg = project(tmp_path)
    answers(tmp_path, wrong=set())
    with nightly_lock(load_config(cfg).resolve("data") / "nightly.lock"):
        code, out = nightly(cfg)
    assert code == ExitCode.LOCKED and "another nightly run holds the lock" in out


def test_webhook_must_be_an_environment_reference(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    cfg.write_text(CONFIG.replace('"${HOOK_URL}"', "https://hooks.example/T0/secret"))
    code, out = nightly(cfg)
    assert code == ExitCode.CONFIG and "must be environment references" in out
    assert "hooks.example" not in out, "a rejected literal must never be echoed"


def test_every_nightly_calls_todays_model_and_catches_it_getting_worse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hosted model changes behind its name: each nightly asks it every question again (the response cache is
    written, never read by a new run), so the worse model of the second night is a regression (exit 5)."""
    import re

    from fake_openai import FakeOpenAI, Reply, completion

    monkeypatch.setenv("HOOK_URL", Hook().url)
    monkeypatch.setenv("OPENAI_KEY", "sk-test")
    cfg = project(tmp_path)
    worse = {"on": False}

    def responder(body: dict) -> Reply:
        plan = int(re.search(r"plan (\d)", body["messages"][-1]["content"]).group(1))  # type: ignore[union-attr]
        gb = plan * 5 + 5 + (100 if worse["on"] else 0)
        return Reply(body=completion(f"Plan {plan} includes {gb} GB [1]."))

    with FakeOpenAI() as server:
        server.responder = responder
        text = cfg.read_text().replace(
            "  - {name: bot, provider: replay, options: {file: answers.jsonl}}",
            f'  - {{name: bot, provider: "openai:gpt-4o-mini", options: {{base_url: "{server.base_url}", '
            'api_key: "${OPENAI_KEY}"}}',
        )
        cfg.write_text(text + "prices:\n  gpt-4o-mini: {input_per_1k: 0.15, output_per_1k: 0.6}\n")
        code, out = nightly(cfg)
        assert code == ExitCode.OK, out
        assert len(server.requests) == N
        worse["on"] = True
        code, out = nightly(cfg)
        assert len(server.requests) == 2 * N, "the second nightly must ask today's model every question"
        assert code == ExitCode.REGRESSED, out
        assert "from cache" not in out
        runs = sorted((tmp_path / "runs").glob("*/generations.jsonl"))
        assert not any(json.loads(line)["cached"] for f in runs for line in f.read_text().splitlines())
        # asked for, the cache answers: counted and shown
        res = CliRunner().invoke(app, ["run", str(cfg), "--cache"])
        assert len(server.requests) == 2 * N and f"{N}/{N} from cache" in res.output, res.output
