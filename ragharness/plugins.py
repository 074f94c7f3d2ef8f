"""What a plugin needs, in one stable place: registries, seam protocols, the models passed across them and the
metric catalog. Import from here, not from the modules behind it, so moving a file never breaks a plugin.

    from ragharness import plugins

    def register() -> None:   # the entry point in group `ragharness.plugins`
        plugins.SCORERS.register("my_scorer", MyScorer, help="what it measures, in one line")
"""

from ragharness.core.registry import (
    EMBEDDERS,
    GUARDRAIL_BACKENDS,
    GUARDRAILS,
    PROVIDERS,
    SCORERS,
    STORES,
    NoOptions,
    Registry,
)
from ragharness.core.types import Candidate, ContextPack, Generation, GoldItem, Passage, Score, Usage
from ragharness.generation.providers.base import (
    GenerationRequest,
    Provider,
    ProviderCallError,
    ProviderContext,
    ProviderResponse,
)
from ragharness.guardrails.base import GroundingGuardrail, GroundingSource, Guardrail, Verdict
from ragharness.guardrails.policy import GuardrailPolicy
from ragharness.retrieval.embedders import Embedder
from ragharness.retrieval.store import IndexWriter, Searcher, SearchRequest, VectorStore
from ragharness.scoring.base import PlannedScorer, Scorer, ScorerContext, ScoringInput, make_score
from ragharness.scoring.metrics import MetricSpec, register_metric

__all__ = [
    "EMBEDDERS",
    "GUARDRAILS",
    "GUARDRAIL_BACKENDS",
    "PROVIDERS",
    "SCORERS",
    "STORES",
    "Candidate",
    "ContextPack",
    "Embedder",
    "Generation",
    "GenerationRequest",
    "GoldItem",
    "GroundingGuardrail",
    "GroundingSource",
    "Guardrail",
    "GuardrailPolicy",
    "IndexWriter",
    "MetricSpec",
    "NoOptions",
    "Passage",
    "PlannedScorer",
    "Provider",
    "ProviderCallError",
    "ProviderContext",
    "ProviderResponse",
    "Registry",
    "Score",
    "Scorer",
    "ScorerContext",
    "ScoringInput",
    "SearchRequest",
    "Searcher",
    "Usage",
    "VectorStore",
    "Verdict",
    "make_score",
    "register_metric",
]
