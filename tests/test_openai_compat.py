"""The OpenAI-compatible provider against a real local HTTP server (no network beyond 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fake_openai import FakeOpenAI, Reply, completion, serve
from ragharness.core.errors import ConfigError, ProviderError
from ragharness.core.retry import RetryPolicy
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderCallError, ProviderContext
from ragharness.generation.providers.openai_compat import OpenAIProvider, retry_after_seconds
from ragharness.generation.runner import Runner
from ragharness.testing.provider import BatchProviderContract, ProviderContract, candidate, make_request


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    yield from serve()


def make(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, timeout_s: float = 10.0, **params: object
) -> OpenAIProvider:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-secret")
    cand = candidate(
        "openai:gpt-4o-mini",
        base_url=server.base_url,
        api_key="${TEST_OPENAI_KEY}",
        headers={"X-Title": "ragharness"},
        timeout_s=timeout_s,
    )
    return OpenAIProvider(cand.model_copy(update={"params": params}), ProviderContext())


class TestOpenAIContract(BatchProviderContract, ProviderContract):
    @pytest.fixture
    def provider(self, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Provider:
        return make(server, monkeypatch)

    @pytest.fixture
    def request_(self) -> GenerationRequest:
        return make_request(candidate("openai:gpt-4o-mini"))


def generate(p: OpenAIProvider, req: GenerationRequest | None = None):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await p.generate(req or make_request(candidate("openai:gpt-4o-mini")))
        finally:
            await p.aclose()

    return asyncio.run(go())


def test_request_body_headers_and_usage(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    p = make(server, monkeypatch, temperature=0.1, max_tokens=200)
    req = make_request(
        candidate("openai:gpt-4o-mini").model_copy(update={"params": {"temperature": 0.1, "max_tokens": 200}})
    )
    r = generate(p, req)
    (sent,) = server.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test-secret"
    assert sent["headers"]["X-Title"] == "ragharness"
    assert sent["json"] == {
        "model": "gpt-4o-mini",
        "temperature": 0.1,
        "max_tokens": 200,
        "messages": [{"role": "system", "content": "Answer from passages."}, {"role": "user", "content": req.user}],
    }
    assert (r.text, r.usage.input_tokens, r.usage.output_tokens) == ("Refunds take 30 days [1].", 900, 30)
    assert (r.request_id, r.stop_reason) == ("chatcmpl-abc123", "stop")


@pytest.mark.parametrize(
    ("reply", "kind", "type_"),
    [
        (
            Reply(status=429, body={"error": {"message": "Rate limit reached"}}, headers={"Retry-After": "7"}),
            "rate_limit",
            "RateLimited",
        ),
        (Reply(status=500, body={"error": {"message": "boom"}}), "transient", "HTTP500"),
        (Reply(status=503, body="upstream down"), "transient", "HTTP503"),
        (Reply(status=400, body={"error": {"message": "bad model"}}), "fatal", "HTTP400"),
        (Reply(status=401, body={"error": {"message": "bad key"}}), "fatal", "HTTP401"),
        (Reply(status=200, body="<html>not json</html>"), "transient", "MalformedResponse"),
        (Reply(status=200, body={"choices": []}), "transient", "MalformedResponse"),
        (Reply(status=200, body={"choices": [{"message": {"content": None}}]}), "transient", "MalformedResponse"),
        (Reply(body=completion("late"), delay_s=1.5), "transient", "Timeout"),
    ],
)
def test_errors_are_classified(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, reply: Reply, kind: str, type_: str
) -> None:
    server.script.append(reply)
    with pytest.raises(ProviderCallError) as e:
        generate(make(server, monkeypatch, timeout_s=0.5 if reply.delay_s else 10.0))
    assert (e.value.kind, e.value.type) == (kind, type_)
    if type_ == "RateLimited":
        assert e.value.retry_after == 7.0 and "Rate limit reached" in e.value.message


def test_retry_after_forms() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_runner_honours_retry_after_then_succeeds(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    server.script += [
        Reply(status=429, body={"error": {"message": "slow"}}, headers={"Retry-After": "3"}),
        Reply(status=502, body="bad gateway"),
    ]
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    p = make(server, monkeypatch)
    runner = Runner({"cand": p}, {"cand": 2}, sleep=sleep, policy=RetryPolicy(base_delay_s=0.01))
    (g,) = asyncio.run(runner.run([make_request(candidate("openai:gpt-4o-mini"))]))
    assert g.ok and g.attempts == 3 and waits[0] >= 3.0
    assert [a.error for a in g.attempt_log] == ["RateLimited", "HTTP502", ""]
    assert g.cost_usd == pytest.approx(900 / 1000 * 0.00015 + 30 / 1000 * 0.0006)
    assert "sk-test-secret" not in g.model_dump_json()


def test_api_key_must_be_in_the_environment(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISSING_KEY", raising=False)
    cand = candidate("openai:gpt-4o-mini", base_url=server.base_url, api_key="${MISSING_KEY}")
    with pytest.raises(ConfigError, match="MISSING_KEY is not set"):
        OpenAIProvider(cand, ProviderContext())
    with pytest.raises(ProviderError, match="needs a model"):
        OpenAIProvider(candidate("openai"), ProviderContext())


def streaming(url: str, monkeypatch: pytest.MonkeyPatch) -> OpenAIProvider:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-secret")
    cand = candidate("openai:gpt-4o-mini", base_url=url, api_key="${TEST_OPENAI_KEY}", stream=True)
    return OpenAIProvider(cand, ProviderContext())


def test_a_streamed_answer_is_assembled_with_its_time_to_first_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragharness.testing.model_server import ModelServer

    with ModelServer(latency_ms=80, jitter_ms=0, token_ms=30) as server:
        response = generate(streaming(server.base_url, monkeypatch))
        truth = server.ttfts()
    assert response.text == "See the passages [1]."
    assert response.usage.input_tokens == 900 and response.usage.output_tokens == 4
    assert response.stop_reason == "stop" and response.request_id in truth
    assert response.ttft_ms is not None and 80 <= response.ttft_ms < 80 + 3 * 30  # before the last three words


def test_a_streamed_429_is_a_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragharness.testing.model_server import ModelServer

    with ModelServer(latency_ms=0, jitter_ms=0, fail_every=1) as server, pytest.raises(ProviderCallError) as info:
        generate(streaming(server.base_url, monkeypatch))
    assert info.value.kind == "rate_limit" and info.value.retry_after == 0.0


@pytest.mark.parametrize(
    ("lines", "type_"),
    [
        (['data: {"id": "x", "choices": [{"delta": {"content": "half"}}]}'], "IncompleteStream"),
        (["data: {not json"], "MalformedResponse"),
        (['data: {"error": {"message": "overloaded"}}'], "StreamError"),
    ],
)
def test_a_broken_stream_is_a_transient_failure(lines: list[str], type_: str) -> None:
    from ragharness.generation.providers.openai_compat import SseChat

    chat = SseChat("m")
    with pytest.raises(ProviderCallError) as info:
        for line in lines:
            chat.feed(line)
        chat.response(0.0)
    assert info.value.type == type_ and info.value.retryable


def test_stream_comments_and_events_without_text_are_no_first_token() -> None:
    from ragharness.generation.providers.openai_compat import SseChat

    chat = SseChat("m")
    assert not chat.feed(": keep-alive")
    assert not chat.feed("event: message")
    assert not chat.feed('data: {"id": "r1", "choices": [{"delta": {"role": "assistant"}}]}')
    assert chat.feed('data: {"choices": [{"delta": {"content": "Hi"}}]}')
    assert not chat.feed('data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}')
    assert not chat.feed("data: [DONE]")
    out = chat.response(0.0)
    assert (out.text, out.request_id, out.stop_reason, out.usage.output_tokens) == ("Hi", "r1", "stop", 0)
