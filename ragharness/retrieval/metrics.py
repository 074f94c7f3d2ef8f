"""Retrieval metrics against expected sources (document and/or chunk ids), binary relevance.

A passage is relevant when its chunk id, or its document id, is expected. Each expected source counts once
(the first passage that matches it), so several chunks of one expected document do not inflate recall or
nDCG; this equals trec_eval's measures on the run collapsed to its expected-source ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel


class RetrievalMetrics(BaseModel):
    hit: float
    recall: float
    mrr: float
    ndcg: float
    matched: list[str]


def match_sources(ranked: Sequence[tuple[str, str]], expected: Sequence[str]) -> list[str | None]:
    """For each (chunk_id, doc_id) in rank order: the expected source it newly matches, else None."""
    wanted = set(expected)
    found: set[str] = set()
    out: list[str | None] = []
    for chunk_id, doc_id in ranked:
        key = chunk_id if chunk_id in wanted else (doc_id if doc_id in wanted else None)
        if key is not None and key not in found:
            found.add(key)
            out.append(key)
        else:
            out.append(None)
    return out


def retrieval_metrics(ranked: Sequence[tuple[str, str]], expected: Sequence[str], k: int) -> RetrievalMetrics:
    if not expected:
        raise ValueError("retrieval metrics need at least one expected source")
    matches = match_sources(list(ranked)[:k], expected)
    gains = [1.0 if m else 0.0 for m in matches]
    n_expected = len(set(expected))
    first = next((i for i, g in enumerate(gains) if g), None)
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(n_expected, k)))
    return RetrievalMetrics(
        hit=1.0 if first is not None else 0.0,
        recall=sum(gains) / n_expected,
        mrr=0.0 if first is None else 1.0 / (first + 1),
        ndcg=dcg / idcg if idcg else 0.0,
        matched=[m for m in matches if m],
    )
