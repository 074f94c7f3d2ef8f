"""The generation room's settings: the candidates, the runner (retries, timeouts, the response cache) and the view of
harness.yaml every model call of a run is governed by (`CallSettings`: retries, prices, budget, cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ragharness.core.retry import RetryPolicy
from ragharness.core.settings import Located, Strict
from ragharness.core.types import Candidate, Price, PromptRef

CacheMode = Literal["off", "record", "reuse"]


class RunnerConfig(RetryPolicy):
    """Retries, timeouts and the response cache for every model call."""

    cache: CacheMode = Field(
        "record",
        description="The response cache under data_dir. `record` (default): every answer is written to it, and only "
        "a resumed run or `score` (re-scoring) reads it back; a new run calls every model, because a model changes "
        "behind its name. `reuse`: a new run answers unchanged requests from it too (counted and shown as cached). "
        "`off`: neither. `true` / `false` mean `record` / `off`.",
    )

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_bool(cls, v: object) -> object:
        return {True: "record", False: "off"}.get(v, v) if isinstance(v, bool) else v


CallMode = Literal["online", "batch", "auto"]


class CandidateConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._@:-]+$")
    provider: str = Field(description="Provider id: 'extractive', 'replay', 'mock', 'bedrock:<model>', ...")
    prompt: PromptRef = PromptRef(id="support-answer", version=1)
    params: dict[str, Any] = Field(default_factory=dict, description="Model parameters (temperature, max_tokens).")
    options: dict[str, Any] = Field(default_factory=dict, description="Provider options (file, region, base_url).")
    concurrency: int = Field(8, gt=0)
    rpm: float | None = Field(None, gt=0, description="Requests per minute for this candidate.")
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (estimated) for this candidate.")
    mode: CallMode = Field(
        "online", description="online, batch (provider batch jobs at the batch price) or auto (batch when big enough)."
    )

    def to_candidate(self) -> Candidate:
        return Candidate(
            name=self.name,
            provider=self.provider,
            prompt=self.prompt,
            params=self.params,
            options=self.options,
        )


class CallSettings(Located):
    """What every model call of a run is governed by and counted against: the runner's retries and cache mode, the
    prices (and the batch discount), the run's budget and the data folder holding the response cache."""

    runner: RunnerConfig = RunnerConfig()
    prices: dict[str, Price] = Field(default_factory=dict)
    batch_discount: float = Field(0.5, gt=0, le=1)
    budget_usd: float | None = Field(None, gt=0)
    data_dir: str = ".ragharness"

    @property
    def cache_file(self) -> Path:
        return self.resolve(self.data_dir) / "cache" / "responses.sqlite"
