"""Commands about data: retrieval evaluation, gold sets, BEIR import, plugins."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragharness.cli._app import (
    ConfigArg,
    ExitCode,
    _Bars,
    _progress,
    app,
    console,
    err_console,
    goldset_app,
)
from ragharness.core.errors import ConfigError, GoldSetError
from ragharness.core.fileio import atomic_write_text

if TYPE_CHECKING:
    from ragharness.core.types import GoldItem
    from ragharness.pipeline.config import HarnessConfig
    from ragharness.retrieval.embedders import Embedder
    from ragharness.retrieval.store import VectorStore


@app.command("retrieval-eval")
def retrieval_eval(
    config: ConfigArg,
    k: Annotated[int | None, typer.Option(help="Cut-off k (default: retrieval.k).")] = None,
    modes: Annotated[str, typer.Option(help="Comma-separated modes to compare.")] = "vector,bm25,hybrid",
    out: Annotated[Path | None, typer.Option(help="Folder for retrieval.json and retrieval.html.")] = None,
    no_ingest: Annotated[bool, typer.Option("--no-ingest", help="Use the store as it is; skip ingest.")] = False,
    sweep: Annotated[
        Path | None,
        typer.Option(
            help="YAML grid of retrieval settings (mode, k, text_analysis, fusion) to compare with paired tests."
        ),
    ] = None,
) -> None:
    """Run only the retrieval half: hit@k, recall@k, MRR, nDCG@k per intent and mode, with latency; or, with
    --sweep, a grid of retrieval settings side by side against the current one."""
    from ragharness.analysis.retrieval import evaluate_retrieval
    from ragharness.context.lock import redact_gold
    from ragharness.core.types import SearchMode
    from ragharness.goldset import load_goldset
    from ragharness.ingest.pipeline import ingest as run_ingest
    from ragharness.pipeline.components import build_embedder, build_guardrails, build_redactor, build_store
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.run import new_run_id
    from ragharness.reporting.jinja import render

    cfg = load_config(config)
    try:
        chosen = [SearchMode(m.strip()) for m in modes.split(",") if m.strip()]
    except ValueError as exc:
        raise ConfigError(f"--modes: {exc}; use vector, bm25, hybrid") from exc
    embedder, store = build_embedder(cfg), build_store(cfg)
    with _progress() as p:
        if no_ingest:
            store.ensure(embedder.name, embedder.dimension)
        else:
            report = run_ingest(
                cfg.ingest_settings(),
                embedder,
                store,
                _Bars(p),
                redactor=build_redactor(cfg),
                log=lambda s: console.print(s, markup=False),
            )
            console.print(report.summary_lines()[1], markup=False)
        # questions are redacted as a run redacts them before anything embeds them (a hosted embedder sees no PII),
        # and source ids are checked against the store
        gold = redact_gold(
            load_goldset(cfg.resolve(cfg.goldset), known_sources=set(store.document_hashes())),
            build_guardrails(cfg).redact,
        )
        if sweep is not None:
            folder = out or cfg.resolve(cfg.output_dir) / f"sweep-{new_run_id(cfg.name)}"
            _sweep(cfg, sweep, gold.items, embedder, store, folder, _Bars(p))
            return
        result = evaluate_retrieval(
            gold.items,
            embedder,
            store,
            k=k or cfg.retrieval.k,
            modes=chosen,
            filters=cfg.retrieval.filters,
            progress=_Bars(p),
        )
    folder = out or cfg.resolve(cfg.output_dir) / f"retrieval-{new_run_id(cfg.name)}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "retrieval.json", result.model_dump_json(indent=2))
    atomic_write_text(folder / "retrieval.html", render("retrieval.html.j2", name=cfg.name, result=result))
    table = Table(title=f"retrieval · {len(gold.items)} items · k={result.k} · {result.store}")
    for col in ("mode", "hit", "recall", "MRR", "nDCG", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for m in result.modes:
        o = m.overall
        table.add_row(
            m.mode.value,
            f"{o['hit']:.3f}",
            f"{o['recall']:.3f}",
            f"{o['mrr']:.3f}",
            f"{o['ndcg']:.3f}",
            f"{m.latency_p50_ms:.1f}",
            f"{m.latency_p95_ms:.1f}",
        )
    console.print(table)
    console.print(f"results: {folder / 'retrieval.json'}", markup=False)
    console.print(f"report: {folder / 'retrieval.html'}", markup=False)


def _sweep(
    cfg: HarnessConfig,
    sweep: Path,
    items: list[GoldItem],
    embedder: Embedder,
    store: VectorStore,
    folder: Path,
    bars: _Bars,
) -> None:
    from ragharness.analysis.sweep import load_sweep, run_sweep
    from ragharness.reporting.jinja import render

    base = cfg.retrieval
    settings = load_sweep(sweep, base)
    folder.mkdir(parents=True, exist_ok=True)
    result = run_sweep(items, embedder, store, settings, folder / "stores", progress=bars)
    atomic_write_text(folder / "sweep.json", result.model_dump_json(indent=2))
    atomic_write_text(folder / "sweep.html", render("sweep.html.j2", name=cfg.name, result=result))
    table = Table(title=f"retrieval sweep · {result.n_items} items · {result.store} · against `current`")
    for col in ("setting", "mode", "k", "nDCG", "recall", "Δ nDCG [95% CI]", "p (Holm)", "p50 ms"):
        table.add_column(col, justify="left" if col in ("setting", "mode") else "right")
    for s in result.settings:
        v = s.vs_current
        delta = f"{v['diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]" if v else "-"
        mark = " *" if v and v["significant"] else ""
        table.add_row(
            s.name,
            s.mode,
            str(s.k),
            f"{s.overall['ndcg']:.3f}",
            f"{s.overall['recall']:.3f}",
            delta + mark,
            f"{v['p_holm']:.3f}" if v else "-",
            f"{s.latency_p50_ms:.1f}",
        )
    console.print(table)
    console.print("* significant after Holm (p < 0.05, CI excludes 0)", markup=False)
    console.print(f"results: {folder / 'sweep.json'}", markup=False)
    console.print(f"report: {folder / 'sweep.html'}", markup=False)


@goldset_app.command("import-beir")
def goldset_import_beir(
    src: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    out: Annotated[Path, typer.Option(help="Folder to write corpus/, gold.jsonl and harness.yaml into.")],
    split: Annotated[str, typer.Option(help="qrels split to use.")] = "test",
) -> None:
    """Turn a BEIR dataset into a corpus, a retrieval-only gold set and a harness.yaml."""
    from ragharness.retrieval.beir import import_beir

    counts = import_beir(src, out, split=split)
    console.print(
        f"imported {counts['documents']} documents and {counts['queries']} queries into {out}; "
        f"run: ragharness retrieval-eval {out / 'harness.yaml'}",
        markup=False,
    )


@app.command()
def plugins() -> None:
    """List the registered providers, embedders, stores, scorers and guardrails."""
    from ragharness.core.registry import EMBEDDERS, GUARDRAIL_BACKENDS, GUARDRAILS, PROVIDERS, SCORERS, STORES

    for reg in (PROVIDERS, EMBEDDERS, STORES, SCORERS, GUARDRAILS, GUARDRAIL_BACKENDS):
        console.print(f"{reg.seam}s:", markup=False)
        for kind in reg.kinds():
            entry = reg.get(kind)
            console.print(f"  {entry.form:<16} {entry.help}", markup=False)


@goldset_app.command("lint")
def goldset_lint(
    files: Annotated[list[Path], typer.Argument(help="Gold set files (YAML or JSONL).")],
    config: Annotated[
        Path | None,
        typer.Option(help="harness.yaml: also check expected_sources and must_cite ids against its ingested store."),
    ] = None,
) -> None:
    """Validate gold sets; report every problem with file, item id and field."""
    from ragharness.goldset import load_goldset

    known: set[str] | None = None
    if config is not None:
        from ragharness.pipeline.components import build_embedder, build_store
        from ragharness.pipeline.config import load_config

        cfg = load_config(config)
        embedder, store = build_embedder(cfg), build_store(cfg)
        store.ensure(embedder.name, embedder.dimension)
        known = set(store.document_hashes())
        if not known:
            where = cfg.resolve(cfg.data_dir)
            raise ConfigError(f"{config}: the store under {where} is empty; run `ragharness ingest {config}` first")
    bad = 0
    for file in files:
        try:
            gs = load_goldset(file, known_sources=known)
        except GoldSetError as exc:
            bad += 1
            for p in exc.problems:
                err_console.print(p, markup=False)
            continue
        intents = sorted({i.intent for i in gs.items})
        refusals = sum(1 for i in gs.items if not i.answerable)
        console.print(
            f"{file}: ok: {len(gs.items)} items, {len(intents)} intents, {refusals} must-refuse", markup=False
        )
    if bad:
        raise typer.Exit(ExitCode.CONFIG)


@goldset_app.command("schema")
def goldset_schema(out: Annotated[Path | None, typer.Option(help="Write to this file.")] = None) -> None:
    """Print (or write) the gold set JSON schema."""
    from ragharness.goldset import goldset_json_schema

    text = json.dumps(goldset_json_schema(), indent=2)
    if out:
        atomic_write_text(out, text + "\n")
    else:
        sys.stdout.write(text + "\n")


STARTER = Path(__file__).parent / "starter"


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder for the new evaluation (created; must be empty).")] = Path(
        "my-eval"
    ),
) -> None:
    """Start an evaluation of your own documents: a commented harness.yaml, an example corpus, gold set and prompt
    that run as they are (offline), and what to do next."""
    import shutil

    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder}: not empty; give a new folder (nothing there is overwritten)")
    shutil.copytree(STARTER, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    cfg, gold = folder / "harness.yaml", folder / "gold.yaml"
    made = "harness.yaml, gold.yaml, corpus/ (2 documents), prompts/my-answer.v1.yaml"
    console.print(f"created {folder}/: {made}", markup=False)
    steps = [
        f"1. run it as it is (offline, ~1 minute): ragharness run {cfg}",
        f"2. put your documents in {folder / 'corpus'}/ (a document's id is its path without the extension)",
        f"3. write your questions in {gold}; check them: ragharness goldset lint {gold} --config {cfg}",
        f"4. add your model under candidates: in {cfg} (OpenAI-compatible, Bedrock, recorded answers)",
        f"5. iterate on a few items: ragharness run {cfg} --limit 5",
        "6. every config key, its type and default: ragharness config-reference",
    ]
    for line in steps:
        console.print(line, markup=False)


@app.command("config-reference")
def config_reference(out: Annotated[Path | None, typer.Option(help="Write the Markdown to this file.")] = None) -> None:
    """Every harness.yaml key with its type, default and meaning, generated from the config models."""
    from ragharness.pipeline.config_reference import markdown

    text = markdown()
    if out:
        atomic_write_text(out, text)
        console.print(f"wrote {out}", markup=False)
    else:
        sys.stdout.write(text)
