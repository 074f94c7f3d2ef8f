"""The `ragharness` command line (typer).

Exit codes: 0 pass; 1 a threshold gate failed; 2 usage error; 3 configuration or input error (config, gold
set, corpus, run directory); 4 the run is incomplete (some calls failed for good); 5 (nightly) a significant
regression against the baseline; 6 (nightly) another nightly run holds the lock.
"""

from __future__ import annotations

import json
import os
import sys
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragharness.errors import ConfigError, GoldSetError, RagharnessError

if TYPE_CHECKING:
    from ragharness.config import HarnessConfig
    from ragharness.eval.runner import RunStats
    from ragharness.eval.summary import RunSummary

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


class ExitCode(IntEnum):
    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    CONFIG = 3
    INCOMPLETE = 4
    REGRESSED = 5
    LOCKED = 6


app = typer.Typer(
    help="Evaluate RAG-grounded assistants: ingest, locked retrieval, candidates, scores, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
goldset_app = typer.Typer(help="Validate gold sets and publish their schema.", no_args_is_help=True)
app.add_typer(goldset_app, name="goldset")
annotate_app = typer.Typer(help="Export a run for human labelling; import the labels back.", no_args_is_help=True)
app.add_typer(annotate_app, name="annotate")

console = Console(width=max(150, Console().width), highlight=False, soft_wrap=True)
err_console = Console(stderr=True, width=max(120, Console().width), highlight=False, soft_wrap=True)

ConfigArg = Annotated[Path, typer.Argument(help="Path of the harness.yaml to use.")]


def _fail(exc: RagharnessError) -> typer.Exit:
    problems = exc.problems if isinstance(exc, GoldSetError) else [str(exc)]
    err_console.print(f"[bold red]error:[/] {exc if isinstance(exc, GoldSetError) else ''}".rstrip())
    for p in problems:
        err_console.print(f"  {p}", markup=False)
    return typer.Exit(ExitCode.CONFIG)


class _Bars:
    """rich progress bars keyed by stage name; the generate bar also shows in-flight, retries, tokens and cost."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total, info="")
        self.progress.update(self.tasks[stage], completed=done, total=total)

    def stats(self, s: RunStats) -> None:
        if "generate" not in self.tasks:
            self.tasks["generate"] = self.progress.add_task("generate", total=s.total, info="")
        self.progress.update(self.tasks["generate"], completed=s.done + s.budget_refused, total=s.total, info=s.line())


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    )


@app.command()
def ingest(
    config: ConfigArg,
    rebuild: Annotated[bool, typer.Option(help="Re-index everything into a new index, then swap it in.")] = False,
) -> None:
    """Ingest the configured corpus into the store; only new or changed text is embedded."""
    from ragharness.components import build_embedder, build_store
    from ragharness.config import load_config
    from ragharness.ingest.pipeline import ingest as run_ingest

    try:
        cfg = load_config(config)
        embedder, store = build_embedder(cfg), build_store(cfg)
        with _progress() as p:
            report = run_ingest(cfg, embedder, store, _Bars(p), rebuild=rebuild)
    except RagharnessError as exc:
        raise _fail(exc) from exc
    out = cfg.resolve(cfg.data_dir) / "ingest-report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    for line in report.summary_lines():
        console.print(line, markup=False)
    console.print(f"ingest report: {out}", markup=False)


@app.command()
def run(
    config: ConfigArg,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: output_dir/<run id>); an existing run is resumed.")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Resume this run directory: completed calls are kept, the rest are made.")
    ] = None,
    no_ingest: Annotated[bool, typer.Option("--no-ingest", help="Use the store as it is; skip ingest.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call every model; ignore the response cache.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, render every request, estimate tokens and cost; call nothing.")
    ] = False,
) -> None:
    """Run the evaluation: ingest, locked retrieval, candidates, guardrails, scores, report."""
    from ragharness.config import load_config
    from ragharness.eval.run import execute_run

    try:
        cfg = load_config(config)
        if dry_run:
            _dry_run(cfg, use_cache=not no_cache)
            return
        with _progress() as p:
            bars = _Bars(p)
            result = execute_run(
                cfg,
                out_dir=out,
                resume=resume,
                progress=bars,
                on_stats=bars.stats,
                skip_ingest=no_ingest,
                use_cache=not no_cache,
                log=lambda s: console.print(s, markup=False),
            )
    except RagharnessError as exc:
        raise _fail(exc) from exc
    summary = result.summary
    print_summary(summary)
    if result.stats is not None:
        console.print(f"calls this session: {result.stats.done} · {result.stats.line()}", markup=False)
    console.print(f"run directory: {result.run_dir}", markup=False)
    console.print(f"report: {result.run_dir / 'report.html'}", markup=False)
    if summary.pending:
        reason = " (budget_usd reached)" if summary.budget_exhausted else ""
        console.print(
            f"stopped: {summary.pending} call(s) pending{reason}; "
            f"resume with: ragharness run {config} --resume {result.run_dir}",
            markup=False,
        )
    if summary.status == "fail":
        raise typer.Exit(ExitCode.GATE_FAILED)
    if summary.status == "incomplete":
        raise typer.Exit(ExitCode.INCOMPLETE)


def _dry_run(cfg: HarnessConfig, *, use_cache: bool) -> None:
    from ragharness.eval.dryrun import plan

    result = plan(cfg, use_cache=use_cache)
    shown = result.calls if len(result.calls) <= 200 else result.calls[:50]
    for c in shown:
        cost = "unpriced" if c.est_cost_usd is None else f"${c.est_cost_usd:.5f}"
        state = " (blocked: no call)" if c.blocked else (" (cached: free)" if c.cached else "")
        console.print(
            f"call {c.candidate} {c.item_id}: ~{c.est_input_tokens} in / <={c.est_output_tokens} out, {cost}{state}",
            markup=False,
        )
    if len(shown) < len(result.calls):
        console.print(f"... and {len(result.calls) - len(shown)} more calls", markup=False)
    table = Table(title=f"dry run: {cfg.name} · store has {result.store_chunks} chunks · no model was called")
    for col in ("candidate", "calls", "cached", "blocked", "est. input tokens", "est. output tokens", "est. cost $"):
        table.add_column(col, justify="left" if col == "candidate" else "right", no_wrap=True)
    for name, t in result.totals().items():
        est = t["cost_usd"]
        table.add_row(
            name,
            str(t["calls"]),
            str(t["cached"]),
            str(t["blocked"]),
            f"{t['input_tokens']:,}",
            f"{t['output_tokens']:,}",
            "unpriced" if est is None else f"{float(est):.4f}",
        )
    console.print(table)
    total = result.total_cost
    line = "estimated total: " + (
        "unknown (a model has no price; add it under `prices:`)" if total is None else f"${total:.4f}"
    )
    if cfg.budget_usd is not None:
        line += f" · budget ${cfg.budget_usd:.2f}"
        if total is not None and total > cfg.budget_usd:
            line += " · the run would stop at the budget (resumable)"
    console.print(line, markup=False)
    if result.store_chunks == 0:
        console.print(
            "warning: the store is empty; run `ragharness ingest` first for realistic estimates", markup=False
        )


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Re-render report.html from a run directory (no model is called)."""
    from ragharness.eval.report import write_report
    from ragharness.eval.rundir import RunDir

    try:
        path = write_report(RunDir.open(run_dir))
    except RagharnessError as exc:
        raise _fail(exc) from exc
    console.print(f"report: {path}", markup=False)


@app.command()
def score(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    judge: Annotated[str | None, typer.Option(help="Judge provider id, e.g. bedrock:<model>; adds the judge.")] = None,
    scorers: Annotated[str | None, typer.Option(help="Comma-separated scorers to run (default: the config's).")] = None,
    config: Annotated[Path | None, typer.Option(help="Take judge/scorer settings from this harness.yaml.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the judge even for cached inputs.")] = False,
) -> None:
    """Re-score a run without regenerating any answer; new scores are stored beside the old ones."""
    from ragharness.config import load_config
    from ragharness.eval.rescore import rescore

    try:
        cfg = load_config(config) if config else None
        chosen = [s.strip() for s in scorers.split(",") if s.strip()] if scorers else None
        summary, new = rescore(run_dir, config=cfg, judge=judge, scorers=chosen, use_cache=not no_cache)
    except RagharnessError as exc:
        raise _fail(exc) from exc
    by_scorer: dict[str, int] = {}
    for s in new:
        by_scorer[f"{s.scorer}@{s.scorer_version}"] = by_scorer.get(f"{s.scorer}@{s.scorer_version}", 0) + 1
    for name, n in sorted(by_scorer.items()):
        console.print(f"scored: {name}: {n} records", markup=False)
    failures = sum(1 for s in new if s.label == "judge_error")
    if failures:
        console.print(f"judge failures (counted as 0): {failures}", markup=False)
    print_summary(summary)
    console.print(f"report: {run_dir / 'report.html'}", markup=False)


@annotate_app.command("export")
def annotate_export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    csv: Annotated[Path, typer.Option("--csv", help="CSV file to write.")],
    show_candidate: Annotated[bool, typer.Option(help="Include the candidate column (not blind).")] = False,
) -> None:
    """Write one row per (item, candidate) with question, passages, answer and empty label columns."""
    from ragharness.eval.annotate import export_csv

    try:
        n = export_csv(run_dir, csv, show_candidate=show_candidate)
    except RagharnessError as exc:
        raise _fail(exc) from exc
    console.print(
        f"wrote {n} rows to {csv}; fill human_groundedness (grounded/ungrounded) and "
        "human_correctness (correct/partially_correct/incorrect/off_topic)",
        markup=False,
    )


@annotate_app.command("import")
def annotate_import(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    csv: Annotated[Path, typer.Option("--csv", help="The labelled CSV.")],
) -> None:
    """Read human labels back into the run directory (labels.jsonl)."""
    from ragharness.eval.annotate import import_csv

    try:
        labels = import_csv(run_dir, csv)
    except RagharnessError as exc:
        raise _fail(exc) from exc
    console.print(f"imported {len(labels)} labelled rows into {run_dir / 'labels.jsonl'}", markup=False)


@app.command()
def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    labels: Annotated[Path | None, typer.Option(help="Labelled CSV or labels.jsonl (default: the run's).")] = None,
) -> None:
    """Agreement of each scorer with human labels: accuracy, balanced accuracy, Cohen's kappa, F1, confusion."""
    from ragharness.eval.annotate import calibrate as run_calibration
    from ragharness.eval.report import write_report
    from ragharness.eval.rundir import RunDir

    try:
        result = run_calibration(run_dir, labels)
        write_report(RunDir.open(run_dir))
    except RagharnessError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"agreement with {result.n_labels} human labels")
    for col in ("scorer", "metric", "n", "accuracy", "balanced acc.", "kappa", "F1 negative"):
        table.add_column(col, no_wrap=True)
    for a in result.agreements:
        table.add_row(
            a.scorer,
            a.metric,
            str(a.n),
            f"{a.accuracy:.3f}",
            f"{a.balanced_accuracy:.3f}",
            f"{a.cohen_kappa:.3f}",
            f"{a.f1_negative:.3f}",
        )
    console.print(table)
    for a in result.agreements:
        console.print(
            f"{a.scorer} {a.metric} confusion (rows human, cols scorer; {', '.join(a.labels)}): {a.confusion}",
            markup=False,
        )


@app.command("retrieval-eval")
def retrieval_eval(
    config: ConfigArg,
    k: Annotated[int | None, typer.Option(help="Cut-off k (default: retrieval.k).")] = None,
    modes: Annotated[str, typer.Option(help="Comma-separated modes to compare.")] = "vector,bm25,hybrid",
    out: Annotated[Path | None, typer.Option(help="Folder for retrieval.json and retrieval.html.")] = None,
    no_ingest: Annotated[bool, typer.Option("--no-ingest", help="Use the store as it is; skip ingest.")] = False,
) -> None:
    """Run only the retrieval half: hit@k, recall@k, MRR, nDCG@k per intent and mode, with latency."""
    import jinja2

    from ragharness.components import build_embedder, build_store
    from ragharness.config import load_config
    from ragharness.eval.run import new_run_id
    from ragharness.goldset import load_goldset
    from ragharness.ingest.pipeline import ingest as run_ingest
    from ragharness.retrieval.evaluate import evaluate_retrieval
    from ragharness.types import SearchMode

    try:
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
                report = run_ingest(cfg, embedder, store, _Bars(p))
                console.print(report.summary_lines()[1], markup=False)
            gold = load_goldset(cfg.resolve(cfg.goldset))
            result = evaluate_retrieval(
                gold.items,
                embedder,
                store,
                k=k or cfg.retrieval.k,
                modes=chosen,
                filters=cfg.retrieval.filters,
                progress=_Bars(p),
            )
    except RagharnessError as exc:
        raise _fail(exc) from exc
    folder = out or cfg.resolve(cfg.output_dir) / f"retrieval-{new_run_id(cfg.name)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "retrieval.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.PackageLoader("ragharness.eval", "templates"), autoescape=True)
    (folder / "retrieval.html").write_text(
        env.get_template("retrieval.html.j2").render(name=cfg.name, result=result), encoding="utf-8"
    )
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


@goldset_app.command("import-beir")
def goldset_import_beir(
    src: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    out: Annotated[Path, typer.Option(help="Folder to write corpus/, gold.jsonl and harness.yaml into.")],
    split: Annotated[str, typer.Option(help="qrels split to use.")] = "test",
) -> None:
    """Turn a BEIR dataset into a corpus, a retrieval-only gold set and a harness.yaml."""
    from ragharness.retrieval.beir import import_beir

    try:
        counts = import_beir(src, out, split=split)
    except RagharnessError as exc:
        raise _fail(exc) from exc
    console.print(
        f"imported {counts['documents']} documents and {counts['queries']} queries into {out}; "
        f"run: ragharness retrieval-eval {out / 'harness.yaml'}",
        markup=False,
    )


@app.command("compare")
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="Run directory A (the baseline).")],
    run_b: Annotated[
        Path | None, typer.Argument(help="Run directory B (default: A, comparing two candidates).")
    ] = None,
    candidate_a: Annotated[str | None, typer.Option(help="Candidate in run A.")] = None,
    candidate_b: Annotated[str | None, typer.Option(help="Candidate in run B.")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level (after Holm correction).")] = 0.05,
    out: Annotated[Path | None, typer.Option(help="Folder for comparison.json and comparison.html.")] = None,
) -> None:
    """Paired A/B comparison: per metric and intent, bootstrap CI, McNemar, Holm, MDE, wins/losses/ties."""
    from ragharness.eval.compare import compare, pick_candidates, write_comparison
    from ragharness.eval.rundir import RunDir

    try:
        a = RunDir.open(run_a)
        b = RunDir.open(run_b) if run_b else a
        ca, cb = pick_candidates(a, b, candidate_a, candidate_b)
        result = compare(a, b, ca, cb, alpha=alpha)
        folder = out or b.path / f"compare-{ca}-vs-{cb}"
        json_path, html_path = write_comparison(result, folder)
    except RagharnessError as exc:
        raise _fail(exc) from exc
    table = Table(title=f"{cb} (B) vs {ca} (A) · {result.n_items} paired items")
    for col in ("metric", "A", "B", "B-A", "95% CI", "W/L/T", "p Holm", "MDE", "verdict"):
        table.add_column(col, no_wrap=True)
    for m in result.metrics:
        r = m.result
        verdict = ("significant drop" if r.diff < 0 else "significant gain") if r.significant else "within noise"
        table.add_row(
            m.metric,
            f"{r.mean_a:.3f}",
            f"{r.mean_b:.3f}",
            f"{r.diff:+.3f}",
            f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
            f"{r.wins}/{r.losses}/{r.ties}",
            f"{r.p_holm:.4f}",
            f"{r.mde:.3f}",
            verdict,
        )
    console.print(table)
    for w in result.warnings:
        console.print(f"warning: {w}", markup=False)
    console.print(f"items whose correctness changed: {len(result.changed)}", markup=False)
    console.print(f"comparison: {json_path}", markup=False)
    console.print(f"report: {html_path}", markup=False)


@app.command()
def trends(
    config: Annotated[Path | None, typer.Argument(help="harness.yaml (its output_dir / run store).")] = None,
    runs: Annotated[Path | None, typer.Option(help="A runs folder instead of a config.")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the history index from the run store.")] = False,
) -> None:
    """Write the trend dashboard (one self-contained HTML page) from the run history."""
    from ragharness.config import load_config
    from ragharness.eval.history import HistoryIndex
    from ragharness.eval.runstore import LocalRunStore, open_run_store
    from ragharness.eval.trends import build_dashboard

    try:
        if config:
            cfg = load_config(config)
            root = cfg.resolve(cfg.output_dir)
            store = (
                open_run_store(cfg.nightly.run_store, cfg.resolve(cfg.data_dir) / "run-cache")
                if cfg.nightly.run_store
                else LocalRunStore(root)
            )
            name: str | None = cfg.name
        elif runs:
            root, store, name = runs, LocalRunStore(runs), None
        else:
            raise ConfigError("pass a harness.yaml or --runs FOLDER")
        index = HistoryIndex(root / "history.sqlite", store)
        if rebuild:
            index.rebuild()
        path = build_dashboard(index, out or root / "trends.html", name=name)
        n = len(index.runs(name))
        index.close()
    except RagharnessError as exc:
        raise _fail(exc) from exc
    console.print(f"trends over {n} runs: {path}", markup=False)


@app.command()
def nightly(
    config: ConfigArg,
    baseline: Annotated[str | None, typer.Option(help="Pinned baseline run id (default: nightly.baseline).")] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write the JUnit XML here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Also write the Markdown summary here.")] = None,
) -> None:
    """Run the evaluation, compare with the baseline and gate: 0 pass, 1 below threshold, 4 incomplete,
    5 significant regression, 6 locked."""
    from ragharness.config import load_config
    from ragharness.eval.nightly import LockedError, run_nightly

    try:
        cfg = load_config(config)
        result = run_nightly(
            cfg, baseline=baseline, junit=junit, markdown=markdown, log=lambda s: console.print(s, markup=False)
        )
    except LockedError as exc:
        err_console.print(f"error: {exc}", markup=False)
        raise typer.Exit(ExitCode.LOCKED) from exc
    except RagharnessError as exc:
        raise _fail(exc) from exc
    console.print(result.markdown, markup=False)
    for n in result.notes:
        console.print(n, markup=False)
    console.print(f"run directory: {result.run_dir}", markup=False)
    console.print(f"verdict: {result.verdict} (exit {result.exit_code})", markup=False)
    raise typer.Exit(result.exit_code)


@app.command()
def plugins() -> None:
    """List the registered providers, embedders, stores, scorers and guardrails."""
    from ragharness.registry import EMBEDDERS, GUARDRAILS, PROVIDERS, SCORERS, STORES

    for reg in (PROVIDERS, EMBEDDERS, STORES, SCORERS, GUARDRAILS):
        console.print(f"{reg.seam}s:", markup=False)
        for kind in reg.kinds():
            entry = reg.get(kind)
            console.print(f"  {entry.form:<16} {entry.help}", markup=False)


@goldset_app.command("lint")
def goldset_lint(
    files: Annotated[list[Path], typer.Argument(help="Gold set files (YAML or JSONL).")],
) -> None:
    """Validate gold sets; report every problem with file, item id and field."""
    from ragharness.goldset import load_goldset

    bad = 0
    for file in files:
        try:
            gs = load_goldset(file)
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
        out.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


def print_summary(summary: RunSummary) -> None:
    from ragharness.eval.report import MAIN_METRICS, fmt

    table = Table(title=f"{summary.name} · {summary.n_items} items · {summary.status.upper()}")
    table.add_column("candidate", no_wrap=True)
    short = {
        "correctness": "correct",
        "groundedness": "grounded",
        "citation_coverage": "cite cov",
        "citation_validity": "cite valid",
        "citation_precision": "cite prec",
        "refusal": "refusal",
    }
    for m in MAIN_METRICS:
        table.add_column(short.get(m, m), justify="right")
    table.add_column("errors", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("cost $", justify="right")
    table.add_column("p50 ms", justify="right")
    for c in summary.candidates:
        table.add_row(
            c.candidate,
            *[fmt(c.metrics[m].mean if m in c.metrics else None) for m in MAIN_METRICS],
            f"{c.errors}/{c.generations}",
            str(c.input_tokens + c.output_tokens),
            fmt(c.cost_usd, 4),
            fmt(c.latency_p50_ms, 0),
        )
    console.print(table)
    intents = list(summary.retrieval_by_intent)
    it = Table(title="correctness per intent (retrieval hit rate)")
    it.add_column("intent", no_wrap=True)
    for c in summary.candidates:
        it.add_column(c.candidate, justify="right")
    it.add_column("retrieval hit", justify="right")
    for intent in intents:
        row = []
        for c in summary.candidates:
            ms = c.by_intent.get(intent, {}).get("correctness")
            row.append(fmt(ms.mean if ms else None))
        hit = summary.retrieval_by_intent[intent].get("retrieval_hit")
        it.add_row(intent, *row, fmt(hit.mean if hit else None))
    console.print(it)
    for g in summary.gates:
        console.print(("PASS " if g.passed else "FAIL ") + g.message, markup=False)


def main() -> None:
    app()
