"""Incremental ingest: load -> clean -> redact PII -> chunk -> embed only new text -> write; delete what went away.

A document whose content hash is unchanged is not even re-chunked; in a changed document, chunks whose text
is unchanged reuse their stored vector. A file that fails to load (any exception, not only a parse error) is
skipped with its reason, and the previous version of its documents stays in the store (nothing is lost because
one file broke, whether its documents' ids come from the path, front matter or ticket fields).

Safe under faults: one ingest at a time per data_dir (an exclusive lock); new chunks are written before stale
ones are deleted, so a document is never missing; searches read the last published store version, so a reader
never sees an ingest half done, and the next ingest first undoes what a killed one wrote.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.faults import kill_point
from ragharness.core.locking import exclusive
from ragharness.core.progress import NO_PROGRESS, Log, Progress, room_log
from ragharness.core.types import METADATA_FIELDS, Chunk, Document, EmbeddedChunk, Metadata
from ragharness.ingest.batch_embed import Lookup, batch_embedder, prefetch_vectors
from ragharness.ingest.chunking import Chunker, embedding_input
from ragharness.ingest.loaders import CorpusSource, LocalSource, Skipped, load_file, oversized
from ragharness.ingest.s3source import ObjectEntry, ObjectIndex, S3Source
from ragharness.ingest.settings import IngestSettings
from ragharness.retrieval.embedders import Embedder
from ragharness.retrieval.store import IndexWriter

GROUP_CHUNKS = 1024
_LINE = re.compile(r":\d+$")

_LOG = room_log(__name__)


@runtime_checkable
class TextRedactor(Protocol):
    """What ingest needs of a PII redactor (the guardrails' PiiRedactor fits): redacted text, and a signature
    that changes whenever the redaction would (stored with the chunks, so a change re-redacts them)."""

    @property
    def signature(self) -> str: ...

    def redact(self, text: str) -> str: ...


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
    duplicates_repaired: int = Field(0, description="Duplicate chunk rows found and removed before writing.")
    files_unchanged: int = Field(0, description="S3 objects not downloaded: ETag and size as at the last ingest.")
    chunks_batch_embedded: int = Field(0, description="Chunks embedded by a batch job (ingest --batch).")
    redacted: bool = Field(False, description="PII was redacted before chunking: the store holds no raw value.")
    skipped: list[Skipped] = Field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    store: str = ""
    embedder: str = ""
    document_ids: list[str] = Field(default_factory=list)

    def summary_lines(self) -> list[str]:
        lines = [
            f"documents: {self.documents_seen} seen, {self.documents_new} new, {self.documents_changed} changed, "
            f"{self.documents_unchanged} unchanged, {self.documents_removed} removed"
            + (f" ({self.files_unchanged} objects unchanged, not downloaded)" if self.files_unchanged else ""),
            f"chunks: {self.chunks_written} written, {self.chunks_embedded} embedded, {self.chunks_reused} reused, "
            f"{self.chunks_deleted} deleted, {self.chunks_total} in store"
            + (f", {self.duplicates_repaired} duplicate rows repaired" if self.duplicates_repaired else ""),
            f"skipped: {len(self.skipped)}; time: {self.seconds:.2f} s (embedding {self.embed_seconds:.2f} s)",
        ]
        lines += [f"  skipped {s.source}: {s.reason}" for s in self.skipped]
        return lines


def _file_of(source: str) -> str:
    """The corpus file a document came from (`tickets.jsonl:12` -> `tickets.jsonl`)."""
    return _LINE.sub("", source)


class CorpusScan(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    docs: list[Document]
    skipped: list[Skipped]
    skipped_files: set[str]
    kept_ids: set[str] = Field(default_factory=set, description="Documents of objects not downloaded: unchanged.")
    objects: dict[str, ObjectEntry] = Field(default_factory=dict, description="S3: each object's ETag, size, docs.")
    files_unchanged: int = 0


def corpus_source(cfg: IngestSettings) -> CorpusSource:
    if cfg.corpus.path.startswith("s3://"):
        return S3Source(cfg.corpus.path, cfg.corpus.include, cfg.corpus.exclude)
    return LocalSource(cfg.resolve(cfg.corpus.path), cfg.corpus.include, cfg.corpus.exclude)


def load_corpus(cfg: IngestSettings) -> tuple[list[Document], list[Skipped], set[str]]:
    """All documents of the corpus, the skipped files/lines, and the files that were skipped in whole or part
    (their previously stored documents are kept)."""
    scan = scan_corpus(cfg, corpus_source(cfg))
    return scan.docs, scan.skipped, scan.skipped_files


def scan_corpus(cfg: IngestSettings, source: CorpusSource, index: ObjectIndex | None = None) -> CorpusScan:
    """Load the corpus; with an object `index` (S3), objects whose ETag and size are unchanged are not read."""
    limit = cfg.corpus.max_file_bytes
    docs: dict[str, Document] = {}
    scan = CorpusScan(docs=[], skipped=[], skipped_files=set())
    skipped, skipped_files = scan.skipped, scan.skipped_files
    for ref in source.files():
        if isinstance(ref, Skipped):
            skipped.append(ref)
            skipped_files.add(ref.source.rstrip("/"))
            continue
        kept = index.unchanged(ref) if index is not None else None
        if kept is not None:  # not downloaded: its documents are as stored
            scan.kept_ids.update(kept)
            scan.objects[ref.path] = ObjectEntry(version=ref.version, size=ref.size, doc_ids=kept)
            scan.files_unchanged += 1
            continue
        if ref.size > limit:  # checked before reading a byte
            skipped.append(oversized(ref.path, ref.size, limit))
            skipped_files.add(ref.path)
            continue
        try:
            data = source.read(ref, limit)
            side = source.sidecar(ref)
            loaded, skips = load_file(ref, data, cfg.corpus, side)
        except OSError as exc:
            skipped.append(Skipped(source=ref.path, reason=f"unreadable: {exc.strerror or exc}"))
            skipped_files.add(ref.path)
            continue
        except Exception as exc:
            reason = f"could not be loaded ({type(exc).__name__}: {str(exc)[:200]}); the previous version is kept"
            skipped.append(Skipped(source=ref.path, reason=reason))
            skipped_files.add(ref.path)
            continue
        if skips:
            skipped_files.add(ref.path)
        skipped.extend(skips)
        ids = []
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
            ids.append(doc.doc_id)
        if ref.version and not skips:
            scan.objects[ref.path] = ObjectEntry(version=ref.version, size=ref.size, doc_ids=ids)
    scan.docs = list(docs.values())
    return scan


def redact_document(doc: Document, redactor: TextRedactor) -> Document:
    """Every field a prompt, file or report can show, redacted: text, title and metadata values. The content hash
    stays that of the source (it decides re-chunking and is not itself personal data)."""
    meta = doc.metadata
    fields = {f: redactor.redact(getattr(meta, f)) if getattr(meta, f) else "" for f in METADATA_FIELDS}
    tags = tuple(redactor.redact(t) for t in meta.tags)
    return doc.model_copy(
        update={
            "text": redactor.redact(doc.text),
            "title": redactor.redact(doc.title) if doc.title else "",
            "metadata": Metadata(**fields, tags=tags),
        }
    )


def _embed_missing(
    chunks: list[Chunk],
    store: IndexWriter,
    embedder: Embedder,
    batch: int,
    progress: Progress,
    report: IngestReport,
    prefetched: Lookup | None = None,
) -> dict[str, list[float]]:
    """Vectors for every chunk: reused from the store by content hash, taken from a batch job's results
    (`ingest --batch`), else embedded now."""
    reuse = store.vectors_for(sorted({c.content_hash for c in chunks}))
    need = [c for c in chunks if c.content_hash not in reuse]
    unique_need = list({c.content_hash: c for c in need}.values())
    started = time.perf_counter()
    fresh: dict[str, list[float]] = {}
    if prefetched is not None:
        for c in unique_need:
            if (vec := prefetched(c.content_hash)) is not None:
                fresh[c.content_hash] = vec
        unique_need = [c for c in unique_need if c.content_hash not in fresh]
    batched = len(fresh)
    report.chunks_batch_embedded += batched
    for start in range(0, len(unique_need), batch):
        part = unique_need[start : start + batch]
        for c, vec in zip(part, embedder.embed([embedding_input(c) for c in part]), strict=True):
            fresh[c.content_hash] = vec
        progress("embed", min(start + batch, len(unique_need)), len(unique_need))
    report.embed_seconds += time.perf_counter() - started
    report.chunks_embedded += len(unique_need) + batched
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
    cfg: IngestSettings,
    embedder: Embedder,
    store: IndexWriter,
    progress: Progress = NO_PROGRESS,
    *,
    rebuild: bool = False,
    redactor: TextRedactor | None,
    batch: bool = False,
    log: Log = _LOG,
) -> IngestReport:
    """Incremental ingest under the data_dir lock; `rebuild` re-indexes everything into a fresh index and
    publishes it at the end. With a `redactor` (`components.build_redactor(cfg)`, required so that no caller
    forgets it), PII is redacted before chunking and the store holds no raw value."""
    data_dir = cfg.resolve(cfg.data_dir)
    with exclusive(
        data_dir / "ingest.lock",
        f"ingest of {cfg.source_file}",
        who="another ingest",
        hint="wait for it to finish, then run again (a killed holder releases the lock at once)",
    ):
        if batch:
            batch_embedder(cfg, embedder)  # checked before anything is read
        report = _ingest(cfg, embedder, store, progress, rebuild, redactor, log if batch else None)
        watch = getattr(redactor, "watch", None)  # the PII values it found, kept (hashed) for every later run
        if watch is not None:
            watch.save()
        return report


def _batch_vectors(
    cfg: IngestSettings,
    embedder: Embedder,
    store: IndexWriter,
    chunker: Chunker,
    redactor: TextRedactor | None,
    to_write: list[Document],
    log: Callable[[str], None],
) -> Lookup:
    """`ingest --batch`: the chunks to write that the store has no vector for, embedded by batch jobs."""

    def chunks() -> Iterator[Chunk]:
        for doc in to_write:
            try:
                split = chunker.split(redact_document(doc, redactor) if redactor is not None else doc)
            except Exception:  # noqa: S112  # reported (skipped, with its reason) when the ingest chunks it again
                continue
            have = store.vectors_for(sorted({c.content_hash for c in split}))
            yield from (c for c in split if c.content_hash not in have)

    workdir = cfg.resolve(cfg.data_dir) / "batch-ingest"
    return prefetch_vectors(cfg, batch_embedder(cfg, embedder), chunks, workdir, log)


def pii_salt(data_dir: Path) -> bytes:
    """The data dir's secret for pseudonymous ids (made once, kept: the same id maps to the same pseudonym on every
    ingest, so unchanged documents stay unchanged)."""
    file = data_dir / "pii-salt"
    if not file.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another ingest made it first: theirs is used
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
    text = file.read_text(encoding="utf-8").strip()
    if len(text) < 32:  # torn by a kill between create and write: make it again (nothing was stored with it)
        file.unlink(missing_ok=True)
        return pii_salt(data_dir)
    return bytes.fromhex(text)


class Pseudonyms:
    """Structural values (document ids, sources, file names) that carry detected personal data: an id becomes a
    stable salted pseudonym `pii-<hmac>`, a source its redacted text. Values without personal data are kept."""

    def __init__(self, redactor: TextRedactor, salt: bytes) -> None:
        self.redactor = redactor
        self.salt = salt
        self._ids: dict[str, str] = {}

    def id(self, value: str) -> str:
        got = self._ids.get(value)
        if got is None:
            if "[REDACTED_" in self.redactor.redact(value):
                got = "pii-" + hmac.new(self.salt, value.encode(), "sha256").hexdigest()[:20]
            else:
                got = value
            self._ids[value] = got
        return got

    def source(self, value: str) -> str:
        return self.redactor.redact(value) if value else value


def _scan(cfg: IngestSettings, rebuild: bool, redactor: TextRedactor | None) -> tuple[CorpusScan, ObjectIndex | None]:
    """The corpus scanned; for S3, with the object index (not consulted on --rebuild, which reads everything).
    Skip reasons and sources are redacted (a reason may quote the file, a file name may hold an address; both are
    stored), and document ids carrying personal data are replaced by pseudonyms before anything compares them."""
    source = corpus_source(cfg)
    index = ObjectIndex(cfg.resolve(cfg.data_dir) / "corpus-objects.json") if isinstance(source, S3Source) else None
    scan = scan_corpus(cfg, source, None if rebuild else index)
    if redactor is not None:
        names = Pseudonyms(redactor, pii_salt(cfg.resolve(cfg.data_dir)))
        scan.skipped = [
            s.model_copy(update={"reason": redactor.redact(s.reason), "source": names.source(s.source)})
            for s in scan.skipped
        ]
        scan.skipped_files = {names.source(f) for f in scan.skipped_files}
        scan.docs = [
            d.model_copy(update={"doc_id": names.id(d.doc_id), "source": names.source(d.source)}) for d in scan.docs
        ]
        scan.kept_ids = {names.id(i) for i in scan.kept_ids}
        for entry in scan.objects.values():
            entry.doc_ids = [names.id(i) for i in entry.doc_ids]
    return scan, index


def _keeper(
    cfg: IngestSettings, redactor: TextRedactor | None, skipped_files: set[str], sources: dict[str, str]
) -> Callable[[str], bool]:
    """Whether a stored document is kept because its file was skipped this time (damaged, too large, ...)."""
    default_ids = {Path(p).with_suffix("").as_posix() for p in skipped_files}
    if redactor is not None:  # skipped_files hold redacted names: the ids they stand for, as the store keeps them
        names = Pseudonyms(redactor, pii_salt(cfg.resolve(cfg.data_dir)))
        default_ids = {names.id(i) for i in default_ids}

    def kept_because_skipped(doc_id: str) -> bool:
        return _file_of(sources.get(doc_id, "")) in skipped_files or doc_id in default_ids

    return kept_because_skipped


def _ingest(
    cfg: IngestSettings,
    embedder: Embedder,
    store: IndexWriter,
    progress: Progress,
    rebuild: bool,
    redactor: TextRedactor | None,
    batch_log: Callable[[str], None] | None = None,
) -> IngestReport:
    started = time.perf_counter()
    chunker = Chunker(
        embedder,
        cfg.chunking.chunk_size,
        cfg.chunking.chunk_overlap,
        cfg.chunking.markdown_headers,
        salt=redactor.signature if redactor is not None else "",
    )
    scan, index = _scan(cfg, rebuild, redactor)
    docs, skipped, skipped_files = scan.docs, scan.skipped, scan.skipped_files
    store.ensure(embedder.name, embedder.dimension)
    report = IngestReport(
        documents_seen=len(docs) + len(scan.kept_ids),
        documents_unchanged=len(scan.kept_ids),
        skipped=skipped,
        embedder=embedder.name,
        files_unchanged=scan.files_unchanged,
        redacted=redactor is not None,
        duplicates_repaired=store.begin_write(),
    )
    if rebuild:
        store.rebuild()
    existing = store.document_hashes()
    sources = store.document_sources() if skipped_files else {}
    seen = {d.doc_id for d in docs} | scan.kept_ids
    to_write = _changed(docs, existing, chunker, report)

    kept_because_skipped = _keeper(cfg, redactor, skipped_files, sources)

    removed = [d for d in existing if d not in seen and not kept_because_skipped(d)]
    report.documents_removed = len(removed)
    prefetched = batch_log and _batch_vectors(cfg, embedder, store, chunker, redactor, to_write, batch_log)

    # Streamed in groups of documents (~GROUP_CHUNKS chunks each): memory stays flat however large the corpus.
    group: list[Chunk] = []
    group_docs: list[str] = []
    batch = max(1, cfg.embedder.batch_size)

    def flush() -> None:
        vectors = _embed_missing(group, store, embedder, batch, progress, report, prefetched)
        # New chunks first, then the stale ones: a kill in between leaves extra chunks, never missing ones.
        store.upsert([EmbeddedChunk(chunk=c, vector=tuple(vectors[c.content_hash])) for c in group])
        kill_point("ingest:between-upsert-and-delete")
        report.chunks_deleted += store.delete_documents(group_docs, keep_chunk_ids={c.chunk_id for c in group})
        report.chunks_written += len(group)
        progress("write", report.chunks_written, report.chunks_written)
        group.clear()
        group_docs.clear()

    for i, doc in enumerate(to_write, start=1):
        try:
            clean = redact_document(doc, redactor) if redactor is not None else doc
            group.extend(chunker.split(clean))
            group_docs.append(doc.doc_id)
        except Exception as exc:
            report.skipped.append(Skipped(source=doc.source, reason=f"{type(exc).__name__}: {str(exc)[:200]}"))
        progress("chunk", i, len(to_write))
        if len(group) >= GROUP_CHUNKS:
            flush()
    if group or group_docs:
        flush()
    report.chunks_deleted += store.delete_documents(removed)
    kill_point("ingest:before-publish")
    store.publish()
    report.chunks_total = store.count()
    report.store = store.name
    report.document_ids = sorted(seen | {d for d in existing if d not in removed})
    if index is not None:  # after publish: an object counts as ingested only once its documents are in the store
        index.save(scan.objects)
    report.seconds = time.perf_counter() - started
    return report
