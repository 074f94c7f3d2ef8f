"""Response cache: SQLite keyed by the request hash (provider id, model parameters, prompt id and version, and
the rendered redacted prompt). Only successful responses are stored; errors are never cached."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ragharness.eval.providers.base import ProviderResponse


class ResponseCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, provider TEXT, response TEXT, created_at REAL)"
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> ProviderResponse | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return ProviderResponse.model_validate_json(row[0])

    def put(self, key: str, provider: str, response: ProviderResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, response, created_at) VALUES (?, ?, ?, ?)",
                (key, provider, response.model_dump_json(), time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
