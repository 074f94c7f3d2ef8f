from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ragharness.core.errors import ProviderError
from ragharness.core.registry import PROVIDERS
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderCallError, ProviderContext
from ragharness.testing.provider import ProviderContract, candidate, make_request


def build(provider: str, base_dir: Path = Path("."), **options: object) -> Provider:
    kind = provider.split(":", maxsplit=1)[0]
    return PROVIDERS.create(kind, candidate(provider, **options), ProviderContext(base_dir=base_dir))


class TestExtractive(ProviderContract):
    @pytest.fixture
    def provider(self) -> Provider:
        return build("extractive")

    @pytest.fixture
    def request_(self, provider: Provider) -> GenerationRequest:
        return make_request(candidate("extractive"))

    def test_cites_the_best_sentence(self, provider: Provider, request_: GenerationRequest) -> None:
        text = asyncio.run(provider.generate(request_)).text
        assert text.startswith("Annual plans can be refunded within 30 days of purchase. [1]")

    def test_refuses_when_nothing_matches(self, provider: Provider) -> None:
        req = make_request(candidate("extractive"), question="What is the weather in Paris?")
        assert asyncio.run(provider.generate(req)).text == "I can't answer that from the available documentation."


class TestReplay(ProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> Provider:
        (tmp_path / "r.jsonl").write_text(
            json.dumps(
                {
                    "item_id": "refund",
                    "answer": "30 days [1].",
                    "usage": {"input_tokens": 9, "output_tokens": 3},
                    "latency_ms": 812.5,
                }
            )
            + "\n"
        )
        return build("replay", tmp_path, file="r.jsonl")

    @pytest.fixture
    def request_(self) -> GenerationRequest:
        return make_request(candidate("replay"))

    def test_recorded_usage_and_latency(self, provider: Provider, request_: GenerationRequest) -> None:
        r = asyncio.run(provider.generate(request_))
        assert (r.text, r.usage.input_tokens, r.latency_ms) == ("30 days [1].", 9, 812.5)

    def test_missing_item_is_a_fatal_call_error(self, provider: Provider) -> None:
        with pytest.raises(ProviderCallError) as e:
            asyncio.run(provider.generate(make_request(candidate("replay"), item_id="other")))
        assert e.value.kind == "fatal" and e.value.type == "ReplayMissing"


def test_replay_bad_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text('{"item_id": "a", "answer": "x"}\n{"item_id": "b"}\n')
    with pytest.raises(ProviderError, match=r"r.jsonl:2: invalid replay record"):
        build("replay", tmp_path, file="r.jsonl")


class TestMock(ProviderContract):
    @pytest.fixture
    def provider(self) -> Provider:
        return build("mock", latency_ms=1)

    @pytest.fixture
    def request_(self) -> GenerationRequest:
        return make_request(candidate("mock"))


def test_mock_throttles_and_fails_deterministically(tmp_path: Path) -> None:
    p = build("mock", tmp_path, throttle_rate=1.0, call_log="calls.jsonl")
    with pytest.raises(ProviderCallError) as e:
        asyncio.run(p.generate(make_request(candidate("mock"))))
    assert e.value.kind == "rate_limit"
    assert json.loads((tmp_path / "calls.jsonl").read_text()) == {
        "item_id": "refund",
        "candidate": "cand",
        "attempt": 0,
    }
    fatal = build("mock", error_rate=1.0)
    with pytest.raises(ProviderCallError) as e:
        asyncio.run(fatal.generate(make_request(candidate("mock"))))
    assert e.value.kind == "fatal"


def test_unknown_provider_option_is_named() -> None:
    with pytest.raises(ProviderError, match=r"candidate 'cand' \(mock\): options: latency: Extra inputs"):
        build("mock", latency=5)
