"""A candidate's request rendered from an item's locked context: the run and the dry run both build them here, so
what a candidate is sent is exactly the locked context in its prompt template."""

from __future__ import annotations

from ragharness.core.types import Candidate, ContextPack, GoldItem
from ragharness.generation.prompts import PromptTemplate, render
from ragharness.generation.providers.base import GenerationRequest, request_hash


def build_request(item: GoldItem, pack: ContextPack, cand: Candidate, tpl: PromptTemplate) -> GenerationRequest:
    prompt = render(tpl, pack.question, pack.passages)
    key = request_hash(cand, prompt.system, prompt.user)
    return GenerationRequest(
        item_id=item.id,
        candidate=cand,
        system=prompt.system,
        user=prompt.user,
        question=pack.question,
        passages=pack.passages,
        request_hash=key,
    )


def requests_for(
    item: GoldItem, pack: ContextPack, candidates: list[Candidate], templates: dict[str, PromptTemplate]
) -> list[GenerationRequest]:
    """Every candidate's request for one item, in candidate order: the run and the dry run both build them here."""
    return [build_request(item, pack, c, templates[c.name]) for c in candidates]
