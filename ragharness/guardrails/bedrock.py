"""The guardrail policy run by Amazon Bedrock Guardrails through `ApplyGuardrail`.

One call per text and stage (the deployed guardrail applies all its policies at once); the assessments map to the
same outcome records as the local backend (entity types, topic names, policy phrases and scores, never the matched
value). Usage units are priced by policy kind; throttling and transient errors are retried with the runner's rules
(attempts, full-jitter exponential backoff); a call that still fails raises, and the chain records a failed check.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ragharness.core.errors import AWS_RATE_LIMIT_CODES, AWS_TRANSIENT_CODES, RagharnessError
from ragharness.core.retry import RetryPolicy
from ragharness.core.types import Finding, GuardrailStage
from ragharness.guardrails.base import GroundingSource, Verdict
from ragharness.guardrails.policy import PII_ENTITIES, GuardrailPolicy

RETRYABLE = AWS_RATE_LIMIT_CODES | AWS_TRANSIENT_CODES
TO_PRESIDIO = {bedrock: presidio for presidio, bedrock in PII_ENTITIES.values()}
UNIT_KINDS = {
    "contentPolicyUnits": "content",
    "topicPolicyUnits": "topic",
    "sensitiveInformationPolicyUnits": "pii",
    "contextualGroundingPolicyUnits": "grounding",
}


class GuardrailCallError(RagharnessError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"ApplyGuardrail failed: {code}: {message}")
        self.code = code


def make_client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    # botocore retries nothing itself: throttling is retried once, by the runner's rules, in BedrockGuardrail._apply
    return boto3.client("bedrock-runtime", region_name=region, config=Config(retries={"total_max_attempts": 1}))


class BedrockGuardrail:
    def __init__(
        self,
        policy: GuardrailPolicy,
        stage: GuardrailStage,
        client: Any = None,
        retry: RetryPolicy | None = None,
        sleep: Any = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if policy.bedrock is None:
            raise ValueError("backend bedrock needs `bedrock: {guardrail_id: ..., version: ...}`")
        self.policy = policy
        self.ref = policy.bedrock
        self.stage: GuardrailStage = stage
        self.name = "bedrock"
        self.client = client if client is not None else make_client(self.ref.region)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.rng = rng or random.Random(0)
        self.challenge_words = {w.match.lower() for w in policy.word_filters if w.action == "CHALLENGE"}
        self.words = {w.match.lower(): w.match for w in policy.word_filters}

    # --- the call -------------------------------------------------------------------------------------------
    def _apply(self, content: list[dict[str, Any]]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        source = "OUTPUT" if self.stage == "output" else "INPUT"
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                response: dict[str, Any] = self.client.apply_guardrail(
                    guardrailIdentifier=self.ref.guardrail_id,
                    guardrailVersion=self.ref.version,
                    source=source,
                    content=content,
                )
                return response
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
                if code not in RETRYABLE or attempt >= self.retry.max_attempts:
                    raise GuardrailCallError(code, str(exc.response.get("Error", {}).get("Message", ""))[:300]) from exc
                self.sleep(self.retry.delay(attempt, None, self.rng))
        raise AssertionError("unreachable")  # pragma: no cover

    def _cost(self, response: dict[str, Any]) -> float:
        usage = response.get("usage", {})
        prices = self.ref.price_per_1k_units
        return sum(int(usage.get(key, 0)) * prices.get(kind, 0.0) / 1000 for key, kind in UNIT_KINDS.items())

    # --- the seam -------------------------------------------------------------------------------------------
    def check(self, text: str) -> Verdict:
        if not text.strip():
            return Verdict(text=text)
        response = self._apply([{"text": {"text": text}}])
        return self._verdict(text, response)

    def check_grounded(self, text: str, source: GroundingSource) -> Verdict:
        if not text.strip():
            return Verdict(text=text)
        if self.policy.contextual_grounding is None or not source.passages:
            return self.check(text)
        content = [
            {"text": {"text": "\n\n".join(source.passages), "qualifiers": ["grounding_source"]}},
            {"text": {"text": source.question, "qualifiers": ["query"]}},
            {"text": {"text": text, "qualifiers": ["guard_content"]}},
        ]
        return self._verdict(text, self._apply(content))

    # --- assessments -> outcome -----------------------------------------------------------------------------
    def _effects(self, assessment: dict[str, Any]) -> list[tuple[Finding, str]]:
        """Each intervention as (finding, effect): block, challenge, refuse or redact. At the context stage only
        prompt attacks and sensitive information apply (a passage is not a request)."""
        out: list[tuple[Finding, str]] = []
        on_request = self.stage != "context"
        for topic in assessment.get("topicPolicy", {}).get("topics", []):
            if topic.get("action") == "BLOCKED" and on_request:
                out.append((Finding(entity=f"topic:{topic['name']}", count=1), "block"))
        for f in assessment.get("contentPolicy", {}).get("filters", []):
            if f.get("action") == "BLOCKED" and (f["type"] == "PROMPT_ATTACK" or on_request):
                entity = "prompt_attack" if f["type"] == "PROMPT_ATTACK" else f"content:{f['type'].lower()}"
                out.append((Finding(entity=entity, count=1, score=_confidence(f.get("confidence"))), "block"))
        words = assessment.get("wordPolicy", {})
        for w in [*words.get("customWords", []), *words.get("managedWordLists", [])] if on_request else []:
            phrase = self.words.get(" ".join(str(w.get("match", "")).split()).lower(), "custom")
            # Bedrock blocks every custom word (or only detects it, in detect mode): a policy CHALLENGE phrase is
            # answered with the challenge, as the app in front of the guardrail does.
            if phrase.lower() in self.challenge_words and (w.get("action") == "BLOCKED" or w.get("detected")):
                out.append((Finding(entity=f"word:{phrase}", count=1), "challenge"))
            elif w.get("action") == "BLOCKED":
                out.append((Finding(entity=f"word:{phrase}", count=1), "block"))
        sensitive = assessment.get("sensitiveInformationPolicy", {})
        entities = [(TO_PRESIDIO.get(e["type"], e["type"]), e) for e in sensitive.get("piiEntities", [])]
        regexes = [(f"regex:{r.get('name', 'custom')}", r) for r in sensitive.get("regexes", [])]
        for entity, hit in entities + regexes:
            if hit.get("action") in ("ANONYMIZED", "BLOCKED"):
                out.append((Finding(entity=entity, count=1), "block" if hit["action"] == "BLOCKED" else "redact"))
        for g in assessment.get("contextualGroundingPolicy", {}).get("filters", []):
            if g.get("action") == "BLOCKED":
                out.append((Finding(entity=g["type"].lower(), count=1, score=float(g.get("score", 0.0))), "refuse"))
        return out

    def _verdict(self, text: str, response: dict[str, Any]) -> Verdict:
        cost = self._cost(response)
        effects = [e for a in response.get("assessments", []) for e in self._effects(a)]
        kinds = {effect for _, effect in effects}
        findings = _merge([f for f, _ in effects])
        msgs = self.policy.messages
        cg = self.policy.contextual_grounding
        if "block" in kinds:
            message = {"context": "", "output": msgs.blocked_output}.get(self.stage, msgs.blocked_input)
            return Verdict(text=message, action="blocked", findings=findings, cost_usd=cost)
        if "refuse" in kinds and cg is not None:
            if cg.response_action == "FLAG":
                return Verdict(text=text, action="flagged", findings=findings, cost_usd=cost)
            return Verdict(text=cg.template, action="refused", findings=findings, cost_usd=cost)
        if "challenge" in kinds:
            return Verdict(text=msgs.challenge, action="challenged", findings=findings, cost_usd=cost)
        if "redact" in kinds:
            outputs = response.get("outputs", [])
            out = "".join(o.get("text", "") for o in outputs) if outputs else text
            return Verdict(text=out, action="redacted", findings=findings, cost_usd=cost)
        return Verdict(text=text, cost_usd=cost)


def _confidence(level: str | None) -> float | None:
    return {"NONE": 0.0, "LOW": 0.33, "MEDIUM": 0.66, "HIGH": 1.0}.get(str(level)) if level else None


def _merge(findings: list[Finding]) -> tuple[Finding, ...]:
    counts: dict[str, Finding] = {}
    for f in findings:
        prev = counts.get(f.entity)
        counts[f.entity] = f if prev is None else prev.model_copy(update={"count": prev.count + f.count})
    return tuple(counts[k] for k in sorted(counts))
