"""The OpenAI Batch API (`/v1/files` + `/v1/batches`), also served by several OpenAI-compatible gateways.

From the OpenAI API reference (checked 2026-11): the input file is uploaded with `purpose=batch`, one line per
request `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`; a batch holds at most 50,000
requests and an input file at most 200 MB; `completion_window` is `24h`. A batch moves through validating,
in_progress, finalizing to completed, or ends failed, expired or cancelled; `request_counts` says total /
completed / failed. Results come as an output file (one line per answered request: `custom_id` and `response`
with `status_code` and `body`) and an error file (requests that failed); an expired batch still has the output of
what finished. Lines are matched by `custom_id`, never by order.

Control calls are retried by tenacity on 429, 5xx and connection errors, waiting by the harness's one retry policy
(`core.retry`); what still fails is a BatchError with
the endpoint's message. The API key comes only from an environment reference, never stored or logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from ragharness.batch.base import (
    BatchRecord,
    JobLimits,
    JobState,
    JobStatus,
    RecordError,
    RecordResult,
    keyed_line,
)
from ragharness.core.errors import BatchError, BatchTransientError
from ragharness.core.retry import RetryPolicy

LIMITS = JobLimits(min_records=1, max_records=50_000, max_file_bytes=200 * 1024 * 1024)
STATUS: dict[str, JobStatus] = {
    "validating": "pending",
    "in_progress": "running",
    "finalizing": "running",
    "cancelling": "running",
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "stopped",
}
RETRYABLE_STATUS = {408, 409, 429}
CONTROL_RETRY = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=30.0)
"""Control calls (upload, create, poll, download) wait like every other retry of the harness (`core.retry`)."""
_retry = retry(
    retry=retry_if_exception_type(BatchTransientError),
    stop=stop_after_attempt(CONTROL_RETRY.max_attempts),
    wait=lambda state: CONTROL_RETRY.delay(state.attempt_number),
    reraise=True,
)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        return str(err.get("message", err) if isinstance(err, dict) else err)[:500]
    except ValueError:
        return response.text[:500]


class OpenAIBatch:
    """Batch jobs for one model behind an OpenAI-compatible endpoint. `client` is an httpx.Client carrying the
    endpoint's headers (Authorization from an ${ENV} reference)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        client: httpx.Client,
        endpoint: str = "/v1/chat/completions",
        completion_window: str = "24h",
        limits: JobLimits = LIMITS,
        find_pages: int = 10,
    ) -> None:
        self.model = model
        self.base = base_url.rstrip("/")
        self.client = client
        self.endpoint = endpoint
        self.completion_window = completion_window
        self._limits = limits
        self.find_pages = find_pages

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def limits(self) -> JobLimits:
        return self._limits

    @_retry
    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, self.base + path, **kwargs)
        except httpx.TransportError as exc:
            raise BatchTransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
            raise BatchTransientError(f"{what}: HTTP {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise BatchError(f"{what}: HTTP {response.status_code}: {_message(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise BatchTransientError(f"{what}: the response is not JSON") from exc

    def encode(self, record: BatchRecord) -> str:
        line = {"custom_id": record.key, "method": "POST", "url": self.endpoint, "body": record.body}
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False)

    def upload(self, job_name: str, shard: Path) -> str:
        with shard.open("rb") as fh:  # httpx streams the multipart body from the open file
            data = self._call(
                "POST",
                "/files",
                f"upload {shard.name}",
                data={"purpose": "batch"},
                files={"file": (f"{job_name}.jsonl", fh, "application/jsonl")},
            )
        return str(data["id"])

    def find(self, job_name: str) -> str | None:
        after = None
        for _ in range(self.find_pages):  # newest first: a batch created moments before a crash is on page one
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            page = self._call("GET", "/batches", "list batches", params=params)
            for batch in page.get("data", []):
                if (batch.get("metadata") or {}).get("ragharness_job") == job_name:
                    return str(batch["id"])
            if not page.get("has_more") or not page.get("data"):
                return None
            after = page["data"][-1]["id"]
        return None

    def create(self, job_name: str, input_ref: str) -> str:
        body = {
            "input_file_id": input_ref,
            "endpoint": self.endpoint,
            "completion_window": self.completion_window,
            "metadata": {"ragharness_job": job_name},
        }
        return str(self._call("POST", "/batches", f"create batch {job_name} on {self.name}", json=body)["id"])

    def _batch(self, job_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", f"/batches/{job_id}", f"read batch {job_id}")
        return data

    def status(self, job_id: str) -> JobState:
        b = self._batch(job_id)
        counts = b.get("request_counts") or {}
        errors = (b.get("errors") or {}).get("data") or []
        message = "; ".join(str(e.get("message", e)) for e in errors[:3]) if errors else ""
        return JobState(
            status=STATUS.get(str(b.get("status")), "running"),
            total=counts.get("total"),
            done=int(counts.get("completed") or 0) + int(counts.get("failed") or 0),
            failed=int(counts.get("failed") or 0),
            message=message[:1000],
        )

    def results(self, job_id: str) -> Iterator[RecordResult]:
        b = self._batch(job_id)
        for file_id in (b.get("output_file_id"), b.get("error_file_id")):
            if file_id:
                yield from self._lines(str(file_id))

    def _lines(self, file_id: str) -> Iterator[RecordResult]:
        url = f"{self.base}/files/{file_id}/content"
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    cls = (
                        BatchTransientError
                        if response.status_code >= 500 or response.status_code == 429
                        else BatchError
                    )
                    raise cls(f"download {file_id}: HTTP {response.status_code}: {_message(response)}")
                for line in response.iter_lines():
                    result = parse_output_line(line)
                    if result is not None:
                        yield result
        except httpx.TransportError as exc:
            raise BatchTransientError(f"download {file_id}: {type(exc).__name__}: {exc}") from exc

    def stop(self, job_id: str) -> None:
        self._call("POST", f"/batches/{job_id}/cancel", f"cancel batch {job_id}")


def parse_output_line(line: str) -> RecordResult | None:
    read = keyed_line(line, "custom_id")
    if not isinstance(read, tuple):
        return read
    key, data = read
    error = data.get("error")
    response = data.get("response") or {}
    status = int(response.get("status_code") or 0) if isinstance(response, dict) else 0
    if error:
        code = str(error.get("code", "Error")) if isinstance(error, dict) else "Error"
        message = str(error.get("message", error) if isinstance(error, dict) else error)[:500]
        return RecordResult(key=key, error=RecordError(code=code, message=message))
    body = response.get("body") if isinstance(response, dict) else None
    if status != 200 or not isinstance(body, dict):
        err = body.get("error", {}) if isinstance(body, dict) else {}
        message = str(err.get("message", "") if isinstance(err, dict) else err)[:500] or f"status {status}"
        retryable = status in RETRYABLE_STATUS or status >= 500 or status == 0
        return RecordResult(key=key, error=RecordError(code=f"HTTP{status}", message=message, retryable=retryable))
    return RecordResult(key=key, output=body)
