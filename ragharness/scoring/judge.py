"""The LLM judge, an ordinary registered Scorer (`judge`): one call per answer returns claims with verdicts and
supporting passages, a correctness label, a refusal flag and, per passage, whether it is relevant to the question
and which gold-answer statements the passages support, as JSON validated by pydantic. Groundedness, citation
coverage and precision, correctness, refusal, context precision and context recall all come from that one call.

- The judge never learns which candidate wrote the answer: the request carries only question, passages,
  reference and answer (all redacted). Requests are keyed by an opaque index, not the candidate's name.
- Malformed output is re-asked with the validation error (`format_retries`); still malformed, it is a recorded
  judge failure: every judge metric scores 0 with label `judge_error`, counted, never dropped.
- Defence in depth against injected answers: a claim the judge calls supported whose numbers or names are
  absent from its supporting passages is overruled to unsupported, with the reason recorded.
- Calls go through the scorers' ModelPool (retries, rate limits, cache keyed by judge model, prompt version and
  input hash, prices, the run's budget, per-call records), the same guarantees as candidates.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ragharness.core.errors import ConfigError
from ragharness.core.types import Score
from ragharness.generation.prompts import PromptTemplate, load_prompt, render
from ragharness.generation.providers.base import GenerationRequest, request_hash
from ragharness.generation.runner import RateLimits
from ragharness.scoring.base import (
    ScorerContext,
    ScoringInput,
    correctness_value,
    groundedness_label,
    make_score,
)
from ragharness.scoring.settings import JudgeConfig
from ragharness.scoring.support import SupportJudge

JUDGE_METRICS = (
    "judge_groundedness",
    "judge_citation_coverage",
    "judge_citation_precision",
    "judge_correctness",
    "judge_refusal",
)
CONTEXT_METRICS = ("judge_context_precision", "judge_context_recall")
Verdict = Literal["supported", "partially_supported", "unsupported", "contradicted"]
CorrectnessLabel = Literal["correct", "partially_correct", "incorrect", "off_topic"]


class JudgeClaim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    verdict: Verdict
    supporting_passages: list[int] = Field(default_factory=list)
    cited_passages: list[int] = Field(default_factory=list)


class JudgeCorrectness(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: CorrectnessLabel
    reason: str = ""


class JudgePassage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int
    relevant: bool = Field(description="The passage bears on the question.")
    needed: bool = Field(description="The answer (or a correct answer) needs what it says.")


class ReferenceStatement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    supporting_passages: list[int] = Field(default_factory=list)


class JudgeOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims: list[JudgeClaim]
    correctness: JudgeCorrectness
    is_refusal: bool
    passages: list[JudgePassage] | None = None
    reference_statements: list[ReferenceStatement] | None = None

    @field_validator("claims")
    @classmethod
    def _bounded(cls, v: list[JudgeClaim]) -> list[JudgeClaim]:
        if len(v) > 100:
            raise ValueError("more than 100 claims")
        return v


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_judge_output(text: str, n_passages: int, answer: str, *, context: bool = False) -> JudgeOutput:
    """Parse and check the judge's reply; ValueError says what is wrong (fed back to the judge)."""
    m = _JSON_OBJECT.search(text)
    if not m:
        raise ValueError("no JSON object in the reply")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at position {exc.pos}") from exc
    try:
        out = JudgeOutput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    for i, claim in enumerate(out.claims):
        bad = [n for n in (*claim.supporting_passages, *claim.cited_passages) if not 1 <= n <= n_passages]
        if bad:
            raise ValueError(f"claims.{i}: passage numbers {bad} do not exist (there are {n_passages})")
    if not out.claims and not out.is_refusal and answer.strip():
        raise ValueError("no claims extracted from a non-empty answer that is not a refusal")
    if context:
        numbers = sorted(p.number for p in out.passages or [])
        if numbers != list(range(1, n_passages + 1)):
            raise ValueError(f"passages: give one entry for each passage 1..{n_passages} (got {numbers})")
        if out.reference_statements is None:
            raise ValueError("reference_statements: missing (use [] when the question must be refused)")
        for i, st in enumerate(out.reference_statements):
            bad = [n for n in st.supporting_passages if not 1 <= n <= n_passages]
            if bad:
                raise ValueError(f"reference_statements.{i}: passage numbers {bad} do not exist")
    return out


def request_key(item_id: str, candidate: str) -> str:
    """An opaque request key: the judge never learns which candidate wrote the answer."""
    return "j" + hashlib.sha256(f"{item_id}\x00{candidate}".encode()).hexdigest()[:16]


def _key(inp: ScoringInput) -> str:
    gen = inp.generation
    return request_key(inp.item.id, gen.candidate if gen else "")


def context_precision(relevant: list[bool]) -> float:
    """Rank-weighted precision of the relevant passages (mean of precision@k at each relevant rank): 1 when every
    relevant passage comes before every irrelevant one. Needs no labelled expected sources."""
    hits, total = 0, 0.0
    for rank, rel in enumerate(relevant, start=1):
        if rel:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


class JudgeScorer:
    """The LLM judge as a Scorer. Built from the config's `judge:` section; its model is added to the context's
    model pool at construction, so a misconfigured judge fails before any candidate is called."""

    level: Literal["answer"] = "answer"

    def __init__(self, ctx: ScorerContext) -> None:
        source = ctx.source
        if ctx.judge is None:
            raise ConfigError(
                f"{source}: scorer `judge` needs a `judge:` section (provider, prompt); or pass --judge PROVIDER_ID"
            )
        if ctx.models is None:
            raise ConfigError(
                "scorer `judge` needs a model pool to call its model: build it with "
                "ScorerContext(judge=cfg.judge, models=ModelPool(cfg.call_settings()))"
            )
        self.cfg: JudgeConfig = ctx.judge
        try:
            self.template: PromptTemplate = load_prompt(self.cfg.prompt, ctx.prompts_dir)
        except ConfigError as exc:
            raise ConfigError(f"{source}: judge.prompt: {exc}") from exc
        if self.cfg.context_metrics and "reference_statements" not in self.template.system + self.template.user:
            raise ConfigError(
                f"{source}: judge.prompt: {self.cfg.prompt.id}@v{self.cfg.prompt.version} does not ask for "
                "per-passage verdicts and reference_statements; use judge-claims version 2 (or a prompt of your own "
                "that asks for them), or set judge.context_metrics: false"
            )
        self.models = ctx.models
        self.models.add(
            "judge",
            self.cfg.to_candidate(),
            concurrency=self.cfg.concurrency,
            limits=RateLimits(rpm=self.cfg.rpm, tpm=self.cfg.tpm),
            where=f"{source}: judge",
            mode=self.cfg.mode,
        )
        self.candidate = self.cfg.to_candidate()
        self.support = SupportJudge(ctx.embedder, ctx.thresholds)
        self.name = f"judge:{self.cfg.provider}"
        self.version = f"{self.cfg.prompt.id}@v{self.cfg.prompt.version}"
        self.metrics: tuple[str, ...] = JUDGE_METRICS + (CONTEXT_METRICS if self.cfg.context_metrics else ())

    def request(self, inp: ScoringInput, feedback: str = "") -> GenerationRequest:
        gen = inp.generation
        prompt = render(
            self.template,
            inp.pack.question,
            inp.pack.passages,
            reference=inp.item.reference_answer if inp.item.answerable else "(this question must be refused)",
            answer=gen.text if gen else "",  # escaped by render, like every value put in the template
        )
        user = prompt.user
        if feedback:
            user += (
                f"\n\nYour previous reply could not be used: {feedback}\n"
                "Reply again with only the JSON object described above."
            )
        return GenerationRequest(
            item_id=_key(inp),
            candidate=self.candidate,
            system=prompt.system,
            user=user,
            question=inp.pack.question,
            passages=inp.pack.passages,
            request_hash=request_hash(self.candidate, prompt.system, user),
        )

    def planned_requests(self, inp: ScoringInput) -> list[GenerationRequest]:
        gen = inp.generation
        if gen is not None and gen.guardrail_stage == "input" and gen.guardrail_outcome:
            return []  # a stopped question is never sent to the judge (batch and dry run alike)
        return [self.request(inp)]

    def _failure(self, inp: ScoringInput, label: str, error: str, reason: str) -> list[Score]:
        return [make_score(self, inp, m, 0.0, label, reason, error) for m in self.metrics]

    def _stopped(self, inp: ScoringInput, blocked_by: str) -> list[Score]:
        """A question an input guardrail stopped never reaches the judge (it may carry the very instructions the
        guardrail caught): the candidate was not called and its answer is the guardrail's refusal, scored as one."""
        item = inp.item
        ok = not item.answerable
        why = f"question stopped by the input guardrail {blocked_by}; the judge is not sent a stopped question"
        scores = [
            make_score(
                self, inp, "judge_refusal", 1.0 if ok else 0.0, "correctly_refused" if ok else "wrongly_refused", why
            ),
            make_score(self, inp, "judge_correctness", 1.0 if ok else 0.0, "correct" if ok else "incorrect", why),
        ]
        rest = [m for m in self.metrics if m not in ("judge_refusal", "judge_correctness")]
        return scores + [make_score(self, inp, m, None, "n/a", why) for m in rest]

    async def score(self, inp: ScoringInput) -> list[Score]:
        gen = inp.generation
        if gen is None:
            return []
        if gen.guardrail_stage == "input" and gen.guardrail_outcome:
            return self._stopped(inp, gen.blocked_by)
        feedback = ""
        for attempt in range(self.cfg.format_retries + 1):
            reply = await self.models.call(self.request(inp, feedback))
            if reply is None:  # refused by the budget: a recorded judge failure, counted
                return self._failure(inp, "judge_error", "BudgetExhausted", "judge not called: budget reached")
            if not reply.ok:
                err = reply.error.type if reply.error else "Error"
                msg = reply.error.message if reply.error else ""
                return self._failure(inp, "judge_error", err, f"judge call failed: {err}: {msg}"[:300])
            try:
                out = parse_judge_output(reply.text, len(inp.pack.passages), gen.text, context=self.cfg.context_metrics)
            except ValueError as exc:
                feedback = str(exc)
                if attempt == self.cfg.format_retries:
                    return self._failure(
                        inp,
                        "judge_error",
                        "JudgeMalformed",
                        f"judge output unusable after {attempt + 1} attempt(s): {exc}",
                    )
                continue
            return self.derive(inp, out)
        return []  # not reached: the loop returns on its last attempt

    def _overrule(self, inp: ScoringInput, claims: list[JudgeClaim]) -> tuple[list[JudgeClaim], list[str]]:
        """Supported claims whose numbers or names are absent from their passages become unsupported."""
        by_number = {p.number: p for p in inp.pack.passages}
        overruled: list[str] = []
        out = []
        for claim in claims:
            c = claim
            if c.verdict in ("supported", "partially_supported") and c.supporting_passages:
                check = self.support.support(c.text, [by_number[n] for n in c.supporting_passages])
                if check.missing_facts:
                    overruled.append(f"{c.text[:60]!r}: {', '.join(check.missing_facts[:3])} not in passages")
                    c = c.model_copy(update={"verdict": "unsupported", "supporting_passages": []})
            out.append(c)
        return out, overruled

    def derive(self, inp: ScoringInput, out: JudgeOutput) -> list[Score]:
        item = inp.item
        claims, overruled = self._overrule(inp, out.claims)
        refusal_label = {
            (True, False): "correctly_refused",
            (False, False): "should_have_refused",
            (True, True): "wrongly_refused",
            (False, True): "answered",
        }[(out.is_refusal, item.answerable)]
        scores = [
            make_score(
                self,
                inp,
                "judge_refusal",
                1.0 if out.is_refusal != item.answerable else 0.0,
                refusal_label,
                "judge: refusal" if out.is_refusal else "judge: not a refusal",
            ),
            make_score(
                self,
                inp,
                "judge_correctness",
                correctness_value(out.correctness.label),
                out.correctness.label,
                out.correctness.reason[:300] or "judge gave no reason",
            ),
        ]
        if self.cfg.context_metrics:
            scores += self._context_scores(inp, out)
        if not claims:
            why = "refusal: no claims" if out.is_refusal else "no claims"
            return scores + [make_score(self, inp, m, None, "n/a", why) for m in JUDGE_METRICS[:3]]
        return scores + self._claim_scores(inp, claims, overruled)

    def _claim_scores(self, inp: ScoringInput, claims: list[JudgeClaim], overruled: list[str]) -> list[Score]:
        points = sum({"supported": 1.0, "partially_supported": 0.5}.get(c.verdict, 0.0) for c in claims)
        g = points / len(claims)
        bad = [c for c in claims if c.verdict in ("unsupported", "contradicted")]
        reason = f"{sum(c.verdict == 'supported' for c in claims)}/{len(claims)} claims supported"
        if bad:
            reason += f"; {bad[0].verdict}: {bad[0].text[:80]!r}"
        if overruled:
            reason += f"; judge overruled: {overruled[0]}"
        label = groundedness_label(g)
        cited = sum(1 for c in claims if c.cited_passages)
        scores = [
            make_score(self, inp, "judge_groundedness", g, label, reason),
            make_score(
                self,
                inp,
                "judge_citation_coverage",
                cited / len(claims),
                "cited" if cited == len(claims) else ("uncited" if not cited else "partially_cited"),
                f"{cited}/{len(claims)} claims carry a citation",
            ),
        ]
        pairs = [(c, n) for c in claims for n in c.cited_passages]
        if not pairs:
            return [*scores, make_score(self, inp, "judge_citation_precision", None, "n/a", "no citations")]
        good = sum(1 for c, n in pairs if n in c.supporting_passages and c.verdict != "contradicted")
        return [
            *scores,
            make_score(
                self,
                inp,
                "judge_citation_precision",
                good / len(pairs),
                "precise" if good == len(pairs) else "imprecise",
                f"{good}/{len(pairs)} citations point to a supporting passage",
            ),
        ]

    def _context_scores(self, inp: ScoringInput, out: JudgeOutput) -> list[Score]:
        verdicts = sorted(out.passages or [], key=lambda p: p.number)
        relevant = [p.relevant for p in verdicts]
        n_rel = sum(relevant)
        needed = [p.number for p in verdicts if p.needed]
        if not verdicts:
            precision = make_score(self, inp, "judge_context_precision", None, "n/a", "no passages retrieved")
        else:
            value = context_precision(relevant)
            precision = make_score(
                self,
                inp,
                "judge_context_precision",
                value,
                "precise" if value == 1 else ("imprecise" if n_rel else "irrelevant"),
                f"{n_rel}/{len(verdicts)} passages relevant; needed: {needed or 'none'}",
            )
        statements = out.reference_statements or []
        if not inp.item.answerable or not statements:
            why = "must-refuse item: nothing to recall" if not inp.item.answerable else "no reference statements"
            return [precision, make_score(self, inp, "judge_context_recall", None, "n/a", why)]
        found = [st for st in statements if st.supporting_passages]
        missing = [st for st in statements if not st.supporting_passages]
        value = len(found) / len(statements)
        reason = f"{len(found)}/{len(statements)} gold-answer statements supported by the passages"
        if missing:
            reason += f"; missing: {missing[0].text[:80]!r}"
        label = "complete" if value == 1 else ("partial" if found else "missing")
        return [precision, make_score(self, inp, "judge_context_recall", value, label, reason)]
