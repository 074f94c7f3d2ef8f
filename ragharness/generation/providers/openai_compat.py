"""`openai:<model>`: any OpenAI-compatible chat-completions endpoint (OpenAI, OpenRouter, vLLM, Ollama, LiteLLM).

The API key comes only from an environment reference (`api_key: ${OPENAI_API_KEY}`), resolved when the provider
is built and never stored or logged. HTTP errors are classified once here: 429 is a rate limit (honouring
Retry-After, in seconds or as an HTTP date), 408/409/5xx, timeouts, connection errors and malformed bodies are
transient, other 4xx are fatal.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ragharness.batch.base import BatchBackend, JobLimits
from ragharness.batch.openai import OpenAIBatch
from ragharness.batch.settings import BatchConfig
from ragharness.core.errors import ProviderError
from ragharness.core.settings import resolve_env
from ragharness.core.types import Candidate, Usage
from ragharness.generation.providers.base import (
    GenerationRequest,
    ProviderCallError,
    ProviderContext,
    ProviderResponse,
    parse_options,
    split_provider_id,
)

PARAM_NAMES = ("max_tokens", "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty")


class OpenAIOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field("https://api.openai.com/v1", description="Endpoint root; /chat/completions is appended.")
    api_key: str | None = Field(None, description="Environment reference, e.g. ${OPENAI_API_KEY}.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers (values may be ${REFS}).")
    timeout_s: float = Field(120.0, gt=0)
    stream: bool = Field(
        False,
        description="Stream the answer (server-sent events) and record the time to its first token (ttft_ms). "
        "Usage is asked for with stream_options.include_usage; an endpoint that sends none records 0 tokens.",
    )


def chat_body(model: str, request: GenerationRequest, *, stream: bool = False) -> dict[str, Any]:
    messages = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.append({"role": "user", "content": request.user})
    body: dict[str, Any] = {"model": model, "messages": messages}
    body.update({k: v for k, v in request.candidate.params.items() if k in PARAM_NAMES})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def parse_chat(payload: Any, model: str, request_id: str) -> ProviderResponse:
    try:
        choice = payload["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("message.content is not a string")
        usage = payload.get("usage") or {}
        return ProviderResponse(
            text=text,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens", 0)), output_tokens=int(usage.get("completion_tokens", 0))
            ),
            model=str(payload.get("model") or model),
            request_id=str(payload.get("id") or request_id),
            stop_reason=str(choice.get("finish_reason") or ""),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderCallError("transient", "MalformedResponse", f"unexpected response body: {exc}") from exc


class OpenAIProvider:
    def __init__(self, candidate: Candidate, ctx: ProviderContext) -> None:
        _, model = split_provider_id(candidate.provider)
        if not model:
            raise ProviderError(f"candidate {candidate.name!r}: provider needs a model, e.g. 'openai:gpt-4o-mini'")
        unknown = sorted(set(candidate.params) - set(PARAM_NAMES))
        if unknown:
            raise ProviderError(f"candidate {candidate.name!r}: params {unknown} unknown; use {list(PARAM_NAMES)}")
        self.opts = parse_options(OpenAIOptions, candidate)
        self.model = model
        self.id = f"openai:{model}"
        self.cacheable = True
        where = f"candidate {candidate.name!r}"
        self._headers = {k: resolve_env(v, what=f"{where}: options.headers.{k}") for k, v in self.opts.headers.items()}
        if self.opts.api_key:
            key = resolve_env(self.opts.api_key, what=f"{where}: options.api_key")
            self._headers["Authorization"] = f"Bearer {key}"
        self._url = self.opts.base_url.rstrip("/") + "/chat/completions"
        key_id = hashlib.sha256(self._headers.get("Authorization", "").encode()).hexdigest()[:8]
        self.limit_key = f"openai|{self.opts.base_url.rstrip('/')}|{key_id}|{model}"
        """What the endpoint's rate limits apply to: its URL, the API key (hashed) and the model."""
        self._client: httpx.AsyncClient | None = None
        self._batch: tuple[str, BatchBackend] | None = None

    def warm(self) -> None:
        """Make the HTTP client now (its TLS context takes tens of ms), not inside the first timed call."""
        self._http()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.opts.timeout_s, headers=self._headers)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- the Batch API (generation.batching.BatchCapable) ----------------------------------------------------------
    def batch_body(self, request: GenerationRequest) -> dict[str, Any]:
        return chat_body(self.model, request)

    def parse_batch_output(self, output: dict[str, Any]) -> ProviderResponse:
        return parse_chat(output, self.model, "")

    def batch_backend(self, settings: BatchConfig) -> BatchBackend:
        """The batch API for this model, built once per settings (checked at build time, planned, then used)."""
        key = settings.model_dump_json()
        if self._batch is None or self._batch[0] != key:
            self._batch = (key, self._make_batch_backend(settings))
        return self._batch[1]

    def _make_batch_backend(self, settings: BatchConfig) -> BatchBackend:
        oc = settings.openai
        return OpenAIBatch(
            self.model,
            base_url=self.opts.base_url,
            client=httpx.Client(timeout=self.opts.timeout_s, headers=self._headers),
            completion_window=oc.completion_window,
            limits=JobLimits(min_records=1, max_records=oc.max_records, max_file_bytes=oc.max_file_bytes),
        )

    async def generate(self, request: GenerationRequest) -> ProviderResponse:
        if self.opts.stream:
            return await self._generate_stream(request)
        body = chat_body(self.model, request)
        try:
            response = await self._http().post(self._url, json=body)
        except httpx.TimeoutException as exc:
            raise ProviderCallError("transient", "Timeout", f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ProviderCallError("transient", type(exc).__name__, str(exc)[:300]) from exc
        _raise_for_status(response)
        try:
            payload = response.json()
        except ValueError as exc:
            raise ProviderCallError("transient", "MalformedResponse", "response body is not JSON") from exc
        return parse_chat(payload, self.model, response.headers.get("x-request-id", ""))

    async def _generate_stream(self, request: GenerationRequest) -> ProviderResponse:
        """A streamed call: the time to first token runs from the request leaving to the first content delta."""
        body = chat_body(self.model, request, stream=True)
        started = time.perf_counter()
        stream = SseChat(self.model)
        try:
            async with self._http().stream("POST", self._url, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_status(response)
                stream.request_id = response.headers.get("x-request-id", "")
                async for line in response.aiter_lines():
                    if stream.feed(line) and stream.first_token_at is None:
                        stream.first_token_at = time.perf_counter()
        except httpx.TimeoutException as exc:
            raise ProviderCallError("transient", "Timeout", f"{type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ProviderCallError("transient", type(exc).__name__, str(exc)[:300]) from exc
        return stream.response(started)


class SseChat:
    """Chat-completion chunks of a server-sent event stream, assembled into one response."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.request_id = ""
        self.parts: list[str] = []
        self.usage: dict[str, Any] = {}
        self.finish = ""
        self.served_model = ""
        self.first_token_at: float | None = None
        self.done = False

    def feed(self, line: str) -> bool:
        """One line of the stream; True when it carried answer text."""
        if not line.startswith("data:"):
            return False  # comments (": keep-alive"), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return False
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ProviderCallError(
                "transient", "MalformedResponse", f"a stream event is not JSON: {data[:80]}"
            ) from exc
        if not isinstance(chunk, dict):
            raise ProviderCallError("transient", "MalformedResponse", "a stream event is not a JSON object")
        if isinstance(chunk.get("error"), dict):
            message = str(chunk["error"].get("message", chunk["error"]))[:300]
            raise ProviderCallError("transient", "StreamError", message)
        self.request_id = self.request_id or str(chunk.get("id") or "")
        self.served_model = self.served_model or str(chunk.get("model") or "")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        carried = False
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.parts.append(text)
                carried = True
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        return carried

    def response(self, started: float) -> ProviderResponse:
        if not self.done and not self.finish:
            raise ProviderCallError("transient", "IncompleteStream", "the stream ended before its last event")
        ttft = None if self.first_token_at is None else round((self.first_token_at - started) * 1000, 3)
        return ProviderResponse(
            text="".join(self.parts),
            usage=Usage(
                input_tokens=int(self.usage.get("prompt_tokens", 0)),
                output_tokens=int(self.usage.get("completion_tokens", 0)),
            ),
            model=self.served_model or self.model,
            request_id=self.request_id,
            stop_reason=self.finish,
            ttft_ms=ttft,
        )


def _raise_for_status(response: httpx.Response) -> None:
    """429 is a rate limit, 408/409/5xx transient, other 4xx fatal (the body's message kept, cut to 300)."""
    if response.status_code == 429:
        raise ProviderCallError(
            "rate_limit",
            "RateLimited",
            _error_text(response),
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
    if response.status_code in (408, 409) or response.status_code >= 500:
        raise ProviderCallError(
            "transient",
            f"HTTP{response.status_code}",
            _error_text(response),
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
    if response.status_code >= 400:
        raise ProviderCallError("fatal", f"HTTP{response.status_code}", _error_text(response))


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        message = err.get("message", err) if isinstance(err, dict) else err
        return str(message)[:300]
    except ValueError:
        return response.text[:300]
