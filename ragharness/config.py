"""harness.yaml: one validated file per evaluation.

Relative paths resolve against the directory of the config file. Secrets are never literal: any option whose
name looks like a credential must be an environment reference `${NAME}`, resolved only when used.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from ragharness.core.credentials import has_userinfo_password, looks_like_secret, remember
from ragharness.core.errors import ConfigError
from ragharness.core.types import FILTERABLE_FIELDS, Candidate, FilterValue, Metadata, Price, PromptRef, SearchMode
from ragharness.core.yamlio import load_strict
from ragharness.guardrail_policy import GuardrailPolicy
from ragharness.search_settings import Fusion, TextAnalysis

ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_SECRET_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|credential|authorization|cookie|webhook)", re.IGNORECASE
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathRule(Strict):
    """Tag every document whose corpus-relative path matches `match` (glob, `**` allowed)."""

    match: str
    metadata: Metadata


class TicketFormat(Strict):
    """How to read a JSONL ticket export: one ticket per line."""

    id_field: str = "id"
    text_fields: list[str] = Field(default_factory=lambda: ["subject", "body"])
    title_field: str = "subject"
    metadata_fields: dict[str, str] = Field(
        default_factory=dict, description="Metadata field -> ticket field, e.g. {product: product}."
    )


class CorpusConfig(Strict):
    path: str = Field(description="Local folder, or s3://bucket/prefix, holding the corpus.")
    include: list[str] = Field(default_factory=lambda: ["**/*.md", "**/*.html", "**/*.htm", "**/*.txt", "**/*.jsonl"])
    exclude: list[str] = Field(default_factory=lambda: ["**/*.meta.yaml"])
    max_file_bytes: int = Field(5_000_000, gt=0, description="Larger files are skipped (checked before reading).")
    redact_pii: bool = Field(
        True,
        description="Redact PII (the offline entities) before chunking, so the store and everything downstream "
        "never hold a detected raw value. False keeps raw text in the store: the README and report say so.",
    )
    tickets: TicketFormat = TicketFormat()
    rules: list[PathRule] = Field(default_factory=list)


class ChunkingConfig(Strict):
    chunk_size: int | None = Field(
        None,
        gt=16,
        description="Tokens (embedder word pieces) per chunk; default: the embedder's input limit.",
    )
    chunk_overlap: int = Field(32, ge=0)
    markdown_headers: bool = True


class EmbedderConfig(Strict):
    kind: str = "minilm"
    batch_size: int = Field(64, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


class StoreConfig(Strict):
    kind: str = "lancedb"
    table: str = "chunks"
    options: dict[str, Any] = Field(default_factory=dict)


class RetrievalConfig(Strict):
    mode: SearchMode = SearchMode.hybrid
    k: int = Field(6, gt=0, le=100)
    text_analysis: TextAnalysis = Field(
        default_factory=TextAnalysis, description="BM25 tokenisation, applied alike by LanceDB and OpenSearch."
    )
    fusion: Fusion = Field(default_factory=Fusion, description="How hybrid fuses the BM25 and vector lists.")
    filters: dict[str, FilterValue] = Field(default_factory=dict)

    @field_validator("filters")
    @classmethod
    def _known_fields(cls, v: dict[str, FilterValue]) -> dict[str, FilterValue]:
        return check_filter_fields(v)


def full_jitter_delay(
    attempt: int, base_delay_s: float, max_delay_s: float, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before retry `attempt + 1`: full-jitter exponential backoff; a server's retry-after is a
    floor. Every retry in the harness (model calls, guardrail calls) waits this way."""
    backoff = rng.uniform(0, min(max_delay_s, base_delay_s * 2 ** (attempt - 1)))
    return max(backoff, retry_after or 0.0)


CacheMode = Literal["off", "record", "reuse"]


class RunnerConfig(Strict):
    """Retries, timeouts and the response cache for every model call."""

    max_attempts: int = Field(6, ge=1, le=50)
    base_delay_s: float = Field(1.0, ge=0, description="First backoff ceiling; doubles each retry (full jitter).")
    max_delay_s: float = Field(60.0, ge=0)
    timeout_s: float = Field(120.0, gt=0, description="Per-call timeout.")
    cache: CacheMode = Field(
        "record",
        description="The response cache under data_dir. `record` (default): every answer is written to it, and only "
        "a resumed run or `score` (re-scoring) reads it back; a new run calls every model, because a model changes "
        "behind its name. `reuse`: a new run answers unchanged requests from it too (counted and shown as cached). "
        "`off`: neither. `true` / `false` mean `record` / `off`.",
    )

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_bool(cls, v: object) -> object:
        return {True: "record", False: "off"}.get(v, v) if isinstance(v, bool) else v


CallMode = Literal["online", "batch", "auto"]


class BedrockBatchConfig(Strict):
    """Where Bedrock batch inference reads and writes (the role must be able to read and write this prefix)."""

    s3_uri: str = Field(pattern=r"^s3://[^/]+", description="s3://bucket/prefix for job input and output.")
    role_arn: str = Field(description="Service role Bedrock assumes for the job; may be an ${ENV} reference.")
    region: str | None = None
    min_records: int = Field(100, ge=1, description="The model's quota 'Minimum number of records per job'.")
    max_records: int = Field(50_000, ge=1, description="Records per input file per job (quota).")
    max_file_bytes: int = Field(1024**3, ge=1024, description="Batch inference input file size (quota).")
    timeout_hours: int | None = Field(None, ge=24, le=168)


class OpenAIBatchConfig(Strict):
    completion_window: str = "24h"
    max_records: int = Field(50_000, ge=1)
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1024)


class BatchConfig(Strict):
    """Provider batch jobs for candidates and the judge with `mode: batch | auto`."""

    bedrock: BedrockBatchConfig | None = None
    openai: OpenAIBatchConfig = OpenAIBatchConfig()
    allow_waiting: bool = Field(True, description="auto may choose batch (jobs can take hours) only when true.")
    auto_min_records: int = Field(100, ge=1, description="auto: batch from this many calls (and the job minimum).")
    max_wait_hours: float = Field(24.0, ge=0, description="Then the run stops, resumable; the jobs go on.")
    poll_interval_s: float = Field(60.0, gt=0)
    online_retry_max: int = Field(20, ge=0, description="Failed records up to this many are retried online.")
    max_rounds: int = Field(2, ge=1, le=5, description="Batch jobs per record before a failure is recorded.")
    discount: float = Field(0.5, gt=0, le=1, description="Batch price = discount x online price, unless listed.")


class CandidateConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._@:-]+$")
    provider: str = Field(description="Provider id: 'extractive', 'replay', 'mock', 'bedrock:<model>', ...")
    prompt: PromptRef = PromptRef(id="support-answer", version=1)
    params: dict[str, Any] = Field(default_factory=dict, description="Model parameters (temperature, max_tokens).")
    options: dict[str, Any] = Field(default_factory=dict, description="Provider options (file, region, base_url).")
    concurrency: int = Field(8, gt=0)
    rpm: float | None = Field(None, gt=0, description="Requests per minute for this candidate.")
    tpm: float | None = Field(None, gt=0, description="Tokens per minute (estimated) for this candidate.")
    mode: CallMode = Field(
        "online", description="online, batch (provider batch jobs at the batch price) or auto (batch when big enough)."
    )

    def to_candidate(self) -> Candidate:
        return Candidate(
            name=self.name,
            provider=self.provider,
            prompt=self.prompt,
            params=self.params,
            options=self.options,
        )


class JudgeConfig(Strict):
    """The LLM judge: any provider; one call per answer; never told which candidate wrote the answer."""

    provider: str = Field(description="Provider id, e.g. 'bedrock:us.anthropic.claude-3-5-sonnet-20241022-v2:0'.")
    prompt: PromptRef = PromptRef(id="judge-claims", version=2)
    params: dict[str, Any] = Field(default_factory=lambda: {"temperature": 0, "max_tokens": 2000})
    options: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(4, gt=0)
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    format_retries: int = Field(1, ge=0, le=3, description="Re-asks with the validation error on malformed output.")
    mode: CallMode = Field(
        "online", description="online, batch (provider batch jobs at the batch price) or auto (batch when big enough)."
    )
    context_metrics: bool = Field(
        True,
        description="Also judge each passage (relevant? needed?) and the gold answer's statements in the same call: "
        "judge_context_precision and judge_context_recall at no extra call. Needs a prompt that asks for them "
        "(judge-claims v2 does).",
    )

    def to_candidate(self) -> Candidate:
        return Candidate(
            name="judge", provider=self.provider, prompt=self.prompt, params=self.params, options=self.options
        )


class NightlyConfig(Strict):
    """The nightly gate: which metrics may not drop significantly, against which baseline, where runs are kept."""

    baseline: str = Field("last-pass", description="'last-pass' or a pinned run id.")
    metrics: list[str] = Field(default_factory=lambda: ["correctness", "groundedness", "refusal"])
    alpha: float = Field(0.05, gt=0, lt=1)
    run_store: str | None = Field(None, description="Folder or s3://bucket/prefix; default: output_dir.")
    webhook: str | None = Field(
        None, description="Notification URL as an environment reference, e.g. ${HOOK} (literal URLs are refused)."
    )


class GuardrailConfig(Strict):
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)


class GuardrailsConfig(Strict):
    input: list[GuardrailConfig] = Field(default_factory=lambda: [GuardrailConfig(kind="pii")])
    output: list[GuardrailConfig] = Field(default_factory=lambda: [GuardrailConfig(kind="pii")])
    policy: GuardrailPolicy | None = Field(
        None,
        description="A guardrail policy (sensitive information, word filters, denied topics, prompt attacks, "
        "contextual grounding) applied to the question, each retrieved passage and each answer; local or Bedrock. "
        "A string is the path of a JSON or YAML file holding it.",
    )
    pii_canaries: str | None = Field(
        None,
        description="A file of known PII values (one per line) planted in or known to be in the corpus and "
        "questions: any of them found in a request, a judge prompt, a run file or the report is a leak (summary: "
        "guardrail.pii_leaks; gate: guardrail_pii_leaks max 0). Values the PII guardrails find are added in memory.",
    )


class ScorerEntry(Strict):
    """One entry of `scorers:`, written either as the scorer's name (`- groundedness`) or as a one-key mapping from
    its name to its options (`- groundedness: {groundedness_faithful_min: 0.8}`). A scorer's options are checked
    against the options it declares when it is built (see pipeline.components.build_scorers)."""

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and len(data) == 1 and "name" not in data:
            ((name, options),) = data.items()
            if options is not None and not isinstance(options, dict):
                raise ValueError(f"the options of scorer {name!r} must be a mapping (got {type(options).__name__})")
            return {"name": name, "options": options or {}}
        return data

    @model_serializer(mode="plain")
    def _compact(self) -> str | dict[str, dict[str, Any]]:
        """Written back as it is written by hand, so a stored config reads like the user's."""
        return {self.name: self.options} if self.options else self.name


class Threshold(Strict):
    """Gate: the mean of `metric` must be >= min (or <= max) for every listed candidate (all if empty)."""

    metric: str
    min: float | None = None
    max: float | None = None
    candidates: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("a threshold needs `min` or `max`")
        return self


class HarnessConfig(Strict):
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
        None, description="Enables the `judge` scorer (listing it under `scorers:` too is allowed, never needed)."
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

    # Set by load_config, not by the file.
    base_dir: Path = Field(Path("."), exclude=True)
    source_file: Path = Field(Path("harness.yaml"), exclude=True)

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

    def resolve(self, path: str) -> Path:
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def candidate(self, name: str) -> CandidateConfig:
        for c in self.candidates:
            if c.name == name:
                return c
        raise ConfigError(f"{self.source_file}: no candidate named {name!r}; have {[c.name for c in self.candidates]}")


def check_filter_fields(filters: dict[str, FilterValue]) -> dict[str, FilterValue]:
    unknown = sorted(set(filters) - set(FILTERABLE_FIELDS))
    if unknown:
        raise ValueError(f"unknown filter field(s) {unknown}; allowed: {', '.join(FILTERABLE_FIELDS)}")
    return filters


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(
    source: str | Path,
    err: ValidationError,
    prefix: str = "",
    suggest: Callable[[tuple[str | int, ...]], str] | None = None,
) -> list[str]:
    """One line per problem: `file: key.path: message (got value)`; `suggest` adds "did you mean" to unknown keys."""
    lines = []
    for e in err.errors():
        loc = _loc(tuple(e["loc"]))
        if prefix:
            loc = f"{prefix} {loc}" if loc != "(top level)" else prefix
        got = e.get("input")
        secretish = any(isinstance(p, str) and _SECRET_KEY.search(p) for p in e["loc"])
        hidden = e["type"] == "missing" or isinstance(got, dict) or secretish
        if isinstance(got, str) and has_userinfo_password(got):
            hidden = True
        shown = "" if hidden else f" (got {got!r})"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            hint = suggest(tuple(e["loc"])) if suggest is not None else ""
            msg = f"unknown key{hint or '; check the spelling against `ragharness config-reference`'}"
        lines.append(f"{source}: {loc}: {msg}{shown}")
    return lines


_SHAPED = (
    "the value has the shape of a credential (an API token, a bearer value or a key in a URL query); give it as an "
    "environment reference like '${MY_API_KEY}' (the value is not shown)"
)


def _check_secrets(node: Any, path: str, problems: list[str]) -> None:
    """Credential-like keys (api_key, token, Authorization header, webhook, ...) must hold `${ENV}` references, and
    no value may carry `user:password@` in a URL. A rejected value is never echoed."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and _SECRET_KEY.search(str(key)) and not ENV_REF.match(value):
                problems.append(
                    f"{sub}: secrets must be environment references like '${{MY_API_KEY}}', not literal values "
                    "(the value is not shown)"
                )
            elif isinstance(value, str) and has_userinfo_password(value):
                problems.append(
                    f"{sub}: a URL with 'user:password@' carries a credential; give the whole URL as an environment "
                    "reference like '${MY_URL}' or use the backend's username/password options (the value is not shown)"
                )
            elif isinstance(value, str) and not ENV_REF.match(value) and looks_like_secret(value):
                problems.append(f"{sub}: {_SHAPED}")
            else:
                _check_secrets(value, sub, problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str) and has_userinfo_password(value):
                problems.append(
                    f"{path}[{i}]: a URL with 'user:password@' carries a credential (the value is not shown)"
                )
            elif isinstance(value, str) and not ENV_REF.match(value) and looks_like_secret(value):
                problems.append(f"{path}[{i}]: {_SHAPED}")
            else:
                _check_secrets(value, f"{path}[{i}]", problems)


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
    _check_secrets(raw, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    for key in ("base_dir", "source_file"):
        if key in raw:
            raise ConfigError(f"{file}: {key}: unknown key; check the spelling against the documented keys")
    _inline_policy(raw, file)
    try:
        cfg = HarnessConfig.model_validate({**raw, "base_dir": file.parent.resolve(), "source_file": file})
    except ValidationError as exc:
        from ragharness.config_reference import suggestion

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
    _check_secrets(policy, "guardrails.policy", problems)
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
    _check_secrets(raw, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{file}: {p}" for p in problems))
    try:
        return JudgeConfig.model_validate(raw["judge"])
    except ValidationError as exc:
        raise ConfigError("\n".join(format_validation_error(file, exc, prefix="judge"))) from exc


def parse_options(pairs: list[str], where: str) -> dict[str, Any]:
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
    _check_secrets({"options": out}, "", problems)
    if problems:
        raise ConfigError("\n".join(f"{where}: {p}" for p in problems))
    return out


def resolve_env(value: str, *, what: str) -> str:
    """Resolve `${NAME}` from the environment at the point of use. Literal values pass through."""
    m = ENV_REF.match(value)
    if not m:
        return value
    name = m.group(1)
    resolved = os.environ.get(name)
    if resolved is None:
        raise ConfigError(f"{what}: environment variable {name} is not set; export it before running")
    remember(resolved)  # every later stored error, log line or message is scrubbed of it
    return resolved


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
