"""Contract suite for the Provider seam: subclasses supply `provider` and `request_` fixtures; a provider with a
batch API inherits `BatchProviderContract` too."""

from __future__ import annotations

import asyncio
import json

from ragharness.core.types import Candidate, Passage, PromptRef
from ragharness.generation.batching import BatchCapable
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderResponse

PASSAGES = (
    Passage(
        number=1,
        chunk_id="refunds#0",
        doc_id="refunds",
        text="Annual plans can be refunded within 30 days of purchase. Monthly plans are not refundable.",
        title="Refunds",
    ),
    Passage(
        number=2,
        chunk_id="sso#0",
        doc_id="sso",
        text="Single sign-on requires the Enterprise plan.",
        title="SSO",
    ),
)


def make_request(
    candidate: Candidate, item_id: str = "refund", question: str = "How long do refunds take on annual plans?"
) -> GenerationRequest:
    return GenerationRequest(
        item_id=item_id,
        candidate=candidate,
        system="Answer from passages.",
        user=f"Question: {question}",
        question=question,
        passages=PASSAGES,
        request_hash=f"h:{candidate.provider}:{item_id}:{question}",
    )


def candidate(provider: str, **options: object) -> Candidate:
    return Candidate(name="cand", provider=provider, prompt=PromptRef(id="support-answer", version=1), options=options)


class ProviderContract:
    def test_is_a_provider(self, provider: Provider) -> None:
        assert isinstance(provider, Provider) and provider.id

    def test_answers_with_text_and_usage(self, provider: Provider, request_: GenerationRequest) -> None:
        response = asyncio.run(provider.generate(request_))
        assert isinstance(response, ProviderResponse)
        assert response.text.strip()
        assert response.usage.input_tokens >= 0 and response.usage.output_tokens >= 0

    def test_same_request_same_answer(self, provider: Provider, request_: GenerationRequest) -> None:
        a = asyncio.run(provider.generate(request_))
        b = asyncio.run(provider.generate(request_))
        assert a.text == b.text

    def test_concurrent_calls_are_safe(self, provider: Provider, request_: GenerationRequest) -> None:
        async def many() -> list[ProviderResponse]:
            return list(await asyncio.gather(*(provider.generate(request_) for _ in range(8))))

        assert len({r.text for r in asyncio.run(many())}) == 1


class BatchProviderContract:
    """The batch capability: a provider with a batch API (`BatchCapable`) inherits this too; one without opts out
    by not inheriting it.

        class TestMyProvider(BatchProviderContract, ProviderContract): ...
    """

    def test_a_batch_record_carries_the_same_prompt_as_the_online_call(
        self, provider: Provider, request_: GenerationRequest
    ) -> None:
        """The record body is JSON, deterministic, and holds the system and user text the online call sends,
        nothing else of the request (only redacted text is in a request)."""
        assert isinstance(provider, BatchCapable), f"{provider.id} inherits the batch contract without a batch API"
        body = provider.batch_body(request_)
        text = json.dumps(body)
        assert json.loads(text) == body == provider.batch_body(request_)
        assert json.dumps(request_.user)[1:-1] in text and json.dumps(request_.system)[1:-1] in text
        assert request_.request_hash not in text
