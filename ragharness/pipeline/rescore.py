"""Re-score a finished run without regenerating any answer: new scores are appended beside the old ones (each
record names its scorer and version); the summary and report then use the latest record per metric."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ragharness.config import HarnessConfig, JudgeConfig, format_validation_error
from ragharness.errors import ConfigError, RunError
from ragharness.pipeline.components import build_embedder, build_scorers
from ragharness.reporting.report import write_report
from ragharness.retrieval.embedders import CachedEmbedder
from ragharness.runs.rundir import RunDir
from ragharness.runs.summary import RunSummary, summarise
from ragharness.scoring.engine import build_judge, run_judge, score_all
from ragharness.types import Candidate, Generation, Score
from ragharness.yamlio import load_strict


def run_config(run: RunDir) -> HarnessConfig:
    """The config a run was made with (its snapshot), with paths resolving where the original config lived."""
    file = run.file("config.yaml")
    data = load_strict(file.read_text(encoding="utf-8")) or {}
    base = Path(run.manifest().config_dir or run.path)
    try:
        return HarnessConfig.model_validate({**data, "base_dir": base, "source_file": file})
    except ValidationError as exc:
        raise RunError("\n".join(format_validation_error(file, exc))) from exc


def rescore(
    run_dir: Path,
    *,
    config: HarnessConfig | None = None,
    judge: str | None = None,
    scorers: list[str] | None = None,
    use_cache: bool = True,
) -> tuple[RunSummary, list[Score]]:
    """Score the run's stored answers again. `config` supplies judge/scorer settings (default: the run's own);
    `judge` replaces the judge's provider id; `scorers` picks which scorers run (default: the config's)."""
    run = RunDir.open_finished(run_dir, "re-scoring")
    cfg = run_config(run)
    if config is not None:
        cfg = cfg.model_copy(
            update={
                "judge": config.judge,
                "scoring": config.scoring,
                "prices": config.prices,
                "runner": config.runner,
                "scorers": config.scorers,
            }
        )
    chosen = list(scorers) if scorers else list(cfg.scorers)
    if judge:
        base = cfg.judge or JudgeConfig(provider=judge)
        cfg = cfg.model_copy(update={"judge": base.model_copy(update={"provider": judge})})
        if "judge" not in chosen:
            chosen.append("judge")
    if "judge" in chosen and cfg.judge is None:
        raise ConfigError(f"{run_dir}: scorer `judge` needs a judge: pass --judge PROVIDER_ID or a config with judge:")
    cfg = cfg.model_copy(update={"scorers": chosen})
    previous = run.read_model(
        "summary.json", RunSummary, f"re-create it with `ragharness run CONFIG --resume {run_dir}`"
    )
    gold = run.goldset()
    generations = run.generations()
    if not generations:
        raise RunError(
            f"{run.file('generations.jsonl')}: no generations to score; resume the run with "
            f"`ragharness run CONFIG --resume {run_dir}`"
        )
    embedder = CachedEmbedder(build_embedder(cfg))
    scorer_list = build_scorers(cfg, embedder)
    if "judge" in chosen:
        build_judge(cfg)  # a misconfigured judge fails before any scorer or judge call
    packs = {p.item_id: p for p in run.packs()}
    new = score_all(gold.items, packs, generations, scorer_list, embedder=embedder)
    calls: list[Generation] = []
    if "judge" in chosen:
        judged, calls = run_judge(cfg, gold.items, packs, generations, embedder, use_cache=use_cache)
        new += judged
        run.append("judge_calls.jsonl", calls)
    run.append("scores.jsonl", new)
    manifest = run.manifest()
    candidates = [Candidate(name=c.name, provider=c.provider, prompt=c.prompt) for c in cfg.candidates]
    summary = summarise(
        manifest.run_id, manifest.name, gold.items, candidates, generations, run.scores(), run.actions(), cfg.thresholds
    )
    summary.budget_exhausted = previous.budget_exhausted
    summary.judge_cost_usd = round(sum(c.cost_usd for c in run.judge_calls()), 6)
    run.write_json("summary.json", summary)
    write_report(run)
    return summary, new
