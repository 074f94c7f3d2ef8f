"""Scoring a run's generations: item-level scorers once per item, answer-level scorers once per generation."""

from __future__ import annotations

from ragharness.eval.scorers.base import Scorer, ScoringInput, run_scorer
from ragharness.eval.text import sentences, strip_citations
from ragharness.ingest.pipeline import Progress
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
