"""Where finished runs live: a local folder (default) or S3 (bucket/prefix). Runs are the source of truth; the
history index, comparisons and dashboards are built from them.

S3 layout per run keeps prompts, responses, scores and fixtures apart, so every request has a lineage:

    <prefix>/<run_id>/run.json, summary.json, report.html
    <prefix>/<run_id>/prompts/requests.jsonl
    <prefix>/<run_id>/responses/generations.jsonl, judge_calls.jsonl
    <prefix>/<run_id>/scores/scores.jsonl, calibration.json, labels.jsonl, votes.jsonl
    <prefix>/<run_id>/fixtures/config.yaml, goldset.json, context_packs.jsonl, ingest.json
    <prefix>/<run_id>/audit/guardrails.jsonl
    <prefix>/<run_id>/reviews/<labels|votes>/<time>-<uuid>.json   one object per human label or vote (append-only)
    <prefix>/_store/<name>                                         store-wide files: API keys (hashed), pinned baselines

Human labels and preference votes are records appended while other reviewers append too: locally one line per
record under a file lock, on S3 one object per record, so two reviewers never overwrite each other.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from ragharness.core.errors import NotFoundError, RunError
from ragharness.core.fileio import atomic_write_text
from ragharness.runs.rundir import RunDir

LAYOUT = {
    "requests.jsonl": "prompts",
    "generations.jsonl": "responses",
    "judge_calls.jsonl": "responses",
    "scores.jsonl": "scores",
    "calibration.json": "scores",
    "labels.jsonl": "scores",
    "votes.jsonl": "scores",
    "annotation_keys.json": "scores",
    "config.yaml": "fixtures",
    "goldset.json": "fixtures",
    "context_packs.jsonl": "fixtures",
    "ingest.json": "fixtures",
    "guardrails.jsonl": "audit",
}


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
_META = re.compile(r"^[a-z][a-z0-9_-]*\.json$")
REVIEW_RECORDS = ("labels.jsonl", "votes.jsonl")
"""Record files reviewers append to while the run is read (see `RunStore.append_record`)."""
META_DIR = "_store"


def _check_meta(name: str) -> str:
    if not _META.match(name):
        raise RunError(f"{name!r}: not a store file name (lower-case letters, digits, '-', '_', ending in .json)")
    return name


def _check_records(name: str) -> str:
    if name not in REVIEW_RECORDS:
        raise RunError(f"{name!r}: records can be appended to {REVIEW_RECORDS} only")
    return name


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

    def versions(self) -> dict[str, str]:
        """Every run id with a token that changes whenever its run.json, summary.json or scores change, so a reader
        can refresh only what changed."""
        ...

    def fetch(self, run_id: str, names: Sequence[str]) -> RunDir:
        """A RunDir holding at least those of `names` the run has, without fetching the rest of a remote run."""
        ...

    def append_record(self, run_id: str, name: str, line: str) -> None:
        """Append one JSON record to the run's `name` (labels.jsonl, votes.jsonl); concurrent appends from any
        number of processes all survive."""
        ...

    def read_records(self, run_id: str, name: str) -> list[str]:
        """Every record appended to (or saved with) the run's `name`, oldest first."""
        ...

    def read_meta(self, name: str) -> str | None:
        """A store-wide file (API keys, pinned baselines), or None."""
        ...

    def write_meta(self, name: str, text: str) -> None: ...

    def update_meta(self, name: str, change: Callable[[str | None], str]) -> str:
        """Read-modify-write a store-wide file so that concurrent changers never lose each other's change: `change`
        gets the current text (None when absent) and returns the new one, which is returned. Locally under the
        store's file lock, on S3 by conditional writes (retried when another writer came first)."""
        ...


M = TypeVar("M", bound=BaseModel)


def read_meta_model(store: RunStore, name: str, model: type[M], what: str, fix: str) -> M:
    """A store-wide JSON file (`_store/<name>`) as `model`, or an empty one when it does not exist; a damaged file
    is a RunError naming it (`what` it should be) and saying what to do (`fix`)."""
    return parse_meta_model(store, name, store.read_meta(name), model, what, fix)


def parse_meta_model(store: RunStore, name: str, text: str | None, model: type[M], what: str, fix: str) -> M:
    if text is None:
        return model()
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise RunError(
            f"{store.location}/{META_DIR}/{name}: not a valid {what} ({exc.errors()[0]['msg']}); {fix}"
        ) from exc


def update_meta_model(
    store: RunStore, name: str, model: type[M], what: str, fix: str, change: Callable[[M], None]
) -> M:
    """`store.update_meta` on a typed store file: `change` edits the current model in place."""
    out: list[M] = []

    def apply(text: str | None) -> str:
        current = parse_meta_model(store, name, text, model, what, fix)
        change(current)
        out[:] = [current]
        return current.model_dump_json(indent=1)

    store.update_meta(name, apply)
    return out[0]


def inside(root: Path, path: Path) -> bool:
    """`path`, with every link followed, lies in `root` (a link in the store may not lead out of it)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


class LocalRunStore:
    """Runs as folders under `root`. Links that lead out of the store are refused: a run folder that is such a
    link is not listed or opened, and a run with such a file inside is not opened."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def list_runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self._run_folders())

    def _run_folders(self) -> list[Path]:
        return [p for p in self.root.iterdir() if (p / "run.json").is_file() and inside(self.root, p)]

    def open(self, run_id: str) -> RunDir:
        check_run_id(run_id, self.location)
        path = self.root / run_id
        if not (path / "run.json").is_file():
            raise NotFoundError(f"{run_id}: no such run in the run store {self.location}")
        outside = [] if inside(self.root, path) else [path]
        outside += [f for f in path.rglob("*") if f.is_symlink() and not inside(self.root, f)]
        if outside:
            raise RunError(
                f"{outside[0]}: a link that leads out of the run store {self.location}; the review app and the "
                "store refuse it (replace the link by the file itself)"
            )
        return RunDir.open(path)

    def save(self, run: RunDir) -> None:
        dest = self.root / run.manifest().run_id
        if run.path.resolve() != dest.resolve():
            shutil.copytree(run.path, dest, dirs_exist_ok=True)

    def versions(self) -> dict[str, str]:
        if not self.root.is_dir():
            return {}
        out = {}
        for p in self._run_folders():
            stamp = []
            for name in ("run.json", "summary.json", "scores.jsonl"):
                try:
                    st = (p / name).stat()
                    stamp.append(f"{st.st_mtime_ns}:{st.st_size}")
                except OSError:
                    stamp.append("-")
            out[p.name] = "|".join(stamp)
        return dict(sorted(out.items()))

    def fetch(self, run_id: str, names: Sequence[str]) -> RunDir:
        return self.open(run_id)

    def append_record(self, run_id: str, name: str, line: str) -> None:
        self.open(run_id).append_line(_check_records(name), line)

    def read_records(self, run_id: str, name: str) -> list[str]:
        return self.open(run_id).read_lines(_check_records(name))

    def read_meta(self, name: str) -> str | None:
        file = self.root / META_DIR / _check_meta(name)
        return file.read_text(encoding="utf-8") if file.is_file() else None

    def write_meta(self, name: str, text: str) -> None:
        folder = self.root / META_DIR
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / _check_meta(name), text)

    def update_meta(self, name: str, change: Callable[[str | None], str]) -> str:
        from filelock import FileLock

        folder = self.root / META_DIR
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f".{_check_meta(name)}.lock"), timeout=60):
            text = change(self.read_meta(name))
            atomic_write_text(folder / name, text)
        return text


class S3RunStore:
    def __init__(self, bucket: str, prefix: str, cache_dir: Path, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.cache_dir = cache_dir
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client
        self._review_bodies: dict[str, str] = {}

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
                if file.name in REVIEW_RECORDS and self._reviews_of(run_id, file.name):
                    continue  # records reviewers appended are in reviews/ (merged into this file on open)
                self.client.upload_file(str(file), self.bucket, self.key(run_id, file.name))

    def _base(self, run_id: str) -> str:
        return f"{self.prefix}/{run_id}/" if self.prefix else f"{run_id}/"

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            obj for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix) for obj in page.get("Contents", [])
        ]

    def versions(self) -> dict[str, str]:
        base = f"{self.prefix}/" if self.prefix else ""
        stamps: dict[str, list[str]] = {}
        for obj in self._objects(base):
            run_id, _, rest = obj["Key"][len(base) :].partition("/")
            name = rest.rsplit("/", 1)[-1]
            if name in ("run.json", "summary.json", "scores.jsonl") and "/reviews/" not in f"/{rest}":
                stamps.setdefault(run_id, []).append(f"{name}:{obj.get('ETag', '')}:{obj.get('Size', 0)}")
        return {
            run_id: hashlib.sha256("|".join(sorted(s)).encode()).hexdigest()[:16]
            for run_id, s in sorted(stamps.items())
            if any(x.startswith("run.json:") for x in s)
        }

    def fetch(self, run_id: str, names: Sequence[str]) -> RunDir:
        check_run_id(run_id, self.location)
        dest = self.cache_dir / run_id
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            target = dest / name
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self.key(run_id, name))["Body"].read()
            except self.client.exceptions.NoSuchKey:
                target.unlink(missing_ok=True)
                if name == "run.json":
                    raise NotFoundError(f"{self.location}/{run_id}: no such run in the store") from None
                continue
            atomic_write_text(target, body.decode("utf-8", errors="replace"))
        return RunDir.open(dest)

    def open(self, run_id: str) -> RunDir:
        check_run_id(run_id, self.location)
        dest = self.cache_dir / run_id
        dest.mkdir(parents=True, exist_ok=True)
        found = False
        for obj in self._objects(self._base(run_id)):
            if "/reviews/" in obj["Key"]:
                continue
            name = obj["Key"].rsplit("/", 1)[-1]
            self.client.download_file(self.bucket, obj["Key"], str(dest / name))
            found = True
        if not found:
            raise NotFoundError(f"{self.location}/{run_id}: no such run in the store")
        for name in REVIEW_RECORDS:  # saved records and every one appended since, as one local file
            lines = self.read_records(run_id, name)
            if lines:
                atomic_write_text(dest / name, "".join(line + "\n" for line in lines))
        return RunDir.open(dest)

    def _reviews_of(self, run_id: str, name: str) -> list[str]:
        return sorted(o["Key"] for o in self._objects(f"{self._base(run_id)}reviews/{name.removesuffix('.jsonl')}/"))

    def append_record(self, run_id: str, name: str, line: str) -> None:
        check_run_id(run_id, self.location)
        _check_records(name)
        # time first so a listing is in write order; the uuid keeps two writers in the same instant apart
        key = f"{self._base(run_id)}reviews/{name.removesuffix('.jsonl')}/{time.time_ns():020d}-{uuid.uuid4().hex}.json"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=line.encode("utf-8"))

    def read_records(self, run_id: str, name: str) -> list[str]:
        check_run_id(run_id, self.location)
        _check_records(name)
        lines: list[str] = []
        try:  # records saved with the run (e.g. labels imported from a CSV before the run was stored)
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(run_id, name))["Body"].read()
            lines += [ln for ln in body.decode("utf-8").splitlines() if ln.strip()]
        except self.client.exceptions.NoSuchKey:
            pass
        for key in self._reviews_of(run_id, name):
            text = self._review_bodies.get(key)
            if text is None:  # each record object is written once and never changed: fetched once
                text = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8").strip()
                self._review_bodies[key] = text
            if text:
                lines.append(text)
        return lines

    def read_meta(self, name: str) -> str | None:
        key = "/".join(p for p in (self.prefix, META_DIR, _check_meta(name)) if p)
        try:
            return str(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8"))
        except self.client.exceptions.NoSuchKey:
            return None

    def write_meta(self, name: str, text: str) -> None:
        key = "/".join(p for p in (self.prefix, META_DIR, _check_meta(name)) if p)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"))

    def update_meta(self, name: str, change: Callable[[str | None], str]) -> str:
        from botocore.exceptions import ClientError

        key = "/".join(p for p in (self.prefix, META_DIR, _check_meta(name)) if p)
        for attempt in range(50):
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=key)
                current, condition = got["Body"].read().decode("utf-8"), {"IfMatch": got["ETag"]}
            except self.client.exceptions.NoSuchKey:
                current, condition = None, {"IfNoneMatch": "*"}
            text = change(current)
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), **condition)
                return text
            except ClientError as exc:
                # another writer came first (412), or wrote at the same instant (409): read again and redo
                if exc.response.get("Error", {}).get("Code") not in (
                    "PreconditionFailed",
                    "ConditionalRequestConflict",
                ):
                    raise
                time.sleep(min(0.5, 0.01 * 2 ** min(attempt, 6)) * (0.5 + uuid.uuid4().int % 1000 / 1000))
        raise RunError(f"{self.location}/{META_DIR}/{name}: other writers kept changing it; try again")


def open_run_store(location: str, cache_dir: Path) -> RunStore:
    """`s3://bucket/prefix` or a local folder."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        return S3RunStore(bucket, prefix, cache_dir)
    return LocalRunStore(Path(location))
