"""The batch backend contract every implementation runs (the instant fake, the OpenAI Batch API against a local
server, Bedrock through botocore's Stubber and moto S3), and the instant fake itself: a provider that finishes
each job when first asked, streaming its output to disk, for tests and `benchmarks/batch.py`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ragharness.batch.base import BatchBackend, BatchRecord, JobLimits, JobState, RecordError, RecordResult
from ragharness.batch.jobs import JobRunner

Answer = Callable[[dict[str, Any]], dict[str, Any]]


class InstantBackend:
    """A fake provider batch API: jobs end at their `polls`-th status read, every record answered by `answer`
    (or failed, for keys in `fail_keys`), outputs streamed through files (memory stays flat). `outcome` makes
    jobs end failed or expired instead; `calls` counts every API call by name."""

    def __init__(
        self,
        root: Path,
        answer: Answer,
        *,
        limits: JobLimits | None = None,
        polls: int = 1,
        outcome: str = "completed",
        fail_keys: set[str] | None = None,
    ) -> None:
        self.root = root
        self.answer = answer
        self._limits = limits or JobLimits(min_records=1, max_records=50_000, max_file_bytes=200 * 1024 * 1024)
        self.polls = polls
        self.outcome = outcome
        self.fail_keys = fail_keys or set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}
        root.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        return "instant:fake"

    @property
    def limits(self) -> JobLimits:
        return self._limits

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def encode(self, record: BatchRecord) -> str:
        return json.dumps({"key": record.key, "body": record.body}, separators=(",", ":"))

    def upload(self, job_name: str, shard: Path) -> str:
        self._count("upload")
        target = self.root / f"{job_name}.in.jsonl"
        target.write_bytes(shard.read_bytes())
        return str(target)

    def find(self, job_name: str) -> str | None:
        self._count("find")
        return next((jid for jid, job in self.jobs.items() if job["name"] == job_name), None)

    def create(self, job_name: str, input_ref: str) -> str:
        self._count("create")
        jid = f"job-{len(self.jobs) + 1}"
        self.jobs[jid] = {"name": job_name, "input": input_ref, "polls": self.polls, "status": "running"}
        return jid

    def finish(self, job_id: str) -> None:
        """End the job now (as if it finished while nobody was watching)."""
        job = self.jobs[job_id]
        out = self.root / f"{job_id}.out.jsonl"
        answered = 0
        with open(job["input"], encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
            for line in src:
                rec = json.loads(line)
                if self.outcome == "failed" or (self.outcome == "expired" and answered >= 1):
                    break
                if rec["key"] in self.fail_keys:
                    dst.write(json.dumps({"key": rec["key"], "error": "overloaded"}) + "\n")
                else:
                    dst.write(json.dumps({"key": rec["key"], "output": self.answer(rec["body"])}) + "\n")
                answered += 1
        job["status"] = self.outcome
        job["output"] = str(out)

    def status(self, job_id: str) -> JobState:
        self._count("status")
        job = self.jobs[job_id]
        if job["status"] == "running":
            job["polls"] -= 1
            if job["polls"] <= 0:
                self.finish(job_id)
        message = {"failed": "the input was rejected", "expired": "the job ran out of time"}.get(job["status"], "")
        return JobState(status=job["status"], message=message)

    def results(self, job_id: str) -> Iterator[RecordResult]:
        self._count("results")
        with open(self.jobs[job_id]["output"], encoding="utf-8") as fh:
            for line in fh:
                data = json.loads(line)
                if "error" in data:
                    yield RecordResult(key=data["key"], error=RecordError(code="500", message=data["error"]))
                else:
                    yield RecordResult(key=data["key"], output=data["output"])

    def stop(self, job_id: str) -> None:
        self._count("stop")
        self.jobs[job_id]["status"] = "stopped"


def check_batch_backend(backend: BatchBackend, workdir: Path, records: list[BatchRecord]) -> None:
    """The contract: a round of `records` comes back whole, matched by key (whatever the output order); a job is
    found again by its name; one job per shard."""
    assert isinstance(backend, BatchBackend)
    assert len({r.key for r in records}) == len(records), "give distinct keys"
    jobs = JobRunner(backend, workdir, "contract", tag="c0ffee00", poll_interval_s=0.0, sleep=lambda s: None)
    state = jobs.run_round(lambda: iter(records))
    assert state.finished and len(state.jobs) == len(state.shards) >= 1
    got = {r.key: r for r, _ in jobs.results()}
    assert set(got) == {r.key for r in records}, "every record comes back, matched by key"
    assert all(r.output is not None for r in got.values()), [r.error for r in got.values() if r.error]
    first = state.shards[1]
    assert backend.find(first.job_name) == first.job_id, "a job is found again by its name"
