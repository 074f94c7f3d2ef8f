"""Rounds of batch jobs that survive a kill at any instant: shard, budget, upload, create, poll, download.

Every step is announced in a journal (`journal.jsonl` in the work folder: one JSON event a line, appended under a
lock, a torn tail cut, fsynced) before anything relies on it, and every step can be taken again:

- killed while sharding (no `sharded` event): the round's shards are written again from the same records;
- killed while uploading or right after creating a job (a `submitting` event, no `created`): the shard is
  uploaded again and the job is looked up by its deterministic name before one is created (Bedrock also gets a
  client token derived from that name), so a job is never created twice and records are never paid for twice;
- killed while polling: the jobs go on at the provider; a resume re-attaches by the ids in `created` events;
- killed while downloading: the output is streamed into a temp file that becomes `results-NNNN.jsonl` only when
  whole (then `downloaded`), so a resume downloads that job's output again.
- results at rest are sealed: each line of a results file is encrypted (Fernet, AES-128-CBC + HMAC) with a key
  that lives in this process's memory only. The model's raw words (before the output guardrails redact them) never
  reach the disk readable, also when a kill comes between download and scrub; a later process cannot read them
  either and downloads that job's output again from the provider.

Records a job did not answer (the job failed, expired or was stopped as a whole, or a line was unreadable) get a
retryable error carrying the provider's message, so the caller can retry them: nothing is dropped.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ragharness.batch.base import BatchBackend, BatchRecord, JobState, RecordError, RecordResult
from ragharness.core.errors import BatchError, BatchTransientError, BatchWaiting
from ragharness.core.faults import kill_point
from ragharness.core.fileio import append_durable, atomic_writer, complete_lines

EventKind = Literal[
    "round", "shard", "sharded", "refused", "submitting", "created", "ended", "downloaded", "finished", "scrubbed"
]
MISSING_CODES = {
    "failed": "BatchJobFailed",
    "expired": "BatchJobExpired",
    "stopped": "BatchJobStopped",
}


class JobEvent(BaseModel):
    event: EventKind
    group: str
    round: int
    shard: int = 0
    records: int = 0
    bytes: int = 0
    estimate_usd: float = 0.0
    job_name: str = ""
    job_id: str = ""
    input_ref: str = ""
    status: str = ""
    message: str = ""
    ok: int = 0
    failed: int = 0
    at: float = Field(default_factory=time.time)


class ShardState(BaseModel):
    index: int
    records: int = 0
    bytes: int = 0
    estimate_usd: float = 0.0
    job_name: str = ""
    submitting: bool = False
    refused: bool = False
    job_id: str = ""
    input_ref: str = ""
    created_at: float = 0.0
    status: str = ""
    message: str = ""
    downloaded: bool = False
    scrubbed: bool = False
    ok: int = 0
    failed: int = 0


class RoundState(BaseModel):
    group: str
    round: int
    sharded: bool = False
    finished: bool = False
    shards: dict[int, ShardState] = Field(default_factory=dict)

    @property
    def jobs(self) -> list[str]:
        return [s.job_id for s in self.shards.values() if s.job_id]

    @property
    def refused(self) -> int:
        """Records in shards the budget refused (never submitted: they stay pending)."""
        return sum(s.records for s in self.shards.values() if s.refused and not s.job_id)


class Journal:
    """The batch journal of one run: every group's rounds, replayed from the events."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: JobEvent) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_durable(self.path, event.model_dump_json())

    def events(self) -> Iterator[JobEvent]:
        for n, line in enumerate(complete_lines(self.path), start=1):
            try:
                yield JobEvent.model_validate_json(line)
            except ValueError as exc:
                raise BatchError(
                    f"{self.path}: line {n}: not a batch journal event ({exc}); the file is damaged"
                ) from exc

    def rounds(self, group: str) -> dict[int, RoundState]:
        out: dict[int, RoundState] = {}
        for e in self.events():
            if e.group != group:
                continue
            rnd = out.setdefault(e.round, RoundState(group=group, round=e.round))
            if e.event == "round":
                rnd.sharded, rnd.finished, rnd.shards = False, False, {}
                continue
            if e.event == "sharded":
                rnd.sharded = True
                continue
            if e.event == "finished":
                rnd.finished = True
                continue
            shard = rnd.shards.setdefault(e.shard, ShardState(index=e.shard))
            _apply(shard, e)
        return out


def _apply(shard: ShardState, e: JobEvent) -> None:
    if e.event == "shard":
        shard.records, shard.bytes, shard.estimate_usd = e.records, e.bytes, e.estimate_usd
    elif e.event == "refused":
        shard.refused = True
    elif e.event == "submitting":
        shard.submitting, shard.job_name, shard.refused = True, e.job_name, False
    elif e.event == "created":
        shard.job_id, shard.input_ref, shard.job_name, shard.created_at = e.job_id, e.input_ref, e.job_name, e.at
    elif e.event == "ended":
        shard.status, shard.message = e.status, e.message
    elif e.event == "downloaded":
        shard.downloaded, shard.ok, shard.failed = True, e.ok, e.failed
    elif e.event == "scrubbed":
        shard.scrubbed = True


def slug(text: str, size: int = 24) -> str:
    """A job-name-safe form of a group name (Bedrock job names: letters, digits, '-', '+', '.'; 63 at most)."""
    clean = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "x"
    if len(clean) <= size:
        return clean
    return f"{clean[: size - 9]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


Reserve = Callable[[float, bool], bool]
"""reserve(estimate_usd, committed) -> whether the job may be submitted; `committed` jobs already exist (resume)
and are only counted."""


def _always(estimate: float, committed: bool) -> bool:
    return True


class JobRunner:
    """One group's batch rounds (a candidate, the judge, an embedding model) under one work folder."""

    def __init__(
        self,
        backend: BatchBackend,
        workdir: Path,
        group: str,
        *,
        tag: str,
        poll_interval_s: float = 60.0,
        max_wait_s: float = 24 * 3600.0,
        progress: Callable[[str], None] | None = None,
        reserve: Reserve = _always,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.workdir = workdir
        self.group = group
        self.tag = tag
        self.poll_interval_s = poll_interval_s
        self.max_wait_s = max_wait_s
        self.progress = progress or (lambda line: None)
        self.reserve = reserve
        self.clock = clock
        self.sleep = sleep
        self.journal = Journal(workdir / "journal.jsonl")
        self.reserved_usd = 0.0
        from cryptography.fernet import Fernet

        self._seal = Fernet(Fernet.generate_key())  # in memory only: see the module docstring
        self._mine: set[tuple[int, int]] = set()
        """Results files this process downloaded (the only ones its key opens)."""

    def open_line(self, raw: bytes) -> bytes:
        """One line of a results file as JSON (the files hold sealed lines)."""
        return self._seal.decrypt(raw.strip())

    # -- where things live -------------------------------------------------------------------------------------
    def round_dir(self, rnd: int) -> Path:
        return self.workdir / slug(self.group, 40) / f"r{rnd}"

    def shard_file(self, rnd: int, shard: int) -> Path:
        return self.round_dir(rnd) / f"shard-{shard:04d}.jsonl"

    def results_file(self, rnd: int, shard: int) -> Path:
        return self.round_dir(rnd) / f"results-{shard:04d}.jsonl"

    def job_name(self, rnd: int, shard: int) -> str:
        return f"rh-{self.tag}-{slug(self.group)}-r{rnd}-s{shard}"

    def _log(self, **fields: object) -> None:
        self.journal.append(JobEvent.model_validate({"group": self.group, **fields}))

    # -- rounds ------------------------------------------------------------------------------------------------
    def rounds(self) -> dict[int, RoundState]:
        return self.journal.rounds(self.group)

    def unfinished(self) -> RoundState | None:
        rounds = self.rounds()
        if rounds:
            last = rounds[max(rounds)]
            if not last.finished:
                return last
        return None

    def run_round(self, records: Callable[[], Iterable[BatchRecord]]) -> RoundState:
        """Finish the group's unfinished round, or start the next one with `records`; returns it finished (every
        job ended and downloaded, or refused by the budget). Raises BatchWaiting past `max_wait_s`."""
        state = self.unfinished()
        if state is None:
            rounds = self.rounds()
            state = RoundState(group=self.group, round=max(rounds, default=0) + 1)
            self._log(event="round", round=state.round)
        if not state.sharded:
            state = self._shard(state, records())
        self._submit(state)
        self._wait(state)
        self._download(state)
        self._log(event="finished", round=state.round)
        state.finished = True
        return state

    def _shard(self, state: RoundState, records: Iterable[BatchRecord]) -> RoundState:
        """Write the round's records into shard files within the provider's limits (one job each); duplicate keys
        go once. The last shard is balanced with the one before it when it would fall under the minimum."""
        folder = self.round_dir(state.round)
        if folder.exists():
            shutil.rmtree(folder)  # a kill while sharding: nothing was submitted from it
        folder.mkdir(parents=True)
        limits = self.backend.limits
        seen: set[str] = set()
        shards: list[tuple[int, int, float]] = []  # records, bytes, estimate of each shard written
        writer: _ShardWriter | None = None
        try:
            for rec in records:
                if rec.key in seen:
                    continue
                seen.add(rec.key)
                line = self.backend.encode(rec) + "\n"
                n = len(line.encode())
                if n > limits.max_file_bytes:
                    raise BatchError(
                        f"{self.backend.name}: record {rec.key} is {n:,} bytes, over the {limits.max_file_bytes:,}-byte"
                        " input file limit; shorten the prompt or run this candidate online"
                    )
                if writer is None or writer.count >= limits.max_records or writer.size + n > limits.max_file_bytes:
                    if writer is not None:
                        shards.append(writer.close())
                    writer = _ShardWriter(self.shard_file(state.round, len(shards) + 1))
                writer.add(rec.key, line, n, rec.estimate_usd)
            if writer is not None:
                shards.append(writer.close())
                writer = None
        finally:
            if writer is not None:
                writer.close()
        shards = self._balance(state.round, shards)
        for index, (count, size, cost) in enumerate(shards, start=1):
            kill_point("batch:sharding")
            self._log(event="shard", round=state.round, shard=index, records=count, bytes=size, estimate_usd=cost)
        self._log(event="sharded", round=state.round)
        return self.rounds()[state.round]

    def _balance(self, rnd: int, shards: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
        minimum = self.backend.limits.min_records
        if len(shards) < 2 or shards[-1][0] >= minimum:
            return shards
        a, b = len(shards) - 1, len(shards)
        lines = [line for i in (a, b) for line in self.shard_file(rnd, i).read_text(encoding="utf-8").splitlines(True)]
        keys = [k for i in (a, b) for k in self.shard_file(rnd, i).with_suffix(".keys").read_text().splitlines(True)]
        half = len(lines) // 2
        total_cost = shards[-2][2] + shards[-1][2]
        out = shards[:-2]
        for i, part, part_keys in ((a, lines[:half], keys[:half]), (b, lines[half:], keys[half:])):
            self.shard_file(rnd, i).write_text("".join(part), encoding="utf-8")
            self.shard_file(rnd, i).with_suffix(".keys").write_text("".join(part_keys), encoding="utf-8")
            out.append((len(part), sum(len(x.encode()) for x in part), total_cost * len(part) / len(lines)))
        return out

    def _submit(self, state: RoundState) -> None:
        for shard in state.shards.values():
            if shard.job_id:
                if not shard.downloaded:
                    self.reserve(shard.estimate_usd, True)  # the job exists: its money is committed
                    self.reserved_usd += shard.estimate_usd
                continue
            if not self.reserve(shard.estimate_usd, False):
                self._log(event="refused", round=state.round, shard=shard.index, estimate_usd=shard.estimate_usd)
                shard.refused = True
                self.progress(
                    f"batch {self.group}: job {shard.index} of round {state.round} not submitted: its estimate "
                    f"${shard.estimate_usd:.4f} exceeds what is left of budget_usd ({shard.records} records pending)"
                )
                continue
            self.reserved_usd += shard.estimate_usd
            name = self.job_name(state.round, shard.index)
            self._log(event="submitting", round=state.round, shard=shard.index, job_name=name)
            kill_point("batch:uploading")
            ref = self.backend.upload(name, self.shard_file(state.round, shard.index))
            kill_point("batch:uploaded")
            # found by its deterministic name first: a job created before a kill, or before the journal was lost, is
            # never paid for twice
            job_id = self.backend.find(name)
            if job_id is None:
                job_id = self.backend.create(name, ref)
            kill_point("batch:created")
            self._log(
                event="created", round=state.round, shard=shard.index, job_name=name, job_id=job_id, input_ref=ref
            )
            shard.job_id, shard.input_ref, shard.job_name, shard.created_at = job_id, ref, name, time.time()
            self.progress(f"batch {self.group}: created job {job_id} ({shard.records:,} records)")

    def _wait(self, state: RoundState) -> None:
        started = self.clock()
        first = min((s.created_at for s in state.shards.values() if s.job_id), default=time.time())
        while True:
            live = [s for s in state.shards.values() if s.job_id and not s.status]
            if not live:
                return
            done = failed = 0
            total = sum(s.records for s in state.shards.values() if s.job_id)
            for shard in state.shards.values():
                if not shard.job_id:
                    continue
                if shard.status:
                    done += shard.records
                    continue
                try:
                    st = self.backend.status(shard.job_id)
                except BatchTransientError as exc:
                    self.progress(f"batch {self.group}: status of {shard.job_id} not read ({exc}); trying again")
                    continue
                kill_point("batch:polling")
                done += st.done
                failed += st.failed
                if st.ended:
                    self._ended(state, shard, st)
            elapsed = time.time() - first
            eta = f" · ETA {_duration(elapsed * (total - done) / done)}" if 0 < done < total else ""
            self.progress(
                f"batch {self.group} round {state.round}: {len(state.jobs)} job(s) · {done:,}/{total:,} records done"
                f" · {failed:,} failed · {_duration(elapsed)} elapsed{eta}"
            )
            if all(s.status for s in state.shards.values() if s.job_id):
                return
            if self.clock() - started >= self.max_wait_s:
                running = [s.job_id for s in state.shards.values() if s.job_id and not s.status]
                raise BatchWaiting(
                    f"batch {self.group}: {len(running)} job(s) still running after {_duration(self.max_wait_s)} "
                    f"(batch.max_wait_hours): {', '.join(running)}; they go on at {self.backend.name}",
                    running,
                )
            self.sleep(self.poll_interval_s)

    def _ended(self, state: RoundState, shard: ShardState, st: JobState) -> None:
        self._log(
            event="ended",
            round=state.round,
            shard=shard.index,
            job_id=shard.job_id,
            status=st.status,
            message=st.message,
        )
        shard.status, shard.message = st.status, st.message
        if st.status in MISSING_CODES:
            self.progress(
                f"batch {self.group}: job {shard.job_id} {st.status} at {self.backend.name}: "
                f"{st.message or 'no message'}; what it answered is kept, the rest is retried"
            )

    def _download(self, state: RoundState) -> None:
        for shard in state.shards.values():
            if not shard.job_id or shard.scrubbed or (state.round, shard.index) in self._mine:
                continue
            self._fetch(state.round, shard)

    def _fetch(self, rnd: int, shard: ShardState) -> None:
        """Download a job's output into a sealed results file (again, when an earlier process downloaded it)."""
        keys = set(self.shard_file(rnd, shard.index).with_suffix(".keys").read_text().split())
        seen: set[str] = set()
        ok = failed = 0

        def put(res: RecordResult) -> None:
            fh.write(self._seal.encrypt(res.model_dump_json().encode()).decode() + "\n")

        with atomic_writer(self.results_file(rnd, shard.index)) as fh:
            for res in self.backend.results(shard.job_id):
                if res.key not in keys or res.key in seen:
                    continue
                seen.add(res.key)
                put(res)
                ok, failed = ok + (res.error is None), failed + (res.error is not None)
                if len(seen) == 1:
                    kill_point("batch:downloading")
            code = MISSING_CODES.get(shard.status, "MissingFromOutput")
            why = shard.message or f"the job ended {shard.status} without answering this record"
            for key in sorted(keys - seen):
                put(RecordResult(key=key, error=RecordError(code=code, message=why[:500])))
                failed += 1
        self._mine.add((rnd, shard.index))
        if not shard.downloaded:
            self._log(event="downloaded", round=rnd, shard=shard.index, job_id=shard.job_id, ok=ok, failed=failed)
            shard.downloaded, shard.ok, shard.failed = True, ok, failed
        kill_point("batch:downloaded")

    # -- results -----------------------------------------------------------------------------------------------
    def result_files(self) -> list[tuple[Path, str]]:
        """Every downloaded results file, oldest round first (a later round's result for a key wins), with the id
        of the job that produced it; a file an earlier process downloaded is downloaded again (its key is gone)."""
        out = []
        for rnd, state in sorted(self.rounds().items()):
            for shard in state.shards.values():
                if shard.downloaded and not shard.scrubbed:
                    if (rnd, shard.index) not in self._mine:
                        self._fetch(rnd, shard)
                    out.append((self.results_file(rnd, shard.index), shard.job_id))
        return out

    def delete_raw_outputs(self) -> int:
        """Delete the downloaded outputs once they are recorded elsewhere (the model's raw words, before the output
        guardrails, must not stay in the run directory). Returns the files removed."""
        removed = 0
        for rnd, state in sorted(self.rounds().items()):
            for shard in state.shards.values():
                if shard.downloaded and not shard.scrubbed:
                    self.results_file(rnd, shard.index).unlink(missing_ok=True)
                    self._log(event="scrubbed", round=rnd, shard=shard.index, job_id=shard.job_id)
                    removed += 1
        return removed

    def results(self) -> Iterator[tuple[RecordResult, str]]:
        """Every downloaded result, streamed, with its job id (see `result_files`)."""
        for path, job_id in self.result_files():
            for line in complete_lines(path):
                yield RecordResult.model_validate_json(self.open_line(line.encode())), job_id


class _ShardWriter:
    """One shard being written: the provider's input lines and, beside them, the keys (read back to download)."""

    def __init__(self, path: Path) -> None:
        self.out = path.open("w", encoding="utf-8")
        self.keys = path.with_suffix(".keys").open("w", encoding="utf-8")
        self.count = self.size = 0
        self.cost = 0.0

    def add(self, key: str, line: str, size: int, cost: float) -> None:
        self.out.write(line)
        self.keys.write(key + "\n")
        self.count, self.size, self.cost = self.count + 1, self.size + size, self.cost + cost

    def close(self) -> tuple[int, int, float]:
        self.out.close()
        self.keys.close()
        return self.count, self.size, self.cost


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
