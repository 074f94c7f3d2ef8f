"""Runners configured from the run's call settings (`generation.settings.CallSettings`): the one place retries,
cache, prices, budget and rate limits are set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ragharness.core.errors import ConfigError, RagharnessError
from ragharness.core.retry import RetryPolicy
from ragharness.core.types import Candidate, Generation, GuardrailAction
from ragharness.generation.batching import BatchResults
from ragharness.generation.cache import ResponseCache
from ragharness.generation.costs import Budget, PriceTable
from ragharness.generation.providers.base import GenerationRequest, Provider, ProviderContext, split_provider_id
from ragharness.generation.runner import RateLimits, Runner, RunStats
from ragharness.generation.settings import CacheMode, CallMode, CallSettings, CandidateConfig, RunnerConfig
from ragharness.guardrails.base import GuardrailChain
from ragharness.guardrails.leaks import LeakWatch


def effective_cache(
    runner: RunnerConfig, *, use_cache: bool = True, reuse: bool = False, resuming: bool = False
) -> CacheMode:
    """The cache mode of one run: `off` when the config or `--no-cache` says so; `reuse` when asked (`--cache`,
    `runner.cache: reuse`) or when a run resumes or re-scores (its own answers and verdicts); else `record`: a new
    run calls every model and only writes what it gets."""
    if not use_cache or runner.cache == "off":
        return "off"
    return "reuse" if reuse or resuming or runner.cache == "reuse" else "record"


@dataclass(frozen=True)
class Ledger:
    """What one run's calls are governed by, answered from and counted against: the retry policy, the prices, the
    budget and the response cache. Made before any call, because the batch jobs (sent first) and the online calls
    of a run share one budget and one cache."""

    policy: RetryPolicy
    prices: PriceTable
    budget: Budget
    cache: ResponseCache | None
    reuse: bool
    """Answers are read from `cache` (a resume, a re-score, `runner.cache: reuse`); otherwise only written."""

    @property
    def readable_cache(self) -> ResponseCache | None:
        """The cache a batch group may answer from: only what the runner itself would take from it."""
        return self.cache if self.reuse else None


def ledger(calls: CallSettings, *, cache: CacheMode, spent_usd: float = 0.0) -> Ledger:
    """The one place retries, prices, budget and cache are configured. `cache`: `off`, `record`
    (answers are written to the response cache, never read) or `reuse` (read too); `spent_usd`: what the run
    already spent (a resume; scoring after generation)."""
    return Ledger(
        policy=calls.runner,
        prices=PriceTable(calls.prices, calls.batch_discount),
        budget=Budget(calls.budget_usd, spent_usd),
        cache=ResponseCache(calls.cache_file) if cache != "off" else None,
        reuse=cache == "reuse",
    )


def make_runner(
    providers: dict[str, Provider],
    output_chain: GuardrailChain | None,
    accounts: Ledger,
    *,
    limits: dict[str, tuple[int, RateLimits]],
    leak_watch: LeakWatch | None = None,
    on_done: Callable[[Generation, list[GuardrailAction]], None] | None = None,
    on_progress: Callable[[RunStats], None] | None = None,
    batch: Mapping[str, BatchResults] | None = None,
) -> Runner:
    """A Runner complete for one run: `limits` maps a provider name to (concurrency, rate limits) (`limits_of`
    gives the candidates'); `on_done` records each result; `batch` holds the batch groups' answers (see `Runner`)."""
    return Runner(
        providers,
        {name: n for name, (n, _) in limits.items()},
        policy=accounts.policy,
        rate_limits={name: r for name, (_, r) in limits.items()},
        output_guardrails=output_chain,
        on_done=on_done,
        on_progress=on_progress,
        cache=accounts.cache,
        reuse_cache=accounts.reuse,
        prices=accounts.prices,
        budget=accounts.budget,
        leak_watch=leak_watch,
        batch=batch,
    )


def limits_of(candidates: list[CandidateConfig]) -> dict[str, tuple[int, RateLimits]]:
    """Each candidate's concurrency and rate limits, by name."""
    return {c.name: (c.concurrency, RateLimits(rpm=c.rpm, tpm=c.tpm)) for c in candidates}


def build_provider(base_dir: Path, candidate: Candidate, *, concurrency: int, where: str, label: str = "") -> Provider:
    """A candidate's (or a scorer's) provider through the registry: options and ${ENV} references are checked now,
    and any failure is a ConfigError naming `where` (e.g. `harness.yaml: candidates[1]`)."""
    from ragharness.core.registry import PROVIDERS

    kind, _ = split_provider_id(candidate.provider)
    ctx = ProviderContext(base_dir=base_dir, concurrency=concurrency)
    try:
        return PROVIDERS.create(kind, candidate, ctx, where=f"{where}.provider")
    except ConfigError:
        raise
    except RagharnessError as exc:
        raise ConfigError(f"{where}{f' ({label})' if label else ''}: {exc}") from exc


class ModelPool:
    """The models scorers call (the LLM judge, or a plugin's). A model is built, its options and ${ENV} references
    checked, when it is added (so a bad judge fails before the first candidate call); calls then run through a
    Runner configured like the candidates' (retries, rate limits, response cache, prices and the run's budget), and
    every call is handed to `on_call` (the pipeline appends it to judge_calls.jsonl) and counted in the budget.

    `start` readies the runner of one scoring pass with what the pass brings (its ledger, its recorder, its batch
    answers); a scorer calling before any `start` gets a runner of `cache` mode with no recorder (a scorer's own
    test, a library caller)."""

    def __init__(self, calls: CallSettings, *, cache: CacheMode = "reuse", leak_watch: LeakWatch | None = None) -> None:
        self.calls = calls
        self.cache: CacheMode = cache
        """Used when no `start` came first: `reuse` by default (`score` never pays twice for a verdict it has)."""
        self.leak_watch = leak_watch
        """Known PII values: the scorers' prompts are checked for them like the candidates' requests."""
        self.providers: dict[str, Provider] = {}
        self.limits: dict[str, tuple[int, RateLimits]] = {}
        self.modes: dict[str, CallMode] = {}
        """Per model, how its planned calls go: `online`, `batch` or `auto` (see `add`)."""
        self.where: dict[str, str] = {}
        """Per model, where the config sets it (for errors)."""
        self._runner: Runner | None = None

    def add(
        self,
        name: str,
        candidate: Candidate,
        *,
        concurrency: int,
        limits: RateLimits,
        where: str,
        mode: CallMode = "online",
    ) -> None:
        """Build `candidate`'s provider under `name` (ConfigError naming `where` if it cannot be built). `mode`:
        `batch` or `auto` sends the first ask of every planned request (a `PlannedScorer`'s) as provider batch jobs,
        named after `name`, when its provider has a batch API (checked before any call)."""
        provider = build_provider(self.calls.base_dir, candidate, concurrency=concurrency, where=where)
        self.add_provider(name, provider, concurrency=concurrency, limits=limits, mode=mode, where=where)

    def add_provider(
        self,
        name: str,
        provider: Provider,
        *,
        concurrency: int,
        limits: RateLimits,
        mode: CallMode = "online",
        where: str = "",
    ) -> None:
        if name in self.providers:
            raise ConfigError(
                f"model {name!r} is added twice to the scorers' model pool; give each scorer's model its own name"
            )
        self.providers[name] = provider
        self.limits[name] = (concurrency, limits)
        self.modes[name] = mode
        self.where[name] = where or name

    def start(
        self,
        accounts: Ledger | None = None,
        *,
        on_call: Callable[[Generation], None] | None = None,
        batch: Mapping[str, BatchResults] | None = None,
    ) -> Runner:
        """Ready the runner of one scoring pass: `accounts` (default: the pool's cache mode, nothing spent) is the
        run's (the budget covers scorer calls too); `on_call` records each call; `batch`: the judge's batch answers.
        A pool starts once; `aclose` ends it."""
        if self._runner is not None:
            raise RagharnessError("this model pool is already started; aclose() it before starting another pass")

        def done(gen: Generation, _actions: list[GuardrailAction]) -> None:
            if on_call is not None:
                on_call(gen)

        self._runner = make_runner(
            self.providers,
            None,
            accounts or ledger(self.calls, cache=self.cache),
            limits=self.limits,
            leak_watch=self.leak_watch,
            on_done=done,
            batch=batch,
        )
        return self._runner

    async def call(self, request: GenerationRequest) -> Generation | None:
        """The model's answer as a recorded Generation (an error is recorded, not raised); None when the budget
        refused the call."""
        return await (self._runner or self.start()).call(request)

    @property
    def budget_exhausted(self) -> bool:
        return self._runner is not None and self._runner.budget.exhausted

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.aclose()
            if self._runner.cache is not None:
                self._runner.cache.close()
            self._runner = None
