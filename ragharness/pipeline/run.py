"""One evaluation run: ingest (incremental) -> locked retrieval -> input guardrails -> candidates -> output
guardrails -> scores -> summary -> report. Everything lands in the run directory as it is produced.

A run moves through stages recorded in run.json (`created` -> `prepared` -> `generated` -> `finished`) and every file is
written atomically, so a process killed at any instant leaves a run that `--resume` completes: a run killed
before it was prepared is prepared again (nothing was sent to any model yet); one killed while generating keeps
every completed call; one killed while scoring is scored again. Large runs stream: requests, contexts and scores
are read and written item by item, never all held at once.
"""

from __future__ import annotations

import gc
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragharness import __version__
from ragharness.context.lock import iter_locked, redact_gold
from ragharness.core.errors import BatchWaiting, ConfigError, DiskFullError
from ragharness.core.faults import kill_point
from ragharness.core.locking import exclusive
from ragharness.core.progress import NO_PROGRESS, Log, Progress, room_log
from ragharness.core.types import Generation, GoldItem, GuardrailAction
from ragharness.generation.models import ModelPool, effective_cache, ledger, limits_of, make_runner
from ragharness.generation.prompts import PromptTemplate, load_prompt
from ragharness.generation.providers.base import GenerationRequest, Provider
from ragharness.generation.requests import requests_for
from ragharness.generation.runner import RunStats
from ragharness.generation.settings import CacheMode
from ragharness.goldset import load_goldset
from ragharness.guardrails.base import GuardrailSet
from ragharness.ingest.pipeline import IngestReport, TextRedactor, ingest
from ragharness.pipeline.batches import Group, check_modes, run_batches, scrub
from ragharness.pipeline.components import (
    build_embedder,
    build_guardrails,
    build_providers,
    build_redactor,
    build_scorers,
    build_store,
    guardrail_embedder,
)
from ragharness.pipeline.config import RESUME_MAY_CHANGE, HarnessConfig, config_snapshot, resume_differences
from ragharness.pipeline.finalize import Scoring, score_and_finalize
from ragharness.pipeline.generate import StatsCallback, blocked_generations, generate, recorder
from ragharness.retrieval.embedders import CachedEmbedder, Embedder
from ragharness.retrieval.retriever import Retriever
from ragharness.retrieval.store import VectorStore
from ragharness.runs.latest import current_generations
from ragharness.runs.rundir import FORMAT_VERSION, RunDir, RunManifest
from ragharness.runs.summary import RunSummary
from ragharness.scoring.base import Scorer
from ragharness.scoring.metrics import GUARDRAIL_METRICS, OPS_METRICS

_LOG = room_log(__name__)


class RunResult(BaseModel):
    run_dir: Path
    summary: RunSummary
    ingest: IngestReport | None = None
    stats: RunStats | None = None


def new_run_id(name: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"


class _Components(BaseModel):
    """Everything a run builds from its config, validated before any model is called."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embedder: Embedder
    store: VectorStore
    providers: dict[str, Provider]
    guards: GuardrailSet
    scoring: Scoring
    templates: dict[str, PromptTemplate]
    redactor: TextRedactor | None = None


def check_thresholds(cfg: HarnessConfig, scorers: list[Scorer]) -> None:
    """Every gate names a metric some configured scorer produces and candidates that exist (a misspelt name would
    otherwise fail after every call was paid for, or make the gate silently vanish)."""
    known = set(OPS_METRICS) | set(GUARDRAIL_METRICS) | {m for s in scorers for m in s.metrics}
    prefixes = tuple(p for s in scorers if (p := getattr(s, "detail_prefix", None)))  # e.g. assert_<name>
    names = {c.name for c in cfg.candidates}
    problems = []
    for i, t in enumerate(cfg.thresholds):
        if t.metric not in known and not (prefixes and t.metric.startswith(prefixes)):
            problems.append(
                f"{cfg.source_file}: thresholds[{i}].metric: {t.metric!r} is not produced by the configured "
                f"scorers; known metrics: {', '.join(sorted(known))}"
            )
        unknown = sorted(set(t.candidates) - names)
        if unknown:
            problems.append(
                f"{cfg.source_file}: thresholds[{i}].candidates: no candidate named {unknown}; "
                f"candidates are {sorted(names)}"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def build_components(cfg: HarnessConfig) -> _Components:
    """Build and validate everything, the judge included, before the first model call."""
    embedder = build_embedder(cfg)
    cached = CachedEmbedder(embedder)
    guardrail_embedder(cached)  # the local guardrail detectors share the run's MiniLM when it is the same model
    guards = build_guardrails(cfg)
    prompts_dir = cfg.resolve(cfg.prompts_dir) if cfg.prompts_dir else None
    models = ModelPool(cfg.call_settings(), leak_watch=guards.watch)  # the judge's prompts are checked for PII too
    scorers = build_scorers(cfg, cached, models)  # the judge's provider, options, ${ENV} and prompt: checked now
    check_thresholds(cfg, scorers)
    providers = build_providers(cfg)
    check_modes(cfg, providers, models)
    return _Components(
        embedder=embedder,
        store=build_store(cfg),
        providers=providers,
        guards=guards,
        scoring=Scoring(scorers=scorers, embedder=cached, models=models),
        templates={c.name: load_prompt(c.prompt, prompts_dir) for c in cfg.candidates},
        redactor=build_redactor(cfg, guards.watch),
    )


def _run_path(cfg: HarnessConfig, out_dir: Path | None, resume: Path | None) -> tuple[Path, bool]:
    """Where the run goes and whether it resumes one. An existing folder that is not a run of this config is
    refused, never overwritten; so is a folder inside the corpus (its report would be ingested)."""
    if resume is not None:
        RunDir.open(resume)
        return resume, True
    if out_dir is None:
        return cfg.resolve(cfg.output_dir) / new_run_id(cfg.name), False
    corpus = cfg.resolve(cfg.corpus.path).resolve()
    target = out_dir.resolve()
    if not cfg.corpus.path.startswith("s3://") and (target == corpus or corpus in target.parents):
        raise ConfigError(f"--out {out_dir}: inside the corpus folder {corpus}; write runs somewhere else")
    if (out_dir / "run.json").is_file():
        name = RunDir.open(out_dir).manifest().name
        if name != cfg.name:
            raise ConfigError(
                f"--out {out_dir}: holds a run of config {name!r}, not {cfg.name!r}; choose a new or empty folder"
            )
        return out_dir, True
    ours = (".run.lock", ".run.lock.owner")  # what a run that never started may leave
    if out_dir.exists() and (not out_dir.is_dir() or any(p.name not in ours for p in out_dir.iterdir())):
        raise ConfigError(
            f"--out {out_dir}: exists and is not a run directory (no run.json); refusing to write into it. "
            "Choose a new or empty folder"
        )
    return out_dir, False


def _create(cfg: HarnessConfig, comps: _Components, path: Path) -> tuple[RunDir, RunManifest]:
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    manifest = RunManifest(
        format_version=FORMAT_VERSION,
        run_id=path.name if path.name else new_run_id(cfg.name),
        name=cfg.name,
        started_at=datetime.now(UTC).isoformat(),
        stage="created",
        ragharness_version=__version__,
        store=comps.store.name,
        embedder=comps.embedder.name,
        candidates=[c.name for c in cfg.candidates],
        config_dir=str(cfg.base_dir),
    )
    run.write_json("run.json", manifest)  # first: from here on the folder is a run that --resume completes
    kill_point("run:created")
    run.write_yaml("config.yaml", config_snapshot(cfg))
    return run, manifest


def _reopen(cfg: HarnessConfig, path: Path) -> tuple[RunDir, RunManifest]:
    run = RunDir.open(path)
    run.remove_stale_temps()  # what a killed writer left; we hold the run's lock
    manifest = run.manifest()
    if manifest.name != cfg.name:
        raise ConfigError(f"{path}: a run of config {manifest.name!r}, not {cfg.name!r}; resume it with its own config")
    now = config_snapshot(cfg)
    stored = run.config_snapshot()  # {} if a run killed at once never wrote it
    changed = resume_differences(stored or now, cfg)
    if changed:
        raise ConfigError(
            f"{cfg.source_file}: cannot resume {path}: the config changed since the run started "
            f"({', '.join(changed)}); only {', '.join(sorted(RESUME_MAY_CHANGE))} may change. "
            "Start a new run instead."
        )
    if stored != now:
        run.write_yaml("config.yaml", now)  # the settings the run is now finished and scored with
    manifest.resumed += 1
    return run, manifest


class Selection(BaseModel):
    """Which gold items a run evaluates (`run --items/--intent/--limit`): for quick iteration."""

    items: list[str] = Field(default_factory=list, description="Item ids; all when empty.")
    intents: list[str] = Field(default_factory=list, description="Intents; all when empty.")
    limit: int | None = Field(None, ge=1, description="At most this many (the first, in gold set order).")

    def describe(self) -> str:
        parts = [f"items {','.join(self.items)}"] * bool(self.items) + [f"intents {','.join(self.intents)}"] * bool(
            self.intents
        )
        return "; ".join(parts + ([f"first {self.limit}"] if self.limit else []))

    def apply(self, items: list[GoldItem], where: str) -> list[GoldItem]:
        known_ids, known_intents = {i.id for i in items}, {i.intent for i in items}
        missing = [i for i in self.items if i not in known_ids]
        if missing:
            raise ConfigError(f"--items: {missing} are not items of {where}; its ids start {sorted(known_ids)[:5]}")
        bad = [i for i in self.intents if i not in known_intents]
        if bad:
            raise ConfigError(f"--intent: {bad} are not intents of {where}; it has {sorted(known_intents)}")
        chosen = [
            i
            for i in items
            if (not self.items or i.id in self.items) and (not self.intents or i.intent in self.intents)
        ]
        return chosen[: self.limit] if self.limit else chosen


def _prepare(
    cfg: HarnessConfig,
    comps: _Components,
    run: RunDir,
    manifest: RunManifest,
    progress: Progress,
    log: Callable[[str], None],
    skip_ingest: bool,
    selection: Selection | None = None,
) -> IngestReport | None:
    """Ingest, lock every item's context, render every request and record blocked items. Nothing is sent to a
    model here, so a run killed before `prepared` is simply prepared again."""
    report: IngestReport | None = None
    if skip_ingest:
        comps.store.ensure(comps.embedder.name, comps.embedder.dimension)
    else:
        report = ingest(cfg.ingest_settings(), comps.embedder, comps.store, progress, redactor=comps.redactor)
        for line in report.summary_lines():
            log(f"ingest: {line}")
        run.write_json("ingest.json", report)
    # source ids are checked against the corpus on every run: the ingest's documents, or the store's as it is
    known = set(report.document_ids) if report else set(comps.store.document_hashes())
    gold = load_goldset(cfg.resolve(cfg.goldset), known_sources=known)
    if selection is not None and selection.describe():
        gold = gold.model_copy(update={"items": selection.apply(gold.items, str(cfg.resolve(cfg.goldset)))})
        manifest.selection = selection.describe()
        log(f"evaluating {len(gold.items)} selected items ({manifest.selection})")
    question_audit: list[GuardrailAction] = []
    gold = redact_gold(gold, comps.guards.redact, question_audit)
    run.write_json("goldset.json", gold)
    retriever = Retriever(
        comps.embedder, comps.store, mode=cfg.retrieval.mode, k=cfg.retrieval.k, filters=cfg.retrieval.filters
    )
    candidates = [c.to_candidate() for c in cfg.candidates]
    items = {i.id: i for i in gold.items}
    blocked: list[Generation] = []
    with (
        run.writer("context_packs.jsonl") as packs_out,
        run.writer("requests.jsonl") as requests_out,
        run.writer("guardrails.jsonl") as audit_out,
    ):
        for a in question_audit:
            audit_out.write(a)
        for pack, acts, stopped in iter_locked(gold.items, retriever, comps.guards, progress):
            packs_out.write(pack)
            kill_point("run:preparing")
            for a in acts:
                audit_out.write(a)
            requests = requests_for(items[pack.item_id], pack, candidates, comps.templates)
            for r in requests:
                requests_out.write(r)
            if stopped is not None:
                blocked += blocked_generations(requests, {pack.item_id: stopped})
    run.write_jsonl("generations.jsonl", blocked)
    run.append("guardrail_timings.jsonl", comps.guards.timings())
    manifest.stage = "prepared"
    manifest.store = comps.store.name
    run.write_json("run.json", manifest)
    kill_point("run:prepared")
    return report


def execute_run(
    cfg: HarnessConfig,
    *,
    out_dir: Path | None = None,
    resume: Path | None = None,
    progress: Progress = NO_PROGRESS,
    on_stats: StatsCallback | None = None,
    log: Log = _LOG,
    skip_ingest: bool = False,
    use_cache: bool = True,
    reuse_cache: bool = False,
    selection: Selection | None = None,
) -> RunResult:
    """Run (or resume) an evaluation. Passing `out_dir` that already holds a run of this config resumes it.
    A new run calls every model (the response cache is only written) unless `reuse_cache` or `runner.cache:
    reuse`; a resumed run reads back what it cached; `use_cache=False` turns the cache off."""
    started = time.perf_counter()
    comps = build_components(cfg)
    path, resuming = _run_path(cfg, out_dir, resume)
    lock = path / ".run.lock"
    try:
        with exclusive(lock, f"run {path.name}", who="another process working on this run"):
            run, manifest = _reopen(cfg, path) if resuming else _create(cfg, comps, path)
            report = None
            if manifest.stage == "created":
                report = _prepare(cfg, comps, run, manifest, progress, log, skip_ingest, selection)
            else:
                comps.store.ensure(comps.embedder.name, comps.embedder.dimension)
            cache = effective_cache(cfg.runner, use_cache=use_cache, reuse=reuse_cache, resuming=resuming)
            return _generate_and_finish(cfg, comps, run, manifest, started, report, progress, on_stats, cache, log)
    except BatchWaiting as exc:
        raise exc.in_run(path, cfg.source_file) from exc
    except DiskFullError as exc:
        if (path / "run.json").is_file():
            raise exc.in_run(path, cfg.source_file) from exc
        for leftover in path.glob(".*"):  # not even started: leave no half-made folder behind
            leftover.unlink(missing_ok=True)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise


def settle_heap() -> None:
    """Collect once and freeze what is alive (models, tokenizers, Presidio: millions of long-lived objects), so no
    full garbage collection of them (~350 ms after Presidio loads) lands inside a timed model call. Unfrozen when
    the calls are done."""
    gc.collect()
    gc.freeze()


def _generate_and_finish(
    cfg: HarnessConfig,
    comps: _Components,
    run: RunDir,
    manifest: RunManifest,
    started: float,
    report: IngestReport | None,
    progress: Progress,
    on_stats: StatsCallback | None,
    cache: CacheMode,
    log: Log = _LOG,
) -> RunResult:
    manifest.status = "running"
    run.write_json("run.json", manifest)
    done = {k: g for k, g in current_generations(run.read_jsonl("generations.jsonl", Generation)).items() if g.ok}
    spent = sum(g.cost_usd for g in done.values() if not g.cached)
    current = {c.name: c.to_candidate() for c in cfg.candidates}
    gold = run.goldset()
    # requests.jsonl holds one request per (item, candidate) in gold order x candidate order: derive, don't reread.
    order = {(i.id, c.name): n for n, (i, c) in enumerate((i, c) for i in gold.items for c in cfg.candidates)}

    def todo() -> Iterator[GenerationRequest]:
        for r in run.read_jsonl("requests.jsonl", GenerationRequest, tolerate_torn_tail=False):
            if (r.item_id, r.candidate.name) not in done:
                yield r.model_copy(update={"candidate": current[r.candidate.name]})  # options come from the config

    accounts = ledger(cfg.call_settings(), cache=cache, spent_usd=spent)
    groups = [Group(name=c.name, mode=c.mode) for c in cfg.candidates]
    batched = run_batches(cfg, run.path / "batch", manifest.run_id, comps.providers, accounts, groups, todo, log)
    runner = make_runner(
        comps.providers,
        comps.guards.output,
        accounts,
        limits=limits_of(cfg.candidates),
        leak_watch=comps.guards.watch,
        on_done=recorder(run),
        on_progress=on_stats,
        batch=batched.answers,
    )
    comps.guards.output.warm()  # loaded now, not on the event loop's watch while calls are timed
    settle_heap()
    try:
        outcome = generate(runner, todo(), sum(1 for key in order if key not in done))
    finally:
        gc.unfreeze()  # only the timed calls need it; afterwards what the run drops can be collected again
    scrub(batched)
    run.append("guardrail_timings.jsonl", comps.guards.timings())

    latest = {**done, **current_generations(outcome.generations)}
    generations = sorted(latest.values(), key=lambda g: order.get((g.item_id, g.candidate), len(order)))
    run.write_jsonl("generations.jsonl", generations)  # canonical: one line per call, in request order
    kill_point("run:generated")
    manifest.stage = "generated"  # every call made or recorded as pending; scoring is next
    # the report rendered at the end of scoring reads the manifest: it must show the time spent, not 0.0 s
    manifest.seconds = round(manifest.seconds + time.perf_counter() - started, 3)
    run.write_json("run.json", manifest)
    started = time.perf_counter()
    summary = score_and_finalize(
        cfg,
        run,
        comps.scoring,
        gold.items,
        generations,
        run_id=manifest.run_id,
        rescore=False,
        log=log,
        spent_usd=outcome.spent_usd,
        budget_exhausted=outcome.budget_exhausted,
        cache=cache,
        progress=progress,
    ).summary
    # Last: the manifest says `finished` only once summary and report are complete on disk.
    manifest.finished_at = datetime.now(UTC).isoformat()
    manifest.status = summary.status
    manifest.stage = "finished"
    manifest.pending = summary.pending
    manifest.seconds = round(manifest.seconds + time.perf_counter() - started, 3)
    manifest.spent_usd = round(outcome.spent_usd, 6)
    run.write_json("run.json", manifest)
    return RunResult(run_dir=run.path, summary=summary, ingest=report, stats=outcome.stats)
