"""Runner features for production: response cache, prices, budget, rate limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ragharness.core.types import Candidate, Usage
from ragharness.generation.cache import ResponseCache
from ragharness.generation.costs import Budget, Price, PriceTable, estimate_usage, model_key
from ragharness.generation.providers.base import GenerationRequest, ProviderCallError, ProviderResponse
from ragharness.generation.runner import RateLimits, Runner, TokenBucket
from ragharness.testing.provider import candidate, make_request


class Counting:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.id = "openai:gpt-4o-mini"
        self.cacheable = True

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise ProviderCallError("fatal", "HTTP400", "bad")
        return ProviderResponse(
            text=f"answer for {request.item_id} [1]",
            usage=Usage(input_tokens=1000, output_tokens=100),
            request_id=f"r{self.calls}",
        )


def cand() -> Candidate:
    return candidate("openai:gpt-4o-mini")


def test_cache_serves_unchanged_requests_when_reused_and_never_caches_errors(tmp_path: Path) -> None:
    prov = Counting(fail_first=1)
    reqs = [make_request(cand(), item_id=f"i{i}") for i in range(2)]
    stats = []

    def run(reuse: bool) -> list:
        cache = ResponseCache(tmp_path / "c.sqlite")
        try:
            runner = Runner({"cand": prov}, {"cand": 1}, cache=cache, reuse_cache=reuse)
            out = asyncio.run(runner.run(reqs))
            stats.append(runner.stats)
            return out
        finally:
            cache.close()

    first = run(reuse=False)
    assert [g.ok for g in first] == [False, True] and prov.calls == 2
    again = run(reuse=False)
    assert not any(g.cached for g in again) and prov.calls == 4  # recorded, not read: every model is called
    second = run(reuse=True)  # both come from the cache now (the first call's error was never cached)
    assert [g.cached for g in second] == [True, True] and prov.calls == 4
    # a cached answer carries the latency and cost of the call that produced it; the run's own figures leave it out
    assert second[1].cost_usd == pytest.approx(again[1].cost_usd) and second[1].usage.input_tokens == 1000
    assert second[1].latency_ms == pytest.approx(again[1].latency_ms) and second[1].attempts == 0
    assert stats[-1].cost_usd == 0 and stats[-1].input_tokens == 0 and stats[-1].cached == 2
    assert second[0].cost_usd == pytest.approx(1000 / 1000 * 0.00015 + 100 / 1000 * 0.0006)


def test_cache_key_changes_with_prompt_or_params(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k1", "p", ProviderResponse(text="x"))
    assert cache.get("k1") is not None and cache.get("k2") is None
    cache.close()


def test_budget_stops_new_calls_cleanly() -> None:
    prov = Counting()
    reqs = [make_request(cand(), item_id=f"i{i}") for i in range(10)]
    # each call costs 0.00021; estimates (max_tokens unset -> 512 out) are ~0.00032
    runner = Runner({"cand": prov}, {"cand": 1}, budget=Budget(0.0012))
    gens = asyncio.run(runner.run(reqs))
    assert 1 <= len(gens) < 10 and prov.calls == len(gens)
    assert runner.budget.exhausted and runner.stats.budget_refused == 10 - len(gens)
    assert runner.budget.spent <= 0.0012


def test_prices_and_model_keys() -> None:
    assert (
        model_key("bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0") == "anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    assert model_key("openai:gpt-4o") == "gpt-4o"
    table = PriceTable({"my-model": Price(input_per_1k=1.0, output_per_1k=2.0)})
    assert table.cost("openai:my-model", Usage(input_tokens=500, output_tokens=250)) == pytest.approx(1.0)
    assert table.cost("openai:unknown-model", Usage(input_tokens=1)) is None
    assert table.cost("extractive", Usage(input_tokens=10**6)) == 0
    assert estimate_usage("abcd" * 10, "x" * 40, 100) == Usage(input_tokens=20, output_tokens=100)


def test_unpriced_models_are_flagged_not_free() -> None:
    prov = Counting()
    prov.id = "openai:some-new-model"
    (g,) = asyncio.run(Runner({"cand": prov}, {"cand": 1}).run([make_request(cand())]))
    assert g.unpriced and g.cost_usd == 0


def test_token_bucket_waits_for_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(120, clock=lambda: now[0])  # 2 per second, burst 2

    async def take(n: int) -> None:
        for _ in range(n):
            await bucket.take(1, sleep)

    asyncio.run(take(6))
    assert sum(slept) == pytest.approx(2.0)


def test_rpm_limit_spaces_calls() -> None:
    prov = Counting()
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        await asyncio.sleep(s)

    # 600 rpm = 10/s with a burst of 10: the 5 calls beyond the burst need ~0.5 s in all.
    runner = Runner({"cand": prov}, {"cand": 8}, rate_limits={"cand": RateLimits(rpm=600)}, sleep=sleep)
    started = time.perf_counter()
    asyncio.run(runner.run([make_request(cand(), item_id=f"i{i}") for i in range(15)]))
    assert prov.calls == 15
    assert slept and time.perf_counter() - started >= 0.45  # 5 calls beyond the burst at 10/s: >= 0.5 s
