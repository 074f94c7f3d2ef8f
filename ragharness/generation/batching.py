"""Model calls through provider batch jobs: which candidates (and the judge) go batch, the rounds that send their
requests, and the downloaded results the Runner turns into the same Generations an online call makes.

Each group (a candidate, or the judge) sends its pending requests, keyed by request hash, as one round of jobs.
What comes back is indexed by key (a file offset each: results are never all held in memory). Records that failed
with a retryable error go into a second round while there are many of them; a handful (`batch.online_retry_max`,
or fewer than a job's minimum) are made online instead; what still fails after `batch.max_rounds` is a recorded
failure. A resumed run starts a new round for whatever is still not answered.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from ragharness.batch.base import BatchBackend, BatchRecord
from ragharness.batch.jobs import JobRunner
from ragharness.batch.results import ResultIndex
from ragharness.batch.settings import BatchConfig
from ragharness.generation.cache import ResponseCache
from ragharness.generation.costs import Budget, PriceTable, estimate_usage
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderResponse
from ragharness.generation.settings import CallMode


@runtime_checkable
class BatchCapable(Protocol):
    """A provider whose model can also be called through its provider's batch API."""

    def batch_backend(self, settings: BatchConfig) -> BatchBackend: ...

    def batch_body(self, request: GenerationRequest) -> dict[str, Any]:
        """The model input of one record (what `generate` would send, in the batch file's format)."""
        ...

    def parse_batch_output(self, output: dict[str, Any]) -> ProviderResponse:
        """One record's model output as a response; ProviderCallError if it is malformed."""
        ...


class BatchResults(ResultIndex):
    """The downloaded results of one group, for the Runner. `online`: keys to retry online. `online_fallback`: a
    key with no result is called online (the judge's format re-asks); otherwise it stays pending (a job the
    budget refused)."""

    def __init__(self, *, online_fallback: bool = False) -> None:
        super().__init__()
        self.online_fallback = online_fallback
        self.online: set[str] = set()


def uses_batch(mode: CallMode, settings: BatchConfig, calls: int, backend_min: int) -> bool:
    """`batch`: always; `auto`: when there are enough calls for a job and the config allows waiting."""
    if mode == "batch":
        return True
    if mode == "auto":
        return settings.allow_waiting and calls >= max(settings.auto_min_records, backend_min)
    return False


def run_tag(run_id: str) -> str:
    return hashlib.sha256(run_id.encode()).hexdigest()[:8]


def send(
    group: str,
    provider: Provider,
    jobs: JobRunner,
    requests: Callable[[], Iterator[GenerationRequest]],
    *,
    settings: BatchConfig,
    prices: PriceTable,
    budget: Budget,
    cache: ResponseCache | None,
    log: Callable[[str], None],
    online_fallback: bool = False,
) -> BatchResults:
    """Send `group`'s requests through batch rounds (resuming any the journal shows unfinished) and return the
    results for the Runner. The budget reservation of the jobs is released here: the Runner records each answer's
    actual cost as it turns results into Generations."""
    assert isinstance(provider, BatchCapable)
    results = BatchResults(online_fallback=online_fallback)
    minimum = jobs.backend.limits.min_records

    def open_keys(retry_all: bool) -> Iterator[GenerationRequest]:
        seen: set[str] = set()
        for r in requests():
            if r.request_hash in seen:
                continue
            seen.add(r.request_hash)
            if cache is not None and provider.cacheable and cache.get(r.request_hash) is not None:
                continue
            if not results.settled(r.request_hash, retry_all=retry_all):
                yield r

    def records(retry_all: bool) -> Iterator[BatchRecord]:
        for r in open_keys(retry_all):
            est = estimate_usage(r.system, r.user, r.candidate.params.get("max_tokens"))
            cost = prices.cost(provider.id, est, batch=True) or 0.0
            yield BatchRecord(key=r.request_hash, body=provider.batch_body(r), estimate_usd=cost)

    rounds = 0
    try:
        while True:
            results.load(jobs)
            retry_all = rounds == 0  # a new session retries every earlier failure, like an online resume
            if jobs.unfinished() is None:
                keys = {r.request_hash for r in open_keys(retry_all)}  # one pass; keys only, never the requests
                remaining = len(keys)
                first = not jobs.rounds()
                if remaining == 0:
                    break
                if remaining < minimum or (not first and remaining <= settings.online_retry_max):
                    results.online = keys
                    why = f"fewer than the {minimum}-record minimum of a job" if remaining < minimum else "a handful"
                    log(f"batch {group}: {remaining} call(s) made online ({why})")
                    break
                if rounds >= settings.max_rounds:
                    log(f"batch {group}: {remaining} call(s) still failed after {rounds} round(s); recorded as failed")
                    break
            state = jobs.run_round(functools.partial(records, retry_all))
            rounds += 1
            if state.refused:
                log(f"batch {group}: {state.refused} call(s) pending: budget_usd reached before their job")
                results.load(jobs)
                break
    finally:
        budget.settle(jobs.reserved_usd, 0.0)
        jobs.reserved_usd = 0.0
    return results
