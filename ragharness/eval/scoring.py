"""Scoring a run's generations: item-level scorers once per item, answer-level scorers once per generation."""

from __future__ import annotations

import asyncio

from ragharness.config import HarnessConfig
from ragharness.errors import ConfigError, RagharnessError
from ragharness.eval.generate import make_runner
from ragharness.eval.judge import JudgeStage, judge_jobs
from ragharness.eval.prompts_loader import load_prompt
from ragharness.eval.providers.base import ProviderContext, split_provider_id
from ragharness.eval.runner import RateLimits
from ragharness.eval.scorers.base import Scorer, ScoringInput, run_scorer
from ragharness.eval.scorers.calibration import load_thresholds
from ragharness.eval.scorers.support import SupportJudge
from ragharness.eval.text import sentences, strip_citations
from ragharness.ingest.pipeline import Progress
from ragharness.registry import PROVIDERS
from ragharness.retrieval.embedders import Embedder
from ragharness.types import ContextPack, Generation, GoldItem, Score


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _prewarm(
    embedder: Embedder, packs: dict[str, ContextPack], generations: list[Generation], items: list[GoldItem]
) -> None:
    """Embed every text the scorers will compare in a few large batches (much faster than one at a time)."""
    texts: list[str] = [t for p in packs.values() for x in p.passages for t in sentences(x.text)]
    texts += [strip_citations(t) for g in generations for t in sentences(g.text)] + [g.text for g in generations]
    texts += [i.reference_answer for i in items if i.reference_answer] + [i.question for i in items]
    embedder.embed(texts)


def score_all(
    items: list[GoldItem],
    packs: dict[str, ContextPack],
    generations: list[Generation],
    scorers: list[Scorer],
    progress: Progress = _noop,
    embedder: Embedder | None = None,
) -> list[Score]:
    """Score every generation (and every item, for item-level scorers). Pass the scorers' shared embedder to
    embed all texts up front in large batches."""
    by_item = {i.id: i for i in items}
    if embedder is not None:
        _prewarm(embedder, packs, generations, items)
    out: list[Score] = []
    for item in items:
        for s in scorers:
            if s.level == "item":
                out += run_scorer(s, ScoringInput(item=item, pack=packs[item.id]))
    for n, gen in enumerate(generations, start=1):
        item = by_item[gen.item_id]
        for s in scorers:
            if s.level == "answer":
                out += run_scorer(s, ScoringInput(item=item, pack=packs[item.id], generation=gen))
        progress("score", n, len(generations))
    return out


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
    if cfg.judge is None:
        raise ConfigError(f"{cfg.source_file}: scorer `judge` needs a `judge:` section")
    judge_cfg = cfg.judge
    candidate = judge_cfg.to_candidate()
    kind, _ = split_provider_id(judge_cfg.provider)
    ctx = ProviderContext(base_dir=cfg.base_dir, concurrency=judge_cfg.concurrency)
    try:
        provider = PROVIDERS.create(kind, candidate, ctx, where=f"{cfg.source_file}: judge.provider")
    except RagharnessError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{cfg.source_file}: judge: {exc}") from exc
    prompts_dir = cfg.resolve(cfg.prompts_dir) if cfg.prompts_dir else None
    template = load_prompt(judge_cfg.prompt, prompts_dir)
    limits = {"judge": (judge_cfg.concurrency, RateLimits(rpm=judge_cfg.rpm, tpm=judge_cfg.tpm))}
    runner = make_runner(cfg, {"judge": provider}, None, use_cache=use_cache, spent_usd=spent_usd, limits=limits)
    stage = JudgeStage(judge_cfg, template, runner, SupportJudge(embedder, load_thresholds(cfg.scoring)))
    try:
        scores = asyncio.run(stage.judge(judge_jobs(items, packs, generations)))
    finally:
        if runner.cache is not None:
            runner.cache.close()
    return scores, stage.calls
