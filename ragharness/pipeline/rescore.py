"""Re-score a finished run without regenerating any answer: new scores are appended beside the old ones (each
record names its scorer and version); the summary and report then use the latest record per metric."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ragharness.core.errors import ConfigError, RunError
from ragharness.core.settings import format_validation_error
from ragharness.core.yamlio import load_strict
from ragharness.generation.models import ModelPool, effective_cache
from ragharness.pipeline.components import build_embedder, build_scorers, build_watch
from ragharness.pipeline.config import HarnessConfig
from ragharness.pipeline.finalize import Scored, Scoring, score_and_finalize
from ragharness.retrieval.embedders import CachedEmbedder
from ragharness.runs.rundir import RunDir
from ragharness.runs.summary import RunSummary
from ragharness.scoring.settings import JudgeConfig, ScorerEntry


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
    judge_config: JudgeConfig | None = None,
    judge_options: dict[str, object] | None = None,
    scorers: list[str] | None = None,
    use_cache: bool = True,
) -> Scored:
    """Score the run's stored answers again, through the same path as a run. `config` supplies judge/scorer
    settings (default: the run's own); `judge` replaces the judge's provider id and `judge_options` are merged
    into its options (base_url, api_key as ${ENV}, ...); `scorers` picks which scorers run (default: the config's).
    Returns the new summary and what was scored."""
    # Scores and summary are what re-scoring re-creates: only the answers and what they were given must be there.
    run = RunDir.open_finished(run_dir, "re-scoring", need=("goldset.json", "context_packs.jsonl", "generations.jsonl"))
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
    listed = {e.name: e for e in cfg.scorers}  # a scorer picked by name keeps the options the config gives it
    chosen = [listed.get(n, ScorerEntry(name=n)) for n in scorers] if scorers else list(cfg.scorers)
    if judge_config is not None:
        cfg = cfg.model_copy(update={"judge": judge_config})
        if "judge" not in {e.name for e in chosen}:
            chosen.append(ScorerEntry(name="judge"))
    if judge or judge_options:
        base = cfg.judge or (JudgeConfig(provider=judge) if judge else None)
        if base is None:
            raise ConfigError(
                f"{run_dir}: --judge-option needs a judge: pass --judge PROVIDER_ID or --judge-config FILE"
            )
        update: dict[str, object] = {"options": {**base.options, **(judge_options or {})}}
        if judge:
            update["provider"] = judge
        cfg = cfg.model_copy(update={"judge": base.model_copy(update=update)})
        if "judge" not in {e.name for e in chosen}:
            chosen.append(ScorerEntry(name="judge"))
    cfg = cfg.model_copy(update={"scorers": chosen})
    previous = (
        run.read_model("summary.json", RunSummary, "delete it; re-scoring re-creates it")
        if run.file("summary.json").is_file()
        else None
    )
    gold = run.goldset()
    generations = run.generations()
    if not generations:
        raise RunError(
            f"{run.file('generations.jsonl')}: no generations to score; resume the run with "
            f"`ragharness run CONFIG --resume {run_dir}`"
        )
    embedder = CachedEmbedder(build_embedder(cfg))
    cache = effective_cache(cfg.runner, use_cache=use_cache, reuse=True)
    # the judge's prompts and files are checked again
    models = ModelPool(cfg.call_settings(), cache=cache, leak_watch=build_watch(cfg))
    earlier = previous.guardrail.pii_leak_places if previous and previous.guardrail.pii_leaks is not None else None
    scoring = Scoring(scorers=build_scorers(cfg, embedder, models), embedder=embedder, models=models)
    return score_and_finalize(
        cfg,
        run,
        scoring,
        gold.items,
        generations,
        run_id=run.manifest().run_id,
        rescore=True,
        spent_usd=0.0,
        budget_exhausted=previous.budget_exhausted if previous else run.manifest().pending > 0,
        cache=cache,
        earlier_leaks=earlier,
    )
