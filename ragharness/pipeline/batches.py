"""The batch stage of a run: the candidates (before generation) and the judge (before scoring) whose `mode` is
batch, or auto with enough calls, send their requests as provider batch jobs. Groups run side by side (their jobs
are submitted together and polled together), and the Runner built next answers their requests from the results.

The work folder is `<run>/batch/`: the journal, the shards sent and the results downloaded. A run stopped while
jobs are running (a kill, or `batch.max_wait_hours` passed) re-attaches to them on `--resume`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

from ragharness.batch.jobs import JobRunner
from ragharness.core.errors import BatchWaiting, ConfigError
from ragharness.generation.batching import BatchCapable, BatchResults, run_tag, send, uses_batch
from ragharness.generation.costs import Budget
from ragharness.generation.models import Ledger, ModelPool
from ragharness.generation.providers.base import GenerationRequest, Provider
from ragharness.generation.settings import CallMode
from ragharness.pipeline.config import HarnessConfig


class Group(BaseModel):
    name: str
    mode: CallMode


@dataclass(frozen=True)
class Batched:
    """What the batch stage gives the Runner built after it (`answers`, per provider name) and what is scrubbed
    once those answers are recorded (`jobs`)."""

    answers: dict[str, BatchResults] = field(default_factory=dict)
    jobs: list[JobRunner] = field(default_factory=list)


def check_modes(cfg: HarnessConfig, providers: dict[str, Provider], models: ModelPool) -> None:
    """`mode: batch | auto` only on a provider with a batch API (a ConfigError naming the entry otherwise), for
    candidates and for every scorer model (the judge's `judge.mode`, a plugin's own setting)."""
    problems = []
    for i, c in enumerate(cfg.candidates):
        if c.mode != "online" and not isinstance(providers[c.name], BatchCapable):
            problems.append(
                f"{cfg.source_file}: candidates[{i}].mode: {c.mode!r}, but {c.provider!r} has no batch API; "
                "batch works with bedrock:<model> and openai:<model>; use mode: online"
            )
    for name, mode in models.modes.items():
        if mode != "online" and not isinstance(models.providers[name], BatchCapable):
            where = models.where.get(name, name)
            problems.append(f"{where}.mode: {mode!r}, but {models.providers[name].id!r} has no batch API")
    if problems:
        raise ConfigError("\n".join(problems))


def scorer_groups(models: ModelPool) -> list[Group]:
    """The scorer models whose planned calls may go as batch jobs, each its own group (named after the model)."""
    return [Group(name=name, mode=mode) for name, mode in models.modes.items() if mode != "online"]


def _reserver(budget: Budget) -> Callable[[float, bool], bool]:
    def reserve(estimate: float, committed: bool) -> bool:
        if committed:
            budget.commit(estimate)
            return True
        return budget.reserve(estimate)

    return reserve


def run_batches(
    cfg: HarnessConfig,
    workdir: Path,
    run_id: str,
    providers: dict[str, Provider],
    accounts: Ledger,
    groups: list[Group],
    requests: Callable[[], Iterator[GenerationRequest]],
    log: Callable[[str], None],
    *,
    online_fallback: bool = False,
) -> Batched:
    """Send the batch groups' requests (those `uses_batch` picks), side by side, priced and reserved against the
    run's `accounts` (the same budget and cache the online calls then use). Raises BatchWaiting (every group's
    running jobs) when jobs outlive the wait."""
    counts: Counter[str] = Counter(r.candidate.name for r in requests())
    chosen: list[tuple[str, JobRunner]] = []
    for g in groups:
        provider = providers[g.name]
        if g.mode == "online" or not isinstance(provider, BatchCapable):
            continue
        backend = provider.batch_backend(cfg.batch)
        if not uses_batch(g.mode, cfg.batch, counts[g.name], backend.limits.min_records):
            log(f"batch {g.name}: auto: {counts[g.name]} call(s), online this run")
            continue
        jobs = JobRunner(
            backend,
            workdir,
            g.name,
            tag=run_tag(run_id),
            poll_interval_s=cfg.batch.poll_interval_s,
            max_wait_s=cfg.batch.max_wait_hours * 3600,
            progress=log,
            reserve=_reserver(accounts.budget),
        )
        chosen.append((g.name, jobs))
    if not chosen:
        return Batched()

    def one(name: str, jobs: JobRunner) -> BatchResults:
        def mine() -> Iterator[GenerationRequest]:
            return (r for r in requests() if r.candidate.name == name)

        return send(
            name,
            providers[name],
            jobs,
            mine,
            settings=cfg.batch,
            prices=accounts.prices,
            budget=accounts.budget,
            cache=accounts.readable_cache,
            log=log,
            online_fallback=online_fallback,
        )

    waiting: list[BatchWaiting] = []
    failures: list[BaseException] = []
    answers: dict[str, BatchResults] = {}
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="batch") as pool:
        futures = [(name, pool.submit(one, name, jobs)) for name, jobs in chosen]
        for name, f in futures:
            exc = f.exception()
            if isinstance(exc, BatchWaiting):
                waiting.append(exc)
            elif exc is not None:
                failures.append(exc)
            else:
                answers[name] = f.result()
    if failures:
        raise failures[0]
    if waiting:
        jobs_left = [j for w in waiting for j in w.jobs]
        raise BatchWaiting("; ".join(str(w) for w in waiting), jobs_left)
    return Batched(answers=answers, jobs=[jobs for _, jobs in chosen])


def delete_raw_outputs(batched: Batched) -> None:
    """The raw model outputs downloaded for these groups, deleted: their answers are recorded (redacted by the
    output guardrails) in the run's files, and the response cache holds what a re-score needs."""
    for jobs in batched.jobs:
        jobs.delete_raw_outputs()


class BatchPlan(BaseModel):
    """What `--dry-run` shows for one candidate (or the judge): the mode it would run in and the jobs."""

    mode: str
    jobs: int = Field(0, description="Jobs the calls would take in batch (whatever mode is chosen).")
    capable: bool = Field(True, description="The provider has a batch API.")
    reason: str = ""


def plan_jobs(cfg: HarnessConfig, mode: CallMode, provider: Provider, records: Iterable[int]) -> BatchPlan:
    """How many jobs `records` (their encoded sizes in bytes) would take, and whether batch would be used."""
    sizes = list(records)
    if not isinstance(provider, BatchCapable):
        return BatchPlan(mode="online", capable=False, reason="no batch API")
    try:
        limits = provider.batch_backend(cfg.batch).limits
    except ConfigError as exc:
        return BatchPlan(mode="online", capable=False, reason=str(exc)[:120])
    by_count = math.ceil(len(sizes) / limits.max_records) if sizes else 0
    by_bytes = math.ceil(sum(sizes) / limits.max_file_bytes) if sizes else 0
    batch = uses_batch(mode, cfg.batch, len(sizes), limits.min_records) and len(sizes) >= limits.min_records
    why = "" if batch or mode == "online" else f"fewer than {max(cfg.batch.auto_min_records, limits.min_records)} calls"
    return BatchPlan(mode="batch" if batch else "online", jobs=max(by_count, by_bytes), reason=why)
