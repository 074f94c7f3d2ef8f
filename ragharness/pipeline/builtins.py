"""Built-in plugins, registered exactly as a third-party plugin registers its own. Heavy imports stay lazy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragharness.core.extras import require
from ragharness.core.registry import EMBEDDERS, GUARDRAIL_BACKENDS, GUARDRAILS, PROVIDERS, SCORERS, STORES, NoOptions
from ragharness.scoring.thresholds import CorrectnessOptions, SupportOptions

if TYPE_CHECKING:
    from ragharness.core.types import Candidate, GuardrailStage
    from ragharness.generation.providers.base import Provider, ProviderContext
    from ragharness.guardrails.base import Guardrail, GuardrailContext
    from ragharness.guardrails.policy import GuardrailPolicy
    from ragharness.retrieval.embedders import Embedder
    from ragharness.retrieval.settings import EmbedderConfig, RetrievalConfig, StoreConfig
    from ragharness.retrieval.store import VectorStore
    from ragharness.scoring.base import Scorer, ScorerContext


def _extractive(candidate: Candidate, ctx: ProviderContext) -> Provider:
    from ragharness.generation.providers.offline import ExtractiveProvider

    return ExtractiveProvider(candidate, ctx)


def _replay(candidate: Candidate, ctx: ProviderContext) -> Provider:
    from ragharness.generation.providers.offline import ReplayProvider

    return ReplayProvider(candidate, ctx)


def _mock(candidate: Candidate, ctx: ProviderContext) -> Provider:
    from ragharness.generation.providers.offline import MockProvider

    return MockProvider(candidate, ctx)


def _bedrock(candidate: Candidate, ctx: ProviderContext) -> Provider:
    from ragharness.generation.providers.bedrock import BedrockProvider

    require("boto3")
    return BedrockProvider(candidate, ctx, concurrency=ctx.concurrency)


def _openai(candidate: Candidate, ctx: ProviderContext) -> Provider:
    from ragharness.generation.providers.openai_compat import OpenAIProvider

    return OpenAIProvider(candidate, ctx)


def _minilm(cfg: EmbedderConfig) -> Embedder:
    from ragharness.retrieval.embedders import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=cfg.batch_size, model_path=cfg.options.get("model_path"))


def _titan(cfg: EmbedderConfig) -> Embedder:
    from ragharness.retrieval.embedders import TitanEmbedder

    require("boto3")
    return TitanEmbedder(**cfg.options)


def _hashing(cfg: EmbedderConfig) -> Embedder:
    from ragharness.retrieval.embedders import HashingEmbedder

    return HashingEmbedder(**cfg.options)


def _lancedb(cfg: StoreConfig, data_dir: Path, retrieval: RetrievalConfig) -> VectorStore:
    from ragharness.retrieval.lancedb_store import LanceDBStore

    return LanceDBStore(
        Path(cfg.options.get("path") or data_dir / "lancedb"),
        table=cfg.table,
        ann_min_rows=int(cfg.options.get("ann_min_rows", 50_000)),
        analysis=retrieval.text_analysis,
        fusion=retrieval.fusion,
    )


def _opensearch(cfg: StoreConfig, data_dir: Path, retrieval: RetrievalConfig) -> VectorStore:
    from pydantic import ValidationError

    from ragharness.core.errors import ConfigError
    from ragharness.retrieval.opensearch_store import OpenSearchOptions, OpenSearchStore

    require("opensearchpy")

    try:
        opts = OpenSearchOptions.model_validate(cfg.options)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"store.options: {details}") from exc
    return OpenSearchStore(opts, alias=cfg.table, analysis=retrieval.text_analysis, fusion=retrieval.fusion)


def _scorer(cls_name: str) -> Any:
    def factory(ctx: ScorerContext) -> Scorer:
        if cls_name == "RetrievalScorer":
            from ragharness.scoring.retrieval import RetrievalScorer

            return RetrievalScorer(ctx)
        from ragharness.scoring import offline

        scorer: Scorer = getattr(offline, cls_name)(ctx)
        return scorer

    return factory


def _judge(ctx: ScorerContext) -> Scorer:
    from ragharness.scoring.judge import JudgeScorer

    return JudgeScorer(ctx)


def _assertions(ctx: ScorerContext) -> Scorer:
    from ragharness.scoring.assertions import AssertionScorer

    return AssertionScorer(ctx)


def _pii(options: dict[str, Any], ctx: GuardrailContext) -> Guardrail:
    from ragharness.guardrails.pii import PiiRedactor

    return PiiRedactor(**options, watch=ctx.watch)


def _deny(options: dict[str, Any], ctx: GuardrailContext) -> Guardrail:
    from ragharness.guardrails.filters import DenyPatterns

    return DenyPatterns(**options)


def _local_policy(policy: GuardrailPolicy, stage: GuardrailStage, ctx: GuardrailContext) -> list[Guardrail]:
    from ragharness.guardrails.local import local_guardrails
    from ragharness.pipeline.components import guardrail_embedder

    return list(local_guardrails(policy, guardrail_embedder(), stage, watch=ctx.watch))


def _bedrock_policy(policy: GuardrailPolicy, stage: GuardrailStage, ctx: GuardrailContext) -> list[Guardrail]:
    from ragharness.guardrails.bedrock import BedrockGuardrail

    require("boto3")
    return [BedrockGuardrail(policy, stage, client=ctx.client, retry=ctx.retry)]


def register() -> None:
    PROVIDERS.register("extractive", _extractive, help="offline baseline: cites the best-matching sentences")
    PROVIDERS.register("replay", _replay, help="recorded answers; options.file is a JSONL keyed by item_id")
    PROVIDERS.register("mock", _mock, help="deterministic fake with latency, errors and throttling")
    PROVIDERS.register(
        "bedrock",
        _bedrock,
        form="bedrock:<model or inference profile id>",
        help="Amazon Bedrock Converse (region/profile from options or AWS_* environment)",
    )
    PROVIDERS.register(
        "openai",
        _openai,
        form="openai:<model>",
        help="any OpenAI-compatible chat-completions endpoint (options.base_url, options.api_key)",
    )
    EMBEDDERS.register("minilm", _minilm, help="all-MiniLM-L6-v2, local and offline (default)")
    EMBEDDERS.register("titan", _titan, help="Amazon Titan Text Embeddings v2 via bedrock-runtime")
    EMBEDDERS.register("hashing", _hashing, help="bag-of-words hashing; tests only")
    STORES.register("lancedb", _lancedb, help="embedded LanceDB under data_dir (default)")
    STORES.register("opensearch", _opensearch, help="OpenSearch k-NN/BM25/hybrid behind a versioned alias")
    SCORERS.register(
        "citation",
        _scorer("CitationScorer"),
        help="offline: citation coverage, validity and precision per answer",
        options=SupportOptions,
    )
    SCORERS.register(
        "groundedness",
        _scorer("GroundednessScorer"),
        help="offline: share of the answer's claims supported by the passages (lexical + MiniLM similarity)",
        options=SupportOptions,
    )
    SCORERS.register(
        "correctness",
        _scorer("CorrectnessScorer"),
        help="offline: correct / partially correct / incorrect / off-topic against the gold answer",
        options=CorrectnessOptions,
    )
    SCORERS.register(
        "refusal",
        _scorer("RefusalScorer"),
        help="offline: refused exactly when the gold item must be refused",
        options=NoOptions,
    )
    SCORERS.register(
        "retrieval",
        _scorer("RetrievalScorer"),
        help="per item: hit, recall, MRR and nDCG of the locked passages against expected sources",
        options=NoOptions,
    )
    SCORERS.register(
        "judge",
        _judge,
        help="LLM judge (judge: section), one call per answer: claims, citations, correctness, refusal, "
        "context precision and recall",
        options=NoOptions,  # configured by its own `judge:` section
    )
    SCORERS.register(
        "assertions",
        _assertions,
        help="offline, per item: the gold item's assertions (contains, not_contains, regex, must_cite, max_words, "
        "json_schema, equals_number)",
        options=NoOptions,
    )
    GUARDRAILS.register("pii", _pii, help="Presidio PII redaction (offline recognizers)")
    GUARDRAILS.register("deny_patterns", _deny, help="block or flag text matching regular expressions")
    GUARDRAIL_BACKENDS.register(
        "local", _local_policy, help="guardrails.policy offline: Presidio, word filters, MiniLM heads, grounding"
    )
    GUARDRAIL_BACKENDS.register(
        "bedrock", _bedrock_policy, help="guardrails.policy through Amazon Bedrock Guardrails ApplyGuardrail"
    )
