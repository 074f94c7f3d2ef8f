"""Score and finalize: the one path a run and a re-score share. Every configured scorer (the judge included) scores
the stored answers; the scores, the judge's calls, the summary and the report land in the run directory."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.faults import kill_point
from ragharness.core.progress import NO_PROGRESS, Log, Progress, room_log
from ragharness.core.types import Generation, GoldItem, GuardrailAction, GuardrailTiming, Score
from ragharness.generation.models import ModelPool, ledger
from ragharness.generation.providers.base import GenerationRequest
from ragharness.generation.settings import CacheMode
from ragharness.guardrails.leaks import LeakWatch
from ragharness.pipeline.batches import Batched, delete_raw_outputs, run_batches, scorer_groups
from ragharness.pipeline.config import HarnessConfig
from ragharness.reporting.report import PAGES_DIR, write_report
from ragharness.retrieval.embedders import CachedEmbedder
from ragharness.runs.rundir import RunDir
from ragharness.runs.summary import RunSummary, summarise
from ragharness.scoring.base import PlannedScorer, Scorer, ScoringInput
from ragharness.scoring.engine import iter_scores

_LOG = room_log(__name__)


class Scored(BaseModel):
    summary: RunSummary
    records: dict[str, int] = Field(description="Score records written, by 'scorer@version'.")
    judge_failures: int = Field(0, description="Records labelled judge_error (counted as 0).")


class Scoring(BaseModel):
    """What scoring needs, built (and validated) from the config before any model is called."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    scorers: list[Scorer]
    embedder: CachedEmbedder
    models: ModelPool


def score_and_finalize(
    cfg: HarnessConfig,
    run: RunDir,
    scoring: Scoring,
    items: list[GoldItem],
    generations: list[Generation],
    *,
    run_id: str,
    rescore: bool,
    spent_usd: float,
    budget_exhausted: bool,
    cache: CacheMode = "reuse",
    progress: Progress = NO_PROGRESS,
    earlier_leaks: dict[str, int] | None = None,
    log: Log = _LOG,
) -> Scored:
    """Score, summarise, report. A run writes scores.jsonl afresh (streamed); a re-score appends its records beside
    the old ones (the latest record per metric counts). `earlier_leaks`: what the run itself counted (a re-score
    no longer knows the values the redactors found in that process; it keeps the count and adds what it finds).
    `cache`: how the scorers' calls use the response cache (a run's own mode; `reuse` for a re-score)."""
    models = scoring.models
    # the run's budget covers the scorers' calls too
    accounts = ledger(cfg.call_settings(), cache=cache, spent_usd=spent_usd)
    batched = Batched()
    groups = scorer_groups(models)
    if groups:
        # Each batch-mode scorer model's first ask of every answer goes as batch jobs under its own name; re-asks
        # (e.g. the judge's format retries) are made online.
        planners = [s for s in scoring.scorers if isinstance(s, PlannedScorer)]
        batched = run_batches(
            cfg,
            run.path / "batch",
            run_id,
            models.providers,
            accounts,
            groups,
            lambda: _planned(items, run, generations, planners),
            log,
            online_fallback=True,
        )
    models.start(accounts, on_call=lambda call: run.append("judge_calls.jsonl", [call]), batch=batched.answers)
    records: Counter[str] = Counter()
    judge_failures = 0

    def scores() -> Iterator[Score]:
        nonlocal judge_failures
        for s in iter_scores(items, run.iter_packs(), generations, scoring.scorers, progress, scoring.embedder, models):
            records[f"{s.scorer}@{s.scorer_version}"] += 1
            judge_failures += s.label == "judge_error"
            yield s

    if rescore:
        batch: list[Score] = []
        for score in scores():
            batch.append(score)
            if len(batch) >= 1000:
                run.append("scores.jsonl", batch)
                batch = []
        run.append("scores.jsonl", batch)
    else:
        with run.writer("scores.jsonl") as out:  # streamed: a 10,000-item run never holds all its scores
            for score in scores():
                out.write(score)
    delete_raw_outputs(batched)
    kill_point("run:scored")
    watch = models.leak_watch  # the metric is 0 of N known values, never "no value", whenever it watched
    if watch is not None:
        watch.save()

    def summary_with(leaks: dict[str, int] | None) -> RunSummary:
        return summarise(
            run_id,
            cfg.name,
            items,
            [c.to_candidate() for c in cfg.candidates],
            generations,
            run.read_jsonl("scores.jsonl", Score),
            run.read_jsonl("guardrails.jsonl", GuardrailAction),
            cfg.thresholds,
            judge_calls=run.read_jsonl("judge_calls.jsonl", Generation),
            budget_exhausted=budget_exhausted or models.budget_exhausted,
            timings=run.read_jsonl("guardrail_timings.jsonl", GuardrailTiming),
            leaks=leaks,
            known_pii_values=len(watch) if watch is not None else 0,
        )

    leaks = _merge(_leaks(watch, run, lambda rel: not _is_final(rel)), earlier_leaks)
    summary = summary_with(leaks)
    run.write_json("summary.json", summary)
    kill_point("run:summarised")
    write_report(run)
    if watch is not None and leaks is not None:  # the summary and report themselves are checked last
        in_final = watch.scan_dir(run.path, _is_final)
        final = dict(Counter(leaks) + in_final)
        if in_final:
            summary = summary_with(final)
            run.write_json("summary.json", summary)
            write_report(run)
    kill_point("run:reported")
    return Scored(summary=summary, records=dict(records), judge_failures=judge_failures)


def _planned(
    items: list[GoldItem], run: RunDir, generations: list[Generation], planners: list[PlannedScorer]
) -> Iterator[GenerationRequest]:
    """Every request the model-calling scorers will make first, in scoring order (packs streamed)."""
    by_item = {i.id: i for i in items}
    gens_of: dict[str, list[Generation]] = {}
    for g in generations:
        if g.error is None:  # a failed answer is scored 0 without a judge call
            gens_of.setdefault(g.item_id, []).append(g)
    for pack in run.iter_packs():
        item = by_item.get(pack.item_id)
        if item is None:
            continue
        for gen in gens_of.get(pack.item_id, ()):
            for scorer in planners:
                yield from scorer.planned_requests(ScoringInput(item=item, pack=pack, generation=gen))


def _is_final(rel: str) -> bool:
    """What is written from the summary: the summary itself and the report (with its item pages)."""
    return rel in ("summary.json", "report.html") or rel.startswith(f"{PAGES_DIR}/")


def _merge(now: dict[str, int] | None, earlier: dict[str, int] | None) -> dict[str, int] | None:
    """Per place, the larger of two counts (the same leak found twice is one leak)."""
    if now is None or earlier is None:
        return now if earlier is None else dict(earlier)
    return dict(Counter(now) | Counter(earlier))


def _leaks(watch: LeakWatch | None, run: RunDir, include: Callable[[str], bool]) -> dict[str, int] | None:
    """Known PII values in this process's requests (candidates and judge) and in the run's files `include` takes."""
    if watch is None:
        return None
    return dict(Counter(watch.leaks) + watch.scan_dir(run.path, include))
