"""What the review app knows about the run store: one entry per run (read from run.json, summary.json and
config.yaml only), refreshed from the store's version tokens so only changed runs are read again, the history
index the trend charts come from, and per-run caches (opened runs, per-item outcomes, comparisons).

A run that cannot be read (half-written, damaged, still running) is an entry with status "incomplete" and the
reason: it is listed, never an error page."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from ragharness.analysis.labels import row_id
from ragharness.core.errors import NotFoundError, RagharnessError, RunError
from ragharness.core.types import ContextPack, Generation, GoldItem
from ragharness.reporting.report import headline_metrics
from ragharness.runs.history import HistoryIndex
from ragharness.runs.rundir import RunDir
from ragharness.runs.store import RunStore, check_run_id, update_meta_model
from ragharness.runs.summary import RunSummary
from ragharness.scoring import metrics as metric_catalog

T = TypeVar("T")
HEAD = ("run.json", "summary.json", "config.yaml")


class CandidateEntry(BaseModel):
    candidate: str
    provider: str
    prompt: str
    metrics: dict[str, float | None]
    cost_usd: float
    errors: int
    generations: int
    cached: int = 0
    unpriced: int = 0

    @property
    def calls(self) -> int:
        return self.generations - self.cached


class RunEntry(BaseModel):
    run_id: str
    name: str = ""
    started_at: str = ""
    status: str = "incomplete"
    gate: str = ""
    stage: str = ""
    config_hash: str = Field("", description="First 12 hex digits of the SHA-256 of the run's config.yaml.")
    n_items: int = 0
    candidates: list[CandidateEntry] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list, description="Headline metrics, in the order shown.")
    cost_usd: float = 0.0
    unpriced: int = Field(0, description="Calls (candidates' and judge's) whose cost is unknown.")
    cached: int = Field(0, description="Answers served from the response cache.")
    problem: str = Field("", description="Why the run shows as incomplete ('' when it is readable and finished).")

    @property
    def readable(self) -> bool:
        return not self.problem


class ItemOutcome(BaseModel):
    label: str
    value: float | None


def _entry(run_id: str, run: RunDir) -> RunEntry:
    try:
        m = run.manifest()
    except RagharnessError as exc:
        return RunEntry(run_id=run_id, problem=str(exc))
    entry = RunEntry(run_id=run_id, name=m.name, started_at=m.started_at, status=m.status, gate=m.gate, stage=m.stage)
    config = run.file("config.yaml")
    if config.is_file():
        entry.config_hash = hashlib.sha256(config.read_bytes()).hexdigest()[:12]
    if m.stage != "finished":
        entry.status = "incomplete"
        entry.problem = f"the run stopped at stage {m.stage!r} (still running, or killed): resume it to finish it"
        return entry
    try:
        s = run.read_model("summary.json", RunSummary, "re-score the run (`ragharness score RUN`)")
    except RagharnessError as exc:
        entry.status = "incomplete"
        entry.problem = str(exc)
        return entry
    shown = headline_metrics({k for c in s.candidates for k in c.metrics})
    entry.metrics = shown
    entry.n_items = s.n_items
    entry.cost_usd = s.cost_usd + s.judge_cost_usd
    entry.candidates = [
        CandidateEntry(
            candidate=c.candidate,
            provider=c.provider,
            prompt=c.prompt,
            metrics={k: c.value(k) for k in shown},
            cost_usd=c.cost_usd,
            errors=c.errors,
            generations=c.generations,
            cached=c.cached,
            unpriced=c.unpriced,
        )
        for c in s.candidates
    ]
    entry.unpriced = s.unpriced + s.judge_unpriced
    entry.cached = sum(c.cached for c in s.candidates)
    return entry


class _Lru(OrderedDict[tuple[object, ...], object]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_or(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        with self.lock:
            if key in self:
                self.move_to_end(key)
                return self[key]  # type: ignore[return-value]
        value = make()
        with self.lock:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


class BlindKey(BaseModel):
    key: str = ""


def blind_key(store: RunStore) -> bytes:
    def ensure(k: BlindKey) -> None:
        k.key = k.key or secrets.token_hex(32)

    got = update_meta_model(store, "blind.json", BlindKey, "blind-label key", "delete it (a new one is made)", ensure)
    return bytes.fromhex(got.key)


class RunCatalog:
    def __init__(self, store: RunStore, cache_dir: Path, *, ttl: float = 2.0) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.ttl = ttl
        self.lock = threading.RLock()
        """Held while the entries or the history index (one SQLite connection the app's threads share) change or are
        read."""
        self._versions: dict[str, str] = {}
        self._entries: dict[str, RunEntry] = {}
        self._checked = 0.0
        self.generation = 0
        """Bumped whenever a run is added, changed or removed: the key of caches over all runs (trend charts)."""
        cache_dir.mkdir(parents=True, exist_ok=True)
        index_file = cache_dir / "history.sqlite"
        index_file.unlink(missing_ok=True)  # built from the store by this process; never trusted from before
        self.index = HistoryIndex(index_file, store, shared=True, build=False)
        self._opened = _Lru(32)
        self._outcomes = _Lru(512)
        self._downloading = threading.Lock()
        self._answers = _Lru(8)  # whole runs' answers: a few runs at a time
        self._comparisons = _Lru(64)
        self._blind_key: bytes | None = None

    def row_id(self, run_id: str, item_id: str, candidate: str) -> str:
        """The opaque id of one answer in the app (blind labelling): keyed by the store's secret `_store/blind.json`
        (made once, under the store's lock), which no route ever shows."""
        if self._blind_key is None:
            self._blind_key = blind_key(self.store)
        return row_id(self._blind_key, run_id, item_id, candidate)

    # -- the list ---------------------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        with self.lock:
            if not force and time.monotonic() - self._checked < self.ttl:
                return
            versions = self.store.versions()
            for run_id in set(self._entries) - set(versions):
                self._entries.pop(run_id, None)
                self.index.remove(run_id)
                self.generation += 1
            for run_id, version in versions.items():
                if self._versions.get(run_id) == version and run_id in self._entries:
                    continue
                self._entries[run_id] = self._read(run_id)
                self._versions[run_id] = version
                self.generation += 1
            self._checked = time.monotonic()

    def _read(self, run_id: str) -> RunEntry:
        try:
            run = self.store.fetch(run_id, HEAD)
        except (RagharnessError, OSError) as exc:
            return RunEntry(run_id=run_id, problem=f"cannot be read from the store: {exc}")
        except Exception as exc:  # a remote store's own errors (botocore) say nothing about our data
            return RunEntry(run_id=run_id, problem=f"cannot be read from the store: {type(exc).__name__}")
        entry = _entry(run_id, run)
        if entry.readable:
            try:
                self.index.add(run.path, location=f"{self.store.location}/{run_id}")  # replaces its rows
            except (RagharnessError, ValueError) as exc:
                entry.problem, entry.status = f"summary.json cannot be indexed: {exc}", "incomplete"
        if not entry.readable:
            self.index.remove(run_id)
        return entry

    def entries(self) -> list[RunEntry]:
        self.refresh()
        with self.lock:
            return sorted(self._entries.values(), key=lambda e: (e.started_at, e.run_id), reverse=True)

    def entry(self, run_id: str) -> RunEntry:
        check_run_id(run_id, self.store.location)
        self.refresh()
        with self.lock:
            e = self._entries.get(run_id)
        if e is None:
            raise NotFoundError(f"{run_id}: no such run in the run store {self.store.location}")
        return e

    def version(self, run_id: str) -> str:
        with self.lock:
            return self._versions.get(run_id, "")

    # -- a whole run ------------------------------------------------------------------------------------------
    def open(self, run_id: str) -> RunDir:
        """The whole run (downloaded once per version from a remote store), finished and readable, or RunError."""
        entry = self.entry(run_id)
        if not entry.readable:
            raise RunError(f"run {run_id} is incomplete: {entry.problem}")

        def load() -> RunDir:
            dest = self.cache_dir / "runs" / f"{run_id}@{self.version(run_id)}"
            with self._downloading:  # one download at a time into the store's cache folder
                if dest.is_dir():  # this version was downloaded before (by this or an earlier process)
                    run = RunDir.open(dest)
                else:
                    run = self.store.open(run_id)
                    if run.path.is_relative_to(self.cache_dir):  # a remote store's download: keep versions apart
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        run.path.rename(dest)  # complete: the store wrote every file before open returned
                        run = RunDir.open(dest)
            run.strict = True
            return run

        return self._opened.get_or((run_id, self.version(run_id)), load)

    def outcomes(self, run_id: str) -> dict[tuple[str, str], ItemOutcome]:
        """(item, candidate) -> the latest score of the run's correctness figure (offline correctness, else the
        judge's: `metrics.primary`), what the item view tracks across runs."""

        def load() -> dict[tuple[str, str], ItemOutcome]:
            run = self.open(run_id)
            by_metric: dict[str, dict[tuple[str, str], ItemOutcome]] = {}
            for (item_id, cand, metric), outcome in run.current_views(
                lambda s: ItemOutcome(label=s.label, value=s.value)
            ).items():
                by_metric.setdefault(metric, {})[(item_id, cand)] = outcome
            primary = metric_catalog.primary(by_metric)
            return by_metric[primary] if primary else {}

        return self._outcomes.get_or(("outcomes", run_id, self.version(run_id)), load)

    def gold(self, run_id: str) -> list[GoldItem]:
        return self._answers.get_or(("gold", run_id, self.version(run_id)), lambda: self.open(run_id).goldset().items)

    def item(self, run_id: str, item_id: str) -> GoldItem:
        found = next((i for i in self.gold(run_id) if i.id == item_id), None)
        if found is None:
            raise NotFoundError(f"{item_id}: no such item in run {run_id}; the run's page lists its items")
        return found

    def answers(self, run_id: str) -> dict[str, list[Generation]]:
        """item -> its answers, one per candidate in name order (read once per run version, not per page)."""

        def load() -> dict[str, list[Generation]]:
            out: dict[str, list[Generation]] = {}
            for g in sorted(self.open(run_id).generations(), key=lambda g: g.candidate):
                out.setdefault(g.item_id, []).append(g)
            return out

        return self._answers.get_or(("answers", run_id, self.version(run_id)), load)

    def context_hashes(self, run_id: str) -> dict[str, str]:
        def load() -> dict[str, str]:
            return {p.item_id: p.content_hash for p in self.open(run_id).iter_packs()}

        return self._outcomes.get_or(("packs", run_id, self.version(run_id)), load)

    def pack(self, run_id: str, item_id: str) -> ContextPack | None:
        return next((p for p in self.open(run_id).iter_packs() if p.item_id == item_id), None)

    def cached(self, key: tuple[object, ...], make: Callable[[], T]) -> T:
        """A comparison (or other pure function of finished runs) by a key that includes the runs' versions."""
        return self._comparisons.get_or(key, make)
