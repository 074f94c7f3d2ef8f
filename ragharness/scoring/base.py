"""The Scorer seam. A scorer turns (gold item, locked context, generation) into Score records.

`level='answer'` scorers run once per generation; `level='item'` scorers (retrieval) once per gold item.
A failed generation scores 0 with label 'error' on every answer metric (counted, never dropped); a scorer
that raises yields label 'scorer_error' records the same way.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ragharness.retrieval.embedders import Embedder
from ragharness.scoring.thresholds import ScorerThresholds, load_thresholds
from ragharness.types import ContextPack, Generation, GoldItem, Score


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

    def score(self, inp: ScoringInput) -> list[Score]: ...


class ScorerContext(BaseModel):
    """What scorer factories receive: the run's embedder (for similarity) and the scorer's options."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embedder: Embedder | None = None
    thresholds: ScorerThresholds = Field(default_factory=load_thresholds)
    options: dict[str, object] = {}


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


def run_scorer(scorer: Scorer, inp: ScoringInput) -> list[Score]:
    gen = inp.generation
    if scorer.level == "answer" and gen is not None and gen.error is not None:
        reason = f"generation failed after {gen.attempts} attempt(s): {gen.error.type}: {gen.error.message}"
        return [make_score(scorer, inp, m, 0.0, "error", reason, error=gen.error.type) for m in scorer.metrics]
    try:
        return scorer.score(inp)
    except Exception as exc:  # a scorer bug is a recorded failure that counts against the score
        msg = f"{type(exc).__name__}: {exc}"[:300]
        return [make_score(scorer, inp, m, 0.0, "scorer_error", msg, error=type(exc).__name__) for m in scorer.metrics]
