"""Bedrock Converse through botocore's Stubber, which validates every request against the real service model."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from ragharness.core.errors import ProviderError
from ragharness.core.retry import RetryPolicy
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderCallError, ProviderContext
from ragharness.generation.providers.bedrock import BedrockProvider, converse_request
from ragharness.generation.runner import Runner
from ragharness.testing.provider import BatchProviderContract, ProviderContract, candidate, make_request

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


def client() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def ok_response(text: str = "Refunds take 30 days [1].", request_id: str = "req-123") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 812, "outputTokens": 24, "totalTokens": 836},
        "metrics": {"latencyMs": 640},
        "ResponseMetadata": {"RequestId": request_id, "HTTPStatusCode": 200},
    }


def provider(stub_client: Any, **params: object) -> BedrockProvider:
    cand = candidate(f"bedrock:{MODEL}").model_copy(update={"params": params})
    return BedrockProvider(cand, ProviderContext(), client=stub_client)


class TestBedrockContract(BatchProviderContract, ProviderContract):
    @pytest.fixture
    def provider(self) -> Provider:
        c = client()
        stubber = Stubber(c)
        for _ in range(20):
            stubber.add_response("converse", ok_response())
        stubber.activate()
        return provider(c)

    @pytest.fixture
    def request_(self) -> GenerationRequest:
        return make_request(candidate(f"bedrock:{MODEL}"))


def test_request_shape_and_response_parsing() -> None:
    c = client()
    p = provider(c, temperature=0.2, max_tokens=300, top_p=0.9, stop="END")
    req = make_request(
        p_candidate := candidate(f"bedrock:{MODEL}").model_copy(
            update={"params": {"temperature": 0.2, "max_tokens": 300, "top_p": 0.9, "stop": "END"}}
        )
    )
    expected = {
        "modelId": MODEL,
        "system": [{"text": "Answer from passages."}],
        "messages": [{"role": "user", "content": [{"text": req.user}]}],
        "inferenceConfig": {"temperature": 0.2, "maxTokens": 300, "topP": 0.9, "stopSequences": ["END"]},
    }
    assert converse_request(MODEL, req) == expected
    with Stubber(c) as stubber:
        stubber.add_response("converse", ok_response(), expected)
        r = asyncio.run(p.generate(req))
        stubber.assert_no_pending_responses()
    assert (r.text, r.usage.input_tokens, r.usage.output_tokens) == ("Refunds take 30 days [1].", 812, 24)
    assert (r.latency_ms, r.request_id, r.stop_reason, r.model) == (640.0, "req-123", "end_turn", MODEL)
    assert p_candidate.provider == f"bedrock:{MODEL}"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ThrottlingException", "rate_limit"),
        ("ModelTimeoutException", "transient"),
        ("ServiceUnavailableException", "transient"),
        ("InternalServerException", "transient"),
        ("ValidationException", "fatal"),
        ("AccessDeniedException", "fatal"),
        ("ResourceNotFoundException", "fatal"),
    ],
)
def test_errors_are_classified(code: str, kind: str) -> None:
    c = client()
    p = provider(c)
    with Stubber(c) as stubber:
        stubber.add_client_error(
            "converse", service_error_code=code, service_message=f"{code} happened", http_status_code=400
        )
        with pytest.raises(ProviderCallError) as e:
            asyncio.run(p.generate(make_request(candidate(f"bedrock:{MODEL}"))))
    assert (e.value.kind, e.value.type) == (kind, code)
    assert f"{code} happened" in e.value.message


async def _no_sleep(seconds: float) -> None:
    return None


def test_runner_retries_throttling_and_records_every_attempt() -> None:
    c = client()
    p = provider(c)
    cand = candidate(f"bedrock:{MODEL}")
    with Stubber(c) as stubber:
        stubber.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
        stubber.add_client_error("converse", service_error_code="ModelTimeoutException", http_status_code=408)
        stubber.add_response("converse", ok_response())
        runner = Runner({"cand": p}, {"cand": 1}, sleep=_no_sleep)
        (g,) = asyncio.run(runner.run([make_request(cand)]))
    assert g.ok and g.attempts == 3 and g.request_id == "req-123"
    assert [a.error for a in g.attempt_log] == ["ThrottlingException", "ModelTimeoutException", ""]
    assert g.cost_usd == pytest.approx(812 / 1000 * 0.0008 + 24 / 1000 * 0.004)


def test_runner_records_fatal_access_denied_once() -> None:
    c = client()
    p = provider(c)
    with Stubber(c) as stubber:
        stubber.add_client_error("converse", service_error_code="AccessDeniedException", http_status_code=403)
        runner = Runner({"cand": p}, {"cand": 1}, policy=RetryPolicy(max_attempts=5), sleep=_no_sleep)
        (g,) = asyncio.run(runner.run([make_request(candidate(f"bedrock:{MODEL}"))]))
    assert not g.ok and g.error is not None and g.error.type == "AccessDeniedException" and g.attempts == 1


def test_configuration_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProviderError, match="needs a model"):
        BedrockProvider(candidate("bedrock"), ProviderContext())
    with pytest.raises(ProviderError, match=r"params \['frequency'\] are not Converse inference parameters"):
        BedrockProvider(
            candidate(f"bedrock:{MODEL}").model_copy(update={"params": {"frequency": 1}}), ProviderContext()
        )
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    p = BedrockProvider(candidate(f"bedrock:{MODEL}"), ProviderContext())
    with pytest.raises(ProviderError, match="no AWS region"):
        p.client()


def test_client_built_from_options_uses_standard_retries_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    cand = candidate(f"bedrock:{MODEL}", region="eu-west-1", read_timeout_s=30)
    c = BedrockProvider(cand, ProviderContext(concurrency=4)).client()
    assert c.meta.region_name == "eu-west-1"
    assert c.meta.config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert c.meta.config.read_timeout == 30
