"""One evaluation: ingest (incremental) -> locked retrieval -> input guardrails -> candidates -> output guardrails
-> scores -> summary -> report. Everything lands in the run directory as it is produced.

`Evaluation` is built once from the config: every component (embedder, store, guardrails and their leak watch,
providers, scorers and their model pool, prompt templates) and the retriever are built and validated in its
constructor, before any model is called, and nothing is set on it afterwards. `run()` drives the stages
(`prepare`, `generate`, `score`); a run, a resume, the nightly (`execute_run`) and the dry run
(`pipeline.dryrun.plan`) all go through it.

A run moves through stages recorded in run.json (`created` -> `prepared` -> `generated` -> `finished`) and every
file is written atomically, so a process killed at any instant leaves a run that `--resume` completes: a run killed
before it was prepared is prepared again (nothing was sent to any model yet); one killed while generating keeps
every completed call; one killed while scoring is scored again. Large runs stream: requests, contexts and scores
are read and written item by item, never all held at once.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ragharness.context.lock import iter_locked, redact_gold
from ragharness.core.errors import BatchWaiting, ConfigError, DiskFullError
from ragharness.core.faults import kill_point
from ragharness.core.locking import exclusive
from ragharness.core.progress import NO_PROGRESS, Log, Progress, room_log
from ragharness.core.types import Generation, GuardrailAction
from ragharness.generation.models import ModelPool, effective_cache, ledger, limits_of, make_runner
from ragharness.generation.prompts import PromptTemplate, load_prompt
from ragharness.generation.providers.base import GenerationRequest, Provider
from ragharness.generation.requests import requests_for
from ragharness.generation.settings import CacheMode
from ragharness.goldset import load_goldset
from ragharness.guardrails.base import GuardrailSet
from ragharness.ingest.pipeline import IngestReport, TextRedactor, ingest
from ragharness.pipeline.batches import Group, check_modes, delete_raw_outputs, run_batches
from ragharness.pipeline.components import (
    build_embedder,
    build_guardrails,
    build_providers,
    build_redactor,
    build_scorers,
    build_store,
    guardrail_embedder,
)
from ragharness.pipeline.config import HarnessConfig
from ragharness.pipeline.finalize import Scoring, score_and_finalize
from ragharness.pipeline.generate import GenerationOutcome, StatsCallback, blocked_generations, generate, recorder
from ragharness.pipeline.run import RunResult, Selection, create_run, reopen_run, run_path
from ragharness.retrieval.embedders import CachedEmbedder, Embedder
from ragharness.retrieval.retriever import Retriever
from ragharness.retrieval.store import VectorStore
from ragharness.runs.latest import current_generations
from ragharness.runs.rundir import RunDir, RunManifest
from ragharness.runs.summary import RunSummary
from ragharness.scoring.base import Scorer
from ragharness.scoring.metrics import GUARDRAIL_METRICS, OPS_METRICS

_LOG = room_log(__name__)


class Components(BaseModel):
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


def build_components(cfg: HarnessConfig) -> Components:
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
    return Components(
        embedder=embedder,
        store=build_store(cfg),
        providers=providers,
        guards=guards,
        scoring=Scoring(scorers=scorers, embedder=cached, models=models),
        templates={c.name: load_prompt(c.prompt, prompts_dir) for c in cfg.candidates},
        redactor=build_redactor(cfg, guards.watch),
    )


def settle_heap() -> None:
    """Collect once and freeze what is alive (models, tokenizers, Presidio: millions of long-lived objects), so no
    full garbage collection of them (~350 ms after Presidio loads) lands inside a timed model call. Unfrozen when
    the calls are done."""
    gc.collect()
    gc.freeze()


class Evaluation:
    """One evaluation of one config, complete when constructed (see the module docstring)."""

    def __init__(
        self,
        cfg: HarnessConfig,
        *,
        progress: Progress = NO_PROGRESS,
        on_stats: StatsCallback | None = None,
        log: Log = _LOG,
    ) -> None:
        self.cfg = cfg
        self.components = build_components(cfg)
        self.retriever = Retriever(
            self.components.embedder,
            self.components.store,
            mode=cfg.retrieval.mode,
            k=cfg.retrieval.k,
            filters=cfg.retrieval.filters,
        )
        self.progress = progress
        self.on_stats = on_stats
        self.log = log

    def run(
        self,
        *,
        out_dir: Path | None = None,
        resume: Path | None = None,
        skip_ingest: bool = False,
        use_cache: bool = True,
        reuse_cache: bool = False,
        selection: Selection | None = None,
    ) -> RunResult:
        """Run (or resume) the evaluation under the run's lock. Passing `out_dir` that already holds a run of this
        config resumes it. A new run calls every model (the response cache is only written) unless `reuse_cache` or
        `runner.cache: reuse`; a resumed run reads back what it cached; `use_cache=False` turns the cache off."""
        started = time.perf_counter()
        store, embedder = self.components.store.name, self.components.embedder.name
        path, resuming = run_path(self.cfg, out_dir, resume)
        lock = path / ".run.lock"
        try:
            with exclusive(lock, f"run {path.name}", who="another process working on this run"):
                run, manifest = reopen_run(self.cfg, path) if resuming else create_run(self.cfg, store, embedder, path)
                report = None
                if manifest.stage == "created":
                    report = self.prepare(run, manifest, skip_ingest=skip_ingest, selection=selection)
                else:
                    self.components.store.ensure(self.components.embedder.name, self.components.embedder.dimension)
                cache = effective_cache(self.cfg.runner, use_cache=use_cache, reuse=reuse_cache, resuming=resuming)
                generations, outcome = self.generate(run, manifest, started=started, cache=cache)
                summary = self.score(run, manifest, generations, outcome, cache=cache)
                return RunResult(run_dir=run.path, summary=summary, ingest=report, stats=outcome.stats)
        except BatchWaiting as exc:
            raise exc.in_run(path, self.cfg.source_file) from exc
        except DiskFullError as exc:
            if (path / "run.json").is_file():
                raise exc.in_run(path, self.cfg.source_file) from exc
            for leftover in path.glob(".*"):  # not even started: leave no half-made folder behind
                leftover.unlink(missing_ok=True)
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            raise

    def prepare(
        self, run: RunDir, manifest: RunManifest, *, skip_ingest: bool = False, selection: Selection | None = None
    ) -> IngestReport | None:
        """Ingest, lock every item's context, render every request and record blocked items. Nothing is sent to a
        model here, so a run killed before `prepared` is simply prepared again."""
        report: IngestReport | None = None
        if skip_ingest:
            self.components.store.ensure(self.components.embedder.name, self.components.embedder.dimension)
        else:
            report = ingest(
                self.cfg.ingest_settings(),
                self.components.embedder,
                self.components.store,
                self.progress,
                redactor=self.components.redactor,
            )
            for line in report.summary_lines():
                self.log(f"ingest: {line}")
            run.write_json("ingest.json", report)
        # source ids are checked against the corpus on every run: the ingest's documents, or the store's as it is
        known = set(report.document_ids) if report else set(self.components.store.document_hashes())
        gold = load_goldset(self.cfg.resolve(self.cfg.goldset), known_sources=known)
        if selection is not None and selection.describe():
            gold = gold.model_copy(
                update={"items": selection.apply(gold.items, str(self.cfg.resolve(self.cfg.goldset)))}
            )
            manifest.selection = selection.describe()
            self.log(f"evaluating {len(gold.items)} selected items ({manifest.selection})")
        question_audit: list[GuardrailAction] = []
        gold = redact_gold(gold, self.components.guards.redact, question_audit)
        run.write_json("goldset.json", gold)
        candidates = [c.to_candidate() for c in self.cfg.candidates]
        items = {i.id: i for i in gold.items}
        blocked: list[Generation] = []
        with (
            run.writer("context_packs.jsonl") as packs_out,
            run.writer("requests.jsonl") as requests_out,
            run.writer("guardrails.jsonl") as audit_out,
        ):
            for a in question_audit:
                audit_out.write(a)
            for pack, acts, stopped in iter_locked(gold.items, self.retriever, self.components.guards, self.progress):
                packs_out.write(pack)
                kill_point("run:preparing")
                for a in acts:
                    audit_out.write(a)
                requests = requests_for(items[pack.item_id], pack, candidates, self.components.templates)
                for r in requests:
                    requests_out.write(r)
                if stopped is not None:
                    blocked += blocked_generations(requests, {pack.item_id: stopped})
        run.write_jsonl("generations.jsonl", blocked)
        run.append("guardrail_timings.jsonl", self.components.guards.timings())
        manifest.stage = "prepared"
        manifest.store = self.components.store.name
        run.write_json("run.json", manifest)
        kill_point("run:prepared")
        return report

    def generate(
        self, run: RunDir, manifest: RunManifest, *, started: float, cache: CacheMode
    ) -> tuple[list[Generation], GenerationOutcome]:
        """Call every candidate for every request not yet answered (batch groups first, then online) and record
        each answer as it comes; then generations.jsonl is rewritten in request order and the stage is
        `generated`. `cache`: how the response cache is used (`effective_cache`)."""
        manifest.status = "running"
        run.write_json("run.json", manifest)
        done = {k: g for k, g in current_generations(run.read_jsonl("generations.jsonl", Generation)).items() if g.ok}
        spent = sum(g.cost_usd for g in done.values() if not g.cached)
        current = {c.name: c.to_candidate() for c in self.cfg.candidates}
        gold = run.goldset()
        # requests.jsonl holds one request per (item, candidate) in gold order x candidate order: derive, don't reread.
        order = {(i.id, c.name): n for n, (i, c) in enumerate((i, c) for i in gold.items for c in self.cfg.candidates)}

        def todo() -> Iterator[GenerationRequest]:
            for r in run.read_jsonl("requests.jsonl", GenerationRequest, tolerate_torn_tail=False):
                if (r.item_id, r.candidate.name) not in done:
                    yield r.model_copy(update={"candidate": current[r.candidate.name]})  # options come from the config

        accounts = ledger(self.cfg.call_settings(), cache=cache, spent_usd=spent)
        groups = [Group(name=c.name, mode=c.mode) for c in self.cfg.candidates]
        batched = run_batches(
            self.cfg, run.path / "batch", manifest.run_id, self.components.providers, accounts, groups, todo, self.log
        )
        runner = make_runner(
            self.components.providers,
            self.components.guards.output,
            accounts,
            limits=limits_of(self.cfg.candidates),
            leak_watch=self.components.guards.watch,
            on_done=recorder(run),
            on_progress=self.on_stats,
            batch=batched.answers,
        )
        self.components.guards.output.warm()  # loaded now, not on the event loop's watch while calls are timed
        settle_heap()
        try:
            outcome = generate(runner, todo(), sum(1 for key in order if key not in done))
        finally:
            gc.unfreeze()  # only the timed calls need it; afterwards what the run drops can be collected again
        delete_raw_outputs(batched)
        run.append("guardrail_timings.jsonl", self.components.guards.timings())

        latest = {**done, **current_generations(outcome.generations)}
        generations = sorted(latest.values(), key=lambda g: order.get((g.item_id, g.candidate), len(order)))
        run.write_jsonl("generations.jsonl", generations)  # canonical: one line per call, in request order
        kill_point("run:generated")
        manifest.stage = "generated"  # every call made or recorded as pending; scoring is next
        # the report rendered at the end of scoring reads the manifest: it must show the time spent, not 0.0 s
        manifest.seconds = round(manifest.seconds + time.perf_counter() - started, 3)
        run.write_json("run.json", manifest)
        return generations, outcome

    def score(
        self,
        run: RunDir,
        manifest: RunManifest,
        generations: list[Generation],
        outcome: GenerationOutcome,
        *,
        cache: CacheMode,
    ) -> RunSummary:
        """Score every answer, summarise and report; `finished` is written last, once summary and report are
        complete on disk."""
        started = time.perf_counter()
        summary = score_and_finalize(
            self.cfg,
            run,
            self.components.scoring,
            run.goldset().items,
            generations,
            run_id=manifest.run_id,
            rescore=False,
            log=self.log,
            spent_usd=outcome.spent_usd,
            budget_exhausted=outcome.budget_exhausted,
            cache=cache,
            progress=self.progress,
        ).summary
        # Last: the manifest says `finished` only once summary and report are complete on disk.
        manifest.finished_at = datetime.now(UTC).isoformat()
        manifest.status = summary.status
        manifest.stage = "finished"
        manifest.pending = summary.pending
        manifest.seconds = round(manifest.seconds + time.perf_counter() - started, 3)
        manifest.spent_usd = round(outcome.spent_usd, 6)
        run.write_json("run.json", manifest)
        return summary


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
    """`Evaluation(cfg).run(...)`: what the CLI, the library API and the nightly call."""
    evaluation = Evaluation(cfg, progress=progress, on_stats=on_stats, log=log)
    return evaluation.run(
        out_dir=out_dir,
        resume=resume,
        skip_ingest=skip_ingest,
        use_cache=use_cache,
        reuse_cache=reuse_cache,
        selection=selection,
    )
