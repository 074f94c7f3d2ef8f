"""Amazon Bedrock batch inference (`CreateModelInvocationJob`): input and output as JSONL in S3.

Formats and quotas, from the Bedrock user guide (checked 2026-11):
- Input: one JSON object a line, `{"recordId": ..., "modelInput": {...}}`; with `modelInvocationType: Converse`
  the model input is a Converse request body, so one request format serves every model
  (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html).
- Output: one `<input file>.out` per input file under `<output URI>/<job id>/`, each line the record with
  `modelOutput` (a Converse response) or `error: {errorCode, errorMessage}`; output order is not guaranteed,
  records are matched by `recordId` (https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html).
- Quotas (https://docs.aws.amazon.com/general/latest/gr/bedrock.html#limits_bedrock, "Minimum number of records
  per batch inference job", "Records per input file per batch inference job", "Batch inference input file size"):
  defaults of 100 records minimum, 50,000 records per file and job, 1 GB per input file. They differ by model and
  can be raised: `batch.bedrock.min_records / max_records / max_file_bytes` override them.
- Job statuses: Submitted, Validating, Scheduled, InProgress, Completed, PartiallyCompleted, Failed, Stopping,
  Stopped, Expired (the botocore service model's ModelInvocationJobStatus).

The control-plane client uses botocore's `standard` retry mode, so throttled create/get calls are retried by
botocore; what still fails is a BatchError carrying the service's message. Credentials come only from the standard
AWS chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragharness.batch.base import (
    BatchRecord,
    JobLimits,
    JobState,
    JobStatus,
    RecordError,
    RecordResult,
    keyed_line,
)
from ragharness.core.errors import AWS_RATE_LIMIT_CODES, AWS_TRANSIENT_CODES, BatchError, BatchTransientError

LIMITS = JobLimits(min_records=100, max_records=50_000, max_file_bytes=1024**3)
STATUS: dict[str, JobStatus] = {
    "Submitted": "pending",
    "Validating": "pending",
    "Scheduled": "pending",
    "InProgress": "running",
    "Stopping": "running",
    "Completed": "completed",
    "PartiallyCompleted": "partial",
    "Failed": "failed",
    "Stopped": "stopped",
    "Expired": "expired",
}
RETRYABLE_RECORD_CODES = {"429", "500", "502", "503", "504", "408"} | AWS_RATE_LIMIT_CODES | AWS_TRANSIENT_CODES


def clients(region: str | None, profile: str | None = None) -> tuple[Any, Any]:
    """The Bedrock control-plane and S3 clients batch jobs use, with botocore's `standard` retry mode (throttled
    control calls retried by botocore). One place, so tests can stub both. BatchError without a region."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=profile, region_name=region)
    if session.region_name is None:
        raise BatchError("no AWS region for batch jobs; set batch.bedrock.region or AWS_REGION")
    config = Config(retries={"mode": "standard", "max_attempts": 8})
    return session.client("bedrock", config=config), session.client("s3", config=config)


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise BatchError(f"{uri!r}: not an s3:// URI (batch.bedrock.s3_uri: s3://bucket/prefix)")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def _client_error(exc: Exception, what: str) -> BatchError:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
        message = str(exc.response.get("Error", {}).get("Message", ""))[:500]
        cls = BatchTransientError if code in AWS_RATE_LIMIT_CODES | AWS_TRANSIENT_CODES else BatchError
        return cls(f"{what}: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return BatchTransientError(f"{what}: {type(exc).__name__}: {exc}")
    raise exc


class BedrockBatch:
    """Batch jobs for one Bedrock model. `bedrock` and `s3` are boto3 clients (built by the caller)."""

    def __init__(
        self,
        model_id: str,
        *,
        s3_uri: str,
        role_arn: str,
        bedrock: Any,
        s3: Any,
        invocation_type: str = "Converse",
        limits: JobLimits = LIMITS,
        timeout_hours: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.model_id = model_id
        self.bucket, self.prefix = split_s3(s3_uri)
        self.role_arn = role_arn
        self.bedrock = bedrock
        self.s3 = s3
        self.invocation_type = invocation_type
        self._limits = limits
        self.timeout_hours = timeout_hours
        self.tags = tags or {}

    @property
    def name(self) -> str:
        return f"bedrock:{self.model_id}"

    @property
    def limits(self) -> JobLimits:
        return self._limits

    def _key(self, job_name: str, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, job_name, *parts) if p)

    def encode(self, record: BatchRecord) -> str:
        return json.dumps(
            {"recordId": record.key, "modelInput": record.body}, separators=(",", ":"), ensure_ascii=False
        )

    def upload(self, job_name: str, shard: Path) -> str:
        key = self._key(job_name, "input", shard.name)
        try:  # upload_file streams from disk in parts: memory stays flat whatever the shard's size
            self.s3.upload_file(str(shard), self.bucket, key)
        except Exception as exc:
            raise _client_error(exc, f"upload {shard.name} to s3://{self.bucket}/{key}") from exc
        return f"s3://{self.bucket}/{key}"

    def find(self, job_name: str) -> str | None:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"nameContains": job_name, "maxResults": 100}
            if token:
                kwargs["nextToken"] = token
            try:
                page = self.bedrock.list_model_invocation_jobs(**kwargs)
            except Exception as exc:
                raise _client_error(exc, f"list batch jobs named {job_name}") from exc
            for job in page.get("invocationJobSummaries", []):
                if job.get("jobName") == job_name:
                    return str(job["jobArn"])
            token = page.get("nextToken")
            if not token:
                return None

    def create(self, job_name: str, input_ref: str) -> str:
        body: dict[str, Any] = {
            "jobName": job_name,
            "roleArn": self.role_arn,
            # The same name always gives the same token: a create repeated after a crash returns the first job.
            "clientRequestToken": hashlib.sha256(job_name.encode()).hexdigest()[:32],
            "modelId": self.model_id,
            "inputDataConfig": {"s3InputDataConfig": {"s3InputFormat": "JSONL", "s3Uri": input_ref}},
            "outputDataConfig": {
                "s3OutputDataConfig": {"s3Uri": f"s3://{self.bucket}/{self._key(job_name, 'output')}/"}
            },
            "modelInvocationType": self.invocation_type,
        }
        if self.timeout_hours:
            body["timeoutDurationInHours"] = self.timeout_hours
        if self.tags:
            body["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        try:
            response = self.bedrock.create_model_invocation_job(**body)
        except Exception as exc:
            raise _client_error(exc, f"create batch job {job_name} on {self.name}") from exc
        return str(response["jobArn"])

    def _job(self, job_id: str) -> dict[str, Any]:
        try:
            job: dict[str, Any] = self.bedrock.get_model_invocation_job(jobIdentifier=job_id)
        except Exception as exc:
            raise _client_error(exc, f"read batch job {job_id}") from exc
        return job

    def status(self, job_id: str) -> JobState:
        job = self._job(job_id)
        return JobState(
            status=STATUS.get(str(job.get("status")), "running"),
            total=job.get("totalRecordCount"),
            done=int(job.get("processedRecordCount") or 0),
            failed=int(job.get("errorRecordCount") or 0),
            message=str(job.get("message") or "")[:1000],
        )

    def results(self, job_id: str) -> Iterator[RecordResult]:
        out_uri = self._job(job_id)["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
        bucket, prefix = split_s3(out_uri)
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            pages = list(paginator.paginate(Bucket=bucket, Prefix=prefix + "/"))
        except Exception as exc:
            raise _client_error(exc, f"list the output of {job_id} under {out_uri}") from exc
        for page in pages:
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                if not key.endswith(".out") or key.endswith("manifest.json.out"):
                    continue
                try:
                    body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
                except Exception as exc:
                    raise _client_error(exc, f"download s3://{bucket}/{key}") from exc
                for raw in body.iter_lines():
                    result = parse_output_line(raw.decode("utf-8", errors="replace"))
                    if result is not None:
                        yield result

    def stop(self, job_id: str) -> None:
        try:
            self.bedrock.stop_model_invocation_job(jobIdentifier=job_id)
        except Exception as exc:
            raise _client_error(exc, f"stop batch job {job_id}") from exc


def parse_output_line(line: str) -> RecordResult | None:
    """One output line as a result; an unreadable line whose recordId can still be found is an error result."""
    read = keyed_line(line, "recordId")
    if not isinstance(read, tuple):
        return read
    key, data = read
    error = data.get("error")
    if error:
        code = str(error.get("errorCode", "Error")) if isinstance(error, dict) else "Error"
        message = str(error.get("errorMessage", error) if isinstance(error, dict) else error)[:500]
        return RecordResult(
            key=key, error=RecordError(code=code, message=message, retryable=code in RETRYABLE_RECORD_CODES)
        )
    output = data.get("modelOutput")
    if not isinstance(output, dict):
        return RecordResult(key=key, error=RecordError(code="MalformedOutput", message="no modelOutput in the line"))
    return RecordResult(key=key, output=output)
