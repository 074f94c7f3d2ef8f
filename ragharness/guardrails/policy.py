"""The guardrail policy (`guardrails.policy` in harness.yaml): one description of what a deployment's guardrails
do, run locally or through Amazon Bedrock Guardrails, and exported to Terraform so what is evaluated is what is
deployed.

Keys are snake_case; the camelCase spelling of Bedrock's console JSON is accepted too (`sensitiveInformationPolicy`,
`piiEntities`, `wordFilters`, `deniedTopics`, `contextualGrounding`, `relevanceThreshold`, `responseAction`), so a
team can paste the policy it already runs. A policy may also live in its own JSON/YAML file: `policy: policy.json`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ragharness.core.types import valid_regex

PII_ENTITIES: dict[str, tuple[str, str]] = {
    # policy name: (Presidio entity the local backend detects, Bedrock PII entity type)
    "EMAIL": ("EMAIL_ADDRESS", "EMAIL"),
    "PHONE": ("PHONE_NUMBER", "PHONE"),
    "US_SOCIAL_SECURITY_NUMBER": ("US_SSN", "US_SOCIAL_SECURITY_NUMBER"),
    "CREDIT_DEBIT_CARD_NUMBER": ("CREDIT_CARD", "CREDIT_DEBIT_CARD_NUMBER"),
    "IP_ADDRESS": ("IP_ADDRESS", "IP_ADDRESS"),
    "INTERNATIONAL_BANK_ACCOUNT_NUMBER": ("IBAN_CODE", "INTERNATIONAL_BANK_ACCOUNT_NUMBER"),
    "AWS_ACCESS_KEY": ("SECRET", "AWS_ACCESS_KEY"),
    "AWS_SECRET_KEY": ("SECRET", "AWS_SECRET_KEY"),
    "PASSWORD": ("SECRET", "PASSWORD"),
    "NAME": ("PERSON", "NAME"),
    "ADDRESS": ("LOCATION", "ADDRESS"),
}
"""Bedrock's names are the policy's names; the short forms below are accepted and mean the same."""

PII_ALIASES = {
    "SSN": "US_SOCIAL_SECURITY_NUMBER",
    "US_SSN": "US_SOCIAL_SECURITY_NUMBER",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_DEBIT_CARD_NUMBER",
    "IBAN": "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "IBAN_CODE": "INTERNATIONAL_BANK_ACCOUNT_NUMBER",
    "PERSON": "NAME",
}
NER_ENTITIES = frozenset({"NAME", "ADDRESS"})
"""Entities only a named-entity model finds: they need `ner_model`, an installed official spaCy pipeline."""

OFFICIAL_SPACY_MODEL = re.compile(r"^(en_core_web_(sm|md|lg|trf))$")

DEFAULT_BLOCKED_INPUT = "Sorry, I can't help with that request."
DEFAULT_BLOCKED_OUTPUT = "Sorry, I can't share that answer."
DEFAULT_CHALLENGE = "Before I answer: this request touches a restricted subject. Please contact your account team."
DEFAULT_GROUNDING_TEMPLATE = "I can't answer that reliably from the documentation I have. Please contact support."


class PolicyPart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def canonical_entity(name: str) -> str:
    key = name.strip().upper()
    key = PII_ALIASES.get(key, key)
    if key not in PII_ENTITIES:
        allowed = ", ".join(sorted(PII_ENTITIES))
        raise ValueError(f"unknown PII entity {name!r}; use one of {allowed} (or SSN, IBAN, CREDIT_CARD, PERSON)")
    return key


class PiiEntity(PolicyPart):
    type: str
    action: Literal["REDACT", "BLOCK"] | None = Field(None, description="Default: the policy's `action`.")

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        return canonical_entity(value)


class RegexRule(PolicyPart):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    pattern: str = Field(min_length=1)
    action: Literal["REDACT", "BLOCK"] = "REDACT"
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return valid_regex(value)


class SensitiveInformation(PolicyPart):
    pii_entities: list[PiiEntity] = Field(default_factory=list)
    action: Literal["REDACT", "BLOCK"] = "REDACT"
    regexes: list[RegexRule] = Field(default_factory=list)
    ner_model: str | None = Field(
        None,
        description="An official spaCy English pipeline the user installed (en_core_web_sm/md/lg/trf): enables NAME "
        "and ADDRESS. Never downloaded by ragharness.",
    )
    score_threshold: float = Field(0.3, ge=0, le=1)

    @field_validator("pii_entities", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"type": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("ner_model")
    @classmethod
    def _official(cls, value: str | None) -> str | None:
        if value is not None and not OFFICIAL_SPACY_MODEL.match(value):
            raise ValueError(
                f"{value!r} is not an official spaCy English pipeline; install one of en_core_web_sm, "
                "en_core_web_md, en_core_web_lg or en_core_web_trf from spaCy's releases and name it here"
            )
        return value

    @model_validator(mode="after")
    def _ner_needs_model(self) -> SensitiveInformation:
        needs = sorted({e.type for e in self.pii_entities} & NER_ENTITIES)
        if needs and self.ner_model is None:
            raise ValueError(
                f"{', '.join(needs)} need a named-entity model: set ner_model to an installed official spaCy "
                "pipeline (e.g. en_core_web_lg), or remove them"
            )
        names = [r.name for r in self.regexes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"regexes: duplicate name(s) {dupes}")
        return self

    def action_for(self, entity: str) -> str:
        for e in self.pii_entities:
            if e.type == entity:
                return e.action or self.action
        return self.action


class WordFilter(PolicyPart):
    match: str = Field(min_length=1)
    action: Literal["BLOCK", "CHALLENGE"] = "BLOCK"

    @field_validator("match")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a word filter needs a word or phrase")
        return " ".join(value.split())


class DeniedTopic(PolicyPart):
    name: str = Field(min_length=1, max_length=100)
    definition: str = Field("", max_length=1000)
    examples: list[str] = Field(default_factory=list, max_length=5)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a denied topic needs a name")
        return value.strip()

    @field_validator("examples")
    @classmethod
    def _examples(cls, value: list[str]) -> list[str]:
        if any(not v.strip() for v in value):
            raise ValueError("an example phrase is empty")
        return value

    @property
    def anchors(self) -> list[str]:
        """The texts a request is compared with: the name, the definition and each example."""
        return [t for t in (self.name, self.definition, *self.examples) if t.strip()]


class PromptAttacks(PolicyPart):
    enabled: bool = True
    input_action: Literal["BLOCK", "FLAG"] = "BLOCK"
    context_action: Literal["DROP", "FLAG"] = Field(
        "DROP", description="A retrieved passage carrying an injection is withheld from every candidate, or flagged."
    )
    threshold: float | None = Field(
        None, gt=0, lt=1, description="Detector probability to act on; default: the shipped head's calibrated one."
    )


class ContextualGrounding(PolicyPart):
    relevance_threshold: float | None = Field(None, ge=0, le=0.99)
    grounding_threshold: float | None = Field(None, ge=0, le=0.99)
    response_action: Literal["REFUSE_WITH_TEMPLATE", "FLAG"] = "REFUSE_WITH_TEMPLATE"
    template: str = Field(DEFAULT_GROUNDING_TEMPLATE, min_length=1)

    @model_validator(mode="after")
    def _some_threshold(self) -> ContextualGrounding:
        if self.relevance_threshold is None and self.grounding_threshold is None:
            raise ValueError("set relevance_threshold, grounding_threshold or both (0 to 0.99)")
        return self


class Messages(PolicyPart):
    blocked_input: str = Field(DEFAULT_BLOCKED_INPUT, min_length=1)
    blocked_output: str = Field(DEFAULT_BLOCKED_OUTPUT, min_length=1)
    challenge: str = Field(DEFAULT_CHALLENGE, min_length=1)


class BedrockGuardrailRef(PolicyPart):
    guardrail_id: str = Field(min_length=1, description="The deployed guardrail's id or ARN.")
    version: str = Field("DRAFT", pattern=r"^(DRAFT|[0-9]{1,8})$")
    region: str | None = None
    price_per_1k_units: dict[str, float] = Field(
        default_factory=lambda: {"content": 0.15, "topic": 0.15, "pii": 0.10, "grounding": 0.10},
        description="USD per 1,000 text units by policy kind (Bedrock's list price; override with yours).",
    )


class GuardrailPolicy(PolicyPart):
    backend: str = Field(
        "local", min_length=1, description="local, bedrock, or a plugin's backend (`ragharness plugins` lists them)."
    )
    bedrock: BedrockGuardrailRef | None = None
    sensitive_information_policy: SensitiveInformation | None = None
    word_filters: list[WordFilter] = Field(default_factory=list)
    denied_topics: list[DeniedTopic] = Field(default_factory=list)
    prompt_attacks: PromptAttacks | None = None
    contextual_grounding: ContextualGrounding | None = None
    messages: Messages = Messages()

    @model_validator(mode="after")
    def _consistent(self) -> GuardrailPolicy:
        if self.backend == "bedrock" and self.bedrock is None:
            raise ValueError("backend bedrock needs `bedrock: {guardrail_id: ..., version: ...}`")
        words = [w.match.lower() for w in self.word_filters]
        if len(set(words)) != len(words):
            raise ValueError("word_filters: the same word or phrase is listed twice")
        topics = [t.name.lower() for t in self.denied_topics]
        if len(set(topics)) != len(topics):
            raise ValueError("denied_topics: the same topic name is listed twice")
        return self
