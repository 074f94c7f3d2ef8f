"""Response cache: SQLite keyed by the request hash (provider id, model parameters, prompt id and version, and
the rendered redacted prompt). Only successful responses are stored, and only their redacted text (after the
output guardrails): the cache never holds a raw value the guardrails detect. Errors are never cached.

The cache is an optimisation, never a point of failure: if it cannot be opened, read or written (disk full,
locked by another process for too long, a corrupt file), a warning is logged once and the run goes on without
it; a paid call is never lost or repeated because of the cache.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

from ragharness.generation.providers.base import ProviderResponse

log = logging.getLogger("ragharness.cache")
_CACHE_ERRORS = (sqlite3.Error, OSError, ValueError)


class ResponseCache:
    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        self.disabled_reason = ""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=busy_timeout_s)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS responses "
                "(key TEXT PRIMARY KEY, provider TEXT, response TEXT, created_at REAL)"
            )
            self._db = db
        except _CACHE_ERRORS as exc:
            self._disable(exc)

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def _disable(self, exc: BaseException) -> None:
        self.disabled_reason = f"{type(exc).__name__}: {exc}"
        log.warning("response cache %s disabled for this run (%s); calls go on uncached", self.path, exc)
        db, self._db = self._db, None
        if db is not None:
            with contextlib.suppress(sqlite3.Error, OSError):
                db.close()

    def get(self, key: str) -> ProviderResponse | None:
        with self._lock:
            if self._db is None:
                return None
            try:
                row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
                response = ProviderResponse.model_validate_json(row[0]) if row is not None else None
            except _CACHE_ERRORS as exc:
                self._disable(exc)
                return None
        if response is None:
            self.misses += 1
        else:
            self.hits += 1
        return response

    def put(self, key: str, provider: str, response: ProviderResponse) -> None:
        """Store a response whose text has already passed the output guardrails."""
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO responses (key, provider, response, created_at) VALUES (?, ?, ?, ?)",
                    (key, provider, response.model_dump_json(), time.time()),
                )
            except _CACHE_ERRORS as exc:
                self._disable(exc)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error, OSError):
                    self._db.close()
                self._db = None
