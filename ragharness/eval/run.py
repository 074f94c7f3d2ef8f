"""One evaluation run: ingest (incremental) -> locked retrieval -> input guardrails -> candidates -> output
guardrails -> scores -> summary -> report. Everything lands in the run directory as it is produced."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragharness import __version__
from ragharness.components import (
    build_embedder,
    build_guardrails,
    build_providers,
    build_scorers,
    build_store,
)
from ragharness.config import HarnessConfig, config_snapshot
from ragharness.eval.prompts_loader import PromptTemplate, load_prompt, render
from ragharness.eval.providers.base import GenerationRequest, Provider
from ragharness.eval.report import write_report
from ragharness.eval.rundir import RunDir, RunManifest
from ragharness.eval.runner import Runner
from ragharness.eval.scorers.base import Scorer, ScoringInput, run_scorer
from ragharness.eval.summary import RunSummary, summarise
from ragharness.eval.text import sentences, strip_citations
from ragharness.goldset import load_goldset
from ragharness.guardrails.base import GuardrailChain
from ragharness.ingest.pipeline import IngestReport, Progress, ingest
from ragharness.retrieval.embedders import CachedEmbedder, Embedder
from ragharness.retrieval.retriever import Retriever
from ragharness.retrieval.store import VectorStore
from ragharness.types import (
    Candidate,
    ContextPack,
    Generation,
    GoldItem,
    GuardrailAction,
    Passage,
    Score,
    canonical_hash,
)


class RunResult(BaseModel):
    run_dir: Path
    summary: RunSummary
    ingest: IngestReport | None = None


def _noop(stage: str, done: int, total: int) -> None:
    return None


def new_run_id(name: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"


def lock_context(
    pack: ContextPack, chain: GuardrailChain
) -> tuple[ContextPack, list[GuardrailAction], tuple[str, str]]:
    """Redact question and passages once; the result is hashed and is all any candidate or judge sees."""
    actions: list[GuardrailAction] = []
    q = chain.apply(pack.question, where="question", item_id=pack.item_id)
    actions += q.actions
    passages: list[Passage] = []
    for p in pack.passages:
        res = chain.apply(p.text, where=f"passage:{p.chunk_id}", item_id=pack.item_id)
        actions += res.actions
        passages.append(p.model_copy(update={"text": res.text}))
    locked = pack.model_copy(update={"question": q.text, "passages": tuple(passages)}).with_hash()
    return locked, actions, (q.blocked_by, q.block_message)


def build_request(item: GoldItem, pack: ContextPack, cand: Candidate, tpl: PromptTemplate) -> GenerationRequest:
    prompt = render(tpl, pack.question, pack.passages)
    request_hash = canonical_hash(
        {
            "provider": cand.provider,
            "params": cand.params,
            "prompt": cand.prompt.model_dump(),
            "system": prompt.system,
            "user": prompt.user,
        }
    )
    return GenerationRequest(
        item_id=item.id,
        candidate=cand,
        system=prompt.system,
        user=prompt.user,
        question=pack.question,
        passages=pack.passages,
        request_hash=request_hash,
    )


def _prewarm(
    embedder: Embedder, packs: dict[str, ContextPack], generations: list[Generation], items: list[GoldItem]
) -> None:
    """Embed every text the scorers will compare in a few large batches (much faster than one at a time)."""
    texts: list[str] = [t for p in packs.values() for x in p.passages for t in sentences(x.text)]
    texts += [strip_citations(t) for g in generations for t in sentences(g.text)] + [g.text for g in generations]
    texts += [i.reference_answer for i in items if i.reference_answer] + [i.question for i in items]
    embedder.embed(texts)


def score_all(
    items: list[GoldItem],
    packs: dict[str, ContextPack],
    generations: list[Generation],
    scorers: list[Scorer],
    progress: Progress = _noop,
    embedder: Embedder | None = None,
) -> list[Score]:
    """Score every generation (and every item, for item-level scorers). Pass the scorers' shared embedder to
    embed all texts up front in large batches."""
    by_item = {i.id: i for i in items}
    if embedder is not None:
        _prewarm(embedder, packs, generations, items)
    out: list[Score] = []
    for item in items:
        for s in scorers:
            if s.level == "item":
                out += run_scorer(s, ScoringInput(item=item, pack=packs[item.id]))
    for n, gen in enumerate(generations, start=1):
        item = by_item[gen.item_id]
        for s in scorers:
            if s.level == "answer":
                out += run_scorer(s, ScoringInput(item=item, pack=packs[item.id], generation=gen))
        progress("score", n, len(generations))
    return out


class _Components(BaseModel):
    """Everything a run builds from its config, validated before any model is called."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embedder: Embedder
    cached_embedder: CachedEmbedder
    store: VectorStore
    providers: dict[str, Provider]
    input_chain: GuardrailChain
    output_chain: GuardrailChain
    scorers: list[Scorer]
    templates: dict[str, PromptTemplate]


def build_components(cfg: HarnessConfig) -> _Components:
    embedder = build_embedder(cfg)
    cached = CachedEmbedder(embedder)
    in_chain, out_chain = build_guardrails(cfg)
    prompts_dir = cfg.resolve(cfg.prompts_dir) if cfg.prompts_dir else None
    return _Components(
        embedder=embedder,
        cached_embedder=cached,
        store=build_store(cfg),
        providers=build_providers(cfg),
        input_chain=in_chain,
        output_chain=out_chain,
        scorers=build_scorers(cfg, cached),
        templates={c.name: load_prompt(c.prompt, prompts_dir) for c in cfg.candidates},
    )


class LockedContexts(BaseModel):
    packs: dict[str, ContextPack]
    actions: list[GuardrailAction]
    blocked: dict[str, tuple[str, str]] = Field(description="item id -> (guardrail, message) for blocked questions")


def lock_all(items: list[GoldItem], retriever: Retriever, chain: GuardrailChain, progress: Progress) -> LockedContexts:
    locked = LockedContexts(packs={}, actions=[], blocked={})
    vectors = retriever.query_vectors([i.question for i in items])
    for n, item in enumerate(items, start=1):
        pack, acts, (blocked_by, message) = lock_context(retriever.retrieve(item, vectors[n - 1]), chain)
        locked.packs[item.id] = pack
        locked.actions += acts
        if blocked_by:
            locked.blocked[item.id] = (blocked_by, message)
        progress("retrieve", n, len(items))
    return locked


def generate_all(
    run: RunDir,
    requests: list[GenerationRequest],
    locked: LockedContexts,
    comps: _Components,
    cfg: HarnessConfig,
    progress: Progress,
) -> list[Generation]:
    """Blocked items get their block message without any model call; the rest run concurrently."""
    generations = [
        Generation(
            item_id=r.item_id,
            candidate=r.candidate.name,
            text=locked.blocked[r.item_id][1],
            blocked_by=locked.blocked[r.item_id][0],
            request_hash=r.request_hash,
            attempts=0,
        )
        for r in requests
        if r.item_id in locked.blocked
    ]
    run.append("generations.jsonl", generations)
    todo = [r for r in requests if r.item_id not in locked.blocked]
    done = 0

    def on_done(gen: Generation, acts: list[GuardrailAction]) -> None:
        nonlocal done
        done += 1
        run.append("generations.jsonl", [gen])
        if acts:
            run.append("guardrails.jsonl", acts)
            locked.actions.extend(acts)
        progress("generate", done, len(todo))

    runner = Runner(
        comps.providers,
        {c.name: c.concurrency for c in cfg.candidates},
        output_guardrails=comps.output_chain,
        on_done=on_done,
    )
    generations += asyncio.run(runner.run(todo))
    order = {(r.item_id, r.candidate.name): i for i, r in enumerate(requests)}
    return sorted(generations, key=lambda g: order[(g.item_id, g.candidate)])


def execute_run(
    cfg: HarnessConfig,
    *,
    out_dir: Path | None = None,
    progress: Progress = _noop,
    log: Callable[[str], None] = print,
    skip_ingest: bool = False,
) -> RunResult:
    started = time.perf_counter()
    comps = build_components(cfg)
    report: IngestReport | None = None
    if skip_ingest:
        comps.store.ensure(comps.embedder.name, comps.embedder.dimension)
    else:
        report = ingest(cfg, comps.embedder, comps.store, progress)
        for line in report.summary_lines():
            log(f"ingest: {line}")
    gold = load_goldset(cfg.resolve(cfg.goldset), known_sources=set(report.document_ids) if report else None)

    run_id = new_run_id(cfg.name)
    path = out_dir or cfg.resolve(cfg.output_dir) / run_id
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    manifest = RunManifest(
        run_id=run_id,
        name=cfg.name,
        started_at=datetime.now(UTC).isoformat(),
        ragharness_version=__version__,
        store=comps.store.name,
        embedder=comps.embedder.name,
        candidates=[c.name for c in cfg.candidates],
    )
    run.write_json("run.json", manifest)
    run.write_yaml("config.yaml", config_snapshot(cfg))
    run.write_json("goldset.json", gold)
    if report is not None:
        run.write_json("ingest.json", report)

    retriever = Retriever(
        comps.embedder, comps.store, mode=cfg.retrieval.mode, k=cfg.retrieval.k, filters=cfg.retrieval.filters
    )
    locked = lock_all(gold.items, retriever, comps.input_chain, progress)
    run.write_jsonl("context_packs.jsonl", locked.packs.values())
    run.write_jsonl("guardrails.jsonl", locked.actions)
    requests = [
        build_request(item, locked.packs[item.id], c.to_candidate(), comps.templates[c.name])
        for item in gold.items
        for c in cfg.candidates
    ]
    run.write_jsonl("requests.jsonl", requests)
    generations = generate_all(run, requests, locked, comps, cfg, progress)

    scores = score_all(gold.items, locked.packs, generations, comps.scorers, progress, comps.cached_embedder)
    run.write_jsonl("scores.jsonl", scores)
    summary = summarise(
        run_id,
        cfg.name,
        gold.items,
        [c.to_candidate() for c in cfg.candidates],
        generations,
        scores,
        locked.actions,
        cfg.thresholds,
    )
    run.write_json("summary.json", summary)
    manifest.finished_at = datetime.now(UTC).isoformat()
    manifest.status = summary.status
    manifest.seconds = round(time.perf_counter() - started, 3)
    run.write_json("run.json", manifest)
    write_report(run)
    return RunResult(run_dir=path, summary=summary, ingest=report)
