"""Commands that run and re-score evaluations: ingest, run, report, score, annotate, calibrate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragharness.cli._app import (
    ConfigArg,
    ExitCode,
    _Bars,
    _progress,
    annotate_app,
    app,
    console,
    print_summary,
)

if TYPE_CHECKING:
    from ragharness.pipeline.config import HarnessConfig


@app.command()
def ingest(
    config: ConfigArg,
    rebuild: Annotated[bool, typer.Option(help="Re-index everything into a new index, then swap it in.")] = False,
    batch: Annotated[
        bool,
        typer.Option("--batch", help="Embed new chunks with a Bedrock batch job (embedder: titan; batch.bedrock)."),
    ] = False,
) -> None:
    """Ingest the configured corpus into the store; only new or changed text is embedded."""
    from ragharness.core.fileio import atomic_write_text
    from ragharness.ingest.pipeline import ingest as run_ingest
    from ragharness.pipeline.components import build_embedder, build_redactor, build_store
    from ragharness.pipeline.config import load_config

    cfg = load_config(config)
    embedder, store = build_embedder(cfg), build_store(cfg)
    with _progress() as p:
        report = run_ingest(
            cfg.ingest_settings(),
            embedder,
            store,
            _Bars(p),
            rebuild=rebuild,
            redactor=build_redactor(cfg),
            batch=batch,
            log=lambda s: console.print(s, markup=False),
        )
    out = cfg.resolve(cfg.data_dir) / "ingest-report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, report.model_dump_json(indent=2))
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
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No response cache: not read, not written.")] = False,
    reuse_cache: Annotated[
        bool,
        typer.Option(
            "--cache",
            help="Answer unchanged requests from the response cache (counted and shown as cached). By default a new "
            "run calls every model: a model changes behind its name.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate, render every request, estimate tokens and cost; call nothing.")
    ] = False,
    items: Annotated[
        str | None, typer.Option("--items", help="Only these gold item ids (comma-separated), for quick iteration.")
    ] = None,
    intent: Annotated[
        list[str] | None, typer.Option("--intent", help="Only items of this intent (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N (selected) items.")] = None,
) -> None:
    """Run the evaluation: ingest, locked retrieval, candidates, guardrails, scores, report."""
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.evaluation import execute_run
    from ragharness.pipeline.run import Selection

    cfg = load_config(config)
    if dry_run:
        _dry_run(cfg, use_cache=not no_cache, reuse_cache=reuse_cache)
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
            reuse_cache=reuse_cache,
            selection=Selection(
                items=[i.strip() for i in (items or "").split(",") if i.strip()], intents=intent or [], limit=limit
            ),
            log=lambda s: console.print(s, markup=False),
        )
    summary = result.summary
    print_summary(summary)
    if result.stats is not None:
        console.print(f"calls this session: {result.stats.done} · {result.stats.line()}", markup=False)
    console.print(f"run directory: {result.run_dir}", markup=False)
    console.print(f"review in the browser: {_serve_command(result.run_dir.parent)}", markup=False)
    console.print(f"report: {result.run_dir / 'report.html'}", markup=False)
    if summary.pending:
        reason = " (budget_usd reached)" if summary.budget_exhausted else ""
        console.print(
            f"stopped: {summary.pending} call(s) pending{reason}; "
            f"resume with: ragharness run {config} --resume {result.run_dir}",
            markup=False,
        )
    failed = _failures(result.run_dir)
    if failed:
        console.print(f"failed calls: {failed}", markup=False)
        if not summary.pending:  # calls that failed count against the scores; a resume asks them again
            console.print(f"retry them with: ragharness run {config} --resume {result.run_dir}", markup=False)
    if summary.status == "fail":
        raise typer.Exit(ExitCode.GATE_FAILED)
    if summary.status == "incomplete":
        raise typer.Exit(ExitCode.INCOMPLETE)


def _failures(run_dir: Path) -> str:
    """Why calls failed, per candidate and error type, with the first message (e.g. 'gpt: 34 ConnectError (All
    connection attempts failed)'): an exit 4 must say why."""
    from collections import Counter

    from ragharness.runs.rundir import RunDir

    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], str] = {}
    for g in RunDir.open(run_dir).generations():
        if g.error is not None:
            key = (g.candidate, g.error.type)
            counts[key] += 1
            first.setdefault(key, g.error.message[:160])
    return "; ".join(f"{c}: {n} {t} ({first[(c, t)]})" for (c, t), n in sorted(counts.items()))


def _serve_command(store: Path) -> str:
    """The command that opens the review app on this run store: the same `ragharness` this run was started with
    (e.g. `.venv/bin/ragharness`, which is not on a fresh PATH), paths relative to the working folder."""
    import shlex
    import sys

    from ragharness.core.extras import installed

    def shown(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
        except ValueError:
            return str(path)

    exe = Path(sys.argv[0])
    program = shown(exe) if exe.name == "ragharness" else "ragharness"
    command = f"{shlex.quote(program)} serve --store {shlex.quote(shown(store))} --local"
    if not installed("serve"):  # `make demo` installs the runtime only
        return f"{command} (first install the review app: pip install 'ragharness[serve]')"
    return command


def _dry_run(cfg: HarnessConfig, *, use_cache: bool, reuse_cache: bool) -> None:
    from ragharness.pipeline.dryrun import plan

    with _progress() as p:
        result = plan(cfg, use_cache=use_cache, reuse_cache=reuse_cache, progress=_Bars(p))
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
    columns = ("candidate", "calls", "cached", "blocked", "est. input tokens", "est. output tokens", "online $")
    for col in (*columns, "batch $", "mode", "jobs"):
        table.add_column(col, justify="left" if col in ("candidate", "mode") else "right", no_wrap=True)
    for name, t in result.totals().items():
        est, batch_est = t["cost_usd"], t["batch_cost_usd"]
        bp = result.batch.get(name)
        mode = bp.mode + (f" ({bp.reason})" if bp.reason else "") if bp else "online"
        table.add_row(
            name,
            str(t["calls"]),
            str(t["cached"]),
            str(t["blocked"]),
            f"{t['input_tokens']:,}",
            f"{t['output_tokens']:,}",
            "unpriced" if est is None else f"{float(est):.4f}",
            "-" if bp is None or not bp.capable else "unpriced" if batch_est is None else f"{float(batch_est):.4f}",
            mode,
            str(bp.jobs) if bp and bp.capable else "-",
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
    from ragharness.reporting.report import write_report
    from ragharness.runs.rundir import RunDir

    path = write_report(RunDir.open_finished(run_dir, "a report"))
    console.print(f"report: {path}", markup=False)


@app.command()
def score(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    judge: Annotated[str | None, typer.Option(help="Judge provider id, e.g. bedrock:<model>; adds the judge.")] = None,
    judge_option: Annotated[
        list[str] | None,
        typer.Option(
            "--judge-option",
            help="KEY=VALUE merged into the judge's provider options (repeatable), e.g. base_url=http://... or "
            "api_key=${JUDGE_KEY}; values are YAML scalars.",
        ),
    ] = None,
    judge_config: Annotated[
        Path | None,
        typer.Option(help="A YAML file holding only a `judge:` section; replaces the run's judge settings."),
    ] = None,
    scorers: Annotated[str | None, typer.Option(help="Comma-separated scorers to run (default: the config's).")] = None,
    config: Annotated[Path | None, typer.Option(help="Take judge/scorer settings from this harness.yaml.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call the judge even for cached inputs.")] = False,
) -> None:
    """Re-score a run without regenerating any answer; new scores are stored beside the old ones."""
    from ragharness.pipeline.config import load_config, load_judge_config, parse_option_pairs
    from ragharness.pipeline.rescore import rescore

    cfg = load_config(config) if config else None
    chosen = [s.strip() for s in scorers.split(",") if s.strip()] if scorers else None
    scored = rescore(
        run_dir,
        config=cfg,
        judge=judge,
        judge_config=load_judge_config(judge_config) if judge_config else None,
        judge_options=parse_option_pairs(judge_option or [], "--judge-option"),
        scorers=chosen,
        use_cache=not no_cache,
    )
    for name, n in sorted(scored.records.items()):
        console.print(f"scored: {name}: {n} records", markup=False)
    if scored.judge_failures:
        console.print(f"judge failures (counted as 0): {scored.judge_failures}", markup=False)
    print_summary(scored.summary)
    console.print(f"report: {run_dir / 'report.html'}", markup=False)


@annotate_app.command("export")
def annotate_export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    csv: Annotated[Path, typer.Option("--csv", help="CSV file to write.")],
    show_candidate: Annotated[bool, typer.Option(help="Include the candidate column (not blind).")] = False,
) -> None:
    """Write one row per (item, candidate) with question, passages, answer and empty label columns."""
    from ragharness.analysis.labels import export_csv

    n = export_csv(run_dir, csv, show_candidate=show_candidate)
    console.print(
        f"wrote {n} rows to {csv}; fill human_groundedness (grounded/ungrounded) and "
        "human_correctness (correct/partially_correct/incorrect/off_topic)",
        markup=False,
    )


@annotate_app.command("import")
def annotate_import(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    csv: Annotated[Path, typer.Option("--csv", help="The labelled CSV.")],
    reviewer: Annotated[str, typer.Option(help="Reviewer id recorded with each label.")] = "csv",
) -> None:
    """Append human labels from the CSV to the run's labels.jsonl (the latest label per reviewer counts)."""
    from ragharness.analysis.labels import import_csv

    labels = import_csv(run_dir, csv, reviewer=reviewer)
    console.print(f"imported {len(labels)} labelled rows into {run_dir / 'labels.jsonl'}", markup=False)


@app.command()
def calibrate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    labels: Annotated[Path | None, typer.Option(help="Labelled CSV or labels.jsonl (default: the run's).")] = None,
) -> None:
    """Agreement of each scorer with human labels: accuracy, balanced accuracy, Cohen's kappa, F1, confusion."""
    from ragharness.analysis.labels import calibrate as run_calibration
    from ragharness.reporting.report import write_report
    from ragharness.runs.rundir import RunDir

    result = run_calibration(run_dir, labels)
    write_report(RunDir.open(run_dir))
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
