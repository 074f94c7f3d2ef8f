"""Guardrail commands: evaluate the chain alone against a labelled suite; export the policy to Terraform."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragharness.cli._app import ConfigArg, ExitCode, _Bars, _progress, app, console
from ragharness.core.fileio import atomic_write_text


@app.command("guardrail-eval")
def guardrail_eval(
    config: ConfigArg,
    suite: Annotated[Path, typer.Option(help="Labelled texts (JSONL or YAML): id, text, stage, expect, category.")],
    out: Annotated[Path | None, typer.Option(help="Folder for guardrail-eval.json and .html.")] = None,
    fail_under: Annotated[
        float | None, typer.Option(help="Exit 1 when overall accuracy is below this (0-1), or any PII value is left.")
    ] = None,
) -> None:
    """Run only the guardrails (the config's chains and policy) on a labelled suite: accuracy, under- and
    over-blocking and PII values left, per stage and category, with every misclassified case."""
    from ragharness.analysis.guardrail_eval import evaluate_guardrails, load_suite
    from ragharness.pipeline.components import build_guardrails
    from ragharness.pipeline.config import load_config
    from ragharness.pipeline.run import new_run_id
    from ragharness.reporting.jinja import render

    cfg = load_config(config)
    cases = load_suite(suite)
    guards = build_guardrails(cfg)
    with _progress() as p:
        result = evaluate_guardrails(cases, guards, suite=str(suite), progress=_Bars(p))
    folder = out or cfg.resolve(cfg.output_dir) / f"guardrail-eval-{new_run_id(cfg.name)}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "guardrail-eval.json", result.model_dump_json(indent=2))
    atomic_write_text(
        folder / "guardrail-eval.html", render("guardrail_eval.html.j2", name=cfg.name, result=result, candidates=[])
    )
    table = Table(title=f"guardrail eval · {result.n} cases · p50 {result.latency_p50_ms:.1f} ms")
    for col in ("group", "cases", "accuracy", "under-blocked", "over-blocked", "PII left"):
        table.add_column(col, justify="left" if col == "group" else "right")
    rows = [("all", result.overall)] + [(f"stage {k}", g) for k, g in result.by_stage.items()]
    rows += list(result.by_category.items())
    for label, g in rows:
        acc = "-" if g.accuracy is None else f"{g.accuracy:.3f}"
        table.add_row(
            label,
            str(g.n),
            acc,
            f"{g.under_blocked}/{g.should_stop}",
            f"{g.over_blocked}/{g.should_pass}",
            f"{g.pii_left}/{g.pii_values}",
        )
    console.print(table)
    console.print(f"misclassified: {len(result.misclassified)}", markup=False)
    console.print(f"results: {folder / 'guardrail-eval.json'}", markup=False)
    console.print(f"report: {folder / 'guardrail-eval.html'}", markup=False)
    accuracy = result.overall.accuracy or 0.0
    if fail_under is not None and (accuracy < fail_under or result.overall.pii_left):
        raise typer.Exit(ExitCode.GATE_FAILED)


@app.command("guardrail-terraform")
def guardrail_terraform(
    config: ConfigArg,
    out: Annotated[Path | None, typer.Option(help="Write the .tf.json here (default: print it).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if --out differs from the policy's export.")] = False,
) -> None:
    """Export `guardrails.policy` as an aws_bedrock_guardrail Terraform resource (JSON syntax), or check that the
    committed one still matches it: what is evaluated is what is deployed."""
    import json

    from ragharness.core.errors import ConfigError
    from ragharness.guardrails.terraform import to_terraform
    from ragharness.pipeline.config import load_config

    cfg = load_config(config)
    if cfg.guardrails.policy is None:
        raise ConfigError(f"{cfg.source_file}: guardrails.policy: no policy to export; add one (see README)")
    text = json.dumps(to_terraform(cfg.guardrails.policy, cfg.name), indent=2) + "\n"
    if out is None:
        console.print(text, markup=False, highlight=False, end="")
        return
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else ""
        if current != text:
            console.print(
                f"{out}: does not match guardrails.policy of {cfg.source_file}; regenerate it with "
                f"`ragharness guardrail-terraform {config} --out {out}`",
                markup=False,
            )
            raise typer.Exit(ExitCode.GATE_FAILED)
        console.print(f"{out}: matches the policy", markup=False)
        return
    atomic_write_text(out, text)
    console.print(f"wrote {out}", markup=False)
