"""`bedrock:<model or inference profile id>`: Amazon Bedrock through bedrock-runtime `converse`.

The wire format (request body, response parsing, error classification) is separate from the client, which is
built from a boto3 session (region and profile from options or the environment; credentials only from the
standard AWS chain, never from the config). botocore's own retries are limited to connection-level problems
(`standard` mode, `botocore_max_attempts`, default 1 = no botocore retry) so that every model attempt goes
through the runner, which records it. Cross-region inference profiles (`us.`, `eu.`, `global.` prefixes) are
passed through as the model id.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragharness.batch import bedrock as batch_bedrock
from ragharness.batch.base import BatchBackend, JobLimits
from ragharness.batch.bedrock import BedrockBatch
from ragharness.batch.settings import BatchConfig
from ragharness.core.errors import AWS_RATE_LIMIT_CODES, AWS_TRANSIENT_CODES, BatchError, ConfigError, ProviderError
from ragharness.core.settings import resolve_env
from ragharness.core.types import Candidate, Usage
from ragharness.generation.providers.base import (
    GenerationRequest,
    ProviderCallError,
    ProviderContext,
    ProviderResponse,
    RetryKind,
    parse_options,
    split_provider_id,
)

PARAM_NAMES = {"max_tokens": "maxTokens", "temperature": "temperature", "top_p": "topP", "stop": "stopSequences"}


class BedrockOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(None, description="AWS region; default from AWS_REGION / the profile.")
    profile: str | None = Field(None, description="Named AWS profile; default from AWS_PROFILE / the chain.")
    botocore_max_attempts: int = Field(1, ge=1, le=10)
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(120.0, gt=0)
    additional_model_request_fields: dict[str, Any] = Field(default_factory=dict)


def converse_request(model_id: str, request: GenerationRequest) -> dict[str, Any]:
    """The Converse request body for one generation request (validated by botocore against the service model)."""
    params = dict(request.candidate.params)
    inference: dict[str, Any] = {}
    for ours, theirs in PARAM_NAMES.items():
        if ours in params:
            value = params[ours]
            inference[theirs] = [value] if theirs == "stopSequences" and isinstance(value, str) else value
    body: dict[str, Any] = {
        "modelId": model_id,
        "messages": [{"role": "user", "content": [{"text": request.user}]}],
    }
    if request.system:
        body["system"] = [{"text": request.system}]
    if inference:
        body["inferenceConfig"] = inference
    extra = request.candidate.options.get("additional_model_request_fields")
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


def parse_converse(response: dict[str, Any], model_id: str) -> ProviderResponse:
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block.get("text", "") for block in content if isinstance(block, dict))
    usage = response.get("usage", {})
    return ProviderResponse(
        text=text,
        usage=Usage(input_tokens=int(usage.get("inputTokens", 0)), output_tokens=int(usage.get("outputTokens", 0))),
        model=model_id,
        latency_ms=float(response["metrics"]["latencyMs"]) if "metrics" in response else None,
        request_id=str(response.get("ResponseMetadata", {}).get("RequestId", "")),
        stop_reason=str(response.get("stopReason", "")),
    )


def classify(exc: Exception) -> ProviderCallError:
    """Map a botocore error to a typed retry decision."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, ReadTimeoutError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
        message = str(exc.response.get("Error", {}).get("Message", ""))[:500]
        kind: RetryKind = (
            "rate_limit" if code in AWS_RATE_LIMIT_CODES else ("transient" if code in AWS_TRANSIENT_CODES else "fatal")
        )
        retry_after = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
        return ProviderCallError(kind, code, message, retry_after=_seconds(retry_after))
    if isinstance(exc, ReadTimeoutError):
        return ProviderCallError("transient", "ReadTimeout", str(exc)[:300])
    if isinstance(exc, ConnectionError | HTTPClientError):
        return ProviderCallError("transient", type(exc).__name__, str(exc)[:300])
    return ProviderCallError("fatal", type(exc).__name__, str(exc)[:300])


def _seconds(value: object) -> float | None:
    try:
        return float(str(value)) if value is not None else None
    except ValueError:
        return None


class BedrockProvider:
    def __init__(self, candidate: Candidate, ctx: ProviderContext, client: Any = None, concurrency: int = 8) -> None:
        _, model = split_provider_id(candidate.provider)
        if not model:
            raise ProviderError(
                f"candidate {candidate.name!r}: provider {candidate.provider!r} needs a model, e.g. "
                "'bedrock:anthropic.claude-3-5-haiku-20241022-v1:0' or 'bedrock:us.amazon.nova-lite-v1:0'"
            )
        self.opts = parse_options(BedrockOptions, candidate)
        unknown = sorted(set(candidate.params) - set(PARAM_NAMES))
        if unknown:
            raise ProviderError(
                f"candidate {candidate.name!r}: params {unknown} are not Converse inference parameters; "
                f"use {sorted(PARAM_NAMES)} or options.additional_model_request_fields"
            )
        self.model_id = model
        self.id = f"bedrock:{model}"
        self.cacheable = True
        self.limit_key = f"bedrock|{self.opts.profile or ''}|{self.opts.region or ''}|{model}"
        """Bedrock's quotas are per account (profile), region and model."""
        self._client = client
        self._batch: tuple[str, BatchBackend] | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="bedrock")

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            session = boto3.Session(profile_name=self.opts.profile, region_name=self.opts.region)
            if session.region_name is None:
                raise ProviderError(f"{self.id}: no AWS region; set options.region or AWS_REGION")
            self._client = session.client(
                "bedrock-runtime",
                config=Config(
                    retries={"mode": "standard", "total_max_attempts": self.opts.botocore_max_attempts},
                    connect_timeout=self.opts.connect_timeout_s,
                    read_timeout=self.opts.read_timeout_s,
                    max_pool_connections=max(10, self._pool._max_workers),
                ),
            )
        return self._client

    def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.client().converse(**body)
        return response

    # -- batch inference (generation.batching.BatchCapable) ----------------------------------------------------
    def batch_body(self, request: GenerationRequest) -> dict[str, Any]:
        """A Converse request body without the model id (the job names the model): `modelInvocationType: Converse`."""
        body = converse_request(self.model_id, request)
        body.pop("modelId")
        return body

    def parse_batch_output(self, output: dict[str, Any]) -> ProviderResponse:
        if not isinstance(output.get("output"), dict):
            raise ProviderCallError("transient", "MalformedResponse", "the record's modelOutput has no `output`")
        return parse_converse(output, self.model_id)

    def batch_backend(self, settings: BatchConfig) -> BatchBackend:
        """The batch API for this model, built once per settings (checked at build time, planned, then used)."""
        key = settings.model_dump_json()
        if self._batch is None or self._batch[0] != key:
            self._batch = (key, self._make_batch_backend(settings))
        return self._batch[1]

    def _make_batch_backend(self, settings: BatchConfig) -> BatchBackend:
        bc = settings.bedrock
        if bc is None:
            raise ConfigError(
                f"{self.id}: batch mode needs `batch.bedrock` (s3_uri: s3://bucket/prefix, role_arn: the service role "
                "Bedrock assumes to read and write it; see infra/terraform)"
            )
        try:
            control, s3 = batch_bedrock.clients(bc.region or self.opts.region, self.opts.profile)
        except BatchError as exc:
            raise ConfigError(f"{self.id}: {exc}") from exc
        return BedrockBatch(
            self.model_id,
            s3_uri=bc.s3_uri,
            role_arn=resolve_env(bc.role_arn, what="batch.bedrock.role_arn"),
            bedrock=control,
            s3=s3,
            limits=JobLimits(min_records=bc.min_records, max_records=bc.max_records, max_file_bytes=bc.max_file_bytes),
            timeout_hours=bc.timeout_hours,
        )

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        body = converse_request(self.model_id, request)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._pool, self._call, body)
        except Exception as exc:
            raise classify(exc) from exc
        return parse_converse(response, self.model_id)
