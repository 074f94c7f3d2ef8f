"""Commands that compare runs and gate releases: compare, trends, nightly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragharness.cli._app import (
    ConfigArg,
    app,
    console,
)
from ragharness.core.errors import ConfigError

if TYPE_CHECKING:
    pass


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
    from ragharness.analysis.compare import compare, pick_candidates
    from ragharness.reporting.compare import write_comparison
    from ragharness.runs.rundir import RunDir

    a = RunDir.open_finished(run_a, "a comparison")
    b = RunDir.open_finished(run_b, "a comparison") if run_b else a
    ca, cb = pick_candidates(a, b, candidate_a, candidate_b)
    result = compare(a, b, ca, cb, alpha=alpha)
    folder = out or b.path / f"compare-{ca}-vs-{cb}"
    json_path, html_path = write_comparison(result, folder)
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
    console.print(f"items whose {result.changed_metric} changed: {len(result.changed)}", markup=False)
    console.print(f"comparison: {json_path}", markup=False)
    console.print(f"report: {html_path}", markup=False)


@app.command()
def trends(
    config: Annotated[Path | None, typer.Argument(help="harness.yaml (its output_dir / run store).")] = None,
    runs: Annotated[Path | None, typer.Option(help="A runs folder instead of a config.")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML file to write.")] = None,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the history index from the run store.")] = False,
    x: Annotated[str, typer.Option("--x", help="x axis: run (evenly spaced, dated) or time.")] = "run",
) -> None:
    """Write the trend dashboard (one self-contained HTML page) from the run history."""
    from ragharness.pipeline.config import load_config
    from ragharness.reporting.trends import build_dashboard
    from ragharness.runs.history import HistoryIndex
    from ragharness.runs.store import LocalRunStore, open_run_store

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
    if x not in ("run", "time"):
        raise ConfigError(f"--x {x!r}: use run or time")
    path = build_dashboard(index, out or root / "trends.html", name=name, x="time" if x == "time" else "run")
    n = len(index.runs(name))
    index.close()
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
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.nightly import run_nightly

    cfg = load_config(config)
    result = run_nightly(
        cfg, baseline=baseline, junit=junit, markdown=markdown, log=lambda s: console.print(s, markup=False)
    )
    console.print(result.markdown, markup=False)
    for n in result.notes:
        console.print(n, markup=False)
    console.print(f"run directory: {result.run_dir}", markup=False)
    console.print(f"verdict: {result.verdict} (exit {result.exit_code})", markup=False)
    raise typer.Exit(result.exit_code)
