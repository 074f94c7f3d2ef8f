"""Corpora that live in S3: `corpus.path: s3://bucket/prefix`, behind the same CorpusSource calls as a folder.

- Listing is paginated (ListObjectsV2); include/exclude globs apply to the key below the prefix, as to a path
  below a folder; `<key>.meta.yaml` sidecars and front matter work as for local files.
- Each object's ETag and size are kept in `data_dir/corpus-objects.json` with the documents it produced: an
  object whose ETag and size are unchanged is not downloaded again (its documents count as seen, unchanged).
- Downloads are streamed and capped at `corpus.max_file_bytes` + 1 bytes; a failed download is a skipped file
  with the service's message (its previous documents are kept), and the rest is ingested.

Credentials come only from the standard AWS chain.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ragharness.core.errors import IngestError
from ragharness.core.fileio import atomic_write_text
from ragharness.ingest.loaders import SourceRef, glob_match


class S3Source:
    def __init__(self, uri: str, include: list[str], exclude: list[str], *, client: Any = None) -> None:
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise IngestError(f"corpus.path {uri!r}: give a bucket, e.g. s3://my-bucket/docs")
        self.uri = uri
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.include = include
        self.exclude = exclude
        self._client = client
        self._keys: set[str] = set()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def files(self) -> Iterator[SourceRef]:
        from botocore.exceptions import BotoCoreError, ClientError

        objects: list[tuple[str, int, str]] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    rel = str(obj["Key"])[len(self.prefix) :]
                    if rel and not rel.endswith("/"):
                        self._keys.add(rel)
                        objects.append((rel, int(obj["Size"]), str(obj.get("ETag", "")).strip('"')))
        except (ClientError, BotoCoreError) as exc:
            raise IngestError(
                f"{self.uri}: cannot list the corpus ({exc}); check the bucket, prefix and credentials"
            ) from exc
        for rel, size, etag in sorted(objects):
            if any(glob_match(rel, p) for p in self.exclude) or not any(glob_match(rel, p) for p in self.include):
                continue
            yield SourceRef(rel, size, etag)

    def _get(self, rel: str, limit: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + rel)["Body"]
            try:
                return bytes(body.read(limit + 1))  # streamed: never more than the limit + 1 bytes
            finally:
                body.close()
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise OSError(errno.EIO, f"s3 {err.get('Code', 'error')}: {err.get('Message', '')}") from exc
        except BotoCoreError as exc:
            raise OSError(errno.EIO, f"s3: {exc}") from exc

    def read(self, ref: SourceRef, limit: int) -> bytes:
        return self._get(ref.path, limit)

    def sidecar(self, ref: SourceRef) -> bytes | None:
        side = f"{ref.path}.meta.yaml"
        return self._get(side, 1_000_000) if side in self._keys else None


class ObjectEntry(BaseModel):
    version: str
    size: int
    doc_ids: list[str] = Field(default_factory=list)


class ObjectIndex:
    """What each corpus object was (ETag, size) and which documents it gave, kept between ingests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, ObjectEntry] = {}
        if path.is_file():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self.entries = {k: ObjectEntry.model_validate(v) for k, v in raw.items()}
            except (ValueError, TypeError):
                self.entries = {}  # damaged: every object is downloaded once more, nothing is lost

    def unchanged(self, ref: SourceRef) -> list[str] | None:
        """The documents of an object whose ETag and size are as last time (None: download it)."""
        entry = self.entries.get(ref.path)
        if not ref.version or entry is None or (entry.version, entry.size) != (ref.version, ref.size):
            return None
        return entry.doc_ids

    def save(self, entries: dict[str, ObjectEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({k: v.model_dump() for k, v in sorted(entries.items())}))
