"""Incremental ingest: load -> clean -> chunk -> embed only new text -> write; delete what went away.

A document whose content hash is unchanged is not even re-chunked; in a changed document, chunks whose text
is unchanged reuse their stored vector. A file that fails to load is skipped with its reason, and the
previous version of its documents stays in the store (nothing is lost because one file broke).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from ragharness.config import HarnessConfig
from ragharness.ingest.chunking import Chunker, embedding_input
from ragharness.ingest.loaders import LocalSource, Skipped, load_file
from ragharness.retrieval.embedders import Embedder
from ragharness.retrieval.store import VectorStore
from ragharness.types import Chunk, Document, EmbeddedChunk

GROUP_CHUNKS = 1024
Progress = Callable[[str, int, int], None]
"""progress(stage, done, total)"""


class IngestReport(BaseModel):
    documents_seen: int = 0
    documents_new: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    skipped: list[Skipped] = Field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    store: str = ""
    embedder: str = ""
    document_ids: list[str] = Field(default_factory=list)

    def summary_lines(self) -> list[str]:
        lines = [
            f"documents: {self.documents_seen} seen, {self.documents_new} new, {self.documents_changed} changed, "
            f"{self.documents_unchanged} unchanged, {self.documents_removed} removed",
            f"chunks: {self.chunks_written} written, {self.chunks_embedded} embedded, {self.chunks_reused} reused, "
            f"{self.chunks_deleted} deleted, {self.chunks_total} in store",
            f"skipped: {len(self.skipped)}; time: {self.seconds:.2f} s (embedding {self.embed_seconds:.2f} s)",
        ]
        lines += [f"  skipped {s.source}: {s.reason}" for s in self.skipped]
        return lines


def _noop(stage: str, done: int, total: int) -> None:
    return None


def load_corpus(cfg: HarnessConfig) -> tuple[list[Document], list[Skipped], set[str]]:
    """All documents of the corpus, the skipped files/lines, and the id prefixes of skipped whole files."""
    source = LocalSource(cfg.resolve(cfg.corpus.path), cfg.corpus.include, cfg.corpus.exclude)
    docs: dict[str, Document] = {}
    skipped: list[Skipped] = []
    skipped_files: set[str] = set()
    for ref in source.files():
        try:
            data = source.read(ref)
            side = source.sidecar(ref)
        except OSError as exc:
            skipped.append(Skipped(source=ref.path, reason=f"unreadable: {exc.strerror or exc}"))
            skipped_files.add(Path(ref.path).with_suffix("").as_posix())
            continue
        loaded, skips = load_file(ref, data, cfg.corpus, side)
        if skips and not loaded:
            skipped_files.add(Path(ref.path).with_suffix("").as_posix())
        skipped.extend(skips)
        for doc in loaded:
            if doc.doc_id in docs:
                skipped.append(
                    Skipped(
                        source=doc.source,
                        reason=f"duplicate document id {doc.doc_id!r} (first seen in {docs[doc.doc_id].source}); "
                        "give it a unique `id` in its front matter",
                    )
                )
                continue
            docs[doc.doc_id] = doc
    return list(docs.values()), skipped, skipped_files


def _embed_missing(
    chunks: list[Chunk], store: VectorStore, embedder: Embedder, batch: int, progress: Progress, report: IngestReport
) -> dict[str, list[float]]:
    """Vectors for every chunk: reused from the store by content hash, embedded only when new."""
    reuse = store.vectors_for(sorted({c.content_hash for c in chunks}))
    need = [c for c in chunks if c.content_hash not in reuse]
    unique_need = list({c.content_hash: c for c in need}.values())
    started = time.perf_counter()
    fresh: dict[str, list[float]] = {}
    for start in range(0, len(unique_need), batch):
        part = unique_need[start : start + batch]
        for c, vec in zip(part, embedder.embed([embedding_input(c) for c in part]), strict=True):
            fresh[c.content_hash] = vec
        progress("embed", min(start + batch, len(unique_need)), len(unique_need))
    report.embed_seconds += time.perf_counter() - started
    report.chunks_embedded += len(unique_need)
    report.chunks_reused += len(chunks) - len(need)
    return {**reuse, **fresh}


def _changed(docs: list[Document], existing: dict[str, str], chunker: Chunker, report: IngestReport) -> list[Document]:
    """Documents to (re)write: new ones and those whose content or chunking changed."""
    out: list[Document] = []
    for doc in docs:
        old = existing.get(doc.doc_id)
        if old == chunker.doc_hash(doc):
            report.documents_unchanged += 1
            continue
        out.append(doc)
        if old is None:
            report.documents_new += 1
        else:
            report.documents_changed += 1
    return out


def ingest(
    cfg: HarnessConfig,
    embedder: Embedder,
    store: VectorStore,
    progress: Progress = _noop,
    *,
    rebuild: bool = False,
) -> IngestReport:
    """Incremental ingest; `rebuild` re-indexes everything into a fresh index and publishes it at the end."""
    started = time.perf_counter()
    chunker = Chunker(embedder, cfg.chunking.chunk_size, cfg.chunking.chunk_overlap, cfg.chunking.markdown_headers)
    docs, skipped, skipped_files = load_corpus(cfg)
    store.ensure(embedder.name, embedder.dimension)
    if rebuild:
        store.rebuild()
    existing = store.document_hashes()
    report = IngestReport(documents_seen=len(docs), skipped=skipped, embedder=embedder.name)
    seen = {d.doc_id for d in docs}
    to_write = _changed(docs, existing, chunker, report)

    def kept_because_skipped(doc_id: str) -> bool:
        return any(doc_id == p or doc_id.startswith(p + "/") for p in skipped_files)

    removed = [d for d in existing if d not in seen and not kept_because_skipped(d)]
    report.documents_removed = len(removed)

    # Streamed in groups of documents (~GROUP_CHUNKS chunks each): memory stays flat however large the corpus.
    group: list[Chunk] = []
    group_docs: list[str] = []
    batch = max(1, cfg.embedder.batch_size)

    def flush() -> None:
        vectors = _embed_missing(group, store, embedder, batch, progress, report)
        report.chunks_deleted += store.delete_documents(group_docs)
        store.upsert([EmbeddedChunk(chunk=c, vector=tuple(vectors[c.content_hash])) for c in group])
        report.chunks_written += len(group)
        progress("write", report.chunks_written, report.chunks_written)
        group.clear()
        group_docs.clear()

    for i, doc in enumerate(to_write, start=1):
        try:
            group.extend(chunker.split(doc))
        except ValueError as exc:
            report.skipped.append(Skipped(source=doc.source, reason=str(exc)))
        group_docs.append(doc.doc_id)
        progress("chunk", i, len(to_write))
        if len(group) >= GROUP_CHUNKS:
            flush()
    if group or group_docs:
        flush()
    report.chunks_deleted += store.delete_documents(removed)
    store.publish()
    report.chunks_total = store.count()
    report.store = store.name
    report.document_ids = sorted(seen | {d for d in existing if d not in removed})
    report.seconds = time.perf_counter() - started
    return report
