"""The Scorer seam. A scorer turns (gold item, locked context, generation) into Score records.

`level='answer'` scorers run once per generation; `level='item'` scorers (retrieval) once per gold item.
`score` may be a plain or an `async` method: the engine awaits what it returns. A scorer that also writes records
under metric names it cannot list up front (one per assertion) names their common prefix in an optional
`detail_prefix` attribute; gates may name such metrics. A scorer that calls a model (the
LLM judge) adds it to `ScorerContext.models` when it is built and calls it through that pool, so its calls get
the candidates' retries, rate limits, cache, budget and per-call records.
A failed generation scores 0 with label 'error' on every answer metric (counted, never dropped); a scorer
that raises yields label 'scorer_error' records the same way.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.types import ContextPack, Generation, GoldItem, Score
from ragharness.generation.models import ModelPool
from ragharness.generation.providers.base import GenerationRequest
from ragharness.retrieval.embedders import Embedder
from ragharness.scoring.settings import JudgeConfig
from ragharness.scoring.thresholds import ScorerThresholds, load_thresholds


class ScoringInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: GoldItem
    pack: ContextPack
    generation: Generation | None = None


@runtime_checkable
class Scorer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def level(self) -> Literal["answer", "item"]: ...

    @property
    def metrics(self) -> tuple[str, ...]: ...

    def score(self, inp: ScoringInput) -> list[Score] | Awaitable[list[Score]]: ...


@runtime_checkable
class PlannedScorer(Scorer, Protocol):
    """A scorer that calls models says which requests it would send, so `--dry-run` can price them."""

    def planned_requests(self, inp: ScoringInput) -> list[GenerationRequest]: ...


class ScorerContext(BaseModel):
    """What scorer factories receive: the run's embedder (for similarity), the calibrated thresholds with the
    config's `scoring:` overrides, the scorer's own `options` (from its `scorers:` entry), the judge's section and
    the prompts folder (for the judge scorer), where the settings came from (`source`, for errors) and the model
    pool through which a scorer calls models. No scorer receives the whole harness config."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embedder: Embedder | None = None
    thresholds: ScorerThresholds = Field(default_factory=load_thresholds)
    options: dict[str, object] = {}
    judge: JudgeConfig | None = None
    prompts_dir: Path | None = None
    source: str = "the config"
    models: ModelPool | None = None


def correctness_value(label: str) -> float:
    """The value of a correctness label, the same for every scorer: correct 1, partially correct 0.5, else 0."""
    return {"correct": 1.0, "partially_correct": 0.5}.get(label, 0.0)


def groundedness_label(value: float) -> str:
    """The label of a share of supported claims, the same for every scorer."""
    return "grounded" if value == 1 else ("partially_grounded" if value >= 0.5 else "ungrounded")


def make_score(
    scorer: Scorer,
    inp: ScoringInput,
    metric: str,
    value: float | None,
    label: str,
    reason: str,
    error: str = "",
) -> Score:
    return Score(
        item_id=inp.item.id,
        candidate=inp.generation.candidate if inp.generation else "",
        metric=metric,
        value=value,
        label=label,
        reason=reason,
        scorer=scorer.name,
        scorer_version=scorer.version,
        error=error,
    )


async def arun_scorer(scorer: Scorer, inp: ScoringInput) -> list[Score]:
    """Score one input: a failed generation scores 0 ('error'); a scorer that raises scores 0 ('scorer_error')."""
    gen = inp.generation
    if scorer.level == "answer" and gen is not None and gen.error is not None:
        reason = f"generation failed after {gen.attempts} attempt(s): {gen.error.type}: {gen.error.message}"
        return [make_score(scorer, inp, m, 0.0, "error", reason, error=gen.error.type) for m in scorer.metrics]
    try:
        out = scorer.score(inp)
        return await out if inspect.isawaitable(out) else out
    except Exception as exc:  # a scorer bug is a recorded failure that counts against the score
        msg = f"{type(exc).__name__}: {exc}"[:300]
        return [make_score(scorer, inp, m, 0.0, "scorer_error", msg, error=type(exc).__name__) for m in scorer.metrics]


def run_scorer(scorer: Scorer, inp: ScoringInput) -> list[Score]:
    """`arun_scorer` for callers outside an event loop (tests, benchmarks, the contract suite)."""
    return asyncio.run(arun_scorer(scorer, inp))
