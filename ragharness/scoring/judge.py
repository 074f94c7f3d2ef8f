"""The LLM judge: one call per answer returns claims with verdicts and supporting passages, a correctness label
and a refusal flag, as JSON validated by pydantic. Groundedness, citation coverage and precision, correctness
and refusal are all derived from that one call.

- The judge never learns which candidate wrote the answer: the request carries only question, passages,
  reference and answer (all redacted). Requests are keyed by an opaque index, not the candidate's name.
- Malformed output is re-asked with the validation error (`format_retries`); still malformed, it is a recorded
  judge failure: every judge metric scores 0 with label `judge_error`, counted, never dropped.
- Defence in depth against injected answers: a claim the judge calls supported whose numbers or names are
  absent from its supporting passages is overruled to unsupported, with the reason recorded.
- Calls go through the Runner (retries, rate limits, cache keyed by judge model, prompt version and input hash,
  costs), so the judge gets the same production guarantees as candidates.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ragharness.config import JudgeConfig
from ragharness.generation.prompts import PromptTemplate, render
from ragharness.generation.providers.base import GenerationRequest, request_hash
from ragharness.generation.runner import Runner
from ragharness.scoring.support import SupportJudge
from ragharness.types import ContextPack, Generation, GoldItem, Score

JUDGE_METRICS = (
    "judge_groundedness",
    "judge_citation_coverage",
    "judge_citation_precision",
    "judge_correctness",
    "judge_refusal",
)
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


class JudgeOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims: list[JudgeClaim]
    correctness: JudgeCorrectness
    is_refusal: bool

    @field_validator("claims")
    @classmethod
    def _bounded(cls, v: list[JudgeClaim]) -> list[JudgeClaim]:
        if len(v) > 100:
            raise ValueError("more than 100 claims")
        return v


_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_judge_output(text: str, n_passages: int, answer: str) -> JudgeOutput:
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
    return out


def _fence(text: str, tag: str) -> str:
    """Keep untrusted text from closing the tag it is wrapped in."""
    return text.replace(f"</{tag}>", f"&lt;/{tag}&gt;")


class _Job(BaseModel):
    key: str
    item: GoldItem
    pack: ContextPack
    generation: Generation


class JudgeStage:
    def __init__(self, cfg: JudgeConfig, template: PromptTemplate, runner: Runner, support: SupportJudge) -> None:
        self.cfg = cfg
        self.template = template
        self.runner = runner
        self.support = support
        self.candidate = cfg.to_candidate()
        self.name = f"judge:{cfg.provider}"
        self.version = f"{cfg.prompt.id}@v{cfg.prompt.version}"
        self.calls: list[Generation] = []

    def _request(self, job: _Job, feedback: str = "") -> GenerationRequest:
        prompt = render(
            self.template,
            job.pack.question,
            job.pack.passages,
            reference=job.item.reference_answer if job.item.answerable else "(this question must be refused)",
            answer=_fence(job.generation.text, "answer"),
        )
        user = prompt.user
        if feedback:
            user += (
                f"\n\nYour previous reply could not be used: {feedback}\n"
                "Reply again with only the JSON object described above."
            )
        key = request_hash(self.candidate, prompt.system, user)
        return GenerationRequest(
            item_id=job.key,
            candidate=self.candidate,
            system=prompt.system,
            user=user,
            question=job.pack.question,
            passages=job.pack.passages,
            request_hash=key,
        )

    def _score(self, job: _Job, metric: str, value: float | None, label: str, reason: str, error: str = "") -> Score:
        return Score(
            item_id=job.item.id,
            candidate=job.generation.candidate,
            metric=metric,
            value=value,
            label=label,
            reason=reason,
            scorer=self.name,
            scorer_version=self.version,
            error=error,
        )

    def _failure(self, job: _Job, label: str, error: str, reason: str) -> list[Score]:
        return [self._score(job, m, 0.0, label, reason, error) for m in JUDGE_METRICS]

    async def judge(self, jobs: list[_Job]) -> list[Score]:
        pending = {j.key: j for j in jobs if j.generation.ok}
        scores = [
            s
            for j in jobs
            if not j.generation.ok
            for s in self._failure(
                j,
                "error",
                j.generation.error.type if j.generation.error else "Error",
                "generation failed: nothing to judge",
            )
        ]
        feedback: dict[str, str] = {}
        for round_ in range(self.cfg.format_retries + 1):
            if not pending:
                break
            requests = [self._request(j, feedback.get(k, "")) for k, j in pending.items()]
            gens = await self.runner.run(requests)
            self.calls += gens
            by_key = {g.item_id: g for g in gens}
            still: dict[str, _Job] = {}
            for key, job in pending.items():
                g = by_key.get(key)
                if g is None:  # refused by the budget: recorded as a judge failure, counted
                    scores += self._failure(job, "judge_error", "BudgetExhausted", "judge not called: budget reached")
                    continue
                if not g.ok:
                    err = g.error.type if g.error else "Error"
                    msg = g.error.message if g.error else ""
                    scores += self._failure(job, "judge_error", err, f"judge call failed: {err}: {msg}"[:300])
                    continue
                try:
                    out = parse_judge_output(g.text, len(job.pack.passages), job.generation.text)
                except ValueError as exc:
                    if round_ < self.cfg.format_retries:
                        feedback[key] = str(exc)
                        still[key] = job
                    else:
                        scores += self._failure(
                            job,
                            "judge_error",
                            "JudgeMalformed",
                            f"judge output unusable after {round_ + 1} attempt(s): {exc}",
                        )
                    continue
                scores += self.derive(job, out)
            pending = still
        return scores

    def derive(self, job: _Job, out: JudgeOutput) -> list[Score]:
        item, pack = job.item, job.pack
        by_number = {p.number: p for p in pack.passages}
        overruled: list[str] = []
        claims = []
        for claim in out.claims:
            c = claim
            if c.verdict in ("supported", "partially_supported") and c.supporting_passages:
                check = self.support.support(c.text, [by_number[n] for n in c.supporting_passages])
                if check.missing_facts:
                    overruled.append(f"{c.text[:60]!r}: {', '.join(check.missing_facts[:3])} not in passages")
                    c = c.model_copy(update={"verdict": "unsupported", "supporting_passages": []})
            claims.append(c)
        refusal_ok = out.is_refusal != item.answerable
        scores = [
            self._score(
                job,
                "judge_refusal",
                1.0 if refusal_ok else 0.0,
                {
                    (True, False): "correctly_refused",
                    (False, False): "should_have_refused",
                    (True, True): "wrongly_refused",
                    (False, True): "answered",
                }[(out.is_refusal, item.answerable)],
                "judge: refusal" if out.is_refusal else "judge: not a refusal",
            )
        ]
        value = {"correct": 1.0, "partially_correct": 0.5}.get(out.correctness.label, 0.0)
        scores.append(
            self._score(
                job,
                "judge_correctness",
                value,
                out.correctness.label,
                out.correctness.reason[:300] or "judge gave no reason",
            )
        )
        if not claims:
            why = "refusal: no claims" if out.is_refusal else "no claims"
            return scores + [self._score(job, m, None, "n/a", why) for m in JUDGE_METRICS[:3]]
        points = sum({"supported": 1.0, "partially_supported": 0.5}.get(c.verdict, 0.0) for c in claims)
        g = points / len(claims)
        bad = [c for c in claims if c.verdict in ("unsupported", "contradicted")]
        reason = f"{sum(c.verdict == 'supported' for c in claims)}/{len(claims)} claims supported"
        if bad:
            reason += f"; {bad[0].verdict}: {bad[0].text[:80]!r}"
        if overruled:
            reason += f"; judge overruled: {overruled[0]}"
        label = "grounded" if g == 1 else ("partially_grounded" if g >= 0.5 else "ungrounded")
        scores.append(self._score(job, "judge_groundedness", g, label, reason))
        cited = sum(1 for c in claims if c.cited_passages)
        scores.append(
            self._score(
                job,
                "judge_citation_coverage",
                cited / len(claims),
                "cited" if cited == len(claims) else ("uncited" if not cited else "partially_cited"),
                f"{cited}/{len(claims)} claims carry a citation",
            )
        )
        pairs = [(c, n) for c in claims for n in c.cited_passages]
        if not pairs:
            scores.append(self._score(job, "judge_citation_precision", None, "n/a", "no citations"))
        else:
            good = sum(1 for c, n in pairs if n in c.supporting_passages and c.verdict != "contradicted")
            scores.append(
                self._score(
                    job,
                    "judge_citation_precision",
                    good / len(pairs),
                    "precise" if good == len(pairs) else "imprecise",
                    f"{good}/{len(pairs)} citations point to a supporting passage",
                )
            )
        return scores


def judge_jobs(items: list[GoldItem], packs: dict[str, ContextPack], generations: list[Generation]) -> list[_Job]:
    """One job per generation, keyed by an opaque index so the candidate's name never reaches the judge."""
    by_item = {i.id: i for i in items}
    return [
        _Job(key=f"j{n:06d}", item=by_item[g.item_id], pack=packs[g.item_id], generation=g)
        for n, g in enumerate(generations)
    ]
