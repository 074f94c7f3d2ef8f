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

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError

from ragharness.core.errors import RunError
from ragharness.core.fileio import atomic_write_text, atomic_writer, cut_torn_tail, guard_disk
from ragharness.core.types import ContextPack, Generation, GoldSet, GuardrailAction, Score
from ragharness.core.yamlio import load_strict
from ragharness.runs.latest import ScoreKey, current_scores

M = TypeVar("M", bound=BaseModel)
V = TypeVar("V")

Stage = Literal["created", "prepared", "generated", "finished"]
RunStatus = Literal["running", "pass", "fail", "incomplete"]
GateVerdict = Literal["", "pass", "below_threshold", "regressed", "incomplete"]
"""How far a run got: `created` (manifest only), `prepared` (locked contexts, requests and blocked items written),
`generated` (every call made or recorded), `finished` (scores, summary and report written)."""


FORMAT_VERSION = 1
"""The layout of a run directory this ragharness writes and reads. 0: written before versions were recorded
(read as 1: the same files). A newer number than this is refused with an upgrade hint, never misread."""


class RunManifest(BaseModel):
    format_version: int = Field(
        0, description="Run directory layout (FORMAT_VERSION when written; 0: before versions were recorded)."
    )
    run_id: str
    name: str
    started_at: str
    finished_at: str = ""
    status: RunStatus = "running"
    stage: Stage = Field("finished", description="How far the run got; a resume continues from there.")
    seconds: float = 0.0
    resumed: int = Field(0, description="How many times the run was resumed.")
    pending: int = Field(0, description="Calls not made yet (budget stop or crash); `--resume` makes them.")
    spent_usd: float = 0.0
    gate: GateVerdict = Field("", description="Nightly gate verdict: pass, below_threshold, regressed, incomplete.")
    ragharness_version: str = ""
    store: str = ""
    embedder: str = ""
    candidates: list[str] = []
    config_dir: str = Field("", description="Folder of the config file the run was started with.")
    selection: str = Field(
        "",
        description="The subset of the gold set this run evaluated (`run --limit/--items/"
        "--intent`), '' for all of it: such a run is for iterating, not for comparing with full runs.",
    )


class JsonlWriter:
    def __init__(self, fh: TextIO) -> None:
        self._fh = fh
        self.count = 0

    def write(self, record: BaseModel) -> None:
        self._fh.write(record.model_dump_json() + "\n")
        self.count += 1


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last_sync = 0.0
        self._checked_tails: set[str] = set()
        self.strict = False  # finished runs: a torn line is damage, not a crash in progress

    @classmethod
    def open(cls, path: Path) -> RunDir:
        if not (path / "run.json").is_file():
            raise RunError(f"{path}: not a run directory (no run.json); pass a directory written by `ragharness run`")
        run = cls(path)
        version = run.manifest().format_version
        if version > FORMAT_VERSION:
            raise RunError(
                f"{run.file('run.json')}: format_version {version}: written by a newer ragharness (this one reads "
                f"up to {FORMAT_VERSION}); upgrade ragharness (`pip install -U ragharness`) to open it"
            )
        return run

    @classmethod
    def open_finished(
        cls,
        path: Path,
        what: str,
        need: tuple[str, ...] = (
            "goldset.json",
            "context_packs.jsonl",
            "generations.jsonl",
            "scores.jsonl",
            "summary.json",
        ),
    ) -> RunDir:
        """A run whose every stage finished, read strictly: a missing, torn or unreadable file among `need` is a
        RunError that names it and says what to do (exit code 3), never a traceback or a silently shorter report."""
        run = cls.open(path)
        run.require_finished(what)
        run.strict = True
        for name in need:
            file = run.file(name)
            if not file.is_file() or file.stat().st_size == 0:
                raise RunError(
                    f"{file}: {'missing' if not file.is_file() else 'empty'}; the run directory is damaged. "
                    f"Re-score it with `ragharness score {path}` if only scores are gone, or start a new run"
                )
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def remove_stale_temps(self) -> None:
        """Delete temp files of writes a killed process never finished (call under the run's lock)."""
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def write_json(self, name: str, model: BaseModel) -> None:
        atomic_write_text(self.file(name), model.model_dump_json(indent=2))

    def write_yaml(self, name: str, data: object) -> None:
        atomic_write_text(self.file(name), yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def write_jsonl(self, name: str, records: Iterable[BaseModel]) -> None:
        with self.writer(name) as out:
            for r in records:
                out.write(r)

    @contextmanager
    def writer(self, name: str) -> Iterator[JsonlWriter]:
        """Stream records into `name`, replacing it atomically when the block ends (see `atomic_writer`)."""
        with atomic_writer(self.file(name)) as fh:
            yield JsonlWriter(fh)

    def _repair_tail(self, file: Path) -> None:
        """A process killed mid-append leaves a torn last line; cut it before appending, or the next record
        would be glued to it and both would be lost."""
        if file.name in self._checked_tails:
            return
        self._checked_tails.add(file.name)
        cut_torn_tail(file)

    def append(self, name: str, records: Iterable[BaseModel]) -> None:
        """Append and flush to the OS at once (a killed process loses nothing written); fsync at most once a
        second (a power loss loses at most the last second), which keeps thousands of appends cheap."""
        file = self.file(name)

        def write() -> None:
            with self._lock:
                self._repair_tail(file)
                with file.open("a", encoding="utf-8") as fh:
                    for r in records:
                        fh.write(r.model_dump_json() + "\n")
                    fh.flush()
                    now = time.monotonic()
                    if now - self._last_sync >= 1.0:
                        os.fsync(fh.fileno())
                        self._last_sync = now

        guard_disk(file, write)

    def append_line(self, name: str, line: str) -> None:
        """Append one record under a lock every process honours (two reviewers, two servers), cutting a torn tail
        a killed writer left first, and fsync before returning: a record acknowledged is a record kept."""
        from filelock import FileLock

        file = self.file(name)
        if "\n" in line.strip():
            raise RunError(f"{file}: a record must be one line")

        def write() -> None:
            with FileLock(str(self.file(f".{name}.lock")), timeout=30), self._lock:
                self._checked_tails.discard(name)
                self._repair_tail(file)
                with file.open("a", encoding="utf-8") as fh:
                    fh.write(line.strip() + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())

        guard_disk(file, write)

    def read_lines(self, name: str) -> list[str]:
        """The complete lines of `name` (a torn last line, a write in progress, is left out)."""
        file = self.file(name)
        if not file.is_file():
            return []
        text = file.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        return [ln for ln in lines[:-1] if ln.strip()]

    def read_jsonl(self, name: str, model: type[M], *, tolerate_torn_tail: bool = True) -> Iterator[M]:
        """Records one by one (streamed). A torn last line after a crash is skipped (unless the run is finished
        and read strictly); a bad line elsewhere is corruption and raises RunError naming file and line."""
        tolerate_torn_tail = tolerate_torn_tail and not self.strict
        file = self.file(name)
        if not file.is_file():
            return
        with file.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if line.endswith("\n") or not tolerate_torn_tail:
                    yield self._parse(file, n, line, model)
                    continue
                try:  # no newline: the last line, possibly torn by a crash mid-append
                    yield self._parse(file, n, line, model)
                except RunError:
                    return

    @staticmethod
    def _parse(file: Path, n: int, line: str, model: type[M]) -> M:
        try:
            return model.model_validate_json(line)
        except ValueError as exc:
            raise RunError(
                f"{file}:{n}: unreadable record ({str(exc).splitlines()[0]}); the run directory is damaged: "
                "restore the file or start a new run"
            ) from exc

    def read_model(self, name: str, model: type[M], hint: str) -> M:
        """A JSON file of the run as a model, or RunError naming the file and what to do (`hint`)."""
        file = self.file(name)
        if not file.is_file():
            raise RunError(f"{file}: missing; {hint}")
        try:
            return model.model_validate_json(file.read_bytes())
        except (ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[1] if len(str(exc).splitlines()) > 1 else str(exc)
            raise RunError(f"{file}: not a valid {name} ({first.strip()}); {hint}") from exc

    def manifest(self) -> RunManifest:
        return self.read_model(
            "run.json", RunManifest, "the run directory is damaged; start a new run (`ragharness run CONFIG`)"
        )

    def goldset(self) -> GoldSet:
        return self.read_model(
            "goldset.json",
            GoldSet,
            f"the run never got past preparation: resume it with `ragharness run CONFIG --resume {self.path}`",
        )

    def config_snapshot(self) -> dict[str, Any]:
        """config.yaml as a mapping ({} if absent); RunError if it is not valid YAML."""
        file = self.file("config.yaml")
        if not file.is_file():
            return {}
        try:
            data = load_strict(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RunError(f"{file}: not valid YAML ({exc}); the run directory is damaged") from exc
        return data if isinstance(data, dict) else {}

    def scoring_overrides(self) -> dict[str, float]:
        """The run's `scoring:` overrides of the scorers' thresholds (what its scores were computed with)."""
        scoring = self.config_snapshot().get("scoring")
        if scoring is not None and not isinstance(scoring, dict):
            raise RunError(f"{self.file('config.yaml')}: scoring: must be a mapping of threshold names to numbers")
        return dict(scoring or {})

    def packs(self) -> list[ContextPack]:
        return list(self.iter_packs())

    def iter_packs(self) -> Iterator[ContextPack]:
        return self.read_jsonl("context_packs.jsonl", ContextPack, tolerate_torn_tail=False)

    def generations(self) -> list[Generation]:
        return list(self.read_jsonl("generations.jsonl", Generation))

    def scores(self) -> list[Score]:
        """Every score record as written (re-scores appended); `current_scores` says which count."""
        return list(self.read_jsonl("scores.jsonl", Score))

    def current_scores(self, *, where: Callable[[Score], bool] | None = None) -> dict[ScoreKey, Score]:
        """The scores that count: the latest record per item, candidate and metric (`where`: only those)."""
        return self.current_views(lambda s: s, where=where)

    def current_views(
        self, view: Callable[[Score], V], *, where: Callable[[Score], bool] | None = None
    ) -> dict[ScoreKey, V]:
        """`current_scores` streamed from scores.jsonl: only `view` of each winner is held (a 10,000-item run's
        report keeps what it shows), only records `where` accepts are read on."""
        scores = self.read_jsonl("scores.jsonl", Score)
        return current_scores(scores if where is None else filter(where, scores), view)

    def judge_calls(self) -> list[Generation]:
        return list(self.read_jsonl("judge_calls.jsonl", Generation))

    def actions(self) -> list[GuardrailAction]:
        return list(self.read_jsonl("guardrails.jsonl", GuardrailAction))

    def require_finished(self, what: str) -> RunManifest:
        """The manifest of a run whose every stage finished, or RunError saying how to finish it."""
        manifest = self.manifest()
        if manifest.stage != "finished":
            raise RunError(
                f"{self.file('run.json')}: the run stopped at stage {manifest.stage!r}, before {what} was possible; "
                f"finish it with `ragharness run CONFIG --resume {self.path}`"
            )
        return manifest
