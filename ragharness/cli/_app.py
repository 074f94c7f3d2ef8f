"""Shared pieces of the `ragharness` command line: the typer apps, consoles, exit codes, progress bars.

Exit codes: 0 pass; 1 a threshold gate failed; 2 usage error; 3 configuration or input error (config, gold
set, corpus, run directory); 4 the run is incomplete (some calls failed, or batch jobs are still running);
5 (nightly) a significant regression against the baseline; 6 (nightly) another nightly run holds the lock.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ragharness.core.errors import BatchWaiting, DiskFullError, GoldSetError, LockedError, RagharnessError
from ragharness.core.extras import naming_extras
from ragharness.core.normalise import printable
from ragharness.scoring import metrics as catalog

if TYPE_CHECKING:
    from ragharness.generation.runner import RunStats
    from ragharness.runs.summary import RunSummary

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


def _fail(exc: RagharnessError) -> typer.Exit:
    """Print the error (credentials scrubbed) and pick the exit code: 6 locked, 4 disk full or batch jobs still
    running (resumable), else 3."""
    from ragharness.core.credentials import scrub

    problems = exc.problems if isinstance(exc, GoldSetError) else [str(exc)]
    err_console.print(f"[bold red]error:[/] {exc if isinstance(exc, GoldSetError) else ''}".rstrip())
    for p in problems:
        err_console.print(f"  {scrub(p)}", markup=False)
    if isinstance(exc, LockedError):
        return typer.Exit(ExitCode.LOCKED)
    if isinstance(exc, DiskFullError | BatchWaiting):
        if exc.run_dir is not None:
            err_console.print(f"  resume with: ragharness run {exc.config} --resume {exc.run_dir}", markup=False)
        return typer.Exit(ExitCode.INCOMPLETE)
    return typer.Exit(ExitCode.CONFIG)


class _Typer(typer.Typer):
    """Every command runs inside one error boundary: a RagharnessError becomes a clear message and an exit code."""

    def command(  # type: ignore[override]  # same call, the decorator wraps the function first
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def guarded(*a: Any, **k: Any) -> Any:
                try:  # an optional extra the command needs and is not installed is named, like any config error
                    return naming_extras(fn)(*a, **k)
                except RagharnessError as exc:
                    raise _fail(exc) from exc

            register(guarded)
            return fn

        return decorate


app = _Typer(
    help="Evaluate RAG-grounded assistants: ingest, locked retrieval, candidates, scores, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
goldset_app = _Typer(help="Validate gold sets and publish their schema.", no_args_is_help=True)
app.add_typer(goldset_app, name="goldset")
annotate_app = _Typer(help="Export a run for human labelling; import the labels back.", no_args_is_help=True)
app.add_typer(annotate_app, name="annotate")


class SafeConsole(Console):
    """A console that shows control characters as escapes in every string it renders (messages and table cells):
    an ANSI sequence in a gold item's intent or a model's answer cannot move the cursor or forge a PASS line."""

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Any:
        return super().render_str(printable(text), *args, **kwargs)


console = SafeConsole(width=max(150, Console().width), highlight=False, soft_wrap=True)
err_console = SafeConsole(stderr=True, width=max(120, Console().width), highlight=False, soft_wrap=True)

ConfigArg = Annotated[Path, typer.Argument(help="Path of the harness.yaml to use.")]


class _Bars:
    """rich progress bars keyed by stage name; the generate bar also shows in-flight, retries, tokens and cost.
    When stderr is not a terminal (CI, a log file) the bars are off and a plain line per stage says how far it
    got: at each tenth of the way, at least every 10 s while it moves, and at the end."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self._said: dict[str, tuple[int, float]] = {}
        self._began: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total, info="")
        self.progress.update(self.tasks[stage], completed=done, total=total)
        if self.progress.disable:
            self._line(stage, done, total)

    def _line(self, stage: str, done: int, total: int) -> None:
        import time

        last, at = self._said.get(stage, (-1, 0.0))
        now = time.monotonic()
        began = self._began.setdefault(stage, now)
        step = max(1, total // 10)
        if done != last and (done >= total or done // step != last // step or now - at >= 10):
            self._said[stage] = (done, now)
            err_console.print(f"{stage}: {done}/{total} ({now - began:.0f} s)", markup=False)

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
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        transient=False,
        disable=not err_console.is_terminal,
    )


def print_summary(summary: RunSummary) -> None:
    from ragharness.reporting.jinja import cached_text, cost_text, fmt
    from ragharness.reporting.report import headline_metrics
    from ragharness.scoring.metrics import spec

    table = Table(title=f"{summary.name} · {summary.n_items} items · {summary.status.upper()}")
    table.add_column("candidate", no_wrap=True)
    shown = headline_metrics({m for c in summary.candidates for m in c.metrics})
    for m in shown:
        table.add_column(spec(m).short, justify="right")
    table.add_column("errors", justify="right")
    cached = any(c.cached for c in summary.candidates)
    if cached:
        table.add_column("cached", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("cost $", justify="right")
    table.add_column("p50 ms", justify="right")
    streamed = any(c.ttft_p50_ms is not None for c in summary.candidates)
    if streamed:
        table.add_column("TTFT p50", justify="right")
    for c in summary.candidates:
        table.add_row(
            c.candidate,
            *[fmt(c.metrics[m].mean if m in c.metrics else None) for m in shown],
            f"{c.errors}/{c.generations}",
            *([f"{c.cached}/{c.generations}"] if cached else []),
            str(c.input_tokens + c.output_tokens),
            cost_text(c.cost_usd, c.unpriced, c.calls),
            fmt(c.value("latency_p50_ms"), 0),
            *([fmt(c.value("ttft_p50_ms"), 0)] if streamed else []),
        )
    console.print(table)
    for c in summary.candidates:
        if c.cached:
            console.print(
                f"{c.candidate}: {cached_text(c.cached, c.generations)} (no call in this run: left out of its "
                "tokens, cost and latency)",
                markup=False,
            )
    intents = sorted(
        {*summary.retrieval_by_intent, *(i for c in summary.candidates for i in c.by_intent)}
    )  # per-intent correctness exists without a retrieval scorer too
    primary = catalog.lead_metric({m for c in summary.candidates for m in c.metrics})
    it = Table(title=f"{primary} per intent (retrieval hit rate)")
    it.add_column("intent", no_wrap=True)
    for c in summary.candidates:
        it.add_column(c.candidate, justify="right")
    it.add_column("retrieval hit", justify="right")
    for intent in intents:
        row = []
        for c in summary.candidates:
            ms = c.by_intent.get(intent, {}).get(primary)
            row.append(fmt(ms.mean if ms else None))
        hit = summary.retrieval_by_intent.get(intent, {}).get("retrieval_hit")
        it.add_row(intent, *row, fmt(hit.mean if hit else None))
    console.print(it)
    for g in summary.gates:
        console.print(("PASS " if g.passed else "FAIL ") + g.message, markup=False)
