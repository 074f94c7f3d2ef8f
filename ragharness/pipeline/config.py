"""harness.yaml: one validated file per evaluation, composed of the rooms' own settings (`ingest/settings.py`,
`retrieval/settings.py`, `guardrails/settings.py`, `generation/settings.py`, `batch/settings.py`,
`scoring/settings.py`); this module alone composes them. Each room receives only its part.

Relative paths resolve against the directory of the config file. Secrets are never literal: any option whose
name looks like a credential must be an environment reference `${NAME}`, resolved only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from ragharness.batch.settings import BatchConfig
from ragharness.core.errors import ConfigError
from ragharness.core.settings import Located, Strict, check_secrets, format_validation_error
from ragharness.core.types import Price
from ragharness.core.yamlio import load_strict
from ragharness.generation.settings import CallSettings, CandidateConfig, RunnerConfig
from ragharness.guardrails.policy import GuardrailPolicy
from ragharness.guardrails.settings import GuardrailsConfig
from ragharness.ingest.settings import ChunkingConfig, CorpusConfig, IngestSettings
from ragharness.retrieval.settings import EmbedderConfig, RetrievalConfig, StoreConfig
from ragharness.scoring.settings import JudgeConfig, ScorerEntry, Threshold


class NightlyConfig(Strict):
    """The nightly gate: which metrics may not drop significantly, against which baseline, where runs are kept."""

    baseline: str = Field("last-pass", description="'last-pass' or a pinned run id.")
    metrics: list[str] = Field(default_factory=lambda: ["correctness", "groundedness", "refusal"])
    alpha: float = Field(0.05, gt=0, lt=1)
    run_store: str | None = Field(None, description="Folder or s3://bucket/prefix; default: output_dir.")
    webhook: str | None = Field(
        None, description="Notification URL as an environment reference, e.g. ${HOOK} (literal URLs are refused)."
    )


class HarnessConfig(Located):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    data_dir: str = Field(".ragharness", description="Where the embedded store and ingest state live.")
    output_dir: str = "runs"
    corpus: CorpusConfig
    chunking: ChunkingConfig = ChunkingConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    store: StoreConfig = StoreConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    goldset: str
    prompts_dir: str | None = None
    candidates: list[CandidateConfig] = Field(min_length=1)
    guardrails: GuardrailsConfig = GuardrailsConfig()
    judge: JudgeConfig | None = Field(
        None,
        description="Enables the `judge` scorer (listing it under `scorers:` too is allowed, never needed). The same "
        "settings may instead be given as the judge scorer's options: `scorers: [..., {judge: {provider: ...}}]`.",
    )
    scoring: dict[str, float] = Field(
        default_factory=dict, description="Overrides of offline scorer thresholds (see calibration.yaml)."
    )
    scorers: list[ScorerEntry] = Field(
        default_factory=lambda: [
            ScorerEntry(name=n) for n in ("citation", "groundedness", "correctness", "refusal", "retrieval")
        ],
        description="Scorers to run, each a name or `{name: {options}}`; `ragharness plugins` lists them.",
    )
    thresholds: list[Threshold] = Field(default_factory=list)
    runner: RunnerConfig = RunnerConfig()
    prices: dict[str, Price] = Field(
        default_factory=dict, description="USD per 1k tokens by model id; extends/overrides the shipped table."
    )
    budget_usd: float | None = Field(None, gt=0, description="Stop cleanly (resumable) before spending more.")
    nightly: NightlyConfig = NightlyConfig()
    batch: BatchConfig = BatchConfig()

    @model_validator(mode="before")
    @classmethod
    def _judge_as_a_scorer(cls, data: Any) -> Any:
        """`scorers: [{judge: {provider, prompt, mode, ...}}]` configures the judge like any scorer with options: the
        same settings as a `judge:` section (which it becomes, so a stored config has one form). Both at once is
        an error: the judge is configured in one place."""
        if not isinstance(data, dict) or not isinstance(data.get("scorers"), list):
            return data
        scorers = list(data["scorers"])
        for i, entry in enumerate(scorers):
            if isinstance(entry, dict) and set(entry) == {"judge"} and entry["judge"]:
                if data.get("judge") is not None:
                    raise ValueError(
                        f"scorers[{i}]: the judge has options here and a `judge:` section too; configure it in one "
                        "place (either form takes the same settings)"
                    )
                try:
                    JudgeConfig.model_validate(entry["judge"])
                except ValidationError as exc:
                    problems = "; ".join(
                        f"{'.'.join(str(x) for x in e['loc']) or 'options'}: "
                        + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
                        for e in exc.errors()
                    )
                    raise ValueError(
                        f"scorers[{i}] (judge): {problems}; the judge takes {', '.join(JudgeConfig.model_fields)}"
                    ) from None
                data = {**data, "judge": entry["judge"]}
                scorers[i] = "judge"
        return {**data, "scorers": scorers}

    @model_validator(mode="after")
    def _unique_candidates(self) -> HarnessConfig:
        names = [c.name for c in self.candidates]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate names must be unique; repeated: {', '.join(dupes)}")
        if self.judge is not None and "judge" not in self.scorer_names:
            self.scorers.append(ScorerEntry(name="judge"))  # one place configures the judge: its section
        scorers = self.scorer_names
        twice = sorted({n for n in scorers if scorers.count(n) > 1})
        if twice:
            raise ValueError(f"scorers: each scorer is listed once (with its options); repeated: {', '.join(twice)}")
        return self

    @property
    def scorer_names(self) -> list[str]:
        return [s.name for s in self.scorers]

    def candidate(self, name: str) -> CandidateConfig:
        for c in self.candidates:
            if c.name == name:
                return c
        raise ConfigError(f"{self.source_file}: no candidate named {name!r}; have {[c.name for c in self.candidates]}")

    def ingest_settings(self) -> IngestSettings:
        """The ingest room's view: corpus, chunking, embedder, batch jobs and the data folder."""
        return IngestSettings(
            corpus=self.corpus,
            chunking=self.chunking,
            embedder=self.embedder,
            batch=self.batch,
            data_dir=self.data_dir,
            base_dir=self.base_dir,
            source_file=self.source_file,
        )

    def call_settings(self) -> CallSettings:
        """The generation room's view of what governs every model call: runner, prices, budget, data folder."""
        return CallSettings(
            runner=self.runner,
            prices=self.prices,
            batch_discount=self.batch.discount,
            budget_usd=self.budget_usd,
            data_dir=self.data_dir,
            base_dir=self.base_dir,
            source_file=self.source_file,
        )


def _read_mapping(file: Path, missing: str = "file not found") -> dict[str, Any]:
    if not file.is_file():
        raise ConfigError(f"{file}: {missing}")
    try:
        raw = load_strict(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> HarnessConfig:
    """Read and validate harness.yaml. Raises ConfigError naming the file, key path and what is allowed."""
    file = Path(path)
    raw = _read_mapping(file, "config file not found; pass the path of a harness.yaml")
    problems: list[str] = []
    check_secrets(raw, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    for key in ("base_dir", "source_file"):
        if key in raw:
            raise ConfigError(f"{file}: {key}: unknown key; check the spelling against the documented keys")
    _inline_policy(raw, file)
    try:
        cfg = HarnessConfig.model_validate({**raw, "base_dir": file.parent.resolve(), "source_file": file})
    except ValidationError as exc:
        from ragharness.pipeline.config_reference import suggestion

        raise ConfigError("\n".join(format_validation_error(file, exc, suggest=suggestion))) from exc
    return cfg


def _inline_policy(raw: dict[str, Any], file: Path) -> None:
    """`guardrails.policy: policy.json` reads the policy from its own file (relative to the config's folder)."""
    guard = raw.get("guardrails")
    if not isinstance(guard, dict) or not isinstance(guard.get("policy"), str):
        return
    target = (file.parent / guard["policy"]).resolve()
    policy = _read_mapping(target, "guardrail policy file not found (guardrails.policy in " + str(file) + ")")
    problems: list[str] = []
    check_secrets(policy, "guardrails.policy", problems)
    if problems:
        raise ConfigError("\n".join(f"{target}: {p}" for p in problems))
    try:
        GuardrailPolicy.model_validate(policy)
    except ValidationError as exc:
        raise ConfigError("\n".join(format_validation_error(target, exc, prefix="guardrails.policy"))) from exc
    raw["guardrails"] = {**guard, "policy": policy}


def load_judge_config(path: str | Path) -> JudgeConfig:
    """A file holding only a `judge:` section (what `ragharness score --judge-config` takes)."""
    file = Path(path)
    raw = _read_mapping(file)
    if set(raw) != {"judge"}:
        raise ConfigError(
            f"{file}: expected only a `judge:` section (got keys {sorted(raw)}); "
            "to change scorers too, pass a whole harness.yaml with --config"
        )
    problems: list[str] = []
    check_secrets(raw, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    try:
        return JudgeConfig.model_validate(raw["judge"])
    except ValidationError as exc:
        raise ConfigError("\n".join(format_validation_error(file, exc, prefix="judge"))) from exc


def parse_option_pairs(pairs: list[str], where: str) -> dict[str, Any]:
    """KEY=VALUE pairs (values read as YAML scalars) into provider options; credentials must be ${ENV} references."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where} {pair!r}: expected KEY=VALUE, e.g. base_url=http://127.0.0.1:8000/v1")
        try:
            out[key.strip()] = load_strict(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    problems: list[str] = []
    check_secrets({"options": out}, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{where}: {p}" for p in problems))
    return out


def config_snapshot(cfg: HarnessConfig) -> dict[str, Any]:
    """What a run stores: the validated config, secrets still as references."""
    return cfg.model_dump(mode="json")


RESUME_MAY_CHANGE = frozenset(
    {"budget_usd", "thresholds", "runner", "output_dir", "prices", "nightly", "judge", "scorers", "scoring", "batch"}
)
"""What a resume may change: none of it alters an answer, and a resumed run scores every answer again."""


def resume_differences(stored: dict[str, Any], current: HarnessConfig) -> list[str]:
    """Top-level config keys that changed since a run started and that a resume may not change."""
    now = config_snapshot(current)
    keys = (set(stored) | set(now)) - RESUME_MAY_CHANGE
    return sorted(k for k in keys if stored.get(k) != now.get(k))
