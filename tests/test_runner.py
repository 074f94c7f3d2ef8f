from __future__ import annotations

import asyncio

from ragharness.core.retry import RetryPolicy
from ragharness.core.types import Candidate, Usage
from ragharness.generation.providers.base import GenerationRequest, ProviderCallError, ProviderResponse
from ragharness.generation.runner import Runner
from ragharness.guardrails.base import GuardrailChain
from ragharness.guardrails.pii import PiiRedactor
from ragharness.testing.provider import candidate, make_request


class Scripted:
    """Raises the scripted errors in turn, then answers."""

    def __init__(self, errors: list[Exception], text: str = "Answer [1].") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.text = text
        self.id = "scripted"

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ProviderResponse(text=self.text, usage=Usage(input_tokens=10, output_tokens=2))


def requests_for(cand: Candidate, n: int) -> list[GenerationRequest]:
    return [make_request(cand, item_id=f"i{i}") for i in range(n)]


async def no_sleep(seconds: float) -> None:
    waits.append(seconds)


waits: list[float] = []


def test_rate_limits_are_retried_with_backoff_and_retry_after() -> None:
    waits.clear()
    prov = Scripted(
        [
            ProviderCallError("rate_limit", "ThrottlingException", "slow", retry_after=2.5),
            ProviderCallError("transient", "ServiceUnavailable", "503"),
        ]
    )
    cand = candidate("scripted")
    runner = Runner({"cand": prov}, {"cand": 1}, sleep=no_sleep)
    (g,) = asyncio.run(runner.run(requests_for(cand, 1)))
    assert g.ok and g.attempts == 3 and prov.calls == 3 and runner.retries == 2
    assert waits[0] >= 2.5
    assert g.citations == (1,)


def test_fatal_errors_are_not_retried_and_recorded() -> None:
    prov = Scripted([ProviderCallError("fatal", "ValidationException", "bad request")])
    runner = Runner({"cand": prov}, {"cand": 1}, sleep=no_sleep)
    (g,) = asyncio.run(runner.run(requests_for(candidate("scripted"), 1)))
    assert not g.ok and g.error is not None and g.error.type == "ValidationException" and g.attempts == 1


def test_retries_give_up_after_max_attempts() -> None:
    prov = Scripted([ProviderCallError("rate_limit", "Throttling", "x")] * 10)
    runner = Runner({"cand": prov}, {"cand": 1}, policy=RetryPolicy(max_attempts=3), sleep=no_sleep)
    (g,) = asyncio.run(runner.run(requests_for(candidate("scripted"), 1)))
    assert g.error is not None and g.error.retryable and g.attempts == 3


def test_a_crashing_provider_never_stops_the_others() -> None:
    bad = Scripted([RuntimeError("provider bug")] * 10)
    good = Scripted([])
    a, b = (
        Candidate(**{**candidate("x").model_dump(), "name": "bad"}),
        Candidate(**{**candidate("x").model_dump(), "name": "good"}),
    )
    runner = Runner({"bad": bad, "good": good}, {"bad": 2, "good": 2}, sleep=no_sleep)
    gens = asyncio.run(runner.run(requests_for(a, 5) + requests_for(b, 5)))
    assert len(gens) == 10
    assert all(not g.ok and g.error and g.error.type == "RuntimeError" for g in gens if g.candidate == "bad")
    assert all(g.ok for g in gens if g.candidate == "good")
    assert bad.calls == 5


def test_timeouts_are_retryable_errors() -> None:
    class Slow:
        id = "slow"

        async def generate(self, request: GenerationRequest) -> ProviderResponse:
            await asyncio.sleep(5)
            return ProviderResponse(text="late")

    runner = Runner({"cand": Slow()}, {"cand": 1}, policy=RetryPolicy(max_attempts=2, timeout_s=0.01), sleep=no_sleep)
    (g,) = asyncio.run(runner.run(requests_for(candidate("slow"), 1)))
    assert g.error is not None and g.error.type == "Timeout" and g.attempts == 2


def test_output_guardrails_redact_before_anything_is_recorded() -> None:
    seen = []
    prov = Scripted([], text="Write to jane.doe@example.com [1].")
    runner = Runner(
        {"cand": prov},
        {"cand": 1},
        output_guardrails=GuardrailChain([PiiRedactor()], "output"),
        on_done=lambda g, acts: seen.append((g, acts)),
    )
    (g,) = asyncio.run(runner.run(requests_for(candidate("scripted"), 1)))
    assert "jane.doe" not in g.text and "[REDACTED_EMAIL_ADDRESS]" in g.text
    assert seen[0][1][0].where == "answer:cand"


def test_concurrency_limit_is_respected() -> None:
    active = peak = 0

    class Counting:
        id = "c"

        async def generate(self, request: GenerationRequest) -> ProviderResponse:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.005)
            active -= 1
            return ProviderResponse(text="ok")

    runner = Runner({"cand": Counting()}, {"cand": 3})
    asyncio.run(runner.run(requests_for(candidate("c"), 20)))
    assert peak == 3
