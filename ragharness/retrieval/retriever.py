"""Retrieval for gold items: query embedding, mode, k, merged filters -> a ContextPack (not yet redacted)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ragharness.core.types import ContextPack, FilterValue, GoldItem, Passage, SearchHit, SearchMode
from ragharness.retrieval.embedders import Embedder
from ragharness.retrieval.store import Searcher, SearchRequest, merge_filters


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        store: Searcher,
        *,
        mode: SearchMode = SearchMode.hybrid,
        k: int = 6,
        filters: dict[str, FilterValue] | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.mode = mode
        self.k = k
        self.filters = filters or {}

    def query_vectors(self, queries: list[str]) -> list[tuple[float, ...] | None]:
        """Embed many queries in one batch (None for BM25, which needs no vector)."""
        if self.mode is SearchMode.bm25:
            return [None] * len(queries)
        return [tuple(v) for v in self.embedder.embed(queries)]

    def search(
        self,
        query: str,
        *,
        mode: SearchMode | None = None,
        k: int | None = None,
        filters: dict[str, FilterValue] | None = None,
        vector: tuple[float, ...] | None = None,
    ) -> list[SearchHit]:
        mode = mode or self.mode
        if vector is None and mode is not SearchMode.bm25:
            vector = tuple(self.embedder.embed([query])[0])
        request = SearchRequest(mode=mode, k=k or self.k, text=query, vector=vector, filters=filters or {})
        return self.store.search(request)

    def retrieve_many(self, items: Sequence[GoldItem]) -> list[ContextPack]:
        """Packs for many items, in order: their queries embedded in one batch (each distinct text once), their
        searches run side by side through the store's `search_many`."""
        distinct = list(dict.fromkeys(i.question for i in items))
        vectors = dict(zip(distinct, self.query_vectors(distinct), strict=True))
        requests = [
            SearchRequest(
                mode=self.mode,
                k=self.k,
                text=i.question,
                vector=vectors[i.question],
                filters=merge_filters(self.filters, i.filters),
            )
            for i in items
        ]
        started = time.perf_counter()
        results = self.store.search_many(requests)
        per_item_ms = (time.perf_counter() - started) * 1000 / max(1, len(items))
        return [
            self._pack(i, r.filters, hits, per_item_ms) for i, r, hits in zip(items, requests, results, strict=True)
        ]

    def retrieve(self, item: GoldItem, vector: tuple[float, ...] | None = None) -> ContextPack:
        filters = merge_filters(self.filters, item.filters)
        started = time.perf_counter()
        hits = self.search(item.question, filters=filters, vector=vector)
        return self._pack(item, filters, hits, (time.perf_counter() - started) * 1000)

    def _pack(
        self, item: GoldItem, filters: dict[str, FilterValue], hits: list[SearchHit], elapsed: float
    ) -> ContextPack:
        return ContextPack(
            item_id=item.id,
            question=item.question,
            mode=self.mode,
            k=self.k,
            filters=filters,
            passages=tuple(passage_from_hit(i, h) for i, h in enumerate(hits, start=1)),
            store=self.store.name,
            embedder=self.embedder.name,
            retrieval_ms=elapsed,
        ).with_hash()


def passage_from_hit(number: int, hit: SearchHit) -> Passage:
    c = hit.chunk
    return Passage(
        number=number,
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        text=c.text,
        title=c.title,
        section=c.section,
        source=c.source,
        metadata=c.metadata,
        score=hit.score,
    )
