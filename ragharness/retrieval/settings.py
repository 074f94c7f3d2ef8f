"""The retrieval room's settings: the embedder, the store, how questions are searched (mode, k, filters), how text is
analysed for BM25 and how hybrid results are fused. One definition of text analysis and fusion that the embedded
store (LanceDB full-text search) and OpenSearch (the index's analyzer, the search pipeline) both apply, so what is
evaluated locally is what production searches."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragharness.core.settings import Strict, check_filter_fields
from ragharness.core.types import FilterValue, SearchMode

LANGUAGES = (
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hungarian", "italian",
    "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish", "tamil", "turkish",
)  # fmt: skip  # stemmers both LanceDB (tantivy/Snowball) and OpenSearch (`stemmer` filter) have


class TextAnalysis(BaseModel):
    """Tokenisation of `text` for BM25: lower-casing, ASCII folding, stop words and stemming in one language.
    The defaults are exactly OpenSearch's built-in `english` analyzer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Literal[LANGUAGES] = "english"  # type: ignore[valid-type]
    stem: bool = True
    stop_words: bool = True
    ascii_folding: bool = False
    lower_case: bool = True

    def signature(self) -> str:
        """What the text index was built with (a change means a rebuild, never a mix of tokenisations)."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:12]


class Fusion(BaseModel):
    """How hybrid combines the BM25 and vector lists: `rrf` (reciprocal rank: sum of weight / (rrf_k + rank)) or
    `linear` (each list's scores normalised by min-max or L2, then a weighted arithmetic mean; a document missing
    from a list scores 0 there), as OpenSearch's score-ranker and normalization processors do.

    Default: linear, min-max, BM25 0.3 / vector 0.7 (OpenSearch's usual starting point). On the COVID FAQ BEIR set
    it is the only tried fusion not below vector alone (nDCG@10 0.770 vs 0.767; equal-weight RRF 0.713)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["rrf", "linear"] = "linear"
    rrf_k: int = Field(60, ge=1, le=10_000, description="RRF rank constant.")
    normalization: Literal["min_max", "l2"] = "min_max"
    bm25_weight: float = Field(0.3, ge=0, le=1, description="Weight of the BM25 list; the vector list gets 1 - it.")

    @property
    def weights(self) -> tuple[float, float]:
        """(BM25, vector), in the order of the hybrid query's sub-queries."""
        return (self.bm25_weight, round(1.0 - self.bm25_weight, 10))

    def signature(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:10]


class EmbedderConfig(Strict):
    kind: str = "minilm"
    batch_size: int = Field(64, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


class StoreConfig(Strict):
    kind: str = "lancedb"
    table: str = "chunks"
    options: dict[str, Any] = Field(default_factory=dict)


class RetrievalConfig(Strict):
    mode: SearchMode = SearchMode.hybrid
    k: int = Field(6, gt=0, le=100)
    text_analysis: TextAnalysis = Field(
        default_factory=TextAnalysis, description="BM25 tokenisation, applied alike by LanceDB and OpenSearch."
    )
    fusion: Fusion = Field(default_factory=Fusion, description="How hybrid fuses the BM25 and vector lists.")
    filters: dict[str, FilterValue] = Field(default_factory=dict)

    @field_validator("filters")
    @classmethod
    def _known_fields(cls, v: dict[str, FilterValue]) -> dict[str, FilterValue]:
        return check_filter_fields(v)
