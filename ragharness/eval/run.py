"""One evaluation run: ingest (incremental) -> locked retrieval -> input guardrails -> candidates -> output
guardrails -> scores -> summary -> report. Everything lands in the run directory as it is produced."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ragharness import __version__
from ragharness.components import (
    build_embedder,
    build_guardrails,
    build_providers,
    build_scorers,
    build_store,
)
from ragharness.config import HarnessConfig, config_snapshot, resume_differences
from ragharness.errors import ConfigError
from ragharness.eval.generate import StatsCallback, blocked_generations, generate, make_runner
from ragharness.eval.prompts_loader import PromptTemplate, load_prompt, render
from ragharness.eval.providers.base import GenerationRequest, Provider, request_hash
from ragharness.eval.report import write_report
from ragharness.eval.rundir import RunDir, RunManifest
from ragharness.eval.runner import RunStats
from ragharness.eval.scorers.base import Scorer
from ragharness.eval.scoring import run_judge, score_all
from ragharness.eval.summary import RunSummary, summarise
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
    GoldSet,
    GuardrailAction,
    Passage,
)


class RunResult(BaseModel):
    run_dir: Path
    summary: RunSummary
    ingest: IngestReport | None = None
    stats: RunStats | None = None


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
    key = request_hash(cand, prompt.system, prompt.user)
    return GenerationRequest(
        item_id=item.id,
        candidate=cand,
        system=prompt.system,
        user=prompt.user,
        question=pack.question,
        passages=pack.passages,
        request_hash=key,
    )


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


def _latest(generations: list[Generation]) -> dict[tuple[str, str], Generation]:
    """Last generation per (item, candidate): a resumed retry supersedes the earlier failure."""
    out: dict[tuple[str, str], Generation] = {}
    for g in generations:
        out[(g.item_id, g.candidate)] = g
    return out


class _Prepared(BaseModel):
    """A run directory ready for generation: locked contexts, requests, and what is already done."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run: RunDir
    manifest: RunManifest
    gold: GoldSet
    packs: dict[str, ContextPack]
    requests: list[GenerationRequest]
    actions: list[GuardrailAction]
    done: dict[tuple[str, str], Generation]
    report: IngestReport | None = None


def _start_run(
    cfg: HarnessConfig,
    comps: _Components,
    path: Path | None,
    progress: Progress,
    log: Callable[[str], None],
    skip_ingest: bool,
) -> _Prepared:
    report: IngestReport | None = None
    if skip_ingest:
        comps.store.ensure(comps.embedder.name, comps.embedder.dimension)
    else:
        report = ingest(cfg, comps.embedder, comps.store, progress)
        for line in report.summary_lines():
            log(f"ingest: {line}")
    gold = load_goldset(cfg.resolve(cfg.goldset), known_sources=set(report.document_ids) if report else None)
    run_id = new_run_id(cfg.name)
    path = path or cfg.resolve(cfg.output_dir) / run_id
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
        config_dir=str(cfg.base_dir),
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
    blocked = blocked_generations(requests, locked.blocked)
    run.append("generations.jsonl", blocked)
    return _Prepared(
        run=run,
        manifest=manifest,
        gold=gold,
        packs=locked.packs,
        requests=requests,
        actions=locked.actions,
        done=_latest(blocked),
        report=report,
    )


def _resume_run(cfg: HarnessConfig, path: Path) -> _Prepared:
    """Reopen a run: its locked contexts and rendered requests are reused exactly; completed calls are kept."""
    run = RunDir.open(path)
    stored = yaml.safe_load(run.file("config.yaml").read_text(encoding="utf-8")) or {}
    changed = resume_differences(stored, cfg)
    if changed:
        raise ConfigError(
            f"{cfg.source_file}: cannot resume {path}: the config changed since the run started "
            f"({', '.join(changed)}); only budget_usd, thresholds, runner, prices and output_dir may change. "
            "Start a new run instead."
        )
    manifest = run.manifest()
    manifest.resumed += 1
    requests = list(run.read_jsonl("requests.jsonl", GenerationRequest))
    done = {k: g for k, g in _latest(run.generations()).items() if g.ok}
    return _Prepared(
        run=run,
        manifest=manifest,
        gold=run.goldset(),
        packs={p.item_id: p for p in run.packs()},
        requests=requests,
        actions=run.actions(),
        done=done,
    )


def execute_run(
    cfg: HarnessConfig,
    *,
    out_dir: Path | None = None,
    resume: Path | None = None,
    progress: Progress = _noop,
    on_stats: StatsCallback | None = None,
    log: Callable[[str], None] = print,
    skip_ingest: bool = False,
    use_cache: bool = True,
) -> RunResult:
    """Run (or resume) an evaluation. Passing `out_dir` that already holds a run resumes it."""
    started = time.perf_counter()
    comps = build_components(cfg)
    if resume is None and out_dir is not None and (out_dir / "run.json").is_file():
        resume = out_dir
    prep = (
        _resume_run(cfg, resume) if resume is not None else _start_run(cfg, comps, out_dir, progress, log, skip_ingest)
    )
    if resume is not None:
        comps.store.ensure(comps.embedder.name, comps.embedder.dimension)
    run, manifest = prep.run, prep.manifest
    manifest.status = "running"
    run.write_json("run.json", manifest)
    todo = [r for r in prep.requests if (r.item_id, r.candidate.name) not in prep.done]
    spent = sum(g.cost_usd for g in prep.done.values())
    runner = make_runner(
        cfg, comps.providers, comps.output_chain, use_cache=use_cache and cfg.runner.cache, spent_usd=spent
    )
    outcome = generate(run, runner, todo, prep.actions, on_stats)

    latest = {**prep.done, **_latest(outcome.generations)}
    order = {(r.item_id, r.candidate.name): i for i, r in enumerate(prep.requests)}
    generations = sorted(latest.values(), key=lambda g: order[(g.item_id, g.candidate)])
    run.write_jsonl("generations.jsonl", generations)  # canonical: one line per call, in request order
    scores = score_all(prep.gold.items, prep.packs, generations, comps.scorers, progress, comps.cached_embedder)
    calls: list[Generation] = []
    if "judge" in cfg.scorers:
        judged, calls = run_judge(
            cfg,
            prep.gold.items,
            prep.packs,
            generations,
            comps.cached_embedder,
            use_cache=use_cache and cfg.runner.cache,
            spent_usd=outcome.spent_usd,
        )
        scores += judged
        run.append("judge_calls.jsonl", calls)
    run.write_jsonl("scores.jsonl", scores)
    candidates = [c.to_candidate() for c in cfg.candidates]
    summary = summarise(
        manifest.run_id, cfg.name, prep.gold.items, candidates, generations, scores, prep.actions, cfg.thresholds
    )
    summary.budget_exhausted = outcome.budget_exhausted
    summary.judge_cost_usd = round(sum(c.cost_usd for c in calls), 6)
    run.write_json("summary.json", summary)
    manifest.finished_at = datetime.now(UTC).isoformat()
    manifest.status = summary.status
    manifest.pending = summary.pending
    manifest.seconds = round(manifest.seconds + time.perf_counter() - started, 3)
    manifest.spent_usd = round(outcome.spent_usd, 6)
    run.write_json("run.json", manifest)
    write_report(run)
    return RunResult(run_dir=run.path, summary=summary, ingest=prep.report, stats=outcome.stats)
