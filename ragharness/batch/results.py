"""Downloaded batch results found by key: a file offset per key (latest round wins), never all held in memory."""

from __future__ import annotations

import json
from pathlib import Path

from ragharness.batch.base import RecordResult
from ragharness.batch.jobs import JobRunner

OK, RETRYABLE, FINAL = 0, 1, 2


class ResultIndex:
    def __init__(self) -> None:
        self._index: dict[str, tuple[int, int, int, int]] = {}  # key -> (file no., offset, job no., state)
        self._files: list[Path] = []
        self._jobs: list[str] = []
        self._runner: JobRunner | None = None

    def load(self, jobs: JobRunner) -> ResultIndex:
        """Index every downloaded results file of `jobs` (all rounds, oldest first)."""
        self._index.clear()
        self._files.clear()
        self._jobs.clear()
        self._runner = jobs
        for path, job_id in jobs.result_files():
            fno, jno = len(self._files), len(self._jobs)
            self._files.append(path)
            self._jobs.append(job_id)
            with path.open("rb") as fh:
                offset = 0
                for raw in fh:
                    if raw.endswith(b"\n"):
                        data = json.loads(jobs.open_line(raw))
                        err = data.get("error")
                        state = OK if err is None else (RETRYABLE if err.get("retryable", True) else FINAL)
                        self._index[data["key"]] = (fno, offset, jno, state)
                    offset += len(raw)
        return self

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: str) -> tuple[RecordResult, str] | None:
        """The latest result for `key` and the id of the job that gave it."""
        where = self._index.get(key)
        if where is None:
            return None
        fno, offset, jno, _ = where
        assert self._runner is not None
        with self._files[fno].open("rb") as fh:
            fh.seek(offset)
            return RecordResult.model_validate_json(self._runner.open_line(fh.readline())), self._jobs[jno]

    def settled(self, key: str, *, retry_all: bool) -> bool:
        """Whether `key` needs no more sending: answered, or failed for good (unless `retry_all`: a new session
        retries every failure)."""
        where = self._index.get(key)
        if where is None:
            return False
        return where[3] == OK or (where[3] == FINAL and not retry_all)
