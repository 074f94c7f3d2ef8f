"""The run directory: the source of truth. Reports and summaries are pure functions of it.

run.json             manifest: id, config name, status, timings, versions
config.yaml          the validated config (secrets still as ${REFERENCES})
goldset.json         the gold set as used
ingest.json          the report of the ingest that preceded the run (when it ran)
context_packs.jsonl  the locked, redacted, hashed passages per item
requests.jsonl       the redacted rendered prompt per (item, candidate)
generations.jsonl    one line per (item, candidate), appended as each completes
guardrails.jsonl     audit of every guardrail action (types and counts, never values)
scores.jsonl         one Score record per line
summary.json         aggregates and gates
report.html          the side-by-side report
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, Field

from ragharness.errors import RunError
from ragharness.types import ContextPack, Generation, GoldSet, GuardrailAction, Score

M = TypeVar("M", bound=BaseModel)


class RunManifest(BaseModel):
    run_id: str
    name: str
    started_at: str
    finished_at: str = ""
    status: str = "running"
    seconds: float = 0.0
    resumed: int = Field(0, description="How many times the run was resumed.")
    pending: int = Field(0, description="Calls not made yet (budget stop or crash); `--resume` makes them.")
    spent_usd: float = 0.0
    gate: str = Field("", description="Nightly gate verdict: pass, below_threshold, regressed, incomplete.")
    ragharness_version: str = ""
    store: str = ""
    embedder: str = ""
    candidates: list[str] = []
    config_dir: str = Field("", description="Folder of the config file the run was started with.")


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last_sync = 0.0

    @classmethod
    def open(cls, path: Path) -> RunDir:
        if not (path / "run.json").is_file():
            raise RunError(f"{path}: not a run directory (no run.json); pass a directory written by `ragharness run`")
        return cls(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, model: BaseModel) -> None:
        tmp = self.file(name + ".tmp")
        tmp.write_text(model.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, self.file(name))

    def write_yaml(self, name: str, data: object) -> None:
        self.file(name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    def write_jsonl(self, name: str, records: Iterable[BaseModel]) -> None:
        with self.file(name).open("w", encoding="utf-8") as fh:
            for r in records:
                fh.write(r.model_dump_json() + "\n")

    def append(self, name: str, records: Iterable[BaseModel]) -> None:
        """Append and flush to the OS at once (a killed process loses nothing written); fsync at most once a
        second (a power loss loses at most the last second), which keeps thousands of appends cheap."""
        with self._lock, self.file(name).open("a", encoding="utf-8") as fh:
            for r in records:
                fh.write(r.model_dump_json() + "\n")
            fh.flush()
            now = time.monotonic()
            if now - self._last_sync >= 1.0:
                os.fsync(fh.fileno())
                self._last_sync = now

    def read_jsonl(self, name: str, model: type[M]) -> Iterator[M]:
        file = self.file(name)
        if not file.is_file():
            return
        lines = file.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield model.model_validate_json(line)
            except ValueError as exc:
                # A torn last line after a crash is expected; anything else is corruption worth naming.
                if n == len(lines):
                    return
                raise RunError(f"{file}:{n}: unreadable record: {str(exc).splitlines()[0]}") from exc

    def manifest(self) -> RunManifest:
        return RunManifest.model_validate(json.loads(self.file("run.json").read_text(encoding="utf-8")))

    def goldset(self) -> GoldSet:
        return GoldSet.model_validate_json(self.file("goldset.json").read_text(encoding="utf-8"))

    def packs(self) -> list[ContextPack]:
        return list(self.read_jsonl("context_packs.jsonl", ContextPack))

    def generations(self) -> list[Generation]:
        return list(self.read_jsonl("generations.jsonl", Generation))

    def scores(self) -> list[Score]:
        return list(self.read_jsonl("scores.jsonl", Score))

    def judge_calls(self) -> list[Generation]:
        return list(self.read_jsonl("judge_calls.jsonl", Generation))

    def actions(self) -> list[GuardrailAction]:
        return list(self.read_jsonl("guardrails.jsonl", GuardrailAction))
