"""The batch room's settings: where provider batch jobs read and write, their quotas, when `auto` batches, how long
a run waits and what a batch record costs."""

from __future__ import annotations

from pydantic import Field

from ragharness.core.settings import Strict


class BedrockBatchConfig(Strict):
    """Where Bedrock batch inference reads and writes (the role must be able to read and write this prefix)."""

    s3_uri: str = Field(pattern=r"^s3://[^/]+", description="s3://bucket/prefix for job input and output.")
    role_arn: str = Field(description="Service role Bedrock assumes for the job; may be an ${ENV} reference.")
    region: str | None = None
    min_records: int = Field(100, ge=1, description="The model's quota 'Minimum number of records per job'.")
    max_records: int = Field(50_000, ge=1, description="Records per input file per job (quota).")
    max_file_bytes: int = Field(1024**3, ge=1024, description="Batch inference input file size (quota).")
    timeout_hours: int | None = Field(None, ge=24, le=168)


class OpenAIBatchConfig(Strict):
    completion_window: str = "24h"
    max_records: int = Field(50_000, ge=1)
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1024)


class BatchConfig(Strict):
    """Provider batch jobs for candidates and the judge with `mode: batch | auto`."""

    bedrock: BedrockBatchConfig | None = None
    openai: OpenAIBatchConfig = OpenAIBatchConfig()
    allow_waiting: bool = Field(True, description="auto may choose batch (jobs can take hours) only when true.")
    auto_min_records: int = Field(100, ge=1, description="auto: batch from this many calls (and the job minimum).")
    max_wait_hours: float = Field(24.0, ge=0, description="Then the run stops, resumable; the jobs go on.")
    poll_interval_s: float = Field(60.0, gt=0)
    online_retry_max: int = Field(20, ge=0, description="Failed records up to this many are retried online.")
    max_rounds: int = Field(2, ge=1, le=5, description="Batch jobs per record before a failure is recorded.")
    discount: float = Field(0.5, gt=0, le=1, description="Batch price = discount x online price, unless listed.")
