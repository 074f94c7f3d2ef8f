"""The batch seam: what every batch backend (Bedrock batch inference, the OpenAI Batch API, a plugin's) implements,
and the records that cross it.

Records are opaque here: a key and a model-input body go in, a key and a model-output body (or an error) come out.
What a body means (a Converse request, a chat completion, an embedding request) belongs to the caller, so one job
machinery serves candidates, the judge and batch embedding alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from ragharness.core.types import Frozen

JobStatus = Literal["pending", "running", "completed", "partial", "failed", "expired", "stopped"]
ENDED: frozenset[str] = frozenset({"completed", "partial", "failed", "expired", "stopped"})


class JobLimits(Frozen):
    """A provider's quotas for one job; the job machinery splits a round into as many jobs as they require."""

    min_records: int = Field(1, ge=1, description="Fewer records than this and the provider rejects the job.")
    max_records: int = Field(50_000, ge=1)
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1024, description="Largest input file the provider accepts.")


class BatchRecord(Frozen):
    key: str = Field(description="Unique within a job: the request hash (the response cache's key).")
    body: dict[str, Any]
    estimate_usd: float = Field(0.0, ge=0, description="Estimated cost at the batch price (for the budget).")


class RecordError(Frozen):
    code: str
    message: str
    retryable: bool = True


class RecordResult(Frozen):
    key: str
    output: dict[str, Any] | None = None
    error: RecordError | None = None


class JobState(Frozen):
    status: JobStatus
    total: int | None = None
    done: int = 0
    failed: int = 0
    message: str = Field("", description="The provider's own words about the job (why it failed or expired).")

    @property
    def ended(self) -> bool:
        return self.status in ENDED


def keyed_line(line: str, key_field: str) -> tuple[str, dict[str, Any]] | RecordResult | None:
    """An output line's key and object; a line that is not JSON but still shows its key is a MalformedOutput
    result (so the record is retried, not lost); None for a blank line or one without a readable key."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
        return str(data[key_field]), data
    except (ValueError, KeyError, TypeError):
        m = re.search(rf'"{re.escape(key_field)}"\s*:\s*"([^"]+)"', line)
        if not m:
            return None
        return RecordResult(key=m.group(1), error=RecordError(code="MalformedOutput", message="unreadable output line"))


@runtime_checkable
class BatchBackend(Protocol):
    """One provider's batch API for one model. Every method is one provider call (or a streamed download)."""

    @property
    def name(self) -> str:
        """What the jobs run on, for messages (e.g. 'bedrock:amazon.nova-lite-v1:0')."""
        ...

    @property
    def limits(self) -> JobLimits: ...

    def encode(self, record: BatchRecord) -> str:
        """One line of the provider's input file (no newline), e.g. {"recordId", "modelInput"} for Bedrock."""
        ...

    def upload(self, job_name: str, shard: Path) -> str:
        """Put the shard where the provider reads it; returns the input reference (an S3 URI, a file id)."""
        ...

    def find(self, job_name: str) -> str | None:
        """The id of a job already created under `job_name` (a crash may come between create and the journal)."""
        ...

    def create(self, job_name: str, input_ref: str) -> str:
        """Create the job; returns its id. Idempotent where the provider allows (a client token from the name)."""
        ...

    def status(self, job_id: str) -> JobState: ...

    def results(self, job_id: str) -> Iterator[RecordResult]:
        """Every record the job answered, streamed (never held whole). A line that cannot be read is yielded as an
        error if its key can be read, else skipped (its record then counts as missing from the output)."""
        ...

    def stop(self, job_id: str) -> None: ...
