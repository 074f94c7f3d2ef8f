"""`--dry-run`: validate everything, lock contexts against the current store, render every request (with the same
code as a run) and estimate its tokens and cost, the judge's calls included. No model is called and no run
directory is written."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from ragharness.context.lock import lock_all, redact_gold
from ragharness.core.progress import NO_PROGRESS, Progress
from ragharness.core.types import Generation
from ragharness.generation.batching import BatchCapable
from ragharness.generation.cache import ResponseCache
from ragharness.generation.costs import PriceTable, estimate_usage
from ragharness.generation.models import effective_cache
from ragharness.generation.providers.base import GenerationRequest, Provider
from ragharness.generation.requests import requests_for
from ragharness.goldset import load_goldset
from ragharness.pipeline.batches import BatchPlan, plan_jobs
from ragharness.pipeline.config import HarnessConfig
from ragharness.pipeline.evaluation import Evaluation
from ragharness.scoring.base import PlannedScorer, ScoringInput


class PlannedCall(BaseModel):
    item_id: str
    candidate: str
    provider: str
    est_input_tokens: int
    est_output_tokens: int
    est_cost_usd: float | None
    est_batch_cost_usd: float | None = None
    record_bytes: int = Field(0, description="Size of its line in a batch input file (0: no batch API).")
    cached: bool
    blocked: bool


class DryRun(BaseModel):
    calls: list[PlannedCall]
    store_chunks: int
    budget_usd: float | None
    batch: dict[str, BatchPlan] = Field(default_factory=dict, description="Mode and jobs per candidate (and judge).")

    def totals(self) -> dict[str, dict[str, float | int | None]]:
        out: dict[str, dict[str, float | int | None]] = {}
        for c in self.calls:
            t = out.setdefault(
                c.candidate,
                {
                    "calls": 0,
                    "cached": 0,
                    "blocked": 0,
                    "input_tokens": 0,
                    "output_tokens": 0,
                    "cost_usd": 0.0,
                    "batch_cost_usd": 0.0,
                },
            )
            if c.blocked:
                t["blocked"] = int(t["blocked"] or 0) + 1
                continue
            if c.cached:
                t["cached"] = int(t["cached"] or 0) + 1
                continue
            t["calls"] = int(t["calls"] or 0) + 1
            t["input_tokens"] = int(t["input_tokens"] or 0) + c.est_input_tokens
            t["output_tokens"] = int(t["output_tokens"] or 0) + c.est_output_tokens
            for key, value in (("cost_usd", c.est_cost_usd), ("batch_cost_usd", c.est_batch_cost_usd)):
                t[key] = None if value is None or t[key] is None else float(t[key] or 0) + value
        return out

    @property
    def total_cost(self) -> float | None:
        """What the run would spend: each candidate (and the judge) at the price of the mode it would run in."""
        costs = []
        for name, t in self.totals().items():
            batch = name in self.batch and self.batch[name].mode == "batch"
            costs.append(t["batch_cost_usd"] if batch else t["cost_usd"])
        return None if any(c is None for c in costs) else sum(float(c or 0) for c in costs)


def plan(
    cfg: HarnessConfig, *, use_cache: bool = True, reuse_cache: bool = False, progress: Progress = NO_PROGRESS
) -> DryRun:
    evaluation = Evaluation(cfg, progress=progress)  # built exactly as a run builds it: same checks, same parts
    comps = evaluation.components
    comps.store.ensure(comps.embedder.name, comps.embedder.dimension)
    gold = redact_gold(load_goldset(cfg.resolve(cfg.goldset)), comps.guards.redact)  # as a run stores and sends it
    locked = lock_all(gold.items, evaluation.retriever, comps.guards, progress)
    prices = PriceTable(cfg.prices, cfg.batch.discount)
    cache_file = cfg.call_settings().cache_file
    # a new run reads the cache only then
    reads = effective_cache(cfg.runner, use_cache=use_cache, reuse=reuse_cache) == "reuse"
    cache = ResponseCache(cache_file) if reads and cache_file.is_file() else None
    calls: list[PlannedCall] = []
    planners = [sc for sc in comps.scoring.scorers if isinstance(sc, PlannedScorer)]
    pool = comps.scoring.models.providers
    candidates = [c.to_candidate() for c in cfg.candidates]

    def plan_call(r: GenerationRequest, provider: Provider, item_id: str, blocked: bool, who: str) -> PlannedCall:
        est = estimate_usage(r.system, r.user, r.candidate.params.get("max_tokens"))
        size = len(json.dumps(provider.batch_body(r))) + 120 if isinstance(provider, BatchCapable) else 0
        return PlannedCall(
            est_batch_cost_usd=prices.cost(provider.id, est, batch=True),
            record_bytes=size,
            item_id=item_id,
            candidate=who,
            provider=r.candidate.provider,
            est_input_tokens=est.input_tokens,
            est_output_tokens=est.output_tokens,
            est_cost_usd=prices.cost(provider.id, est),
            cached=bool(cache is not None and provider.cacheable and cache.get(r.request_hash) is not None),
            blocked=blocked,
        )

    for n, item in enumerate(gold.items, start=1):
        progress("plan", n, len(gold.items))
        pack = locked.packs[item.id]
        blocked = item.id in locked.blocked
        for r in requests_for(item, pack, candidates, comps.templates):
            call = plan_call(r, comps.providers[r.candidate.name], item.id, blocked, r.candidate.name)
            calls.append(call)
            # What each model-calling scorer (the judge) would send about this answer, with an answer as long as
            # the candidate may write: judge calls are priced too. A blocked item's answer (the block message) is
            # judged as well, so those calls count.
            answer = Generation(
                item_id=item.id, candidate=r.candidate.name, text=" ".join(["word"] * call.est_output_tokens)
            )
            for scorer in planners:
                for jr in scorer.planned_requests(ScoringInput(item=item, pack=pack, generation=answer)):
                    calls.append(
                        plan_call(jr, pool[jr.candidate.name], item.id, False, f"{jr.candidate.name} (scorer)")
                    )
    if cache is not None:
        cache.close()
    modes = {c.name: (c.mode, comps.providers[c.name]) for c in cfg.candidates}
    for name, mode in comps.scoring.models.modes.items():  # the judge, and any plugin scorer's model
        modes[f"{name} (scorer)"] = (mode, pool[name])
    batch = {
        name: plan_jobs(cfg, mode, provider, [c.record_bytes for c in calls if c.candidate == name and not c.cached])
        for name, (mode, provider) in modes.items()
    }
    return DryRun(calls=calls, store_chunks=comps.store.count(), budget_usd=cfg.budget_usd, batch=batch)
