"""The guardrail policy: validation (bad input exits 3 naming the key), the local backend (real MiniLM heads) and the
Bedrock backend (botocore Stubber: every ApplyGuardrail request is validated against the real service model, and
every response below has the real response shape) pass one contract suite."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from ragharness.cli import app
from ragharness.core.retry import RetryPolicy
from ragharness.core.types import GuardrailStage
from ragharness.guardrails.base import Guardrail, GuardrailChain
from ragharness.guardrails.bedrock import BedrockGuardrail
from ragharness.guardrails.heads import HEADS, WEIGHTS_DIR, load_head, recorded_sums, sha256_file
from ragharness.guardrails.policy import GuardrailPolicy
from ragharness.pipeline.config import load_config
from ragharness.testing.guardrail import POLICY, GuardrailPolicyContract, PolicyCase

GUARDRAIL_ID = "gr-abc123xyz"


def policy(**extra: Any) -> GuardrailPolicy:
    return GuardrailPolicy.model_validate({**POLICY, **extra})


# --- the Bedrock backend --------------------------------------------------------------------------------------------
def usage(**units: int) -> dict[str, int]:
    base = {
        "topicPolicyUnits": 1,
        "contentPolicyUnits": 1,
        "wordPolicyUnits": 1,
        "sensitiveInformationPolicyUnits": 1,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
    }
    return {**base, **units}


def intervened(assessment: dict[str, Any], text: str = "Sorry.", **units: int) -> dict[str, Any]:
    return {
        "usage": usage(**units),
        "action": "GUARDRAIL_INTERVENED",
        "outputs": [{"text": text}],
        "assessments": [assessment],
    }


def passed(assessment: dict[str, Any] | None = None, **units: int) -> dict[str, Any]:
    return {"usage": usage(**units), "action": "NONE", "outputs": [], "assessments": [assessment or {}]}


PROMPT_ATTACK = {
    "contentPolicy": {
        "filters": [
            {
                "type": "PROMPT_ATTACK",
                "confidence": "HIGH",
                "filterStrength": "HIGH",
                "action": "BLOCKED",
                "detected": True,
            }
        ]
    }
}


def grounding(score: float, relevance: float, action: str) -> dict[str, Any]:
    return {
        "contextualGroundingPolicy": {
            "filters": [
                {"type": "GROUNDING", "threshold": 0.5, "score": score, "action": action, "detected": action != "NONE"},
                {
                    "type": "RELEVANCE",
                    "threshold": 0.5,
                    "score": relevance,
                    "action": action,
                    "detected": action != "NONE",
                },
            ]
        }
    }


ANSWERS: dict[str, dict[str, Any]] = {
    "clean": passed(),
    "email": intervened(
        {
            "sensitiveInformationPolicy": {
                "piiEntities": [
                    {"match": "jane.doe@example.com", "type": "EMAIL", "action": "ANONYMIZED", "detected": True}
                ],
                "regexes": [],
            }
        },
        text="I'm {EMAIL}, when are invoices sent?",
    ),
    "word_block": intervened(
        {
            "wordPolicy": {
                "customWords": [{"match": "credit card number", "action": "BLOCKED", "detected": True}],
                "managedWordLists": [],
            }
        }
    ),
    "word_challenge": passed(
        {
            "wordPolicy": {
                "customWords": [{"match": "share internal roadmap", "action": "NONE", "detected": True}],
                "managedWordLists": [],
            }
        }
    ),
    "topic": intervened(
        {
            "topicPolicy": {
                "topics": [{"name": "Malware creation", "type": "DENY", "action": "BLOCKED", "detected": True}]
            }
        }
    ),
    "jailbreak": intervened(PROMPT_ATTACK),
    "injection": intervened(PROMPT_ATTACK),
    "clean_passage": passed(),
    "grounded": passed(grounding(0.93, 0.88, "NONE"), contextualGroundingPolicyUnits=1),
    "ungrounded": intervened(grounding(0.02, 0.04, "BLOCKED"), contextualGroundingPolicyUnits=1),
}


def bedrock_client() -> Any:
    return boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")


def expected_content(case: PolicyCase) -> list[dict[str, Any]]:
    if case.passages:
        return [
            {"text": {"text": "\n\n".join(case.passages), "qualifiers": ["grounding_source"]}},
            {"text": {"text": case.question, "qualifiers": ["query"]}},
            {"text": {"text": case.text, "qualifiers": ["guard_content"]}},
        ]
    return [{"text": {"text": case.text}}]


class StubbedBedrock:
    def __init__(self) -> None:
        self.client = bedrock_client()
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.policy = policy(backend="bedrock", bedrock={"guardrail_id": GUARDRAIL_ID, "version": "3"})

    def guards(self, stage: GuardrailStage) -> list[Guardrail]:
        return [BedrockGuardrail(self.policy, stage, client=self.client)]

    def prepare(self, case: PolicyCase) -> None:
        self.stubber.add_response(
            "apply_guardrail",
            ANSWERS[case.name],
            expected_params={
                "guardrailIdentifier": GUARDRAIL_ID,
                "guardrailVersion": "3",
                "source": "OUTPUT" if case.stage == "output" else "INPUT",
                "content": expected_content(case),
            },
        )


class TestBedrockPolicy(GuardrailPolicyContract):
    @pytest.fixture
    def backend(self) -> Iterator[StubbedBedrock]:
        b = StubbedBedrock()
        yield b
        b.stubber.assert_no_pending_responses()


def test_bedrock_throttling_is_retried_with_the_runner_rules() -> None:
    b = StubbedBedrock()
    waits: list[float] = []
    guard = BedrockGuardrail(b.policy, "input", client=b.client, retry=RetryPolicy(max_attempts=3), sleep=waits.append)
    b.stubber.add_client_error("apply_guardrail", service_error_code="ThrottlingException", http_status_code=429)
    b.stubber.add_response("apply_guardrail", ANSWERS["topic"])
    verdict = guard.check("Write me ransomware.")
    assert verdict.action == "blocked" and len(waits) == 1 and 0 <= waits[0] <= 1.0
    assert verdict.cost_usd == pytest.approx(0.15 / 1000 * 2 + 0.10 / 1000)  # content + topic + pii units


def test_bedrock_failure_is_a_recorded_failed_check_that_fails_closed() -> None:
    b = StubbedBedrock()
    guard = BedrockGuardrail(
        b.policy, "input", client=b.client, retry=RetryPolicy(max_attempts=2), sleep=lambda s: None
    )
    b.stubber.add_client_error("apply_guardrail", service_error_code="AccessDeniedException", http_status_code=403)
    res = GuardrailChain([guard], "input").apply("How do refunds work?", where="question", item_id="q1")
    assert res.outcome == "failed" and res.stopped and res.block_message
    assert [(a.action, a.reason) for a in res.actions] == [("failed", "AccessDeniedException")]


def test_bedrock_never_receives_what_the_harness_redactor_finds(tmp_path: Path) -> None:
    """With the Bedrock backend the harness's own PII redaction runs first: a detected raw value never leaves."""
    from ragharness.pipeline.components import build_guardrails

    cfg_file = tmp_path / "harness.yaml"
    cfg_file.write_text(
        "name: t\ncorpus: {path: c}\ngoldset: g.yaml\ncandidates: [{name: a, provider: extractive}]\n"
        "guardrails:\n  policy:\n    backend: bedrock\n    bedrock: {guardrail_id: " + GUARDRAIL_ID + "}\n"
        "    wordFilters: [{match: credit card number}]\n"
    )
    client = bedrock_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "apply_guardrail",
            passed(),
            expected_params={
                "guardrailIdentifier": GUARDRAIL_ID,
                "guardrailVersion": "DRAFT",
                "source": "INPUT",
                "content": [{"text": {"text": "Mail [REDACTED_EMAIL_ADDRESS] about my refund"}}],
            },
        )
        guards = build_guardrails(load_config(cfg_file), client=client)
        res = guards.input.apply("Mail jane.doe@example.com about my refund", where="question", item_id="q")
        stubber.assert_no_pending_responses()
    assert res.text == "Mail [REDACTED_EMAIL_ADDRESS] about my refund"


# --- the local backend ----------------------------------------------------------------------------------------------
class LocalBackend:
    def __init__(self) -> None:
        from ragharness.guardrails.local import local_guardrails
        from ragharness.pipeline.components import guardrail_embedder

        self.by_stage = {
            s: list(local_guardrails(policy(), guardrail_embedder(), s)) for s in ("input", "context", "output")
        }

    def guards(self, stage: GuardrailStage) -> list[Guardrail]:
        return list(self.by_stage[stage])

    def prepare(self, case: PolicyCase) -> None:
        return None


@functools.cache
def local_backend() -> LocalBackend:
    return LocalBackend()


@pytest.mark.integration
class TestLocalPolicy(GuardrailPolicyContract):
    @pytest.fixture
    def backend(self) -> LocalBackend:
        return local_backend()


def test_shipped_weights_match_their_recorded_sha256() -> None:
    sums = recorded_sums()
    assert set(sums) == {f"{h}.json" for h in HEADS}
    for name, digest in sums.items():
        assert sha256_file(WEIGHTS_DIR / name) == digest
    head = load_head("prompt_attack_input")
    assert len(head.weights) == 384 and 0 < head.threshold < 1 and head.embedder.startswith("minilm:")
    assert len(load_head("prompt_attack_context").weights) == 768  # window and its offset from the text's mean


def test_changed_weights_are_refused(tmp_path: Path) -> None:
    from ragharness.core.errors import ConfigError

    for f in WEIGHTS_DIR.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    data = json.loads((tmp_path / "unsafe_request.json").read_text())
    data["bias"] += 1.0
    (tmp_path / "unsafe_request.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="sha256"):
        load_head("unsafe_request", tmp_path)


# --- bad policy input: exit 3 naming the key ------------------------------------------------------------------------
BASE = "name: t\ncorpus: {path: c}\ngoldset: g.yaml\ncandidates: [{name: a, provider: extractive}]\n"


@pytest.mark.parametrize(
    ("policy_yaml", "named"),
    [
        ("{sensitiveInformationPolicy: {piiEntities: [EMAIL, PASSPORT_NO]}}", "piiEntities[1]"),
        ("{deniedTopics: ['   ']}", "deniedTopics[0].name"),
        ("{deniedTopics: [{name: Weapons, examples: ['']}]}", "deniedTopics[0].examples"),
        ("{contextualGrounding: {relevanceThreshold: 1.2}}", "contextualGrounding.relevanceThreshold"),
        ("{contextualGrounding: {groundingThreshold: -0.1}}", "contextualGrounding.groundingThreshold"),
        ("{sensitiveInformationPolicy: {regexes: [{name: order, pattern: 'ORD-([0-9'}]}}", "regexes[0].pattern"),
        ("{wordFilters: [{match: ' '}]}", "wordFilters[0].match"),
        ("{sensitiveInformationPolicy: {piiEntities: [NAME]}}", "sensitiveInformationPolicy"),
        ("{sensitiveInformationPolicy: {piiEntities: [NAME], nerModel: my_custom_model}}", "nerModel"),
        ("{backend: bedrock}", "policy"),
        ("{backend: nemo}", "guardrails.policy.backend"),
        ("{promptAttacks: {contextAction: DELETE}}", "promptAttacks.contextAction"),
    ],
)
def test_bad_policy_exits_3_naming_the_key(tmp_path: Path, policy_yaml: str, named: str) -> None:
    cfg = tmp_path / "harness.yaml"
    cfg.write_text(BASE + f"guardrails:\n  policy: {policy_yaml}\n")
    result = CliRunner().invoke(app, ["run", str(cfg), "--dry-run"])
    assert result.exit_code == 3, result.output
    assert named in result.output and "guardrails.policy" in result.output


def test_policy_file_accepts_bedrock_console_json(tmp_path: Path) -> None:
    (tmp_path / "policy.json").write_text(
        json.dumps(
            {
                "sensitiveInformationPolicy": {"piiEntities": ["EMAIL", "SSN", "PHONE"], "action": "REDACT"},
                "wordFilters": [{"match": "credit card number", "action": "BLOCK"}],
                "contextualGrounding": {"relevanceThreshold": 0.68, "responseAction": "REFUSE_WITH_TEMPLATE"},
                "deniedTopics": ["Self-harm instructions", "Malware creation"],
            }
        )
    )
    cfg = tmp_path / "harness.yaml"
    cfg.write_text(BASE + "guardrails:\n  policy: policy.json\n")
    loaded = load_config(cfg).guardrails.policy
    assert loaded is not None and [t.name for t in loaded.denied_topics] == [
        "Self-harm instructions",
        "Malware creation",
    ]
    assert [e.type for e in loaded.sensitive_information_policy.pii_entities] == [  # type: ignore[union-attr]
        "EMAIL",
        "US_SOCIAL_SECURITY_NUMBER",
        "PHONE",
    ]
    (tmp_path / "policy.json").write_text('{"wordFilters": [{"match": "x", "action": "EXPLODE"}]}')
    result = CliRunner().invoke(app, ["run", str(cfg), "--dry-run"])
    assert result.exit_code == 3 and "policy.json" in result.output and "wordFilters[0].action" in result.output


def test_a_missing_spacy_model_is_a_config_error_not_a_fallback(tmp_path: Path) -> None:
    cfg = tmp_path / "harness.yaml"
    cfg.write_text(
        BASE
        + "guardrails:\n  policy: {sensitiveInformationPolicy: "
        + "{piiEntities: [EMAIL, NAME], nerModel: en_core_web_lg}}\n"
    )
    result = CliRunner().invoke(app, ["run", str(cfg), "--dry-run"])
    assert result.exit_code == 3, result.output
    assert "en_core_web_lg" in result.output and "not installed" in result.output


@pytest.mark.integration
def test_example_guardrail_suite(tmp_path: Path) -> None:
    """The example's suite through the example's chain (real MiniLM heads): the figures the README quotes."""
    root = Path(__file__).resolve().parents[1] / "goldsets" / "support"
    result = CliRunner().invoke(
        app,
        [
            "guardrail-eval",
            str(root / "harness.yaml"),
            "--suite",
            str(root / "guardrail-suite.yaml"),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "guardrail-eval.json").read_text())
    assert data["n"] == 42 and data["overall"]["correct"] >= 38
    assert data["overall"]["pii_left"] == 0 and data["by_category"]["pii"]["correct"] == 11
    assert data["by_category"]["look_alike"]["over_blocked"] == 0
    assert data["by_stage"]["context"]["under_blocked"] == 0


@pytest.mark.integration
def test_training_script_rebuilds_loadable_heads(tmp_path: Path) -> None:
    """`make train-guardrails` on a few rows per class (a smoke run, not a model): files, sums, loadable, and the
    same bytes when run twice (training is deterministic)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "training" / "guardrails" / "train.py"
    digests = []
    for n in (1, 2):
        out = tmp_path / f"w{n}"
        proc = subprocess.run(
            [sys.executable, str(script), "--limit", "6", "--folds", "2", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        sums = recorded_sums(out)
        assert set(sums) == {"prompt_attack_input.json", "prompt_attack_context.json", "unsafe_request.json"}
        for name in ("prompt_attack_input", "prompt_attack_context", "unsafe_request"):
            head = load_head(name, out)
            assert head.provenance["command"].startswith("make train-guardrails")
        digests.append(sums)
    assert digests[0] == digests[1]
