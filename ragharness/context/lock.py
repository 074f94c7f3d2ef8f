"""Locking a context: retrieve every gold item's passages once, redact every field a prompt, file or report can
show, hash the result, and render each candidate's request from it. What a candidate or the judge sees is exactly
what is locked here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from pydantic import BaseModel

from ragharness.core.errors import GoldSetError
from ragharness.core.memory import trim
from ragharness.core.progress import NO_PROGRESS, Progress
from ragharness.core.types import (
    METADATA_FIELDS,
    Assertion,
    ContainsAssertion,
    ContextPack,
    GoldItem,
    GoldSet,
    GuardrailAction,
    Metadata,
    NotContainsAssertion,
    Passage,
    RegexAssertion,
)
from ragharness.guardrails.base import GuardrailChain, GuardrailSet
from ragharness.retrieval.retriever import Retriever

RETRIEVAL_BATCH = 256
"""Items whose queries are embedded in one batch and searched side by side."""


class Stopped(NamedTuple):
    """An input guardrail stopped the item: no candidate is called and `message` is every candidate's answer."""

    blocked_by: str
    message: str
    outcome: str


def _redact_passage(p: Passage, guards: GuardrailSet, item_id: str) -> tuple[Passage | None, list[GuardrailAction]]:
    """Every field of a passage that a prompt, file or report can show: text, title, heading path, source and
    metadata values. The text goes through the context chain (redaction and injection checks); a passage the chain
    stops (an injection, a failed check) is withheld: None."""
    actions: list[GuardrailAction] = []

    def clean(text: str, field: str) -> str:
        if not text:
            return text
        res = guards.redact.apply(text, where=f"passage:{p.chunk_id}:{field}", item_id=item_id)
        actions.extend(a.model_copy(update={"stage": "context"}) for a in res.actions)
        return res.text

    body = guards.context.apply(p.text, where=f"passage:{p.chunk_id}:text", item_id=item_id) if p.text else None
    if body is not None:
        actions.extend(body.actions)
        if body.stopped:
            return None, actions

    meta = {f: clean(getattr(p.metadata, f), f) for f in METADATA_FIELDS}
    tags = tuple(clean(t, "tags") for t in p.metadata.tags)
    passage = p.model_copy(
        update={
            "text": body.text if body is not None else p.text,
            "title": clean(p.title, "title"),
            "section": clean(p.section, "section"),
            "source": clean(p.source, "source"),
            "metadata": Metadata(**meta, tags=tags),
        }
    )
    return passage, actions


PassageMemo = dict[tuple[str, str], tuple[Passage | None, list[GuardrailAction]]]
"""(chunk id, text) -> the passage redacted once and its audit: a chunk recurs in many items' contexts."""


def lock_context(
    pack: ContextPack, guards: GuardrailSet, memo: PassageMemo | None = None
) -> tuple[ContextPack, list[GuardrailAction], Stopped | None]:
    """Check the question (input chain) and every passage (context chain) once; the result is hashed and is all any
    candidate or judge sees. Withheld passages leave the pack and the rest are numbered 1..n again."""
    actions: list[GuardrailAction] = []
    q = guards.input.apply(pack.question, where="question", item_id=pack.item_id)
    actions += q.actions
    passages: list[Passage] = []
    for p in pack.passages:
        key = (p.chunk_id, p.text)
        if memo is not None and key in memo:
            clean, acts = memo[key]
            acts = [a.model_copy(update={"item_id": pack.item_id}) for a in acts]
        else:
            clean, acts = _redact_passage(p, guards, pack.item_id)
            if memo is not None and len(memo) < 100_000:
                memo[key] = (clean, acts)
        actions += acts
        if clean is not None:
            passages.append(clean.model_copy(update={"number": len(passages) + 1, "score": p.score}))
    # The question arrives stored redacted (`redact_gold`), so even a stopped chain's text holds no detected value.
    locked = pack.model_copy(update={"question": q.text, "passages": tuple(passages)}).with_hash()
    stopped = Stopped(q.blocked_by, q.block_message, q.outcome) if q.stopped else None
    return locked, actions, stopped


def redact_gold(
    gold: GoldSet, chain: GuardrailChain, audit: list[GuardrailAction] | None = None
) -> GoldSet:  # `chain`: the GuardrailSet's redaction chain
    """The gold set as the run stores and scores it: questions, reference answers and the texts of `contains` /
    `not_contains` assertions redacted like everything else (a reference with an e-mail is compared with answers
    whose e-mails are redacted too). Redactions of a question are input-stage actions: appended to `audit`."""

    def clean(text: str) -> str:
        return chain.apply(text, where="gold", item_id="").text if text else text

    check_structure(gold, chain)

    def clean_question(item: GoldItem) -> str:
        res = chain.apply(item.question, where="question", item_id=item.id)
        if audit is not None:
            audit.extend(res.actions)
        return res.text

    def clean_assertion(a: Assertion) -> Assertion:
        # a text the answer must (not) contain is compared with redacted answers, and is quoted in reasons
        if isinstance(a, ContainsAssertion | NotContainsAssertion):
            return a.model_copy(update={"value": clean(a.value)})
        return a

    items = [
        i.model_copy(
            update={
                "question": clean_question(i),
                "reference_answer": clean(i.reference_answer),
                "alternative_answers": [clean(a) for a in i.alternative_answers],
                "assertions": [clean_assertion(a) for a in i.assertions],
            }
        )
        for i in gold.items
    ]
    return gold.model_copy(update={"items": items})


def structural_fields(item: GoldItem) -> Iterator[tuple[str, str]]:
    """The fields of an item that are stored, printed and used as keys unredacted: (field path, value)."""
    yield "id", item.id
    yield "intent", item.intent
    for n, tag in enumerate(item.tags):
        yield f"tags[{n}]", tag
    for n, src in enumerate(item.expected_sources):
        yield f"expected_sources[{n}]", src
    for key, value in item.filters.items():
        yield f"filters.{key}", key
        for v in value if isinstance(value, list) else [value]:
            yield f"filters.{key}", str(v)
    for n, a in enumerate(item.assertions):
        if a.name:
            yield f"assertions[{n}].name", a.name
        if isinstance(a, RegexAssertion):
            yield f"assertions[{n}].pattern", a.pattern


def check_structure(gold: GoldSet, chain: GuardrailChain) -> None:
    """Refuse a gold set whose structural fields carry personal data the redaction chain detects: ids, intents,
    tags, sources, filters and regex patterns are keys and labels, stored and shown as they are, so they are never
    redacted. The error names the item and the field, never the value."""
    problems = []
    for n, item in enumerate(gold.items, start=1):
        flagged = []
        for field, value in structural_fields(item):
            res = chain.apply(value, where="gold-structure", item_id="")
            found = sorted({f.entity for a in res.actions if a.action == "redacted" for f in a.findings})
            if found:
                flagged.append((field, found))
        name = f"item {n}" if any(f == "id" for f, _ in flagged) else f"item {n} ({item.id})"
        problems += [f"{name}: field `{field}` carries {', '.join(found)}" for field, found in flagged]
    if problems:
        where = gold.source or gold.name
        raise GoldSetError(
            f"gold set {where}: " + "; ".join(problems[:10]) + ". Structural fields are stored and shown unredacted: "
            "rewrite them without personal data (the value is not shown)"
        )


class LockedContexts(BaseModel):
    packs: dict[str, ContextPack]
    actions: list[GuardrailAction]
    blocked: dict[str, Stopped]


def iter_locked(
    items: list[GoldItem], retriever: Retriever, guards: GuardrailSet, progress: Progress = NO_PROGRESS
) -> Iterator[tuple[ContextPack, list[GuardrailAction], Stopped | None]]:
    """Locked contexts item by item, in gold order: queries embedded in batches and searched side by side."""
    done = 0
    memo: PassageMemo = {}
    for start in range(0, len(items), RETRIEVAL_BATCH):
        batch = items[start : start + RETRIEVAL_BATCH]
        trim()
        for pack in retriever.retrieve_many(batch):
            yield lock_context(pack, guards, memo)
            done += 1
            progress("retrieve", done, len(items))


def lock_all(items: list[GoldItem], retriever: Retriever, guards: GuardrailSet, progress: Progress) -> LockedContexts:
    """Every item's locked context in memory (the dry run and retrieval checks; runs stream instead)."""
    locked = LockedContexts(packs={}, actions=[], blocked={})
    for pack, acts, stopped in iter_locked(items, retriever, guards, progress):
        locked.packs[pack.item_id] = pack
        locked.actions += acts
        if stopped is not None:
            locked.blocked[pack.item_id] = stopped
    return locked
