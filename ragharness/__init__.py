"""ragharness: an evaluation harness for RAG-grounded assistants.

`evaluate`, `rescore`, `compare` and `load_config` are the library API (see `ragharness.api`). What is
stable: `ragharness`, `ragharness.plugins` and `ragharness.testing`. Public names are re-exported here; the
stages live in `ragharness.ingest`, `ragharness.retrieval`,
`ragharness.guardrails`, `ragharness.generation`, `ragharness.scoring`, `ragharness.runs`,
`ragharness.analysis`, `ragharness.reporting` and `ragharness.pipeline` (see README, "Architecture").
"""

from ragharness.api import compare, evaluate, load_config, rescore
from ragharness.core.errors import (
    ConfigError,
    EmbedderError,
    GoldSetError,
    IngestError,
    ProviderError,
    RagharnessError,
    RunError,
    StoreError,
)
from ragharness.core.types import (
    Candidate,
    Chunk,
    ContextPack,
    Document,
    Generation,
    GoldItem,
    GoldSet,
    Passage,
    Score,
)

__version__ = "0.1.0"

__all__ = [
    "Candidate",
    "Chunk",
    "ConfigError",
    "ContextPack",
    "Document",
    "EmbedderError",
    "Generation",
    "GoldItem",
    "GoldSet",
    "GoldSetError",
    "IngestError",
    "Passage",
    "ProviderError",
    "RagharnessError",
    "RunError",
    "Score",
    "StoreError",
    "__version__",
    "compare",
    "evaluate",
    "load_config",
    "rescore",
]
