"""Concurrent generation: a semaphore per candidate, typed retries with backoff and jitter, every attempt counted.

A failure that survives the retries becomes a Generation with its error. One candidate failing never stops the
others: each call is isolated.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel, Field

from ragharness.eval.providers.base import GenerationRequest, Provider, ProviderCallError, ProviderResponse
from ragharness.eval.text import parse_citations
from ragharness.guardrails.base import GuardrailChain
from ragharness.types import ErrorInfo, Generation, GuardrailAction


class RetryPolicy(BaseModel):
    max_attempts: int = Field(5, ge=1)
    base_delay_s: float = Field(0.5, ge=0)
    max_delay_s: float = Field(30.0, ge=0)
    timeout_s: float = Field(120.0, gt=0, description="Per-call timeout.")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full-jitter exponential backoff; a server's retry-after is a floor."""
        backoff = rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        return max(backoff, retry_after or 0.0)


Sleep = Callable[[float], Awaitable[None]]


class Runner:
    def __init__(
        self,
        providers: dict[str, Provider],
        concurrency: dict[str, int],
        *,
        policy: RetryPolicy | None = None,
        output_guardrails: GuardrailChain | None = None,
        on_done: Callable[[Generation, list[GuardrailAction]], None] | None = None,
        sleep: Sleep = asyncio.sleep,
        seed: int = 0,
    ) -> None:
        self.providers = providers
        self.concurrency = concurrency
        self.policy = policy or RetryPolicy()
        self.output_guardrails = output_guardrails
        self.on_done = on_done
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.retries = 0

    async def _call(
        self, provider: Provider, request: GenerationRequest
    ) -> tuple[ProviderResponse | None, ErrorInfo | None, int, float]:
        attempt = 0
        started = time.perf_counter()
        while True:
            attempt += 1
            try:
                response = await asyncio.wait_for(provider.generate(request), self.policy.timeout_s)
                return response, None, attempt, (time.perf_counter() - started) * 1000
            except ProviderCallError as exc:
                error = ErrorInfo(type=exc.type, message=exc.message, retryable=exc.retryable)
                retry_after = exc.retry_after
            except TimeoutError:
                error = ErrorInfo(type="Timeout", message=f"no answer within {self.policy.timeout_s} s", retryable=True)
                retry_after = None
            except Exception as exc:  # a provider bug must not kill the run; recorded, not retried
                error = ErrorInfo(type=type(exc).__name__, message=str(exc)[:500], retryable=False)
                retry_after = None
            if not error.retryable or attempt >= self.policy.max_attempts:
                return None, error, attempt, (time.perf_counter() - started) * 1000
            self.retries += 1
            await self.sleep(self.policy.delay(attempt, retry_after, self.rng))

    async def _one(self, request: GenerationRequest, sem: asyncio.Semaphore) -> Generation:
        cand = request.candidate
        async with sem:
            response, error, attempts, wall_ms = await self._call(self.providers[cand.name], request)
        actions: list[GuardrailAction] = []
        if response is None:
            gen = Generation(
                item_id=request.item_id,
                candidate=cand.name,
                error=error,
                attempts=attempts,
                latency_ms=wall_ms,
                request_hash=request.request_hash,
            )
        else:
            text, blocked = response.text, ""
            if self.output_guardrails is not None:
                res = self.output_guardrails.apply(text, where=f"answer:{cand.name}", item_id=request.item_id)
                text, blocked, actions = res.block_message or res.text, res.blocked_by, res.actions
            gen = Generation(
                item_id=request.item_id,
                candidate=cand.name,
                text=text,
                citations=tuple(parse_citations(text)),
                usage=response.usage,
                latency_ms=response.latency_ms if response.latency_ms is not None else wall_ms,
                attempts=attempts,
                blocked_by=blocked,
                request_hash=request.request_hash,
                model=response.model,
            )
        if self.on_done is not None:
            self.on_done(gen, actions)
        return gen

    async def run(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        sems = {name: asyncio.Semaphore(max(1, self.concurrency.get(name, 4))) for name in self.providers}
        tasks = [self._one(r, sems[r.candidate.name]) for r in requests]
        return list(await asyncio.gather(*tasks))
