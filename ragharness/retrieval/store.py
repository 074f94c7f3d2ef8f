"""The VectorStore seam. Fits LanceDB (embedded) and OpenSearch (k-NN, BM25, hybrid, aliases).

Every implementation runs the contract suite in tests/contract_store.py.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from ragharness.core.types import (
    METADATA_FIELDS,
    Chunk,
    EmbeddedChunk,
    FilterValue,
    Frozen,
    Metadata,
    SearchHit,
    SearchMode,
)
from ragharness.retrieval.settings import Fusion

TEXT_FIELDS = ("chunk_id", "doc_id", "text", "title", "section", "source", "source_type", "content_hash", "doc_hash")
"""String fields every backend stores per chunk, besides METADATA_FIELDS, tags, position, n_tokens and the vector."""


def chunk_record(chunk: Chunk) -> dict[str, Any]:
    """A chunk as one flat record (metadata inlined, tags as a list): what backends store beside the vector."""
    record: dict[str, Any] = {f: getattr(chunk, f) for f in TEXT_FIELDS}
    record.update({f: getattr(chunk.metadata, f) for f in METADATA_FIELDS})
    record.update(tags=list(chunk.metadata.tags), position=chunk.position, n_tokens=chunk.n_tokens)
    return record


def chunk_from_record(row: Mapping[str, Any]) -> Chunk:
    meta = Metadata(**{f: row.get(f) or "" for f in METADATA_FIELDS}, tags=tuple(row.get("tags") or ()))
    return Chunk(
        chunk_id=row["chunk_id"],
        doc_id=row["doc_id"],
        position=int(row.get("position") or 0),
        text=row["text"],
        title=row.get("title") or "",
        section=row.get("section") or "",
        source=row.get("source") or "",
        source_type=row.get("source_type") or "text",
        metadata=meta,
        content_hash=row["content_hash"],
        doc_hash=row.get("doc_hash") or "",
        n_tokens=int(row.get("n_tokens") or 0),
    )


class SearchRequest(Frozen):
    mode: SearchMode
    k: int = Field(gt=0)
    text: str = Field(description="Query text (BM25 and hybrid).")
    vector: tuple[float, ...] | None = Field(None, description="Query vector (vector and hybrid).")
    filters: dict[str, FilterValue] = Field(default_factory=dict)
    fusion: Fusion | None = Field(None, description="Hybrid fusion; None: the store's configured default.")


@runtime_checkable
class Searcher(Protocol):
    """What retrieval needs of a store: search the published index (the retriever, the retrieval evaluation)."""

    @property
    def name(self) -> str:
        """Backend and concrete table/index version, recorded in every context pack."""
        ...

    def search(self, request: SearchRequest) -> list[SearchHit]:
        """Search the published version (never an ingest half done)."""
        ...

    def search_many(self, requests: Sequence[SearchRequest], concurrency: int = 16) -> list[list[SearchHit]]:
        """The same searches as `search`, for many requests at once (results in request order), as fast as the
        backend allows: retrieval for a whole gold set goes through here."""
        ...

    def count(self) -> int:
        """Chunks in the published index."""
        ...


@runtime_checkable
class IndexWriter(Protocol):
    """What ingest needs of a store: create and check the index, write and delete chunks incrementally, find
    what is already stored (so unchanged text is never re-embedded), rebuild and publish."""

    @property
    def name(self) -> str:
        """Backend and concrete table/index version, recorded in every context pack."""
        ...

    def ensure(self, embedder_name: str, dimension: int) -> None:
        """Create the index if missing; raise StoreError if it was built for another embedder or dimension."""
        ...

    def upsert(self, chunks: Sequence[EmbeddedChunk]) -> None:
        """Insert or replace chunks by chunk id (idempotent). Searches see them after `publish()`."""
        ...

    def delete_documents(self, doc_ids: Sequence[str], keep_chunk_ids: Collection[str] = ()) -> int:
        """Delete the chunks of these documents except `keep_chunk_ids` (the ones just rewritten: ingest writes
        new chunks first, then deletes the stale ones, so a document is never missing). Returns how many went."""
        ...

    def document_hashes(self) -> dict[str, str]:
        """doc_id -> doc content hash, for incremental ingest ('' when a document's chunks disagree)."""
        ...

    def document_sources(self) -> dict[str, str]:
        """doc_id -> the source (path, or `path:line` for tickets) it was loaded from: a document whose file
        cannot be read this time keeps its previous version."""
        ...

    def begin_write(self) -> int:
        """Called by ingest under the data_dir lock before writing: undo what a killed ingest wrote past the last
        published version and repair duplicate chunk rows; returns how many duplicates were removed."""
        ...

    def vectors_for(self, content_hashes: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors keyed by chunk content hash, so unchanged text is never re-embedded."""
        ...

    def rebuild(self) -> None:
        """Start a full re-index into a fresh index; reads keep seeing the old one until `publish()`."""
        ...

    def publish(self) -> None:
        """Make completed writes live and indexed: after `rebuild()`, swap to the new index (atomically where the
        backend has aliases). Called at the end of every ingest."""
        ...

    def count(self) -> int:
        """Chunks in the published index."""
        ...


@runtime_checkable
class VectorStore(IndexWriter, Searcher, Protocol):
    """A store backend (LanceDB, OpenSearch, a plugin's): one object that is both the ingest's writer and the
    retriever's searcher. `StoreContract` in `ragharness.testing` checks both halves."""


def merge_filters(*layers: dict[str, FilterValue]) -> dict[str, FilterValue]:
    """Later layers win per field (the gold item's filters override the config's)."""
    out: dict[str, FilterValue] = {}
    for layer in layers:
        out.update(layer)
    return out


MIN_SCORE = 0.001
"""OpenSearch's floor for a normalised score (the lowest of a min-max list is not 0), matched so both paths rank
the same."""


def _normalised(scores: Sequence[float], technique: str) -> list[float]:
    if not scores:
        return []
    if technique == "l2":
        norm = math.sqrt(sum(s * s for s in scores))
        return [s / norm if norm else MIN_SCORE for s in scores]
    lo, hi = min(scores), max(scores)
    if hi == lo:
        return [1.0 for _ in scores]
    return [((s - lo) / (hi - lo)) or MIN_SCORE for s in scores]


def fuse(lists: Sequence[Sequence[tuple[str, float]]], fusion: Fusion, k: int) -> list[tuple[str, float]]:
    """Fuse the hybrid query's sub-query results, `lists` = [BM25, vector], each (id, score) best first, the way
    OpenSearch's processors do: `rrf` sums weight / (rrf_k + rank); `linear` normalises each list (min-max or L2)
    and takes the weighted arithmetic mean (a document missing from a list scores 0 there). Ties keep first-seen
    order. The client-side path of both stores and the golden pipeline bodies describe this one computation."""
    scores: dict[str, float] = {}
    weights = fusion.weights
    for ranking, weight in zip(lists, weights, strict=False):
        if fusion.method == "rrf":
            for rank, (key, _) in enumerate(ranking, start=1):
                scores[key] = scores.get(key, 0.0) + weight / (fusion.rrf_k + rank)
        else:
            for (key, _), value in zip(
                ranking, _normalised([s for _, s in ranking], fusion.normalization), strict=True
            ):
                scores[key] = scores.get(key, 0.0) + weight * value
    if fusion.method == "linear":
        total = sum(weights[: len(lists)]) or 1.0
        scores = {key: value / total for key, value in scores.items()}
    return sorted(scores.items(), key=lambda kv: -kv[1])[:k]
