"""The fake judge (ragharness.testing.judge) served by the fake OpenAI server, shared by the judge, batch,
scoring-seam, guardrail and integration tests."""

from __future__ import annotations

import json
from typing import Any

from fake_openai import Reply, completion
from ragharness.testing.judge import FakeJudge

JUDGE_CONFIG = """
judge:
  provider: openai:judge-model
  options: {{base_url: "{base_url}", api_key: "${{JUDGE_KEY}}"}}
  concurrency: 2
"""

ANSWER = "Alpha annual plans can be refunded within 30 days of purchase [1]."
_JUDGE = FakeJudge()


def claims_responder(body: dict[str, Any]) -> Reply:
    """A judge that returns one claim per answer sentence, supported by passage 1 (deterministic)."""
    return Reply(body=completion(json.dumps(_JUDGE(body["messages"])), prompt_tokens=700, completion_tokens=90))


def responder(body: dict[str, Any]) -> Reply:
    """Candidates get ANSWER; the judge (its prompt has <answer>) gets claims JSON."""
    if "<answer>" in body["messages"][-1]["content"]:
        return claims_responder(body)
    return Reply(body=completion(ANSWER, prompt_tokens=400, completion_tokens=20))
