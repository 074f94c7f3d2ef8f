"""Domain types shared by every stage. Pydantic models at every seam; no loose dicts.

Document -> Chunk (ingest); GoldItem in a GoldSet; ContextPack (the locked, hashed passages of one item);
Candidate (model + prompt version); Generation (one answer); Score (one judgement); the run ties them up.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragharness.core.credentials import scrub

METADATA_FIELDS: tuple[str, ...] = ("product", "region", "plan", "owner", "retention", "compliance_scope")
"""Metadata fields every chunk carries (empty string when unknown); filters may use these and `doc_id`."""

FILTERABLE_FIELDS: tuple[str, ...] = (*METADATA_FIELDS, "doc_id", "source_type")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_hash(obj: Any) -> str:
    """SHA-256 of canonical JSON (sorted keys, no whitespace): equal content, equal hash."""
    return sha256_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(Frozen):
    """Tags on a document and on each of its chunks."""

    product: str = ""
    region: str = ""
    plan: str = ""
    owner: str = ""
    retention: str = ""
    compliance_scope: str = ""
    tags: tuple[str, ...] = ()

    def merged(self, other: Metadata) -> Metadata:
        """Fields set in `other` win; tags are unioned."""
        data = self.model_dump()
        for key, value in other.model_dump().items():
            if key == "tags":
                data["tags"] = tuple(dict.fromkeys([*self.tags, *other.tags]))
            elif value:
                data[key] = value
        return Metadata(**data)


SourceType = Literal["markdown", "html", "text", "ticket"]


class Document(Frozen):
    """One source document after loading and cleaning (text is Markdown-ish plain text)."""

    doc_id: str
    source: str = Field(description="Path (or URI) the document came from, relative to the corpus root.")
    source_type: SourceType
    title: str = ""
    text: str
    metadata: Metadata = Metadata()
    content_hash: str = Field(description="SHA-256 of text and metadata: what decides re-chunking.")


class Chunk(Frozen):
    """A piece of a document, the unit that is embedded, indexed and retrieved."""

    chunk_id: str
    doc_id: str
    position: int = Field(description="0-based order of the chunk inside its document.")
    text: str
    title: str = ""
    section: str = Field("", description="Markdown header path, e.g. 'Refunds > EU customers'.")
    source: str = ""
    source_type: SourceType = "text"
    metadata: Metadata = Metadata()
    content_hash: str = Field(description="SHA-256 of the chunk text: equal hash, reusable vector.")
    doc_hash: str = ""
    n_tokens: int = Field(0, description="Length in the embedder's own word pieces.")


class EmbeddedChunk(Frozen):
    chunk: Chunk
    vector: tuple[float, ...]


class SearchMode(StrEnum):
    vector = "vector"
    bm25 = "bm25"
    hybrid = "hybrid"


FilterValue = str | list[str]


class SearchHit(Frozen):
    chunk: Chunk
    score: float = Field(description="Backend score: cosine similarity (vector), BM25 (bm25) or RRF (hybrid).")
    rank: int = Field(description="1-based rank in the result list.")


class Passage(Frozen):
    """A numbered passage inside a locked context pack. `number` is what answers cite as [n]."""

    number: int
    chunk_id: str
    doc_id: str
    text: str
    title: str = ""
    section: str = ""
    source: str = ""
    metadata: Metadata = Metadata()
    score: float = 0.0


class ContextPack(Frozen):
    """The locked context of one gold item in one run: retrieved once, redacted once, sent to every candidate."""

    item_id: str
    question: str = Field(description="The question as candidates see it (after input guardrails).")
    mode: SearchMode
    k: int
    filters: dict[str, FilterValue] = {}
    passages: tuple[Passage, ...] = ()
    store: str = Field("", description="Store backend and concrete table/index version used.")
    embedder: str = ""
    retrieval_ms: float = 0.0
    content_hash: str = Field("", description="SHA-256 over question and passages: identical input, identical hash.")

    def with_hash(self) -> ContextPack:
        payload = {"question": self.question, "passages": [p.model_dump(mode="json") for p in self.passages]}
        return self.model_copy(update={"content_hash": canonical_hash(payload)})


class _Assertion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "",
        pattern=r"^[a-z0-9_]*$",
        description="Names the Score (metric `assert_<name>`); default: the type. Two of one type need names.",
    )

    @property
    def metric(self) -> str:
        return f"assert_{self.name or getattr(self, 'type', 'assertion')}"


class ContainsAssertion(_Assertion):
    """The answer contains `value` (case-insensitive unless `case_sensitive`)."""

    type: Literal["contains"]
    value: str = Field(min_length=1)
    case_sensitive: bool = False


class NotContainsAssertion(_Assertion):
    """The answer does not contain `value`."""

    type: Literal["not_contains"]
    value: str = Field(min_length=1)
    case_sensitive: bool = False


class RegexAssertion(_Assertion):
    """`pattern` (Python regular expression) matches somewhere in the answer."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1)
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        return valid_regex(v)


def valid_regex(pattern: str) -> str:
    """The pattern, if it compiles (a validator for every regular expression a user writes)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return pattern


class MustCiteAssertion(_Assertion):
    """The answer cites ([n]) a passage of document or chunk `source`."""

    type: Literal["must_cite"]
    source: str = Field(min_length=1, description="A document id or chunk id.")


class MaxWordsAssertion(_Assertion):
    """The answer has at most `value` words (citations not counted)."""

    type: Literal["max_words"]
    value: int = Field(gt=0)


class JsonSchemaAssertion(_Assertion):
    """The answer is JSON (a code fence around it is allowed) valid against `json_schema`."""

    type: Literal["json_schema"]
    json_schema: dict[str, Any]

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import SchemaError, validators

        try:
            validators.validator_for(v).check_schema(v)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return v


class EqualsNumberAssertion(_Assertion):
    """Some number in the answer equals `value` within `tolerance` (absolute)."""

    type: Literal["equals_number"]
    value: float
    tolerance: float = Field(0.0, ge=0)


Assertion = Annotated[
    ContainsAssertion
    | NotContainsAssertion
    | RegexAssertion
    | MustCiteAssertion
    | MaxWordsAssertion
    | JsonSchemaAssertion
    | EqualsNumberAssertion,
    Field(discriminator="type"),
]


class GuardrailExpectation(BaseModel):
    """`expect_guardrail: {stage: input, outcome: block, category: prompt_attack}` on a gold item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Literal["input", "context", "output"]
    outcome: Literal["block", "challenge", "redact", "pass"]
    category: str = Field(
        "",
        description="prompt_attack, topic:<name>, word:<phrase>, an entity type, grounding, ...: which guardrail "
        "should act ('' = any).",
    )


class GoldItem(BaseModel):
    """One gold question."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._:-]+$")
    question: str = Field(min_length=1)
    intent: str = Field(min_length=1)
    reference_answer: str = ""
    alternative_answers: list[str] = Field(
        default_factory=list, description="Other accepted forms of the answer (aliases, spellings)."
    )
    expected_sources: list[str] = Field(
        default_factory=list, description="Document ids and/or chunk ids that contain the answer."
    )
    filters: dict[str, FilterValue] = Field(default_factory=dict)
    answerable: bool = Field(True, description="False: the assistant must refuse or say it cannot answer.")
    tags: list[str] = Field(default_factory=list)
    assertions: list[Assertion] = Field(
        default_factory=list, description="Deterministic checks of every answer (the `assertions` scorer)."
    )
    expect_guardrail: list[GuardrailExpectation] = Field(
        default_factory=list,
        description="What the guardrails should do with this item (one mapping or a list, one per stage).",
    )

    @field_validator("expect_guardrail", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class GoldSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source: str = ""
    items: list[GoldItem]


class PromptRef(Frozen):
    id: str
    version: int


class Candidate(Frozen):
    """A model + prompt version under evaluation. Two prompt versions of one model are two candidates."""

    name: str
    provider: str
    prompt: PromptRef
    params: dict[str, Any] = {}
    options: dict[str, Any] = {}


class Usage(Frozen):
    input_tokens: int = 0
    output_tokens: int = 0


class ErrorInfo(Frozen):
    type: str = Field(description="Error class, e.g. 'ThrottlingException', 'ReplayMissing'.")
    message: str = Field(description="What went wrong; credentials are scrubbed as the record is built.")
    retryable: bool = False

    @field_validator("message")
    @classmethod
    def _scrub(cls, v: str) -> str:
        return scrub(v)


class Attempt(Frozen):
    """One try of a model call, as the runner saw it."""

    number: int
    error: str = Field("", description="Error class of this attempt; '' when it succeeded.")
    kind: str = Field("", description="'rate_limit', 'transient' or 'fatal' for a failed attempt.")
    latency_ms: float = 0.0
    wait_s: float = Field(0.0, description="Backoff slept after this attempt before the next one.")


class Generation(Frozen):
    """One candidate's answer to one item. A failed call is a Generation with `error` set, never dropped."""

    item_id: str
    candidate: str
    text: str = ""
    citations: tuple[int, ...] = Field((), description="Passage numbers cited in the text, in order of first use.")
    usage: Usage = Usage()
    latency_ms: float = 0.0
    ttft_ms: float | None = Field(
        None, description="Time to the first answer token (streamed calls only): from the request leaving."
    )
    cost_usd: float = 0.0
    attempts: int = 1
    attempt_log: tuple[Attempt, ...] = ()
    cached: bool = Field(
        False,
        description="Served from the response cache: no call was made in this run. latency_ms, usage and cost_usd are "
        "those of the call that produced the answer; a run's ops figures leave cached answers out.",
    )
    unpriced: bool = Field(False, description="The model has no price in the price table; cost_usd is 0.")
    request_id: str = ""
    error: ErrorInfo | None = None
    blocked_by: str = Field("", description="Guardrail that replaced the answer (input or output), if any.")
    guardrail_outcome: Literal["", "blocked", "challenged", "refused", "failed"] = Field(
        "", description="What `blocked_by` did: the candidate was not called (input) or its answer replaced (output)."
    )
    guardrail_stage: Literal["", "input", "output"] = ""
    request_hash: str = ""
    model: str = ""
    stop_reason: str = ""
    mode: Literal["online", "batch"] = Field("online", description="How the call was made (batch: at the batch price).")
    batch_job: str = Field("", description="The provider's batch job id (Bedrock job ARN, OpenAI batch id).")

    @property
    def ok(self) -> bool:
        return self.error is None


class Score(Frozen):
    """One judgement. `value` is in [0, 1]; None only when the metric does not apply (`label='n/a'`)."""

    item_id: str
    candidate: str = Field(description="Candidate name, or '' for per-item scores such as retrieval.")
    metric: str
    value: float | None
    label: str = ""
    reason: str = ""
    scorer: str
    scorer_version: str
    error: str = ""

    @field_validator("reason", "error")
    @classmethod
    def _scrub(cls, v: str) -> str:
        return scrub(v)


class Finding(Frozen):
    entity: str = Field(
        description="Entity type, 'topic:<name>', 'word:<policy phrase>', 'regex:<name>', ... never a value."
    )
    count: int
    score: float | None = Field(None, description="Detector score (probability, similarity or Bedrock confidence).")


GuardrailStage = Literal["input", "context", "output"]
GuardrailOutcome = Literal["redacted", "flagged", "challenged", "blocked", "refused", "failed"]
"""What a guardrail did (a pass is not recorded as an action). 'failed': the check itself failed; the text was
treated as blocked (fail closed) and the failure counts against the run."""


class GuardrailAction(Frozen):
    """Audit record of one guardrail action. Never carries the raw value found."""

    guardrail: str
    stage: GuardrailStage
    where: str = Field(description="'question', 'passage:<chunk_id>:<field>' or 'answer:<candidate>'.")
    item_id: str
    action: GuardrailOutcome
    findings: tuple[Finding, ...] = ()
    latency_ms: float | None = None
    reason: str = Field("", description="Why a check failed (the error type), for action 'failed'.")


class GuardrailTiming(Frozen):
    """Per guardrail and stage: how many checks ran, how long they took and what they cost (Bedrock)."""

    guardrail: str
    stage: GuardrailStage
    checks: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    cost_usd: float = 0.0


class Price(BaseModel):
    """A model's price (USD per 1,000 tokens), shipped in generation/prices.yaml or set under `prices:`."""

    model_config = ConfigDict(extra="forbid")

    input_per_1k: float = Field(ge=0, description="USD per 1,000 input tokens.")
    output_per_1k: float = Field(ge=0, description="USD per 1,000 output tokens.")
    batch_input_per_1k: float | None = Field(None, ge=0, description="Batch price; default: batch.discount x input.")
    batch_output_per_1k: float | None = Field(None, ge=0, description="Batch price; default: batch.discount x output.")
