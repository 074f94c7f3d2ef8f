"""The scoring room's settings: the LLM judge, the `scorers:` entries (a name, or a name with options) and the
threshold gates."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_serializer, model_validator

from ragharness.core.settings import Strict
from ragharness.core.types import Candidate, PromptRef
from ragharness.generation.settings import CallMode


class JudgeConfig(Strict):
    """The LLM judge: any provider; one call per answer; never told which candidate wrote the answer."""

    provider: str = Field(description="Provider id, e.g. 'bedrock:us.anthropic.claude-3-5-sonnet-20241022-v2:0'.")
    prompt: PromptRef = PromptRef(id="judge-claims", version=2)
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0, "max_tokens": 2000})
    options: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(4, gt=0)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    format_retries: int = Field(1, ge=0, le=3, description="Re-asks with the validation error on malformed output.")
    mode: CallMode = Field(
        "online", description="online, batch (provider batch jobs at the batch price) or auto (batch when big enough)."
    )
    context_metrics: bool = Field(
        True,
        description="Also judge each passage (relevant? needed?) and the gold answer's statements in the same call: "
        "judge_context_precision and judge_context_recall at no extra call. Needs a prompt that asks for them "
        "(judge-claims v2 does).",
    )

    def to_candidate(self) -> Candidate:
        return Candidate(
            name="judge", provider=self.provider, prompt=self.prompt, params=self.params, options=self.options
        )


class ScorerEntry(Strict):
    """One entry of `scorers:`, written either as the scorer's name (`- groundedness`) or as a one-key mapping from
    its name to its options (`- groundedness: {groundedness_faithful_min: 0.8}`). A scorer's options are checked
    against the options it declares when it is built (see pipeline.components.build_scorers)."""

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and len(data) == 1 and "name" not in data:
            ((name, options),) = data.items()
            if options is not None and not isinstance(options, dict):
                raise ValueError(f"the options of scorer {name!r} must be a mapping (got {type(options).__name__})")
            return {"name": name, "options": options or {}}
        return data

    @model_serializer(mode="plain")
    def _compact(self) -> str | dict[str, dict[str, Any]]:
        """Written back as it is written by hand, so a stored config reads like the user's."""
        return {self.name: self.options} if self.options else self.name


class Threshold(Strict):
    """Gate: the mean of `metric` must be >= min (or <= max) for every listed candidate (all if empty)."""

    metric: str
    min: float | None = None
    max: float | None = None
    candidates: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs `min` or `max`")
        return self
