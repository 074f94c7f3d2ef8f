"""The Guardrail seam: an ordered chain of small checks, each returning its verdict as data.

A guardrail never raises for a policy decision; it says what it found (entity type, topic, filter and score,
never the raw value) and what it did: pass, redact (text changed), flag (recorded only), challenge (the candidate
is not called; the challenge text is the answer), block (text replaced) or refuse (contextual grounding: the
answer is replaced by the policy's template). A check that fails (an exception, a Bedrock error after retries) is
recorded as `failed` and treated as a block: a broken detector never passes text silently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ragharness.core.retry import RetryPolicy
from ragharness.core.types import Finding, Frozen, GuardrailAction, GuardrailOutcome, GuardrailStage, GuardrailTiming
from ragharness.guardrails.leaks import LeakWatch

VerdictAction = Literal["pass", "redacted", "flagged", "challenged", "blocked", "refused"]
STOPS: frozenset[str] = frozenset({"challenged", "blocked", "refused", "failed"})
"""Outcomes after which no later guardrail runs and the text is replaced."""
FAILED_MESSAGE = "Sorry, I can't help with that request right now."


class Verdict(Frozen):
    text: str = Field(description="The text after the action: redacted, or the block/challenge/refusal message.")
    action: VerdictAction = "pass"
    findings: tuple[Finding, ...] = ()
    cost_usd: float = 0.0


@runtime_checkable
class Guardrail(Protocol):
    @property
    def name(self) -> str: ...

    def check(self, text: str) -> Verdict: ...


@dataclass(frozen=True)
class GuardrailContext:
    """What a guardrail is built with besides its own options, so it is complete when constructed: the run's leak
    watch (a PII redactor reports every value it finds to it), the AWS client a backend may use (tests pass a
    stubbed one) and the retry policy (the runner's: one backoff for model and guardrail calls).

    Factories of the `guardrail` seam are called `factory(options, ctx)`; those of `guardrail backend`
    `factory(policy, stage, ctx)`."""

    watch: LeakWatch | None = None
    client: Any = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class GroundingSource(Frozen):
    """What an output guardrail checks an answer against: the question and the passages the candidate saw."""

    question: str
    passages: tuple[str, ...]


@runtime_checkable
class GroundingGuardrail(Protocol):
    """A guardrail that judges an answer against its question and context (contextual grounding)."""

    @property
    def name(self) -> str: ...

    def check(self, text: str) -> Verdict: ...

    def check_grounded(self, text: str, source: GroundingSource) -> Verdict: ...


class ChainResult(BaseModel):
    text: str = Field(description="The text after redactions (a block does not replace it here).")
    outcome: Literal["pass", "redacted", "flagged", "challenged", "blocked", "refused", "failed"] = "pass"
    blocked_by: str = ""
    block_message: str = Field("", description="What replaces the text when the outcome stops the chain.")
    actions: list[GuardrailAction] = []

    @property
    def stopped(self) -> bool:
        return self.outcome in STOPS


@dataclass
class _Tally:
    checks: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    cost_usd: float = 0.0


@dataclass
class ChainStats:
    """Running totals per guardrail, drained into `guardrail_timings.jsonl` by the run."""

    stage: GuardrailStage
    tallies: dict[str, _Tally] = field(default_factory=dict)

    def add(self, guard: str, ms: float, cost: float) -> None:
        t = self.tallies.setdefault(guard, _Tally())
        t.checks += 1
        t.total_ms += ms
        t.max_ms = max(t.max_ms, ms)
        t.cost_usd += cost

    def drain(self) -> list[GuardrailTiming]:
        out = [
            GuardrailTiming(
                guardrail=name,
                stage=self.stage,
                checks=t.checks,
                total_ms=round(t.total_ms, 3),
                max_ms=round(t.max_ms, 3),
                cost_usd=round(t.cost_usd, 8),
            )
            for name, t in sorted(self.tallies.items())
            if t.checks
        ]
        self.tallies.clear()
        return out


class GuardrailChain:
    """Runs guardrails in order. `redact_only`: only redactions apply and every guardrail runs (what gold answers,
    stored questions and passage metadata go through: a block there must not stop the redactors after it)."""

    def __init__(
        self,
        guardrails: Sequence[Guardrail],
        stage: GuardrailStage,
        failed_message: str = "",
        *,
        redact_only: bool = False,
    ) -> None:
        self.guardrails = list(guardrails)
        self.stage: GuardrailStage = stage
        self.failed_message = failed_message or FAILED_MESSAGE
        self.redact_only = redact_only
        self.stats = ChainStats(stage)

    def _action(
        self,
        guard: str,
        where: str,
        item_id: str,
        action: GuardrailOutcome,
        ms: float,
        findings: tuple[Finding, ...] = (),
        reason: str = "",
    ) -> GuardrailAction:
        return GuardrailAction(
            guardrail=guard,
            stage=self.stage,
            where=where,
            item_id=item_id,
            action=action,
            findings=findings,
            latency_ms=round(ms, 3),
            reason=reason,
        )

    def warm(self) -> None:
        """Load what each guardrail loads lazily (Presidio, spaCy) before the calls start."""
        for guard in self.guardrails:
            warm = getattr(guard, "warm", None)
            if callable(warm):
                warm()

    def apply(self, text: str, *, where: str, item_id: str, source: GroundingSource | None = None) -> ChainResult:
        result = ChainResult(text=text)
        for guard in self.guardrails:
            t0 = time.perf_counter()
            try:
                if source is not None and isinstance(guard, GroundingGuardrail):
                    verdict = guard.check_grounded(result.text, source)
                else:
                    verdict = guard.check(result.text)
            except Exception as exc:
                if self.redact_only:  # text that could not be redacted must not be stored: the error surfaces
                    raise
                ms = (time.perf_counter() - t0) * 1000
                self.stats.add(guard.name, ms, 0.0)
                reason = getattr(exc, "code", "") or type(exc).__name__
                result.actions.append(self._action(guard.name, where, item_id, "failed", ms, reason=reason))
                result.outcome, result.blocked_by, result.block_message = "failed", guard.name, self.failed_message
                break
            ms = (time.perf_counter() - t0) * 1000
            self.stats.add(guard.name, ms, verdict.cost_usd)
            if verdict.action == "pass" or (self.redact_only and verdict.action != "redacted"):
                continue
            result.actions.append(self._action(guard.name, where, item_id, verdict.action, ms, verdict.findings))
            if verdict.action == "redacted":
                result.text = verdict.text
                if result.outcome in ("pass", "flagged"):
                    result.outcome = "redacted"
            elif verdict.action == "flagged":
                if result.outcome == "pass":
                    result.outcome = "flagged"
            else:
                result.outcome, result.blocked_by, result.block_message = verdict.action, guard.name, verdict.text
                break
        return result


@dataclass
class GuardrailSet:
    """The chains of a run: the question (input), each retrieved passage (context), each answer (output), and the
    redaction-only chain for gold answers, passage titles and metadata (what files and reports show)."""

    input: GuardrailChain
    context: GuardrailChain
    output: GuardrailChain
    redact: GuardrailChain
    watch: LeakWatch = field(default_factory=LeakWatch)
    """The leak watch the chains' PII redactors were built with (`GuardrailContext.watch`); the run checks every
    request and file against it."""

    @classmethod
    def of(cls, guards: Sequence[Guardrail], output: Sequence[Guardrail] = ()) -> GuardrailSet:
        """One list of guardrails for question, passages and gold; `output` for answers."""
        return cls(
            input=GuardrailChain(guards, "input"),
            context=GuardrailChain(guards, "context"),
            output=GuardrailChain(output, "output"),
            redact=GuardrailChain(guards, "input", redact_only=True),
        )

    def timings(self) -> list[GuardrailTiming]:
        """Drain the stage chains' running totals (the redaction chain's work on stored text is not a check of a
        request, so it is not counted)."""
        self.redact.stats.drain()
        return self.input.stats.drain() + self.context.stats.drain() + self.output.stats.drain()
