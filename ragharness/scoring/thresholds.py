"""Decision thresholds of the offline scorers: shipped defaults with provenance (calibration.yaml), overridable
in harness.yaml under `scoring:`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragharness.core.yamlio import load_strict


class ScorerThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lexical_min: float = Field(ge=0, le=1)
    lexical_with_embedding_min: float = Field(ge=0, le=1)
    embed_min: float = Field(ge=-1, le=1)
    embed_alone_min: float = Field(ge=-1, le=1)
    groundedness_faithful_min: float = Field(ge=0, le=1)
    correct_recall_min: float = Field(ge=0, le=1)
    correct_similarity_min: float = Field(ge=-1, le=1)
    partial_recall_min: float = Field(ge=0, le=1)
    partial_similarity_min: float = Field(ge=-1, le=1)
    distinctive_recall_min: float = Field(ge=0, le=1)


class SupportOptions(BaseModel):
    """What the citation and groundedness scorers take as options (`scorers: [{citation: {...}}]`): the thresholds
    of their claim-support test, for that scorer alone (`scoring:` sets them for every scorer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lexical_min: float | None = Field(None, ge=0, le=1)
    lexical_with_embedding_min: float | None = Field(None, ge=0, le=1)
    embed_min: float | None = Field(None, ge=-1, le=1)
    embed_alone_min: float | None = Field(None, ge=-1, le=1)


class CorrectnessOptions(SupportOptions):
    """What the correctness scorer takes: the support thresholds and its own decision thresholds."""

    correct_recall_min: float | None = Field(None, ge=0, le=1)
    correct_similarity_min: float | None = Field(None, ge=-1, le=1)
    partial_recall_min: float | None = Field(None, ge=0, le=1)
    partial_similarity_min: float | None = Field(None, ge=-1, le=1)
    distinctive_recall_min: float | None = Field(None, ge=0, le=1)


def with_options(base: ScorerThresholds, options: dict[str, object]) -> ScorerThresholds:
    """`base` with one scorer's threshold options over it (validated again: a bad value is never used)."""
    return ScorerThresholds.model_validate({**base.model_dump(), **options})


def load_thresholds(overrides: dict[str, float] | None = None) -> ScorerThresholds:
    data = load_strict((Path(__file__).parent / "calibration.yaml").read_text(encoding="utf-8"))
    return ScorerThresholds.model_validate({**data, **(overrides or {})})


THRESHOLDS = load_thresholds()
