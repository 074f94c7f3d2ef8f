"""Build the configured components (embedder, store, providers, guardrails, scorers) through the registries."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ragharness.core.errors import ConfigError, RagharnessError
from ragharness.core.registry import EMBEDDERS, GUARDRAIL_BACKENDS, GUARDRAILS, SCORERS, STORES, check_options
from ragharness.core.types import GuardrailStage
from ragharness.generation.models import ModelPool, build_provider
from ragharness.generation.providers.base import Provider
from ragharness.guardrails.base import Guardrail, GuardrailChain, GuardrailContext, GuardrailSet
from ragharness.guardrails.leaks import WATCH_FILE, LeakWatch
from ragharness.ingest.pipeline import TextRedactor
from ragharness.pipeline.config import HarnessConfig
from ragharness.retrieval.embedders import CachedEmbedder, Embedder, MiniLMEmbedder
from ragharness.retrieval.store import VectorStore
from ragharness.scoring import metrics as metric_catalog
from ragharness.scoring.base import Scorer, ScorerContext
from ragharness.scoring.thresholds import load_thresholds


def build_embedder(cfg: HarnessConfig) -> Embedder:
    try:
        return EMBEDDERS.create(cfg.embedder.kind, cfg.embedder, where=f"{cfg.source_file}: embedder.kind")
    except TypeError as exc:
        raise ConfigError(f"{cfg.source_file}: embedder.options: {exc}") from exc


def build_watch(cfg: HarnessConfig) -> LeakWatch:
    """The leak watch of this config: its canaries, and every value an ingest or run of this data_dir found
    (salted digests in data_dir/pii-watch.json)."""
    store = cfg.resolve(cfg.data_dir) / WATCH_FILE
    canaries = cfg.guardrails.pii_canaries
    return LeakWatch.from_file(cfg.resolve(canaries), store=store) if canaries else LeakWatch(path=store)


def build_redactor(cfg: HarnessConfig, watch: LeakWatch | None = None) -> TextRedactor | None:
    """The ingest-time PII redactor (None when `corpus.redact_pii: false`); it tells `watch` (default: the
    config's, `build_watch`) what it finds, and the ingest keeps that."""
    if not cfg.corpus.redact_pii:
        return None
    from ragharness.guardrails.pii import PiiRedactor

    return PiiRedactor(watch=watch if watch is not None else build_watch(cfg))


def build_store(cfg: HarnessConfig) -> VectorStore:
    return STORES.create(
        cfg.store.kind, cfg.store, cfg.resolve(cfg.data_dir), cfg.retrieval, where=f"{cfg.source_file}: store.kind"
    )


def open_store(cfg: HarnessConfig, embedder: Embedder) -> VectorStore:
    """The configured store, opened (and checked) for this embedder."""
    store = build_store(cfg)
    store.ensure(embedder.name, embedder.dimension)
    return store


def build_providers(cfg: HarnessConfig) -> dict[str, Provider]:
    return {
        c.name: build_provider(
            cfg.base_dir,
            c.to_candidate(),
            concurrency=c.concurrency,
            where=f"{cfg.source_file}: candidates[{i}]",
            label=c.name,
        )
        for i, c in enumerate(cfg.candidates)
    }


def _listed(cfg: HarnessConfig, stage: str, ctx: GuardrailContext) -> list[Guardrail]:
    guards = []
    for i, g in enumerate(getattr(cfg.guardrails, stage)):
        where = f"{cfg.source_file}: guardrails.{stage}[{i}]"
        try:
            guards.append(GUARDRAILS.create(g.kind, g.options, ctx, where=f"{where}.kind"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}.options: {exc}") from exc
    return guards


_GUARD_EMBEDDER: list[Embedder] = []
MINILM_NAME = MiniLMEmbedder.name


def guardrail_embedder(shared: Embedder | None = None) -> Embedder:
    """The local detectors' embedder: the shipped MiniLM (their heads were trained on it), loaded once per process;
    the run's own embedder is reused when it is that model."""
    if not _GUARD_EMBEDDER and shared is not None and shared.name == MINILM_NAME:
        _GUARD_EMBEDDER.append(shared if isinstance(shared, CachedEmbedder) else CachedEmbedder(shared))
    if not _GUARD_EMBEDDER:
        _GUARD_EMBEDDER.append(CachedEmbedder(MiniLMEmbedder()))
    return _GUARD_EMBEDDER[0]


def policy_guardrails(cfg: HarnessConfig, stage: GuardrailStage, ctx: GuardrailContext) -> list[Guardrail]:
    """The policy's checks for one stage, from its backend."""
    policy = cfg.guardrails.policy
    if policy is None:
        return []
    where = f"{cfg.source_file}: guardrails.policy.backend"
    try:
        return GUARDRAIL_BACKENDS.create(policy.backend, policy, stage, ctx, where=where)
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{cfg.source_file}: guardrails.policy: {exc}") from exc


def build_guardrails(cfg: HarnessConfig, client: Any = None) -> GuardrailSet:
    """The listed guardrails (`guardrails.input` / `.output`: the harness's own redaction) and the policy's.

    Local policy checks run first (nothing leaves the machine). Questions are stored redacted before they are checked
    and the corpus is redacted at ingest, so a BLOCK entity is also recognised by its `[REDACTED_<TYPE>]` mark.
    Bedrock checks run after the harness's redaction: a raw value the redactor finds never leaves the machine, and
    Bedrock's findings are what the local redactor missed.
    """
    watch = build_watch(cfg)
    ctx = GuardrailContext(watch=watch, client=client, retry=cfg.runner)
    listed_in, listed_out = _listed(cfg, "input", ctx), _listed(cfg, "output", ctx)
    policy = cfg.guardrails.policy
    first = policy is None or policy.backend == "local"

    def chain(listed: list[Guardrail], stage: GuardrailStage) -> GuardrailChain:
        extra = policy_guardrails(cfg, stage, ctx)
        message = policy.messages.blocked_output if policy and stage == "output" else ""
        if policy and stage != "output":
            message = policy.messages.blocked_input
        return GuardrailChain([*extra, *listed] if first else [*listed, *extra], stage, failed_message=message)

    redacting: list[Guardrail] = list(listed_in)
    if policy is not None and policy.backend == "local" and policy.sensitive_information_policy is not None:
        from ragharness.guardrails.local import SensitiveInfoGuardrail

        redacting.insert(
            0, SensitiveInfoGuardrail(policy.sensitive_information_policy, "", redact_only=True, watch=ctx.watch)
        )
    return GuardrailSet(
        input=chain(listed_in, "input"),
        context=chain(listed_in, "context"),
        output=chain(listed_out, "output"),
        redact=GuardrailChain(redacting, "input", redact_only=True),
        watch=watch,
    )


def build_scorers(cfg: HarnessConfig, embedder: Embedder | None, models: ModelPool | None = None) -> list[Scorer]:
    """Every configured scorer through the registry, the LLM judge like any other. Scorers share one cached
    embedder (each text is embedded once per run, whatever the number of scorers) and one model pool."""
    shared = embedder if embedder is None or isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
    try:
        thresholds = load_thresholds(cfg.scoring)
    except ValidationError as exc:
        raise ConfigError(f"{cfg.source_file}: scoring: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    ctx = ScorerContext(
        embedder=shared,
        thresholds=thresholds,
        judge=cfg.judge,
        prompts_dir=cfg.resolve(cfg.prompts_dir) if cfg.prompts_dir else None,
        source=str(cfg.source_file),
        models=models or ModelPool(cfg.call_settings()),
    )
    out = []
    for i, entry in enumerate(cfg.scorers):
        where = f"{cfg.source_file}: scorers[{i}]"
        registered = SCORERS.get(entry.name, where=where)
        options = check_options(registered, entry.options, f"{where} ({entry.name})")
        try:  # each scorer gets its own options; everything else in the context is shared
            scorer = registered.factory(ctx.model_copy(update={"options": options}))
        except ConfigError:
            raise
        except RagharnessError as exc:
            raise ConfigError(f"{where} ({entry.name}): {exc}") from exc
        metric_catalog.register_declared(scorer.metrics, scorer.level)  # gates find a plugin's item-level metric
        out.append(scorer)
    return out
