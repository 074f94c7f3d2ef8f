"""The generation stage of a run: blocked items, the runner with cache, prices, budget and rate limits, and the
durable append of every result as it completes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from ragharness.context.lock import Stopped
from ragharness.core.types import Generation, GuardrailAction
from ragharness.generation.providers.base import GenerationRequest
from ragharness.generation.runner import Runner, RunStats
from ragharness.runs.rundir import RunDir

StatsCallback = Callable[[RunStats], None]


class GenerationOutcome(BaseModel):
    generations: list[Generation]
    stats: RunStats
    budget_exhausted: bool
    spent_usd: float


def blocked_generations(requests: list[GenerationRequest], blocked: dict[str, Stopped]) -> list[Generation]:
    """Items an input guardrail stopped (blocked, challenged, failed check) get its message, with no model call."""
    return [
        Generation(
            item_id=r.item_id,
            candidate=r.candidate.name,
            text=blocked[r.item_id].message,
            blocked_by=blocked[r.item_id].blocked_by,
            guardrail_outcome=blocked[r.item_id].outcome,
            guardrail_stage="input",
            request_hash=r.request_hash,
            attempts=0,
        )
        for r in requests
        if r.item_id in blocked
    ]


def recorder(run: RunDir) -> Callable[[Generation, list[GuardrailAction]], None]:
    """The runner's `on_done` for a run: each Generation (and its guardrail audit) appended as soon as it completes."""

    def on_done(gen: Generation, acts: list[GuardrailAction]) -> None:
        run.append("generations.jsonl", [gen])
        if acts:
            run.append("guardrails.jsonl", acts)

    return on_done


def generate(runner: Runner, todo: Iterable[GenerationRequest], total: int) -> GenerationOutcome:
    """Run the pending requests (streamed) through a runner built with the run's `recorder`. If an append fails
    (disk full), no further call is started and the error is raised once the calls in flight have finished:
    nothing is paid for that cannot be recorded."""
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
