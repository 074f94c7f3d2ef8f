"""Scoring a run's generations: item-level scorers once per item, answer-level scorers once per generation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

from ragharness.config import HarnessConfig
from ragharness.errors import ConfigError, RagharnessError
from ragharness.generation.models import make_runner
from ragharness.generation.prompts import PromptTemplate, load_prompt
from ragharness.generation.providers.base import Provider, ProviderContext, split_provider_id
from ragharness.generation.runner import RateLimits
from ragharness.ingest.pipeline import Progress
from ragharness.memory import trim
from ragharness.registry import PROVIDERS
from ragharness.retrieval.embedders import Embedder
from ragharness.scoring.base import Scorer, ScoringInput, run_scorer
from ragharness.scoring.judge import JudgeStage, judge_jobs
from ragharness.scoring.support import SupportJudge
from ragharness.scoring.thresholds import load_thresholds
from ragharness.text import sentences, strip_citations
from ragharness.types import ContextPack, Generation, GoldItem, Score


def _noop(stage: str, done: int, total: int) -> None:
    return None


SCORE_WINDOW = 32
"""Items scored together: their texts are embedded in one batch, then they are scored. Memory stays flat; a
smaller window lowers the peak (at 5,000 items a window of 128 peaked 28 MB above one of 32)."""


def _prewarm(
    embedder: Embedder, packs: list[ContextPack], generations: list[Generation], items: list[GoldItem]
) -> None:
    """Embed every text the scorers will compare in one batch (much faster than one at a time)."""
    texts: list[str] = [t for p in packs for x in p.passages for t in sentences(x.text)]
    texts += [strip_citations(t) for g in generations for t in sentences(g.text)] + [g.text for g in generations]
    texts += [i.reference_answer for i in items if i.reference_answer] + [i.question for i in items]
    embedder.embed(texts)


def score_all(
    items: list[GoldItem],
    packs: Iterable[ContextPack] | dict[str, ContextPack],
    generations: list[Generation],
    scorers: list[Scorer],
    progress: Progress = _noop,
    embedder: Embedder | None = None,
) -> list[Score]:
    return list(iter_scores(items, packs, generations, scorers, progress, embedder))


def iter_scores(
    items: list[GoldItem],
    packs: Iterable[ContextPack] | dict[str, ContextPack],
    generations: list[Generation],
    scorers: list[Scorer],
    progress: Progress = _noop,
    embedder: Embedder | None = None,
) -> Iterator[Score]:
    """Score every generation (and every item, for item-level scorers), item by item in windows of
    SCORE_WINDOW: the packs may be a stream (read from the run directory), never all held at once. Pass the
    scorers' shared embedder to embed each window's texts in one batch."""
    by_item = {i.id: i for i in items}
    gens_of: dict[str, list[Generation]] = {}
    for g in generations:
        gens_of.setdefault(g.item_id, []).append(g)
    stream = packs.values() if isinstance(packs, dict) else packs
    done = 0
    window: list[ContextPack] = []

    def flush() -> Iterator[Score]:
        nonlocal done
        trim()  # what the previous window freed goes back to the OS before this one allocates
        if embedder is not None:
            _prewarm(
                embedder,
                window,
                [g for p in window for g in gens_of.get(p.item_id, ())],
                [by_item[p.item_id] for p in window],
            )
        for pack in window:
            item = by_item[pack.item_id]
            for s in scorers:
                if s.level == "item":
                    yield from run_scorer(s, ScoringInput(item=item, pack=pack))
            for gen in gens_of.get(pack.item_id, ()):
                for s in scorers:
                    if s.level == "answer":
                        yield from run_scorer(s, ScoringInput(item=item, pack=pack, generation=gen))
                done += 1
                progress("score", done, len(generations))
        window.clear()

    for pack in stream:
        if pack.item_id not in by_item:
            continue
        window.append(pack)
        if len(window) >= SCORE_WINDOW:
            yield from flush()
    yield from flush()


def build_judge(cfg: HarnessConfig) -> tuple[Provider, PromptTemplate]:
    """The judge's provider and prompt, built (options validated, ${ENV} references resolved) from the config."""
    if cfg.judge is None:
        raise ConfigError(f"{cfg.source_file}: scorer `judge` needs a `judge:` section")
    judge_cfg = cfg.judge
    kind, _ = split_provider_id(judge_cfg.provider)
    ctx = ProviderContext(base_dir=cfg.base_dir, concurrency=judge_cfg.concurrency)
    try:
        provider = PROVIDERS.create(kind, judge_cfg.to_candidate(), ctx, where=f"{cfg.source_file}: judge.provider")
    except RagharnessError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{cfg.source_file}: judge: {exc}") from exc
    prompts_dir = cfg.resolve(cfg.prompts_dir) if cfg.prompts_dir else None
    return provider, load_prompt(judge_cfg.prompt, prompts_dir)


def run_judge(
    cfg: HarnessConfig,
    items: list[GoldItem],
    packs: dict[str, ContextPack],
    generations: list[Generation],
    embedder: Embedder | None,
    *,
    use_cache: bool = True,
    spent_usd: float = 0.0,
) -> tuple[list[Score], list[Generation]]:
    """Judge every generation with the configured LLM judge; returns scores and the judge calls made."""
    judge_cfg = cfg.judge
    if judge_cfg is None:
        raise ConfigError(f"{cfg.source_file}: scorer `judge` needs a `judge:` section")
    provider, template = build_judge(cfg)
    limits = {"judge": (judge_cfg.concurrency, RateLimits(rpm=judge_cfg.rpm, tpm=judge_cfg.tpm))}
    runner = make_runner(cfg, {"judge": provider}, None, use_cache=use_cache, spent_usd=spent_usd, limits=limits)
    stage = JudgeStage(judge_cfg, template, runner, SupportJudge(embedder, load_thresholds(cfg.scoring)))
    try:
        scores = asyncio.run(stage.judge(judge_jobs(items, packs, generations)))
    finally:
        if runner.cache is not None:
            runner.cache.close()
    return scores, stage.calls
