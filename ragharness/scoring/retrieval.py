"""Retrieval scorer: hit@k, recall@k, MRR and nDCG@k of the locked context against expected sources."""

from __future__ import annotations

from typing import Literal

from ragharness.core.types import Score
from ragharness.retrieval.metrics import retrieval_metrics
from ragharness.scoring.base import ScorerContext, ScoringInput, make_score


class RetrievalScorer:
    name = "retrieval"
    version = "1"
    level: Literal["item"] = "item"
    metrics = ("retrieval_hit", "retrieval_recall", "retrieval_mrr", "retrieval_ndcg")

    def __init__(self, ctx: ScorerContext) -> None:
        return None

    def score(self, inp: ScoringInput) -> list[Score]:
        item, pack = inp.item, inp.pack
        if not item.expected_sources:
            return [
                make_score(self, inp, m, None, "n/a", "no expected sources (must-refuse item)") for m in self.metrics
            ]
        ranked = [(p.chunk_id, p.doc_id) for p in pack.passages]
        m = retrieval_metrics(ranked, item.expected_sources, pack.k)
        found = f"found {m.matched or 'none'} of {item.expected_sources} in top {pack.k}"
        return [
            make_score(self, inp, "retrieval_hit", m.hit, "hit" if m.hit else "miss", found),
            make_score(self, inp, "retrieval_recall", m.recall, "", found),
            make_score(self, inp, "retrieval_mrr", m.mrr, "", found),
            make_score(self, inp, "retrieval_ndcg", m.ndcg, "", found),
        ]
