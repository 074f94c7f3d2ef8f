"""Corpora in S3: the source contract on a local folder and on moto S3 alike; ingest from `s3://` with sidecars
and front matter; unchanged objects (ETag + size) are not downloaded again; one failing object is skipped and the
rest ingested."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from conftest import write
from ragharness.ingest import s3source
from ragharness.ingest.loaders import LocalSource
from ragharness.ingest.pipeline import ingest
from ragharness.ingest.s3source import S3Source
from ragharness.pipeline.components import build_embedder, build_store
from ragharness.pipeline.config import load_config
from ragharness.testing.source import FILES, check_corpus_source


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="corpus")
        yield client


def test_local_folder_meets_the_source_contract(tmp_path: Path) -> None:
    def make(files: dict[str, bytes], include: list[str], exclude: list[str]) -> LocalSource:
        for rel, data in files.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_bytes(data)
        return LocalSource(tmp_path, include, exclude)

    check_corpus_source(make)


def test_s3_prefix_meets_the_source_contract(s3: Any) -> None:
    def make(files: dict[str, bytes], include: list[str], exclude: list[str]) -> S3Source:
        for rel, data in files.items():
            s3.put_object(Bucket="corpus", Key=f"kb/v1/{rel}", Body=data)
        s3.put_object(Bucket="corpus", Key="kb/v10/other.md", Body=b"# not under the prefix kb/v1/\n")
        return S3Source("s3://corpus/kb/v1", include, exclude, client=s3)

    check_corpus_source(make)


def test_listing_is_paginated(s3: Any) -> None:
    for i in range(1005):  # more than one ListObjectsV2 page (1,000 keys)
        s3.put_object(Bucket="corpus", Key=f"many/doc{i:04d}.txt", Body=b"x")
    assert sum(1 for _ in S3Source("s3://corpus/many", ["**/*.txt"], [], client=s3).files()) == 1005


CONFIG = """
name: s3demo
data_dir: data
corpus: {path: "s3://corpus/kb"}
chunking: {chunk_size: 60, chunk_overlap: 8}
embedder: {kind: hashing}
goldset: gold.yaml
candidates: [{name: ext, provider: extractive}]
guardrails: {input: [], output: []}
"""


def test_ingest_from_s3_skips_unchanged_objects_and_records_a_failing_one(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel, data in FILES.items():
        s3.put_object(Bucket="corpus", Key=f"kb/{rel}", Body=data)
    write(tmp_path / "harness.yaml", CONFIG)
    cfg = load_config(tmp_path / "harness.yaml")
    downloads: list[str] = []
    real_get = S3Source._get

    def counting_get(self: S3Source, rel: str, limit: int) -> bytes:
        downloads.append(rel)
        return real_get(self, rel, limit)

    monkeypatch.setattr(S3Source, "_get", counting_get)
    embedder, store = build_embedder(cfg), build_store(cfg)
    first = ingest(cfg.ingest_settings(), embedder, store, redactor=None)
    assert first.documents_new == 4 and not first.skipped  # image.png is not included
    assert "guides/refunds.md.meta.yaml" in downloads  # the sidecar was read with its file

    downloads.clear()
    s3.put_object(Bucket="corpus", Key="kb/guides/deep/limits.txt", Body=b"The free plan includes 10 GB.\n")
    second = ingest(cfg.ingest_settings(), embedder, store, redactor=None)
    assert downloads == ["guides/deep/limits.txt"], downloads  # only the changed object was downloaded
    assert (second.files_unchanged, second.documents_changed, second.documents_removed) == (3, 1, 0)
    assert "3 objects unchanged, not downloaded" in second.summary_lines()[0]

    def failing_get(self: S3Source, rel: str, limit: int) -> bytes:
        if rel == "tickets.jsonl":
            raise OSError(5, "s3 InternalError: we encountered an internal error")
        return real_get(self, rel, limit)

    monkeypatch.setattr(S3Source, "_get", failing_get)
    s3.put_object(
        Bucket="corpus", Key="kb/tickets.jsonl", Body=b'{"id": "T1", "subject": "Locked", "body": "30 min"}\n'
    )
    s3.put_object(Bucket="corpus", Key="kb/guides/new.md", Body=b"# New\n\nA new guide.\n")
    third = ingest(cfg.ingest_settings(), embedder, store, redactor=None)
    assert [(s.source, "InternalError" in s.reason) for s in third.skipped] == [("tickets.jsonl", True)]
    assert third.documents_new == 1 and third.documents_removed == 0  # the failing object's documents are kept
    assert "tickets/T1" in third.document_ids
    assert s3source.ObjectIndex(tmp_path / "data" / "corpus-objects.json").entries["guides/new.md"].doc_ids
