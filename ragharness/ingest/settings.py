"""The ingest room's settings: the corpus (where, which files, how tickets read, path rules) and chunking, and the
view of harness.yaml an ingest receives (`IngestSettings`)."""

from __future__ import annotations

from pydantic import Field

from ragharness.batch.settings import BatchConfig
from ragharness.core.settings import Located, Strict
from ragharness.core.types import Metadata
from ragharness.retrieval.settings import EmbedderConfig


class PathRule(Strict):
    """Tag every document whose corpus-relative path matches `match` (glob, `**` allowed)."""

    match: str
    metadata: Metadata


class TicketFormat(Strict):
    """How to read a JSONL ticket export: one ticket per line."""

    id_field: str = "id"
    text_fields: list[str] = Field(default_factory=lambda: ["subject", "body"])
    title_field: str = "subject"
    metadata_fields: dict[str, str] = Field(
        default_factory=dict, description="Metadata field -> ticket field, e.g. {product: product}."
    )


class CorpusConfig(Strict):
    path: str = Field(description="Local folder, or s3://bucket/prefix, holding the corpus.")
    include: list[str] = Field(default_factory=lambda: ["**/*.md", "**/*.html", "**/*.htm", "**/*.txt", "**/*.jsonl"])
    exclude: list[str] = Field(default_factory=lambda: ["**/*.meta.yaml"])
    max_file_bytes: int = Field(5_000_000, gt=0, description="Larger files are skipped (checked before reading).")
    redact_pii: bool = Field(
        True,
        description="Redact PII (the offline entities) before chunking, so the store and everything downstream "
        "never hold a detected raw value. False keeps raw text in the store: the README and report say so.",
    )
    tickets: TicketFormat = TicketFormat()
    rules: list[PathRule] = Field(default_factory=list)


class ChunkingConfig(Strict):
    chunk_size: int | None = Field(
        None,
        gt=16,
        description="Tokens (embedder word pieces) per chunk; default: the embedder's input limit.",
    )
    chunk_overlap: int = Field(32, ge=0)
    markdown_headers: bool = True


class IngestSettings(Located):
    """What an ingest reads of harness.yaml: the corpus, chunking, the embedder's batch size, batch jobs (for
    `ingest --batch`) and the data folder (its lock, the ingest state)."""

    corpus: CorpusConfig
    chunking: ChunkingConfig = ChunkingConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    batch: BatchConfig = BatchConfig()
    data_dir: str = ".ragharness"
