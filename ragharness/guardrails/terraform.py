"""The guardrail policy as an `aws_bedrock_guardrail` Terraform resource (JSON syntax), so what is evaluated is what
is deployed: `ragharness guardrail-terraform CONFIG --out infra/terraform/guardrail.tf.json` writes it, `--check`
fails when the committed file no longer matches the policy.

Mapping: PII entities and regexes -> sensitive_information_policy_config (REDACT -> ANONYMIZE); word filters ->
word_policy_config (every phrase; Bedrock blocks a custom word, and the harness maps a block on a CHALLENGE phrase to
a challenge, as the app in front of the guardrail would); denied topics -> topic_policy_config (DENY; a topic without
a definition uses its name); prompt attacks -> a PROMPT_ATTACK content filter (input HIGH, output NONE); contextual
grounding -> GROUNDING / RELEVANCE filters with the same thresholds. Not expressible in Bedrock and kept by the
harness: `ner_model` (Bedrock's NAME/ADDRESS need none), what to do with an injected passage (drop or flag), and the
challenge and grounding templates.
"""

from __future__ import annotations

import re
from typing import Any

from ragharness.guardrails.policy import PII_ENTITIES, GuardrailPolicy


def resource_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_").lower() or "guardrail"


def to_terraform(policy: GuardrailPolicy, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": re.sub(r"[^0-9A-Za-z_-]", "-", name)[:50],
        "description": f"ragharness guardrail policy for {name} (generated; edit the policy, not this file)",
        "blocked_input_messaging": policy.messages.blocked_input,
        "blocked_outputs_messaging": policy.messages.blocked_output,
    }
    sip = policy.sensitive_information_policy
    if sip is not None and (sip.pii_entities or sip.regexes):
        action = {"REDACT": "ANONYMIZE", "BLOCK": "BLOCK"}
        body["sensitive_information_policy_config"] = [
            {
                "pii_entities_config": [
                    {"type": PII_ENTITIES[e.type][1], "action": action[e.action or sip.action]}
                    for e in sip.pii_entities
                ],
                "regexes_config": [
                    {"name": r.name, "pattern": r.pattern, "action": action[r.action], "description": r.description}
                    for r in sip.regexes
                ],
            }
        ]
    if policy.word_filters:
        body["word_policy_config"] = [{"words_config": [{"text": w.match} for w in policy.word_filters]}]
    if policy.denied_topics:
        body["topic_policy_config"] = [
            {
                "topics_config": [
                    {
                        "name": t.name,
                        "definition": t.definition or t.name,
                        "examples": list(t.examples),
                        "type": "DENY",
                    }
                    for t in policy.denied_topics
                ]
            }
        ]
    if policy.prompt_attacks is not None and policy.prompt_attacks.enabled:
        body["content_policy_config"] = [
            {"filters_config": [{"type": "PROMPT_ATTACK", "input_strength": "HIGH", "output_strength": "NONE"}]}
        ]
    cg = policy.contextual_grounding
    if cg is not None:
        filters = [
            {"type": kind, "threshold": value}
            for kind, value in (("GROUNDING", cg.grounding_threshold), ("RELEVANCE", cg.relevance_threshold))
            if value is not None
        ]
        body["contextual_grounding_policy_config"] = [{"filters_config": filters}]
    key = resource_name(name)
    return {
        "resource": {"aws_bedrock_guardrail": {key: body}},
        "output": {
            "guardrail_id": {"value": f"${{aws_bedrock_guardrail.{key}.guardrail_id}}"},
            "guardrail_version": {"value": f"${{aws_bedrock_guardrail.{key}.version}}"},
        },
    }
