"""Sentence support against passages: lexical overlap + embedding similarity + a hard check on facts.

A sentence is supported by a set of passages when
  1. every number/amount in it appears in the passages, and every capitalised name in it appears there
     (this is what catches hallucinated prices, limits, dates and product names), and
  2. enough of its content is there: stemmed content-word recall >= `lexical_min`, or recall >=
     `lexical_with_embedding_min` with embedding similarity to the best-matching passage sentence >= `embed_min`,
     or similarity >= `embed_alone_min` (values and provenance: calibration.yaml).
Thresholds are first guesses documented here; issue 4 measures them against human labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from ragharness.core.text import content_words, names, numbers, sentences, stem, strip_citations
from ragharness.core.types import Passage
from ragharness.retrieval.embedders import CachedEmbedder, Embedder, cosine
from ragharness.scoring.thresholds import THRESHOLDS, ScorerThresholds


class Support(BaseModel):
    supported: bool
    lexical: float
    similarity: float
    missing_facts: list[str]

    def why(self) -> str:
        if self.missing_facts:
            return f"not in passages: {', '.join(self.missing_facts[:4])}"
        return f"overlap {self.lexical:.2f}, similarity {self.similarity:.2f}"


class SupportJudge:
    def __init__(self, embedder: Embedder | None, thresholds: ScorerThresholds | None = None) -> None:
        self.embedder = (
            embedder if embedder is None or isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
        )
        self.t = thresholds or THRESHOLDS

    def _vectors(self, texts: Sequence[str]) -> list[list[float]]:
        return self.embedder.embed(texts) if self.embedder is not None else []

    def similarity(self, a: str, b: str) -> float:
        if self.embedder is None:
            return 0.0
        va, vb = self._vectors([a, b])
        return cosine(va, vb)

    def support(self, sentence: str, passages: Sequence[Passage]) -> Support:
        claim = strip_citations(sentence)
        evidence = "\n".join(f"{p.title}\n{p.section}\n{p.text}" for p in passages)
        ev_lower = evidence.lower()
        missing = sorted(n for n in numbers(claim) if n not in numbers(evidence))
        words = {stem(w) for w in content_words(claim)}
        ev_words = {stem(w) for w in content_words(evidence)}
        # A name counts as present when it appears verbatim, or all its words do (stemmed: Mondays ~ Monday).
        missing += sorted(
            n
            for n in names(claim)
            if n not in ev_lower and not all(stem(w) in ev_words or w in ev_lower for w in n.split())
        )
        lexical = len(words & ev_words) / len(words) if words else 1.0
        sim = 0.0
        if self.embedder is not None and passages:
            ev_sents = [s for p in passages for s in sentences(p.text)] or [p.text for p in passages]
            vecs = self._vectors([claim, *ev_sents])
            sim = max(cosine(vecs[0], v) for v in vecs[1:])
        t = self.t
        content_ok = (
            lexical >= t.lexical_min
            or (lexical >= t.lexical_with_embedding_min and sim >= t.embed_min)
            or sim >= t.embed_alone_min
        )
        return Support(supported=not missing and content_ok, lexical=lexical, similarity=sim, missing_facts=missing)
