"""History index: an embedded SQLite table of run summaries (per run, candidate, intent and metric), built from the
run store and rebuilt from it whenever the index file is missing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydantic import BaseModel

from ragharness.errors import RunError
from ragharness.runs.guardrail_summary import GUARDRAIL_METRICS
from ragharness.runs.store import RunStore
from ragharness.runs.summary import RunSummary

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, name TEXT, started_at TEXT, status TEXT, gate TEXT, location TEXT);
CREATE TABLE IF NOT EXISTS metrics (
  run_id TEXT, candidate TEXT, provider TEXT, prompt TEXT, intent TEXT, metric TEXT, value REAL, n INTEGER,
  PRIMARY KEY (run_id, candidate, intent, metric));
"""
OPS = ("cost_usd", "input_tokens", "output_tokens", "latency_p50_ms", "latency_p95_ms", "error_rate")


class RunRow(BaseModel):
    run_id: str
    name: str
    started_at: str
    status: str
    gate: str
    location: str


class MetricRow(BaseModel):
    run_id: str
    candidate: str
    provider: str
    prompt: str
    intent: str
    metric: str
    value: float | None
    n: int


class HistoryIndex:
    def __init__(self, path: Path, store: RunStore, *, shared: bool = False, build: bool = True) -> None:
        """`shared`: used from several threads (the review app), the caller serialising access. `build`: fill a new
        index from the store at once (the review app adds runs itself as it reads them)."""
        self.path = path
        self.store = store
        fresh = not path.is_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=not shared)
        self.db.executescript(_SCHEMA)
        if fresh and build:
            self.rebuild()

    def close(self) -> None:
        self.db.close()

    def rebuild(self) -> int:
        self.db.execute("DELETE FROM runs")
        self.db.execute("DELETE FROM metrics")
        n = 0
        for run_id in self.store.list_runs():
            run = self.store.fetch(run_id, ("run.json", "summary.json"))  # not the whole run from a remote store
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
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
            (m.run_id, m.name, m.started_at, m.status, m.gate, location or str(run_path)),
        )
        rows = []
        for c in s.candidates:
            for metric, ms in c.metrics.items():
                rows.append((m.run_id, c.candidate, c.provider, c.prompt, "", metric, ms.mean, ms.n))
            for intent, metrics in c.by_intent.items():
                for metric, ms in metrics.items():
                    rows.append((m.run_id, c.candidate, c.provider, c.prompt, intent, metric, ms.mean, ms.n))
            for op in OPS:
                rows.append((m.run_id, c.candidate, c.provider, c.prompt, "", op, c.value(op), c.generations))
        for metric, ms in s.retrieval.items():
            rows.append((m.run_id, "", "", "", "", metric, ms.mean, ms.n))
        for intent, metrics in s.retrieval_by_intent.items():
            for metric, ms in metrics.items():
                rows.append((m.run_id, "", "", "", intent, metric, ms.mean, ms.n))
        for key, rate in s.guardrail.action_rates.items():  # e.g. guardrail:input:blocked
            rows.append((m.run_id, "", "", "", "", f"guardrail:{key}", rate, s.n_items))
        for metric in GUARDRAIL_METRICS:
            rows.append((m.run_id, "", "", "", "", metric, s.guardrail.value(metric), s.n_items))
        self.db.execute("DELETE FROM metrics WHERE run_id = ?", (m.run_id,))
        self.db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.commit()

    def remove(self, run_id: str) -> None:
        self.db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        self.db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
        self.db.commit()

    def runs(self, name: str | None = None) -> list[RunRow]:
        sql = "SELECT run_id, name, started_at, status, gate, location FROM runs"
        args: tuple[str, ...] = ()
        if name:
            sql += " WHERE name = ?"
            args = (name,)
        cols = ("run_id", "name", "started_at", "status", "gate", "location")
        return [RunRow(**dict(zip(cols, r, strict=True))) for r in self.db.execute(sql + " ORDER BY started_at", args)]

    def metrics(self, name: str | None = None) -> list[MetricRow]:
        sql = (
            "SELECT m.run_id, candidate, provider, prompt, intent, metric, value, n FROM metrics m "
            "JOIN runs r ON r.run_id = m.run_id"
        )
        args: tuple[str, ...] = ()
        if name:
            sql += " WHERE r.name = ?"
            args = (name,)
        cols = ("run_id", "candidate", "provider", "prompt", "intent", "metric", "value", "n")
        return [
            MetricRow(**dict(zip(cols, r, strict=True))) for r in self.db.execute(sql + " ORDER BY r.started_at", args)
        ]

    def baseline(self, name: str, *, exclude: str = "") -> RunRow | None:
        """The latest run of this evaluation whose gate passed (or, for plain runs, whose status is pass)."""
        for row in reversed(self.runs(name)):
            if row.run_id != exclude and (row.gate == "pass" or (not row.gate and row.status == "pass")):
                return row
        return None
