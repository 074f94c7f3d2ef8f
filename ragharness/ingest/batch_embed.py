"""`ingest --batch`: the new chunks of a large corpus embedded by Bedrock batch inference (Titan Text Embeddings,
the `InvokeModel` record format: `{"inputText", "dimensions", "normalize"}` in, `{"embedding",
"inputTextTokenCount"}` out; https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html),
through the same journalled job machinery as candidates.

Only chunks whose content hash is not in the store are sent (unchanged chunks are never re-embedded); results are
kept under `data_dir/batch-ingest/` by content hash, so an ingest killed at any point re-attaches to its job, and
a later ingest reuses what a job already returned. What a job could not embed (or fewer chunks than a job's
minimum) is embedded online by the ingest as usual.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

from ragharness.batch import bedrock as batch_bedrock
from ragharness.batch.base import BatchRecord, JobLimits
from ragharness.batch.jobs import JobRunner
from ragharness.batch.results import ResultIndex
from ragharness.core.errors import ConfigError
from ragharness.core.settings import resolve_env
from ragharness.core.types import Chunk
from ragharness.ingest.chunking import embedding_input
from ragharness.ingest.settings import IngestSettings
from ragharness.retrieval.embedders import Embedder, TitanEmbedder

Lookup = Callable[[str], list[float] | None]


def batch_embedder(cfg: IngestSettings, embedder: Embedder) -> TitanEmbedder:
    """The embedder `ingest --batch` needs, or a ConfigError saying what to set."""
    if not isinstance(embedder, TitanEmbedder):
        raise ConfigError(
            f"{cfg.source_file}: ingest --batch embeds through Bedrock batch jobs: set embedder.kind: titan"
        )
    if cfg.batch.bedrock is None:
        raise ConfigError(f"{cfg.source_file}: ingest --batch needs batch.bedrock (s3_uri, role_arn)")
    return embedder


def prefetch_vectors(
    cfg: IngestSettings,
    embedder: TitanEmbedder,
    chunks: Callable[[], Iterator[Chunk]],
    workdir: Path,
    log: Callable[[str], None],
) -> Lookup:
    """Send the chunks' texts as batch rounds (resuming an unfinished one); returns a lookup by content hash."""
    bc = cfg.batch.bedrock
    assert bc is not None
    control, s3 = batch_bedrock.clients(bc.region or embedder.region)
    backend = batch_bedrock.BedrockBatch(
        embedder.model_id,
        s3_uri=bc.s3_uri,
        role_arn=resolve_env(bc.role_arn, what="batch.bedrock.role_arn"),
        bedrock=control,
        s3=s3,
        invocation_type="InvokeModel",
        limits=JobLimits(min_records=bc.min_records, max_records=bc.max_records, max_file_bytes=bc.max_file_bytes),
        timeout_hours=bc.timeout_hours,
    )
    tag = hashlib.sha256(f"{workdir.resolve()}\x00{embedder.name}".encode()).hexdigest()[:8]
    jobs = JobRunner(
        backend,
        workdir,
        "embed",
        tag=tag,
        poll_interval_s=cfg.batch.poll_interval_s,
        max_wait_s=cfg.batch.max_wait_hours * 3600,
        progress=log,
    )
    index = ResultIndex()

    def records(retry_all: bool) -> Iterator[BatchRecord]:
        seen: set[str] = set()
        for c in chunks():
            if c.content_hash in seen or index.settled(c.content_hash, retry_all=retry_all):
                continue
            seen.add(c.content_hash)
            yield BatchRecord(key=c.content_hash, body=embedder.batch_body(embedding_input(c)))

    for rnd in range(cfg.batch.max_rounds):
        index.load(jobs)
        if jobs.unfinished() is None:
            remaining = sum(1 for _ in records(rnd == 0))
            if remaining < backend.limits.min_records:
                if remaining:
                    log(f"ingest --batch: {remaining} chunk(s) embedded online (fewer than a job's minimum)")
                break
        jobs.run_round(functools.partial(records, rnd == 0))
    index.load(jobs)

    def lookup(content_hash: str) -> list[float] | None:
        found = index.get(content_hash)
        if found is None or found[0].output is None:
            return None
        try:
            return embedder.parse_batch_output(found[0].output)
        except ValueError:
            return None  # embedded online instead

    return lookup
