"""The Provider seam: one async call per (item, candidate) returning a Generation.

Providers raise `ProviderCallError` with a typed retry decision for call failures; the runner retries what is
retryable and records what finally fails as a Generation with its error (never a dropped row).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from ragharness.core.errors import ProviderError, RagharnessError
from ragharness.core.types import Candidate, Frozen, Passage, Usage, canonical_hash

RetryKind = Literal["rate_limit", "transient", "fatal"]


class ProviderCallError(RagharnessError):
    """A failed model call, classified once by the provider that understands its wire format."""

    def __init__(self, kind: RetryKind, type_: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{type_}: {message}")
        self.kind: RetryKind = kind
        self.type = type_
        self.message = message
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind != "fatal"


class GenerationRequest(Frozen):
    """What a candidate receives. Only redacted text is ever in here.

    Stored once per (item, candidate) in requests.jsonl without the candidate's `options` (endpoints, headers,
    key references): those live once per run in config.yaml and are attached again from the config on resume."""

    item_id: str
    candidate: Candidate
    system: str
    user: str
    question: str
    passages: tuple[Passage, ...]
    request_hash: str

    @field_serializer("candidate")
    def _candidate_without_options(self, candidate: Candidate) -> dict[str, Any]:
        return candidate.model_dump(mode="json", exclude={"options"})


class ProviderResponse(Frozen):
    text: str
    usage: Usage = Usage()
    model: str = ""
    latency_ms: float | None = Field(None, description="Provider-reported latency; else the runner measures it.")
    request_id: str = Field("", description="The provider's request id, for support tickets and tracing.")
    stop_reason: str = ""
    ttft_ms: float | None = Field(None, description="Time to the first answer token, for a streamed call.")


@runtime_checkable
class Provider(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def cacheable(self) -> bool:
        """Whether responses may be served from the response cache (False for offline fakes and replays)."""
        ...

    async def generate(self, request: GenerationRequest) -> ProviderResponse: ...


class ProviderContext(BaseModel):
    """What a provider factory gets besides the candidate: where relative paths resolve."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_dir: Path = Path(".")
    concurrency: int = Field(8, description="The candidate's concurrency (sizes thread pools of sync clients).")


M = TypeVar("M", bound=BaseModel)


def parse_options(model: type[M], candidate: Candidate) -> M:
    try:
        return model.model_validate(candidate.options)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ProviderError(f"candidate {candidate.name!r} ({candidate.provider}): options: {details}") from exc


def request_hash(candidate: Candidate, system: str, user: str) -> str:
    """Cache key of a call: provider id, model parameters, prompt id and version, and the rendered prompt."""
    return canonical_hash(
        {
            "provider": candidate.provider,
            "params": candidate.params,
            "prompt": candidate.prompt.model_dump(),
            "system": system,
            "user": user,
        }
    )


def split_provider_id(provider: str) -> tuple[str, str]:
    kind, _, model = provider.partition(":")
    return kind, model
