"""Runners configured from harness.yaml: the one place retries, cache, prices, budget and rate limits are set."""

from __future__ import annotations

from ragharness.config import HarnessConfig
from ragharness.generation.cache import ResponseCache
from ragharness.generation.costs import Budget, PriceTable
from ragharness.generation.providers.base import Provider
from ragharness.generation.runner import RateLimits, RetryPolicy, Runner
from ragharness.guardrails.base import GuardrailChain


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
