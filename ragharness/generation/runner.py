"""Concurrent generation that survives production: per-candidate concurrency and RPM/TPM limits, typed retries
with exponential backoff and full jitter, per-call timeouts, a response cache, costs and a run budget.

Every attempt is recorded on its Generation. A failure that survives the retries is a Generation with its error
(counted against the candidate, never dropped). A request refused by the budget is not called and produces no
Generation: it stays pending, so `--resume` runs it later. One candidate failing never stops the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from pydantic import BaseModel, Field

from ragharness.batch.base import RecordResult
from ragharness.core.retry import RetryPolicy
from ragharness.core.text import parse_citations
from ragharness.core.types import Attempt, ErrorInfo, Generation, GuardrailAction
from ragharness.generation.batching import BatchCapable, BatchResults
from ragharness.generation.cache import ResponseCache
from ragharness.generation.costs import Budget, PriceTable, estimate_usage
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderCallError, ProviderResponse
from ragharness.guardrails.base import GroundingSource, GuardrailChain
from ragharness.guardrails.leaks import LeakWatch


class RateLimits(BaseModel):
    rpm: float | None = Field(None, gt=0, description="Requests per minute.")
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (estimated input + max output).")


Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Async token bucket: `rate_per_min` tokens a minute, bursts up to one second's worth (at least 1)."""

    def __init__(self, rate_per_min: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate_per_min / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self._lock = asyncio.Lock()

    async def take(self, amount: float, sleep: Sleep) -> float:
        """Wait until `amount` tokens are available; returns the seconds waited."""
        amount = min(amount, self.capacity)
        waited = 0.0
        async with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return waited
                need = (amount - self.tokens) / self.rate
                waited += need
                await sleep(need)


class RunStats(BaseModel):
    """Live counters for progress display."""

    total: int = 0
    done: int = 0
    in_flight: int = 0
    retried: int = 0
    failed: int = 0
    cached: int = 0
    budget_refused: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def line(self) -> str:
        return (
            f"in flight {self.in_flight} · retried {self.retried} · failed {self.failed} · cached {self.cached}"
            f" · tokens {self.input_tokens + self.output_tokens:,} · ${self.cost_usd:.4f}"
        )


class _Limits:
    def __init__(self, concurrency: int, limits: RateLimits) -> None:
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self.rpm = TokenBucket(limits.rpm) if limits.rpm else None
        self.tpm = TokenBucket(limits.tpm) if limits.tpm else None


class Runner:
    def __init__(
        self,
        providers: dict[str, Provider],
        concurrency: dict[str, int],
        *,
        policy: RetryPolicy | None = None,
        rate_limits: dict[str, RateLimits] | None = None,
        output_guardrails: GuardrailChain | None = None,
        on_done: Callable[[Generation, list[GuardrailAction]], None] | None = None,
        on_progress: Callable[[RunStats], None] | None = None,
        cache: ResponseCache | None = None,
        reuse_cache: bool = True,
        prices: PriceTable | None = None,
        budget: Budget | None = None,
        leak_watch: LeakWatch | None = None,
        batch: Mapping[str, BatchResults] | None = None,
        sleep: Sleep = asyncio.sleep,
        seed: int = 0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Complete when built: `on_done` records each Generation (and its guardrail audit) as it completes,
        `leak_watch` checks every request for known PII values, and `batch` maps a provider name to the results of
        its batch jobs (sent before any online call, see pipeline.batches), from which its requests are answered."""
        self.providers = providers
        self.clock = clock
        """Seconds, monotonic: what call latencies are read from (a test drives its own)."""
        self.concurrency = concurrency
        self.rate_limits = rate_limits or {}
        self.policy = policy or RetryPolicy()
        self.output_guardrails = output_guardrails
        self.leak_watch = leak_watch
        self.on_done = on_done
        self.on_progress = on_progress
        self.cache = cache
        self.reuse_cache = reuse_cache
        """Answer from the cache (a resume, re-scoring, `runner.cache: reuse`); otherwise it is only written."""
        self.prices = prices or PriceTable()
        self.budget = budget or Budget(None)
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.stats = RunStats()
        self.halted = False
        self._limits: dict[str, _Limits] = {}
        self.batch: Mapping[str, BatchResults] = dict(batch or {})

    def _limit_key(self, name: str) -> str:
        """Limits belong to what the provider enforces them on: its account and model (`limit_key`), so two
        candidates of one model (two prompt versions) share one concurrency pool and one RPM/TPM budget."""
        provider = self.providers.get(name)
        key = getattr(provider, "limit_key", None)
        return str(key) if key else name

    def _limits_for(self, name: str) -> _Limits:
        """One concurrency slot pool and rate limiter per provider for the Runner's life (shared by `run` and
        `call`, so many scorers calling one judge together still respect its limits)."""
        key = self._limit_key(name)
        if key not in self._limits:  # the first candidate of an account and model sets them
            self._limits[key] = _Limits(self.concurrency.get(name, 4), self.rate_limits.get(name, RateLimits()))
        return self._limits[key]

    async def call(self, request: GenerationRequest) -> Generation | None:
        """One request through retries, rate limits, cache, prices and budget (None: refused by the budget).
        Providers stay open until `aclose`."""
        self.stats.total += 1
        if self._limit_key(request.candidate.name) not in self._limits:
            self._warm()
        return await self._one(request, self._limits_for(request.candidate.name))

    def _warm(self) -> None:
        """What providers make lazily (HTTP clients), made before the first call is timed."""
        for provider in self.providers.values():
            warm = getattr(provider, "warm", None)
            if callable(warm):
                warm()

    async def aclose(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    @property
    def retries(self) -> int:
        return self.stats.retried

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)

    async def _attempt(
        self, provider: Provider, request: GenerationRequest, limits: _Limits, est_tokens: int, took: list[float]
    ) -> ProviderResponse:
        """One call. Its latency (appended to `took`, ms) is the provider call alone: from the request leaving to
        the answer's last byte, after the rate limiter and the concurrency slot were had (waiting for them is the
        harness's queue, not the model's latency). No CPU work of the harness runs on the event loop meanwhile
        (guardrails, recording and the leak watch run in worker threads), so the clock reads the model."""
        if limits.rpm is not None:
            await limits.rpm.take(1, self.sleep)
        if limits.tpm is not None:
            await limits.tpm.take(est_tokens, self.sleep)
        async with limits.sem:
            self.stats.in_flight += 1
            t0 = self.clock()
            try:
                async with asyncio.timeout(self.policy.timeout_s):  # no extra task per call, unlike wait_for
                    return await provider.generate(request)
            finally:
                took.append((self.clock() - t0) * 1000)
                self.stats.in_flight -= 1

    async def _call(
        self, provider: Provider, request: GenerationRequest, limits: _Limits, est_tokens: int
    ) -> tuple[ProviderResponse | None, ErrorInfo | None, list[Attempt], float]:
        """Retry loop. The concurrency slot is held only while calling, never while backing off. The last float is
        the latency of the last attempt (see `_attempt`); each attempt's is in the log, the waits between them too."""
        log: list[Attempt] = []
        while True:
            number = len(log) + 1
            took: list[float] = []
            retry_after: float | None = None
            try:
                response = await self._attempt(provider, request, limits, est_tokens, took)
                log.append(Attempt(number=number, latency_ms=took[0]))
                return response, None, log, took[0]
            except ProviderCallError as exc:
                error = ErrorInfo(type=exc.type, message=exc.message, retryable=exc.retryable)
                kind, retry_after = exc.kind, exc.retry_after
            except TimeoutError:
                error = ErrorInfo(type="Timeout", message=f"no answer within {self.policy.timeout_s} s", retryable=True)
                kind = "transient"
            except Exception as exc:  # a provider bug must not kill the run: recorded, not retried
                error = ErrorInfo(type=type(exc).__name__, message=str(exc)[:500], retryable=False)
                kind = "fatal"
            latency = took[0] if took else 0.0  # 0: the call never started (a rate-limiter wait timed out)
            if not error.retryable or number >= self.policy.max_attempts:
                log.append(Attempt(number=number, error=error.type, kind=kind, latency_ms=latency))
                return None, error, log, latency
            wait = self.policy.delay(number, retry_after, self.rng)
            log.append(Attempt(number=number, error=error.type, kind=kind, latency_ms=latency, wait_s=wait))
            self.stats.retried += 1
            self._progress()
            await self.sleep(wait)

    def _finish(
        self,
        request: GenerationRequest,
        response: ProviderResponse,
        provider: Provider,
        log: list[Attempt],
        wall_ms: float,
        cached: bool,
        batch_job: str = "",
    ) -> tuple[Generation, list[GuardrailAction], str]:
        """The Generation, its guardrail audit, and the redacted answer text (what the cache may keep)."""
        cand = request.candidate
        text, blocked, actions, redacted, outcome = response.text, "", [], response.text, ""
        if self.output_guardrails is not None:
            source = GroundingSource(question=request.question, passages=tuple(p.text for p in request.passages))
            res = self.output_guardrails.apply(
                text, where=f"answer:{cand.name}", item_id=request.item_id, source=source
            )
            text, blocked, actions, redacted = res.text, res.blocked_by, res.actions, res.text
            if res.stopped:
                text, outcome = res.block_message, res.outcome
        cost = self.prices.cost(provider.id, response.usage, batch=bool(batch_job))
        gen = Generation(
            item_id=request.item_id,
            candidate=cand.name,
            text=text,
            citations=tuple(parse_citations(text)),
            usage=response.usage,
            latency_ms=response.latency_ms if response.latency_ms is not None else wall_ms,
            ttft_ms=response.ttft_ms,
            cost_usd=0.0 if cost is None else round(cost, 8),
            unpriced=cost is None,
            attempts=len(log),
            attempt_log=tuple(log),
            cached=cached,
            blocked_by=blocked,
            guardrail_outcome=outcome,
            guardrail_stage="output" if outcome else "",
            request_hash=request.request_hash,
            model=response.model,
            request_id=response.request_id,
            stop_reason=response.stop_reason,
            mode="batch" if batch_job else "online",
            batch_job=batch_job,
        )
        return gen, actions, redacted

    async def _one(self, request: GenerationRequest, limits: _Limits) -> Generation | None:
        if self.halted:
            return None  # recording failed (disk full): start no call whose result could not be kept
        cand = request.candidate
        provider = self.providers[cand.name]
        actions: list[GuardrailAction] = []
        if self.leak_watch is not None:  # a known PII value in what a model would see is a leak (counted, by place)
            text = f"{request.system}\n{request.user}"
            await asyncio.to_thread(self.leak_watch.check, text, f"request:{cand.name}")
        if self.cache is not None and self.reuse_cache and provider.cacheable:
            hit = self.cache.get(request.request_hash)
            if hit is not None:
                gen, actions, _ = await asyncio.to_thread(
                    self._finish, request, hit, provider, [], hit.latency_ms or 0.0, cached=True
                )
                self.stats.cached += 1
                return await self._record(gen, actions)
        batch = self.batch.get(cand.name)
        if batch is not None and request.request_hash not in batch.online:
            found = batch.get(request.request_hash)
            if found is not None:
                return await self._from_batch(request, provider, *found)
            if not batch.online_fallback:  # its job was never submitted (budget): pending, for --resume
                self.stats.budget_refused += 1
                self._progress()
                return None
        est = estimate_usage(request.system, request.user, cand.params.get("max_tokens"))
        est_cost = self.prices.cost(provider.id, est) or 0.0
        if not self.budget.reserve(est_cost):
            self.stats.budget_refused += 1
            self._progress()
            return None
        response, error, log, wall_ms = await self._call(
            provider, request, limits, est.input_tokens + est.output_tokens
        )
        if response is None:
            self.budget.settle(est_cost, 0.0)
            gen = Generation(
                item_id=request.item_id,
                candidate=cand.name,
                error=error,
                attempts=len(log),
                attempt_log=tuple(log),
                latency_ms=wall_ms,
                request_hash=request.request_hash,
            )
            self.stats.failed += 1
        else:
            gen, actions, redacted = await asyncio.to_thread(
                self._finish, request, response, provider, log, wall_ms, cached=False
            )
            self.budget.settle(est_cost, gen.cost_usd)
            await self._keep(request, provider, response, gen, redacted)
        return await self._record(gen, actions)

    async def _keep(
        self, request: GenerationRequest, provider: Provider, response: ProviderResponse, gen: Generation, redacted: str
    ) -> None:
        """Write an answer to the response cache (off the event loop). An answer an output guardrail stopped is not
        cached: the text before the stop may not be fully redacted, and the cache never holds raw text. A later
        hit carries this call's latency."""
        if self.cache is not None and provider.cacheable and not gen.guardrail_outcome:
            kept = response.model_copy(update={"text": redacted, "latency_ms": gen.latency_ms})
            await asyncio.to_thread(self.cache.put, request.request_hash, provider.id, kept)

    async def _from_batch(
        self, request: GenerationRequest, provider: Provider, result: RecordResult, job: str
    ) -> Generation:
        """A batch record's outcome as the Generation an online call would have made (priced at the batch price,
        through the same output guardrails and cache); a failed record is a recorded failure."""
        if result.output is not None and isinstance(provider, BatchCapable):
            try:
                response = provider.parse_batch_output(result.output)
            except ProviderCallError as exc:
                error = ErrorInfo(type=exc.type, message=exc.message, retryable=exc.retryable)
            else:
                wall = response.latency_ms or 0.0
                gen, actions, redacted = await asyncio.to_thread(
                    self._finish, request, response, provider, [Attempt(number=1, latency_ms=wall)], wall, False, job
                )
                self.budget.settle(0.0, gen.cost_usd)
                await self._keep(request, provider, response, gen, redacted)
                return await self._record(gen, actions)
        else:
            err = result.error
            error = ErrorInfo(
                type=err.code if err else "NoOutput",
                message=err.message if err else "the record has no output",
                retryable=err.retryable if err else True,
            )
        self.stats.failed += 1
        gen = Generation(
            item_id=request.item_id,
            candidate=request.candidate.name,
            error=error,
            attempts=1,
            attempt_log=(Attempt(number=1, error=error.type, kind="transient" if error.retryable else "fatal"),),
            request_hash=request.request_hash,
            mode="batch",
            batch_job=job,
        )
        return await self._record(gen, [])

    async def _record(self, gen: Generation, actions: list[GuardrailAction]) -> Generation:
        self.stats.done += 1
        if not gen.cached:  # a cached answer cost nothing in this run
            self.stats.input_tokens += gen.usage.input_tokens
            self.stats.output_tokens += gen.usage.output_tokens
            self.stats.cost_usd += gen.cost_usd
        if self.on_done is not None:
            try:  # recording writes files: in a worker thread, never on the event loop the calls are timed on
                await asyncio.to_thread(self.on_done, gen, actions)
            except BaseException:
                self.halted = True
                raise
        self._progress()
        return gen

    async def run(self, requests: Iterable[GenerationRequest], total: int | None = None) -> list[Generation]:
        """Run all requests; returns the Generations made, in request order (budget-refused requests have none).

        Requests are pulled from the iterable as slots free up (a sliding window a few times the total
        concurrency), so a 20,000-request run never holds every request or coroutine at once. If recording a
        result fails (`on_done` raises, e.g. disk full), no new call starts; the error is raised after the calls
        in flight finish."""
        limits = {name: self._limits_for(name) for name in self.providers}
        self._warm()
        if total is None and isinstance(requests, Sequence):
            total = len(requests)
        self.stats.total += total or 0
        window = max(64, 4 * sum(self.concurrency.get(name, 4) for name in self.providers))
        results: list[tuple[int, Generation]] = []
        failure: BaseException | None = None
        pending: set[asyncio.Task[Generation | None]] = set()
        order: dict[asyncio.Task[Generation | None], int] = {}

        def collect(done: set[asyncio.Task[Generation | None]]) -> None:
            nonlocal failure
            for task in done:
                exc = task.exception()
                if exc is not None:
                    failure = failure or exc
                elif (g := task.result()) is not None:
                    results.append((order[task], g))
                del order[task]

        try:
            for n, request in enumerate(requests):
                if failure is not None:
                    break
                if total is None:
                    self.stats.total += 1
                task = asyncio.create_task(self._one(request, limits[request.candidate.name]))
                order[task] = n
                pending.add(task)
                if len(pending) >= window:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    collect(done)
            if pending:
                done, _ = await asyncio.wait(pending)
                collect(done)
        finally:
            await self.aclose()
        if failure is not None:
            raise failure
        return [g for _, g in sorted(results, key=lambda pair: pair[0])]  # in request order
