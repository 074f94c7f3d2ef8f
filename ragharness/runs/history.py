"""History index: an embedded SQLite table of run summaries (per run, candidate, intent and metric), built from the
run store and rebuilt from it whenever the index file is missing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ragharness.core.errors import RunError
from ragharness.runs.store import RunStore
from ragharness.runs.summary import CandidateSummary, MetricSummary, RunSummary
from ragharness.scoring.metrics import GUARDRAIL_METRICS, OPS_METRICS

if TYPE_CHECKING:
    from ragharness.runs.rundir import RunDir

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, name TEXT, started_at TEXT, status TEXT, gate TEXT, location TEXT, versions TEXT);
CREATE TABLE IF NOT EXISTS metrics (
  run_id TEXT, candidate TEXT, provider TEXT, prompt TEXT, intent TEXT, metric TEXT, value REAL, n INTEGER,
  ci_low REAL, ci_high REAL, PRIMARY KEY (run_id, candidate, intent, metric));
"""
FETCHED = ("run.json", "summary.json", "config.yaml", "goldset.json")


class RunRow(BaseModel):
    run_id: str
    name: str
    started_at: str
    status: str
    gate: str
    location: str
    versions: dict[str, str] = Field(
        default_factory=dict, description="What explains jumps: gold set, store (corpus) and judge versions."
    )


class MetricRow(BaseModel):
    run_id: str
    candidate: str
    provider: str
    prompt: str
    intent: str
    metric: str
    value: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


class HistoryIndex:
    def __init__(self, path: Path, store: RunStore, *, shared: bool = False, build: bool = True) -> None:
        """`shared`: used from several threads (the review app), the caller serialising access. `build`: fill a new
        index from the store at once (the review app adds runs itself as it reads them)."""
        self.path = path
        self.store = store
        fresh = not path.is_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=not shared)
        if not fresh and self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self.db.executescript("DROP TABLE IF EXISTS runs; DROP TABLE IF EXISTS metrics;")  # an older layout
            fresh = True
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if fresh and build:
            self.rebuild()

    def close(self) -> None:
        self.db.close()

    def rebuild(self) -> int:
        self.db.execute("DELETE FROM runs")
        self.db.execute("DELETE FROM metrics")
        n = 0
        for run_id in self.store.list_runs():
            run = self.store.fetch(run_id, FETCHED)  # not the whole run from a remote store
            if run.file("summary.json").is_file():
                try:
                    self.add(run.path, location=f"{self.store.location}/{run_id}")
                except RunError:
                    continue  # a damaged summary: the run has no point on the charts until it is re-scored
                n += 1
        self.db.commit()
        return n

    def add(self, run_path: Path, location: str = "") -> None:
        from ragharness.runs.rundir import RunDir

        run = RunDir.open(run_path)
        m = run.manifest()
        s = run.read_model("summary.json", RunSummary, f"re-score the run (`ragharness score {run_path}`)")
        self.db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (m.run_id, m.name, m.started_at, m.status, m.gate, location or str(run_path), json.dumps(_versions(run))),
        )
        rows: list[tuple[object, ...]] = []

        def put(c: CandidateSummary | None, intent: str, metric: str, ms: MetricSummary) -> None:
            who = (c.candidate, c.provider, c.prompt) if c else ("", "", "")
            rows.append((m.run_id, *who, intent, metric, ms.mean, ms.n, ms.ci_low, ms.ci_high))

        for c in s.candidates:
            for metric, ms in c.metrics.items():
                put(c, "", metric, ms)
            for intent, metrics in c.by_intent.items():
                for metric, ms in metrics.items():
                    put(c, intent, metric, ms)
            for op in OPS_METRICS:  # the catalog's ops family, over-refusal and cost per 100 items included
                put(c, "", op, MetricSummary(mean=c.value(op), n=c.generations, n_applicable=0, n_errors=0))
        for metric, ms in s.retrieval.items():
            put(None, "", metric, ms)
        for intent, metrics in s.retrieval_by_intent.items():
            for metric, ms in metrics.items():
                put(None, intent, metric, ms)
        for key, rate in s.guardrail.action_rates.items():  # e.g. guardrail:input:blocked
            put(None, "", f"guardrail:{key}", MetricSummary(mean=rate, n=s.n_items, n_applicable=0, n_errors=0))
        for metric in GUARDRAIL_METRICS:
            value = s.guardrail.value(metric)
            put(None, "", metric, MetricSummary(mean=value, n=s.n_items, n_applicable=0, n_errors=0))
        self.db.execute("DELETE FROM metrics WHERE run_id = ?", (m.run_id,))
        self.db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.commit()

    def remove(self, run_id: str) -> None:
        self.db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        self.db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
        self.db.commit()

    def runs(self, name: str | None = None) -> list[RunRow]:
        sql = "SELECT run_id, name, started_at, status, gate, location, versions FROM runs"
        args: tuple[str, ...] = ()
        if name:
            sql += " WHERE name = ?"
            args = (name,)
        cols = ("run_id", "name", "started_at", "status", "gate", "location")
        return [
            RunRow(**dict(zip(cols, r[:6], strict=True)), versions=json.loads(r[6] or "{}"))
            for r in self.db.execute(sql + " ORDER BY started_at", args)
        ]

    def metrics(self, name: str | None = None) -> list[MetricRow]:
        sql = (
            "SELECT m.run_id, candidate, provider, prompt, intent, metric, value, n, ci_low, ci_high FROM metrics m "
            "JOIN runs r ON r.run_id = m.run_id"
        )
        args: tuple[str, ...] = ()
        if name:
            sql += " WHERE r.name = ?"
            args = (name,)
        cols = ("run_id", "candidate", "provider", "prompt", "intent", "metric", "value", "n", "ci_low", "ci_high")
        return [
            MetricRow(**dict(zip(cols, r, strict=True))) for r in self.db.execute(sql + " ORDER BY r.started_at", args)
        ]

    def baseline(self, name: str, *, exclude: str = "") -> RunRow | None:
        """The latest run of this evaluation whose gate passed (or, for plain runs, whose status is pass)."""
        for row in reversed(self.runs(name)):
            if row.run_id != exclude and (row.gate == "pass" or (not row.gate and row.status == "pass")):
                return row
        return None


def _versions(run: RunDir) -> dict[str, str]:
    """Run-level versions whose change explains a jump: the gold set (a hash of its file), the store with its
    table version (a corpus change shows there), the embedder and the judge (provider and prompt version)."""
    out: dict[str, str] = {}
    manifest = run.manifest()
    if manifest.store:
        out["store"] = manifest.store
    if manifest.embedder:
        out["embedder"] = manifest.embedder
    gold = run.file("goldset.json")
    if gold.is_file():
        out["goldset"] = hashlib.sha256(gold.read_bytes()).hexdigest()[:10]
    judge = (run.config_snapshot() or {}).get("judge") if run.file("config.yaml").is_file() else None
    if isinstance(judge, dict) and judge.get("provider"):
        prompt = judge.get("prompt") or {}
        out["judge"] = f"{judge['provider']} {prompt.get('id', '')}@v{prompt.get('version', '')}".strip()
    return out
