"""Where finished runs live: a local folder (default) or S3 (bucket/prefix). Runs are the source of truth; the
history index, comparisons and dashboards are built from them.

S3 layout per run keeps prompts, responses, scores and fixtures apart, so every request has a lineage:

    <prefix>/<run_id>/run.json, summary.json, report.html
    <prefix>/<run_id>/prompts/requests.jsonl
    <prefix>/<run_id>/responses/generations.jsonl, judge_calls.jsonl
    <prefix>/<run_id>/scores/scores.jsonl, calibration.json, labels.jsonl
    <prefix>/<run_id>/fixtures/config.yaml, goldset.json, context_packs.jsonl, ingest.json
    <prefix>/<run_id>/audit/guardrails.jsonl
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ragharness.errors import RunError
from ragharness.runs.rundir import RunDir

LAYOUT = {
    "requests.jsonl": "prompts",
    "generations.jsonl": "responses",
    "judge_calls.jsonl": "responses",
    "scores.jsonl": "scores",
    "calibration.json": "scores",
    "labels.jsonl": "scores",
    "annotation_keys.json": "scores",
    "config.yaml": "fixtures",
    "goldset.json": "fixtures",
    "context_packs.jsonl": "fixtures",
    "ingest.json": "fixtures",
    "guardrails.jsonl": "audit",
}


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")


def check_run_id(run_id: str, location: str) -> str:
    """A run id names a run inside the store: no path separators, no `..`, nothing outside the store."""
    if not _RUN_ID.match(run_id) or ".." in run_id:
        raise RunError(
            f"{run_id!r}: not a run id of the run store {location}; give the id of a run inside it "
            "(its folder name, e.g. 20260101-020000-support-ab12)"
        )
    return run_id


@runtime_checkable
class RunStore(Protocol):
    @property
    def location(self) -> str: ...

    def list_runs(self) -> list[str]: ...

    def open(self, run_id: str) -> RunDir:
        """A local RunDir for the run (downloaded first where the store is remote)."""
        ...

    def save(self, run: RunDir) -> None:
        """Keep a finished run in the store."""
        ...


class LocalRunStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def list_runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "run.json").is_file())

    def open(self, run_id: str) -> RunDir:
        check_run_id(run_id, self.location)
        path = self.root / run_id
        if not (path / "run.json").is_file():
            raise RunError(f"{run_id}: no such run in the run store {self.location}")
        return RunDir.open(path)

    def save(self, run: RunDir) -> None:
        dest = self.root / run.manifest().run_id
        if run.path.resolve() != dest.resolve():
            shutil.copytree(run.path, dest, dirs_exist_ok=True)


class S3RunStore:
    def __init__(self, bucket: str, prefix: str, cache_dir: Path, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_dir = cache_dir
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, run_id: str, name: str) -> str:
        folder = LAYOUT.get(name)
        parts = [self.prefix, run_id, folder, name] if folder else [self.prefix, run_id, name]
        return "/".join(p for p in parts if p)

    def list_runs(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        base = f"{self.prefix}/" if self.prefix else ""
        runs = set()
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(base) :]
                run_id, _, name = rest.partition("/")
                if name == "run.json":
                    runs.add(run_id)
        return sorted(runs)

    def save(self, run: RunDir) -> None:
        run_id = run.manifest().run_id
        for file in sorted(run.path.iterdir()):
            if file.is_file() and not file.name.startswith("."):  # temp files and the run's lock stay local
                self.client.upload_file(str(file), self.bucket, self.key(run_id, file.name))

    def open(self, run_id: str) -> RunDir:
        check_run_id(run_id, self.location)
        dest = self.cache_dir / run_id
        dest.mkdir(parents=True, exist_ok=True)
        base = f"{self.prefix}/{run_id}/" if self.prefix else f"{run_id}/"
        paginator = self.client.get_paginator("list_objects_v2")
        found = False
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                name = obj["Key"].rsplit("/", 1)[-1]
                self.client.download_file(self.bucket, obj["Key"], str(dest / name))
                found = True
        if not found:
            raise RunError(f"{self.location}/{run_id}: no such run in the store")
        return RunDir.open(dest)


def open_run_store(location: str, cache_dir: Path) -> RunStore:
    """`s3://bucket/prefix` or a local folder."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        return S3RunStore(bucket, prefix, cache_dir)
    return LocalRunStore(Path(location))
