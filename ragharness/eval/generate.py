"""The generation stage of a run: blocked items, the runner with cache, prices, budget and rate limits, and the
durable append of every result as it completes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from ragharness.config import HarnessConfig
from ragharness.eval.cache import ResponseCache
from ragharness.eval.costs import Budget, PriceTable
from ragharness.eval.providers.base import GenerationRequest, Provider
from ragharness.eval.rundir import RunDir
from ragharness.eval.runner import RateLimits, RetryPolicy, Runner, RunStats
from ragharness.guardrails.base import GuardrailChain
from ragharness.types import Generation, GuardrailAction

StatsCallback = Callable[[RunStats], None]


class GenerationOutcome(BaseModel):
    generations: list[Generation]
    stats: RunStats
    budget_exhausted: bool
    spent_usd: float


def blocked_generations(requests: list[GenerationRequest], blocked: dict[str, tuple[str, str]]) -> list[Generation]:
    """Items an input guardrail blocked get the block message, with no model call."""
    return [
        Generation(
            item_id=r.item_id,
            candidate=r.candidate.name,
            text=blocked[r.item_id][1],
            blocked_by=blocked[r.item_id][0],
            request_hash=r.request_hash,
            attempts=0,
        )
        for r in requests
        if r.item_id in blocked
    ]


def make_runner(
    cfg: HarnessConfig,
    providers: dict[str, Provider],
    output_chain: GuardrailChain | None,
    *,
    use_cache: bool,
    spent_usd: float = 0.0,
    limits: dict[str, tuple[int, RateLimits]] | None = None,
) -> Runner:
    """The one place a Runner is configured from harness.yaml (retries, cache, prices, budget). `limits` maps a
    provider name to (concurrency, rate limits); default: the candidates'."""
    policy = RetryPolicy(
        max_attempts=cfg.runner.max_attempts,
        base_delay_s=cfg.runner.base_delay_s,
        max_delay_s=cfg.runner.max_delay_s,
        timeout_s=cfg.runner.timeout_s,
    )
    if limits is None:
        limits = {c.name: (c.concurrency, RateLimits(rpm=c.rpm, tpm=c.tpm)) for c in cfg.candidates}
    cache = ResponseCache(cfg.resolve(cfg.data_dir) / "cache" / "responses.sqlite") if use_cache else None
    return Runner(
        providers,
        {name: n for name, (n, _) in limits.items()},
        policy=policy,
        rate_limits={name: r for name, (_, r) in limits.items()},
        output_guardrails=output_chain,
        cache=cache,
        prices=PriceTable(cfg.prices),
        budget=Budget(cfg.budget_usd, spent_usd),
    )


def generate(
    run: RunDir,
    runner: Runner,
    todo: Iterable[GenerationRequest],
    total: int,
    on_stats: StatsCallback | None = None,
) -> GenerationOutcome:
    """Run the pending requests (streamed); each Generation (and its guardrail audit) is appended as soon as it
    completes. If an append fails (disk full), no further call is started and the error is raised once the calls
    in flight have finished: nothing is paid for that cannot be recorded."""

    def on_done(gen: Generation, acts: list[GuardrailAction]) -> None:
        run.append("generations.jsonl", [gen])
        if acts:
            run.append("guardrails.jsonl", acts)

    runner.on_done = on_done
    runner.on_progress = on_stats
    try:
        generations = asyncio.run(runner.run(todo, total=total))
    finally:
        if runner.cache is not None:
            runner.cache.close()
    return GenerationOutcome(
        generations=generations,
        stats=runner.stats,
        budget_exhausted=runner.budget.exhausted,
        spent_usd=runner.budget.spent,
    )
