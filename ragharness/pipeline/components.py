"""Build the configured components (embedder, store, providers, guardrails, scorers) through the registries."""

from __future__ import annotations

from pydantic import ValidationError

from ragharness.config import HarnessConfig
from ragharness.errors import ConfigError, RagharnessError
from ragharness.generation.models import ModelPool, build_provider
from ragharness.generation.providers.base import Provider
from ragharness.guardrails.base import GuardrailChain
from ragharness.ingest.pipeline import TextRedactor
from ragharness.registry import EMBEDDERS, GUARDRAILS, SCORERS, STORES
from ragharness.retrieval.embedders import CachedEmbedder, Embedder
from ragharness.retrieval.store import VectorStore
from ragharness.scoring.base import Scorer, ScorerContext
from ragharness.scoring.thresholds import load_thresholds


def build_embedder(cfg: HarnessConfig) -> Embedder:
    try:
        return EMBEDDERS.create(cfg.embedder.kind, cfg.embedder, where=f"{cfg.source_file}: embedder.kind")
    except TypeError as exc:
        raise ConfigError(f"{cfg.source_file}: embedder.options: {exc}") from exc


def build_redactor(cfg: HarnessConfig) -> TextRedactor | None:
    """The ingest-time PII redactor (None when `corpus.redact_pii: false`)."""
    if not cfg.corpus.redact_pii:
        return None
    from ragharness.guardrails.pii import PiiRedactor

    return PiiRedactor()


def build_store(cfg: HarnessConfig) -> VectorStore:
    return STORES.create(cfg.store.kind, cfg.store, cfg.resolve(cfg.data_dir), where=f"{cfg.source_file}: store.kind")


def open_store(cfg: HarnessConfig, embedder: Embedder) -> VectorStore:
    """The configured store, opened (and checked) for this embedder."""
    store = build_store(cfg)
    store.ensure(embedder.name, embedder.dimension)
    return store


def build_providers(cfg: HarnessConfig) -> dict[str, Provider]:
    return {
        c.name: build_provider(
            cfg, c.to_candidate(), concurrency=c.concurrency, where=f"{cfg.source_file}: candidates[{i}]", label=c.name
        )
        for i, c in enumerate(cfg.candidates)
    }


def build_guardrails(cfg: HarnessConfig) -> tuple[GuardrailChain, GuardrailChain]:
    chains = []
    for stage in ("input", "output"):
        guards = []
        for i, g in enumerate(getattr(cfg.guardrails, stage)):
            where = f"{cfg.source_file}: guardrails.{stage}[{i}]"
            try:
                guards.append(GUARDRAILS.create(g.kind, g.options, where=f"{where}.kind"))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{where}.options: {exc}") from exc
        chains.append(GuardrailChain(guards, stage))
    return chains[0], chains[1]


def build_scorers(cfg: HarnessConfig, embedder: Embedder | None, models: ModelPool | None = None) -> list[Scorer]:
    """Every configured scorer through the registry, the LLM judge like any other. Scorers share one cached
    embedder (each text is embedded once per run, whatever the number of scorers) and one model pool."""
    shared = embedder if embedder is None or isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
    try:
        thresholds = load_thresholds(cfg.scoring)
    except ValidationError as exc:
        raise ConfigError(f"{cfg.source_file}: scoring: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    ctx = ScorerContext(embedder=shared, thresholds=thresholds, config=cfg, models=models or ModelPool(cfg))
    out = []
    for i, name in enumerate(cfg.scorers):
        where = f"{cfg.source_file}: scorers[{i}]"
        try:
            out.append(SCORERS.create(name, ctx, where=where))
        except ConfigError:
            raise
        except RagharnessError as exc:
            raise ConfigError(f"{where} ({name}): {exc}") from exc
    return out
