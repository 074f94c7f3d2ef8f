"""The guardrails room's settings: the input and output guardrails, the guardrail policy and the PII canaries."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ragharness.core.settings import Strict
from ragharness.guardrails.policy import GuardrailPolicy


class GuardrailConfig(Strict):
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)


class GuardrailsConfig(Strict):
    input: list[GuardrailConfig] = Field(default_factory=lambda: [GuardrailConfig(kind="pii")])
    output: list[GuardrailConfig] = Field(default_factory=lambda: [GuardrailConfig(kind="pii")])
    policy: GuardrailPolicy | None = Field(
        None,
        description="A guardrail policy (sensitive information, word filters, denied topics, prompt attacks, "
        "contextual grounding) applied to the question, each retrieved passage and each answer; local or Bedrock. "
        "A string is the path of a JSON or YAML file holding it.",
    )
    pii_canaries: str | None = Field(
        None,
        description="A file of known PII values (one per line) planted in or known to be in the corpus and "
        "questions: any of them found in a request, a judge prompt, a run file or the report is a leak (summary: "
        "guardrail.pii_leaks; gate: guardrail_pii_leaks max 0). Values the PII guardrails find are added in memory.",
    )
