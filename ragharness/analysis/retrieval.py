"""The retrieval half on its own: hit@k, recall@k, MRR and nDCG@k per intent and overall, for vector, BM25 and
hybrid side by side, with search latency percentiles per mode (query embedding timed separately)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from ragharness.core.progress import NO_PROGRESS, Progress
from ragharness.core.types import FilterValue, GoldItem, SearchMode
from ragharness.retrieval.embedders import Embedder
from ragharness.retrieval.metrics import retrieval_metrics
from ragharness.retrieval.store import Searcher, SearchRequest, merge_filters
from ragharness.runs.summary import percentile

METRICS = ("hit", "recall", "mrr", "ndcg")


class ModeResult(BaseModel):
    mode: SearchMode
    k: int
    n_items: int
    overall: dict[str, float] = Field(description="Mean of each metric over items with expected sources.")
    by_intent: dict[str, dict[str, float]]
    latency_p50_ms: float = Field(description="Store search time per query, excluding the query embedding.")
    latency_p95_ms: float
    per_item: dict[str, dict[str, float]] = Field(default_factory=dict)
    ranked: dict[str, list[str]] = Field(default_factory=dict, description="item -> ranked chunk ids (for audits).")


class RetrievalEval(BaseModel):
    store: str
    embedder: str
    k: int
    embed_p50_ms: float
    modes: list[ModeResult]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class Measured(BaseModel):
    """One retrieval setting measured over the gold items: what every table and comparison is built from."""

    overall: dict[str, float]
    by_intent: dict[str, dict[str, float]]
    latency_p50_ms: float
    latency_p95_ms: float
    per_item: dict[str, dict[str, float]]
    ranked: dict[str, list[str]]


def measure(
    store: Searcher,
    scored: Sequence[GoldItem],
    vectors: Sequence[Sequence[float]],
    request: Callable[[GoldItem, Sequence[float]], SearchRequest],
    k: int,
    progress: Progress = NO_PROGRESS,
    label: str = "",
) -> Measured:
    """Search each item with `request(item, query vector)` and score the ranking against its expected sources."""
    lat: list[float] = []
    per_item: dict[str, dict[str, float]] = {}
    ranked: dict[str, list[str]] = {}
    intents: dict[str, list[dict[str, float]]] = defaultdict(list)
    for n, (item, vec) in enumerate(zip(scored, vectors, strict=True), start=1):
        s0 = time.perf_counter()
        hits = store.search(request(item, vec))
        lat.append((time.perf_counter() - s0) * 1000)
        m = retrieval_metrics([(h.chunk.chunk_id, h.chunk.doc_id) for h in hits], item.expected_sources, k)
        values = {"hit": m.hit, "recall": m.recall, "mrr": m.mrr, "ndcg": m.ndcg}
        per_item[item.id] = values
        ranked[item.id] = [h.chunk.chunk_id for h in hits]
        intents[item.intent].append(values)
        progress(label, n, len(scored))
    return Measured(
        overall={m: _mean([v[m] for v in per_item.values()]) for m in METRICS},
        by_intent={i: {m: _mean([v[m] for v in vs]) for m in METRICS} for i, vs in sorted(intents.items())},
        latency_p50_ms=percentile(lat, 50),
        latency_p95_ms=percentile(lat, 95),
        per_item=per_item,
        ranked=ranked,
    )


def evaluate_retrieval(
    items: Sequence[GoldItem],
    embedder: Embedder,
    store: Searcher,
    *,
    k: int = 10,
    modes: Sequence[SearchMode] = (SearchMode.vector, SearchMode.bm25, SearchMode.hybrid),
    filters: dict[str, FilterValue] | None = None,
    progress: Progress = NO_PROGRESS,
) -> RetrievalEval:
    scored = [i for i in items if i.expected_sources]
    t0 = time.perf_counter()
    vectors = embedder.embed([i.question for i in scored]) if scored else []
    embed_ms = (time.perf_counter() - t0) * 1000 / max(1, len(scored))
    results = []
    for mode in modes:

        def request(item: GoldItem, vec: Sequence[float], mode: SearchMode = mode) -> SearchRequest:
            return SearchRequest(
                mode=mode,
                k=k,
                text=item.question,
                vector=None if mode is SearchMode.bm25 else tuple(vec),
                filters=merge_filters(filters or {}, item.filters),
            )

        got = measure(store, scored, vectors, request, k, progress, mode.value)
        results.append(ModeResult(mode=mode, k=k, n_items=len(scored), **got.model_dump()))
    return RetrievalEval(store=store.name, embedder=embedder.name, k=k, embed_p50_ms=embed_ms, modes=results)
