"""The guardrail policy run locally: offline, no model download.

- sensitive information: Presidio (pattern and checksum entities; PERSON/LOCATION with an installed spaCy pipeline)
  plus the policy's own regexes, each REDACT or BLOCK;
- word filters: exact words and phrases, case-insensitive, on word boundaries, BLOCK or CHALLENGE;
- denied topics: similarity of the text to the topic's name, definition and examples (MiniLM), confirmed by the
  shipped unsafe-request head unless the text is very close to an example;
- prompt attacks: the shipped prompt-attack heads (one for questions, one for retrieved passages, over windows of the
  text, so an instruction hidden inside a long passage is found), plus `OVERRIDE`, a high-precision pattern for the
  classic instruction-override phrasing ("ignore all previous instructions", "you are now DAN", "note to the AI"),
  which the public training data under-represents (on the developer split it fires on 0 of 804 benign documents and
  questions, 0 of 88 trigger-word prompts and 2 of 499 chat prompts);
- contextual grounding: relevance of the passages to the question (the best passage) and support of the answer's
  sentences by the passages (mean over sentences of the best passage sentence), each a MiniLM cosine similarity
  mapped to a probability by a logistic fitted on COVID-QA's human relevance judgements
  (`benchmarks/relevance_calibration.py`). Relevance: the judged passage vs a passage of another domain (is the
  context on the question's topic at all); grounding: the judged passage vs another answer of the same FAQ (does
  this content, not just this topic, back the sentence).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence

from ragharness.core.normalise import normalise
from ragharness.core.text import sentences as split_sentences
from ragharness.core.text import strip_citations
from ragharness.core.types import Finding, GuardrailStage
from ragharness.guardrails.base import GroundingSource, Verdict
from ragharness.guardrails.heads import HeadDetector, load_head, windows
from ragharness.guardrails.leaks import LeakWatch
from ragharness.guardrails.pii import PiiRedactor
from ragharness.guardrails.policy import (
    PII_ENTITIES,
    ContextualGrounding,
    DeniedTopic,
    GuardrailPolicy,
    PromptAttacks,
    SensitiveInformation,
    WordFilter,
)
from ragharness.retrieval.embedders import Embedder, cosine

TOPIC_SIMILARITY_MIN = 0.45
"""A text this close to a denied topic's anchors is on that topic if the unsafe-request head agrees."""
TOPIC_SIMILARITY_STRONG = 0.72
"""A text this close to a topic's anchors (near-paraphrase of an example) is on the topic whatever the head says."""
RELEVANCE = (31.36, -7.13)
"""P(on topic) = sigmoid(a * cosine + b): 0.5 at cosine 0.23, 0.68 at 0.25, 0.95 at 0.32."""
GROUNDING = (10.10, -4.54)
"""P(supported) = sigmoid(a * cosine + b): 0.5 at cosine 0.45, 0.68 at 0.52, 0.82 at 0.6."""


def similarity_score(cos: float, curve: tuple[float, float] = GROUNDING) -> float:
    slope, intercept = curve
    return 1.0 / (1.0 + math.exp(-(slope * cos + intercept)))


class SensitiveInfoGuardrail:
    """Presidio entities and custom regexes; an entity or regex whose action is BLOCK blocks the text."""

    name = "sensitive_information"

    def __init__(
        self,
        policy: SensitiveInformation,
        block_message: str,
        redact_only: bool = False,
        watch: LeakWatch | None = None,
    ) -> None:
        """`redact_only`: every finding is redacted, none blocks (for gold answers and passage metadata); `watch`
        is told every value found (see guardrails.leaks)."""
        self.policy = policy
        self.redact_only = redact_only
        presidio = sorted({PII_ENTITIES[e.type][0] for e in policy.pii_entities})
        self.redactor = (
            PiiRedactor(presidio, score_threshold=policy.score_threshold, ner_model=policy.ner_model, watch=watch)
            if presidio
            else None
        )
        self.block_entities = {
            PII_ENTITIES[e.type][0] for e in policy.pii_entities if policy.action_for(e.type) == "BLOCK"
        }
        self.regexes = [(r, re.compile(r.pattern)) for r in policy.regexes]
        self.block_message = block_message

    def warm(self) -> None:
        if self.redactor is not None:
            self.redactor.warm()

    def check(self, text: str) -> Verdict:
        findings: list[Finding] = []
        out = text
        blocked = False
        # Text redacted upstream (at ingest, or a gold question stored redacted) still carries its entity types: a
        # BLOCK entity blocks there too.
        for entity in sorted(self.block_entities):
            marks = text.count(f"[REDACTED_{entity}]")
            if marks and not self.redact_only:
                findings.append(Finding(entity=entity, count=marks))
                blocked = True
        if self.redactor is not None:
            verdict = self.redactor.check(text)
            if verdict.action == "redacted":
                out = verdict.text
                findings += verdict.findings
                blocked = blocked or any(f.entity in self.block_entities for f in verdict.findings)
        for rule, pattern in self.regexes:
            hits = len(pattern.findall(out))
            if hits:
                findings.append(Finding(entity=f"regex:{rule.name}", count=hits))
                out = pattern.sub(f"[REDACTED_{rule.name.upper()}]", out)
                blocked = blocked or rule.action == "BLOCK"
        if not findings:
            return Verdict(text=text)
        if blocked and not self.redact_only:
            return Verdict(text=self.block_message, action="blocked", findings=tuple(findings))
        return Verdict(text=out, action="redacted", findings=tuple(findings))


def word_pattern(phrase: str) -> re.Pattern[str]:
    """The phrase as whole words, any case, any run of whitespace between its words."""
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


class WordFilterGuardrail:
    name = "word_filters"

    def __init__(self, filters: Sequence[WordFilter], block_message: str, challenge_message: str) -> None:
        self.filters = [(f, word_pattern(f.match)) for f in filters]
        self.block_message = block_message
        self.challenge_message = challenge_message

    def check(self, text: str) -> Verdict:
        found = [(f, len(p.findall(text))) for f, p in self.filters]
        found = [(f, n) for f, n in found if n]
        if not found:
            return Verdict(text=text)
        findings = tuple(Finding(entity=f"word:{f.match}", count=n) for f, n in found)
        if any(f.action == "BLOCK" for f, _ in found):
            return Verdict(text=self.block_message, action="blocked", findings=findings)
        return Verdict(text=self.challenge_message, action="challenged", findings=findings)


class DeniedTopicGuardrail:
    name = "denied_topics"

    def __init__(self, topics: Sequence[DeniedTopic], embedder: Embedder, block_message: str) -> None:
        self.topics = list(topics)
        self.embedder = embedder
        self.unsafe = HeadDetector(load_head("unsafe_request"), embedder)
        self.anchors = [embedder.embed(t.anchors) for t in self.topics]
        self.block_message = block_message

    def scores(self, text: str) -> tuple[float, list[float]]:
        """The unsafe-request probability and the similarity to each topic (best window, best anchor)."""
        head = self.unsafe.head
        parts = windows(text, head.window_words, head.window_stride)
        vectors = self.embedder.embed(parts)
        unsafe = max(head.probabilities(vectors))
        sims = [max(cosine(v, a) for v in vectors for a in anchors) for anchors in self.anchors]
        return unsafe, sims

    def check(self, text: str) -> Verdict:
        if not text.strip():
            return Verdict(text=text)
        unsafe, sims = self.scores(text)
        threshold = self.unsafe.head.threshold
        hits = [
            Finding(entity=f"topic:{t.name}", count=1, score=round(s, 4))
            for t, s in zip(self.topics, sims, strict=True)
            if s >= TOPIC_SIMILARITY_STRONG or (s >= TOPIC_SIMILARITY_MIN and unsafe >= threshold)
        ]
        if not hits:
            return Verdict(text=text)
        return Verdict(text=self.block_message, action="blocked", findings=tuple(hits))


OVERRIDE = re.compile(
    r"""(?ix)
    \b(?:ignore|disregard|forget|override|bypass|skip)\b[\s,]+(?:\w+[\s,]+){0,4}?
      (?:previous|prior|above|earlier|preceding|original|initial|your|their|its|all|the|any|these|those|system)\s+(?:\w+\s+){0,2}?
      (?:instructions?|rules|guidelines|prompts?|directives?|policies|policy|restrictions|programming|context)\b
    | \b(?:new|updated|real|actual)\s+instructions?\s*:
    | \byou\s+are\s+(?:now\s+)?(?:DAN|in\s+(?:developer|god|jailbreak|unrestricted)\s+mode)\b
    | \b(?:developer|jailbreak|god)\s+mode\s+(?:enabled|activated|on)\b
    | \bsystem\s+(?:override|prompt\s+override)\b
    | \b(?:reveal|print|show|repeat|output)\s+(?:me\s+)?(?:your|the)\s+(?:hidden\s+|full\s+|initial\s+|original\s+)?
      system\s+prompt\b
    | \b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+)?
      (?:ai|assistant|llm|language\s+model|chatbot|model|evaluator|judge|grader|scorer)\b
    """
)
"""Classic instruction-override phrasing: a match scores OVERRIDE_SCORE whatever the head says."""
OVERRIDE_SCORE = 0.99


_SPACED = re.compile(r"\b(?:[A-Za-z][ .\-_]){3,}[A-Za-z]\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_ROLE_TAG = re.compile(r"(?im)^\s*(?:</?\s*(?:system|assistant|instructions?)\s*>|(?-i:SYSTEM|ASSISTANT)\s*:)")
"""A role marker addressed to the model at a line start: `<system>`, `</instructions>`, `SYSTEM:` (upper case: a
manual's "System: Windows 10" is not one)."""


def views(text: str) -> list[str]:
    """The forms a hidden instruction can take, each checked against OVERRIDE: the normalised text, letters
    spaced apart joined (`i g n o r e`), leetspeak folded (`1gn0re`), and base64 runs decoded."""
    out = [text, _SPACED.sub(lambda m: re.sub(r"[ .\-_]", "", m.group(0)), text), text.translate(_LEET)]
    for m in _BASE64.finditer(text):
        try:
            decoded = base64.b64decode(m.group(0) + "=" * (-len(m.group(0)) % 4), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if decoded.isprintable():
            out.append(decoded)
    return out


def attack_probability(detector: HeadDetector, texts: Sequence[str]) -> list[float]:
    """The head's probability of each normalised text, raised to OVERRIDE_SCORE where any of its `views` has
    override phrasing or the text carries role markers addressed to the model (`SYSTEM:`, `</system>`)."""
    texts = [normalise(t) for t in texts]
    probs = detector.probabilities(texts)
    return [
        max(p, OVERRIDE_SCORE) if _ROLE_TAG.search(t) or any(OVERRIDE.search(v) for v in views(t)) else p
        for p, t in zip(probs, texts, strict=True)
    ]


class PromptAttackGuardrail:
    """At input: BLOCK (or FLAG) a jailbreak; on a retrieved passage: DROP it (or FLAG): the passage is withheld."""

    name = "prompt_attack"

    def __init__(self, policy: PromptAttacks, embedder: Embedder, stage: GuardrailStage, block_message: str) -> None:
        self.detector = HeadDetector(load_head(f"prompt_attack_{'input' if stage == 'input' else 'context'}"), embedder)
        self.threshold = policy.threshold or self.detector.head.threshold
        act = policy.input_action if stage == "input" else policy.context_action
        self.flag_only = act == "FLAG"
        self.block_message = block_message if stage == "input" else ""

    def check(self, text: str) -> Verdict:
        if not text.strip():
            return Verdict(text=text)
        p = attack_probability(self.detector, [text])[0]
        if p < self.threshold:
            return Verdict(text=text)
        findings = (Finding(entity="prompt_attack", count=1, score=round(p, 4)),)
        if self.flag_only:
            return Verdict(text=text, action="flagged", findings=findings)
        return Verdict(text=self.block_message, action="blocked", findings=findings)


class GroundingGuardrail:
    """Output only: refuses (with the policy's template) an answer whose context is not relevant to the question
    or whose sentences the context does not support. Without a question and context it passes the text."""

    name = "contextual_grounding"

    def __init__(self, policy: ContextualGrounding, embedder: Embedder) -> None:
        self.policy = policy
        self.embedder = embedder

    def check(self, text: str) -> Verdict:
        return Verdict(text=text)

    def scores(self, text: str, source: GroundingSource) -> tuple[float, float]:
        passages = [p for p in source.passages if p.strip()]
        if not passages:
            return 0.0, 0.0
        answer = strip_citations(text)
        sentences = [s for s in split_sentences(answer) if len(s.split()) >= 3] or [answer]
        pieces = [s for p in passages for s in split_sentences(p) if s.strip()] or passages
        vecs = self.embedder.embed([source.question, *passages, *sentences, *pieces])
        q, rest = vecs[0], vecs[1:]
        pv, rest = rest[: len(passages)], rest[len(passages) :]
        sv, cv = rest[: len(sentences)], rest[len(sentences) :]
        relevance = similarity_score(max(cosine(q, v) for v in pv), RELEVANCE)
        support = [similarity_score(max(cosine(s, c) for c in cv), GROUNDING) for s in sv]
        return relevance, sum(support) / len(support)

    def check_grounded(self, text: str, source: GroundingSource) -> Verdict:
        if not text.strip():
            return Verdict(text=text)
        relevance, grounding = self.scores(text, source)
        failed = []
        if self.policy.relevance_threshold is not None and relevance < self.policy.relevance_threshold:
            failed.append(Finding(entity="relevance", count=1, score=round(relevance, 4)))
        if self.policy.grounding_threshold is not None and grounding < self.policy.grounding_threshold:
            failed.append(Finding(entity="grounding", count=1, score=round(grounding, 4)))
        if not failed:
            return Verdict(text=text)
        if self.policy.response_action == "FLAG":
            return Verdict(text=text, action="flagged", findings=tuple(failed))
        return Verdict(text=self.policy.template, action="refused", findings=tuple(failed))


def local_guardrails(
    policy: GuardrailPolicy, embedder: Embedder, stage: GuardrailStage, watch: LeakWatch | None = None
) -> list[
    SensitiveInfoGuardrail | WordFilterGuardrail | DeniedTopicGuardrail | PromptAttackGuardrail | GroundingGuardrail
]:
    """The policy's checks for one stage, in the order they run: cheap exact checks first, then the detectors."""
    msgs = policy.messages
    block = msgs.blocked_input if stage != "output" else msgs.blocked_output
    out: list[
        SensitiveInfoGuardrail | WordFilterGuardrail | DeniedTopicGuardrail | PromptAttackGuardrail | GroundingGuardrail
    ] = []
    if policy.sensitive_information_policy is not None:
        out.append(SensitiveInfoGuardrail(policy.sensitive_information_policy, block, watch=watch))
    if stage == "context":
        if policy.prompt_attacks is not None and policy.prompt_attacks.enabled:
            out.append(PromptAttackGuardrail(policy.prompt_attacks, embedder, stage, block))
        return out
    if policy.word_filters:
        out.append(WordFilterGuardrail(policy.word_filters, block, msgs.challenge))
    if policy.denied_topics:
        out.append(DeniedTopicGuardrail(policy.denied_topics, embedder, block))
    if stage == "input" and policy.prompt_attacks is not None and policy.prompt_attacks.enabled:
        out.append(PromptAttackGuardrail(policy.prompt_attacks, embedder, stage, block))
    if stage == "output" and policy.contextual_grounding is not None:
        out.append(GroundingGuardrail(policy.contextual_grounding, embedder))
    return out
