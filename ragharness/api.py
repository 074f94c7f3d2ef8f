"""The library API: what a notebook, a script or a pytest test calls to evaluate without the CLI.

    import ragharness

    result = ragharness.evaluate("harness.yaml", limit=20)       # ingest (incremental), retrieve, generate, score
    print(result.summary.status, result.run_dir / "report.html")
    again = ragharness.rescore(result.run_dir)                  # the stored answers, scored again
    diff = ragharness.compare(baseline_dir, result.run_dir)     # paired A/B of one candidate each

The CLI commands `run`, `score` and `compare` are these functions with a terminal around them. Nothing here
prints (notes go to the `ragharness.*` loggers); errors are the exceptions of `ragharness` (ConfigError, RunError,
...), never an exit. The heavy rooms load on the first call, so `import ragharness` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ragharness.core.extras import naming_extras
from ragharness.pipeline.config import HarnessConfig, load_config

if TYPE_CHECKING:
    from ragharness.analysis.compare import Comparison
    from ragharness.core.progress import Progress
    from ragharness.pipeline.finalize import Scored
    from ragharness.pipeline.run import RunResult

__all__ = ["compare", "evaluate", "load_config", "rescore"]


def _config(config: str | Path | HarnessConfig) -> HarnessConfig:
    return config if isinstance(config, HarnessConfig) else load_config(config)


@naming_extras
def evaluate(
    config: str | Path | HarnessConfig,
    *,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    items: Sequence[str] = (),
    intents: Sequence[str] = (),
    limit: int | None = None,
    ingest: bool = True,
    cache: bool = True,
    reuse_answers: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Run one evaluation of `config` (a harness.yaml path or a loaded config) and return its summary and run
    folder, exactly as `ragharness run` does. `items` / `intents` / `limit` evaluate a subset; `ingest=False` uses
    the store as it is (`--no-ingest`); `cache=False` neither reads nor writes the response cache; `reuse_answers`
    answers from it (`--cache`; a new run otherwise calls every model); `resume` continues a stopped run."""
    from ragharness.core.progress import NO_PROGRESS
    from ragharness.pipeline.evaluation import execute_run
    from ragharness.pipeline.run import Selection

    selection = Selection(items=list(items), intents=list(intents), limit=limit)
    return execute_run(
        _config(config),
        out_dir=Path(out_dir) if out_dir is not None else None,
        resume=Path(resume) if resume is not None else None,
        progress=progress or NO_PROGRESS,
        skip_ingest=not ingest,
        use_cache=cache,
        reuse_cache=reuse_answers,
        selection=selection if selection.describe() else None,
    )


@naming_extras
def rescore(
    run_dir: str | Path,
    *,
    config: str | Path | HarnessConfig | None = None,
    scorers: Sequence[str] = (),
    cache: bool = True,
) -> Scored:
    """Score a finished run's stored answers again (`ragharness score`): with the run's own config, or the judge
    and scorer settings of `config`; `scorers` picks which of them run. The new records are appended (the latest
    per metric counts) and the summary and report are rewritten."""
    from ragharness.pipeline.rescore import rescore as _rescore

    return _rescore(
        Path(run_dir),
        config=_config(config) if config is not None else None,
        scorers=list(scorers) or None,
        use_cache=cache,
    )


@naming_extras
def compare(
    run_a: str | Path,
    run_b: str | Path | None = None,
    *,
    candidate_a: str | None = None,
    candidate_b: str | None = None,
    alpha: float = 0.05,
) -> Comparison:
    """Paired A/B comparison of one candidate of `run_a` with one of `run_b` (default: two candidates of `run_a`),
    as `ragharness compare` prints it: per metric and intent, bootstrap CIs, McNemar, Holm, MDE."""
    from ragharness.analysis.compare import compare as _compare
    from ragharness.analysis.compare import pick_candidates
    from ragharness.runs.rundir import RunDir

    a = RunDir.open_finished(Path(run_a), "a comparison")
    b = RunDir.open_finished(Path(run_b), "a comparison") if run_b is not None else a
    ca, cb = pick_candidates(a, b, candidate_a, candidate_b)
    return _compare(a, b, ca, cb, alpha=alpha)
