"""A run's directory through its life: where a run goes (a new folder, or one to resume), creating it (run.json
first, then the config snapshot), reopening it for a resume (only what may change may change), which gold items
it evaluates (`Selection`) and what a finished run returns (`RunResult`). The stages themselves are
`pipeline.evaluation.Evaluation`'s.

A run moves through stages recorded in run.json (`created` -> `prepared` -> `generated` -> `finished`) and every file is
written atomically, so a process killed at any instant leaves a run that `--resume` completes: a run killed
before it was prepared is prepared again (nothing was sent to any model yet); one killed while generating keeps
every completed call; one killed while scoring is scored again. Large runs stream: requests, contexts and scores
are read and written item by item, never all held at once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from ragharness import __version__
from ragharness.core.errors import ConfigError
from ragharness.core.faults import kill_point
from ragharness.core.progress import room_log
from ragharness.core.types import GoldItem
from ragharness.generation.runner import RunStats
from ragharness.ingest.pipeline import IngestReport
from ragharness.pipeline.config import RESUME_MAY_CHANGE, HarnessConfig, config_snapshot, resume_differences
from ragharness.runs.rundir import FORMAT_VERSION, RunDir, RunManifest
from ragharness.runs.summary import RunSummary

_LOG = room_log(__name__)


class RunResult(BaseModel):
    run_dir: Path
    summary: RunSummary
    ingest: IngestReport | None = None
    stats: RunStats | None = None


def new_run_id(name: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"


def run_path(cfg: HarnessConfig, out_dir: Path | None, resume: Path | None) -> tuple[Path, bool]:
    """Where the run goes and whether it resumes one. An existing folder that is not a run of this config is
    refused, never overwritten; so is a folder inside the corpus (its report would be ingested)."""
    if resume is not None:
        RunDir.open(resume)
        return resume, True
    if out_dir is None:
        return cfg.resolve(cfg.output_dir) / new_run_id(cfg.name), False
    corpus = cfg.resolve(cfg.corpus.path).resolve()
    target = out_dir.resolve()
    if not cfg.corpus.path.startswith("s3://") and (target == corpus or corpus in target.parents):
        raise ConfigError(f"--out {out_dir}: inside the corpus folder {corpus}; write runs somewhere else")
    if (out_dir / "run.json").is_file():
        name = RunDir.open(out_dir).manifest().name
        if name != cfg.name:
            raise ConfigError(
                f"--out {out_dir}: holds a run of config {name!r}, not {cfg.name!r}; choose a new or empty folder"
            )
        return out_dir, True
    ours = (".run.lock", ".run.lock.owner")  # what a run that never started may leave
    if out_dir.exists() and (not out_dir.is_dir() or any(p.name not in ours for p in out_dir.iterdir())):
        raise ConfigError(
            f"--out {out_dir}: exists and is not a run directory (no run.json); refusing to write into it. "
            "Choose a new or empty folder"
        )
    return out_dir, False


def create_run(cfg: HarnessConfig, store: str, embedder: str, path: Path) -> tuple[RunDir, RunManifest]:
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    manifest = RunManifest(
        format_version=FORMAT_VERSION,
        run_id=path.name if path.name else new_run_id(cfg.name),
        name=cfg.name,
        started_at=datetime.now(UTC).isoformat(),
        stage="created",
        ragharness_version=__version__,
        store=store,
        embedder=embedder,
        candidates=[c.name for c in cfg.candidates],
        config_dir=str(cfg.base_dir),
    )
    run.write_json("run.json", manifest)  # first: from here on the folder is a run that --resume completes
    kill_point("run:created")
    run.write_yaml("config.yaml", config_snapshot(cfg))
    return run, manifest


def reopen_run(cfg: HarnessConfig, path: Path) -> tuple[RunDir, RunManifest]:
    run = RunDir.open(path)
    run.remove_stale_temps()  # what a killed writer left; we hold the run's lock
    manifest = run.manifest()
    if manifest.name != cfg.name:
        raise ConfigError(f"{path}: a run of config {manifest.name!r}, not {cfg.name!r}; resume it with its own config")
    now = config_snapshot(cfg)
    stored = run.config_snapshot()  # {} if a run killed at once never wrote it
    changed = resume_differences(stored or now, cfg)
    if changed:
        raise ConfigError(
            f"{cfg.source_file}: cannot resume {path}: the config changed since the run started "
            f"({', '.join(changed)}); only {', '.join(sorted(RESUME_MAY_CHANGE))} may change. "
            "Start a new run instead."
        )
    if stored != now:
        run.write_yaml("config.yaml", now)  # the settings the run is now finished and scored with
    manifest.resumed += 1
    return run, manifest


class Selection(BaseModel):
    """Which gold items a run evaluates (`run --items/--intent/--limit`): for quick iteration."""

    items: list[str] = Field(default_factory=list, description="Item ids; all when empty.")
    intents: list[str] = Field(default_factory=list, description="Intents; all when empty.")
    limit: int | None = Field(None, ge=1, description="At most this many (the first, in gold set order).")

    def describe(self) -> str:
        parts = [f"items {','.join(self.items)}"] * bool(self.items) + [f"intents {','.join(self.intents)}"] * bool(
            self.intents
        )
        return "; ".join(parts + ([f"first {self.limit}"] if self.limit else []))

    def apply(self, items: list[GoldItem], where: str) -> list[GoldItem]:
        known_ids, known_intents = {i.id for i in items}, {i.intent for i in items}
        missing = [i for i in self.items if i not in known_ids]
        if missing:
            raise ConfigError(f"--items: {missing} are not items of {where}; its ids start {sorted(known_ids)[:5]}")
        bad = [i for i in self.intents if i not in known_intents]
        if bad:
            raise ConfigError(f"--intent: {bad} are not intents of {where}; it has {sorted(known_intents)}")
        chosen = [
            i
            for i in items
            if (not self.items or i.id in self.items) and (not self.intents or i.intent in self.intents)
        ]
        return chosen[: self.limit] if self.limit else chosen
