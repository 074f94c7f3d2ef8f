"""Fault suite, credentials: an error body that echoes the key, literal secrets in headers or URLs, and candidate
options written once per run rather than into every request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, Reply, serve
from faultkit import cli, project
from ragharness.pipeline.config import load_config
from ragharness.pipeline.evaluation import execute_run

pytestmark = pytest.mark.faults

KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from serve()


def _echo_401(body: dict[str, Any], server: FakeOpenAI) -> Reply:
    auth = server.requests[-1]["headers"].get("Authorization", "")
    return Reply(
        status=401, body={"error": {"message": f"Incorrect API key provided. Header was `Authorization: {auth}`"}}
    )


def _every_artefact(root: Path) -> str:
    return "\n".join(f.read_bytes().decode("utf-8", "replace") for f in root.rglob("*") if f.is_file())


def test_error_bodies_echoing_the_key_are_scrubbed_everywhere(
    tmp_path: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", KEY)
    server.responder = lambda body: _echo_401(body, server)
    cfg_file = project(tmp_path, latency=1)
    text = cfg_file.read_text().split("candidates:")[0]
    text += f"""
scorers: [citation, groundedness, correctness, refusal, retrieval, judge]
judge:
  provider: openai:judge-model
  options: {{base_url: "{server.base_url}", api_key: "${{TEST_OPENAI_KEY}}"}}
  format_retries: 0
candidates:
  - name: gpt
    provider: openai:gpt-4o-mini
    options: {{base_url: "{server.base_url}", api_key: "${{TEST_OPENAI_KEY}}", headers: {{X-Title: ragharness}}}}
  - name: ext
    provider: extractive
"""
    cfg_file.write_text(text)
    result = execute_run(load_config(cfg_file), out_dir=tmp_path / "run", log=print)
    out = capsys.readouterr()
    assert result.summary.status == "incomplete"
    assert any("Authorization" in r["headers"] for r in server.requests), "the fake really received the key"
    gens = [json.loads(line) for line in (tmp_path / "run/generations.jsonl").read_text().splitlines()]
    errors = [g["error"]["message"] for g in gens if g["error"]]
    assert errors and all("[REDACTED_SECRET]" in m for m in errors), errors[:2]
    everything = _every_artefact(tmp_path / "run") + _every_artefact(tmp_path / "data") + out.out + out.err
    assert KEY not in everything
    assert "Bearer sk-" not in everything
    scores = (tmp_path / "run/scores.jsonl").read_text()
    assert "judge_error" in scores and KEY not in scores


def test_requests_carry_no_candidate_options_and_config_keeps_references(
    tmp_path: Path, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", KEY)
    cfg_file = project(tmp_path, latency=1)
    text = cfg_file.read_text().split("candidates:")[0]
    text += f"""
candidates:
  - name: gpt
    provider: openai:gpt-4o-mini
    options: {{base_url: "{server.base_url}", api_key: "${{TEST_OPENAI_KEY}}", headers: {{X-Title: ragharness}}}}
"""
    cfg_file.write_text(text)
    result = execute_run(load_config(cfg_file), out_dir=tmp_path / "run", log=lambda s: None)
    assert result.summary.status == "pass"
    requests = (tmp_path / "run/requests.jsonl").read_text()
    assert "base_url" not in requests and "api_key" not in requests and "X-Title" not in requests
    assert "${TEST_OPENAI_KEY}" in (tmp_path / "run/config.yaml").read_text()
    assert KEY not in _every_artefact(tmp_path)


@pytest.mark.parametrize(
    ("options", "where"),
    [
        (
            '{base_url: "http://127.0.0.1:9/v1", headers: {Authorization: "Bearer sk-literal-123456789012345"}}',
            "Authorization",
        ),
        ('{base_url: "http://127.0.0.1:9/v1", headers: {X-Api-Key: "literal-123456789012345"}}', "X-Api-Key"),
        ('{base_url: "https://admin:hunter2-literal@gateway.example/v1"}', "base_url"),
    ],
)
def test_literal_credentials_are_refused_and_never_echoed(tmp_path: Path, options: str, where: str) -> None:
    cfg_file = project(tmp_path, latency=1)
    text = cfg_file.read_text().split("candidates:")[0]
    text += f"candidates:\n  - name: gpt\n    provider: openai:gpt-4o-mini\n    options: {options}\n"
    cfg_file.write_text(text)
    res = cli("run", str(cfg_file), cwd=tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    assert where in res.stderr
    for literal in ("sk-literal-123456789012345", "literal-123456789012345", "hunter2-literal"):
        assert literal not in res.stdout + res.stderr
    assert not (tmp_path / "runs").exists()


def test_a_literal_webhook_url_is_refused_without_echo(tmp_path: Path) -> None:
    cfg_file = project(tmp_path, latency=1, extra="nightly: {webhook: 'https://hooks.example/T000/B000/XXXXSECRET'}")
    res = cli("nightly", str(cfg_file), cwd=tmp_path)
    assert res.returncode == 3 and "nightly.webhook" in res.stderr
    assert "XXXXSECRET" not in res.stdout + res.stderr


def test_scrub_covers_userinfo_tokens_and_resolved_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragharness.core.credentials import scrub
    from ragharness.core.settings import resolve_env

    monkeypatch.setenv("SOME_TOKEN", "plain-value-without-shape-42")
    resolve_env("${SOME_TOKEN}", what="test")
    text = (
        "failed https://bob:pa55word@db.internal/x with plain-value-without-shape-42, "
        "AKIAIOSFODNN7EXAMPLE, ghp_abcdefghijklmnopqrstuvwxyz0123456789, Authorization: Basic dXNlcjpwYXNz"
    )
    clean = scrub(text)
    for secret in (
        "pa55word",
        "plain-value-without-shape-42",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghij",
        "dXNlcjpwYXNz",
    ):
        assert secret not in clean, (secret, clean)
    assert "db.internal" in clean, "only the credential goes, not the context a person needs"
