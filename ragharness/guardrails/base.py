"""The Guardrail seam: an ordered chain of small checks, each returning its verdict as data.

A guardrail never raises for a policy decision; it says what it found (entity type and count, never the raw
value) and what it did: pass, redact (text changed), flag (recorded only) or block (text replaced).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ragharness.types import Finding, Frozen, GuardrailAction


class Verdict(Frozen):
    text: str
    action: Literal["pass", "redacted", "flagged", "blocked"] = "pass"
    findings: tuple[Finding, ...] = ()


@runtime_checkable
class Guardrail(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, text: str) -> Verdict: ...


class ChainResult(BaseModel):
    text: str = Field(description="The text after redactions (a block does not replace it here).")
    blocked_by: str = ""
    block_message: str = ""
    actions: list[GuardrailAction] = []


class GuardrailChain:
    def __init__(self, guardrails: Sequence[Guardrail], stage: Literal["input", "output"]) -> None:
        self.guardrails = list(guardrails)
        self.stage: Literal["input", "output"] = stage

    def apply(self, text: str, *, where: str, item_id: str) -> ChainResult:
        result = ChainResult(text=text)
        for guard in self.guardrails:
            verdict = guard.check(result.text)
            if verdict.action == "pass":
                continue
            result.actions.append(
                GuardrailAction(
                    guardrail=guard.name,
                    stage=self.stage,
                    where=where,
                    item_id=item_id,
                    action=verdict.action,
                    findings=verdict.findings,
                )
            )
            if verdict.action == "redacted":
                result.text = verdict.text
            if verdict.action == "blocked":
                result.blocked_by = guard.name
                result.block_message = verdict.text
                break
        return result
