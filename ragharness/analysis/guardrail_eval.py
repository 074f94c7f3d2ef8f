"""`ragharness guardrail-eval`: the guardrail chain alone against a labelled suite of texts, the way
`retrieval-eval` isolates retrieval.

A suite is JSONL or YAML (a list, or `{cases: [...]}`); each case:

    {id: jb-1, text: "...", stage: input, expect: block, category: prompt_attack, pii: ["jane@x.com"]}

`stage` is input (a question), context (a retrieved passage) or output (an answer; `question` and `passages` may
accompany it for contextual grounding); `expect` is block, challenge, redact or pass; `pii` lists values that must
not survive the chain (checked, never written). Results per category and stage: accuracy, under-blocking (should
stop, passed), over-blocking (should pass, stopped), PII values left, latency; with every misclassified case. What
the JSON and HTML show of a text is the text after the chain's redaction, never the raw text.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragharness.core.errors import ConfigError
from ragharness.core.progress import NO_PROGRESS, Progress
from ragharness.core.yamlio import load_strict
from ragharness.guardrails.base import GroundingSource, GuardrailSet
from ragharness.runs.summary import percentile

Decision = Literal["block", "challenge", "redact", "pass"]


class SuiteCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    text: str
    stage: Literal["input", "context", "output"] = "input"
    expect: Decision
    category: str = ""
    pii: list[str] = Field(default_factory=list, description="Values that must not survive the chain.")
    question: str = ""
    passages: list[str] = Field(default_factory=list)


class CaseResult(BaseModel):
    id: str
    stage: str
    category: str
    expect: Decision
    got: Decision
    correct: bool
    findings: list[str] = []
    pii_left: int = 0
    latency_ms: float
    shown_text: str = Field(description="The text after the chain's redaction (never the raw text), cut to 600.")


class Tally(BaseModel):
    n: int = 0
    correct: int = 0
    should_stop: int = 0
    under_blocked: int = 0
    should_pass: int = 0
    over_blocked: int = 0
    pii_values: int = 0
    pii_left: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


class GuardrailEvalResult(BaseModel):
    suite: str
    n: int
    overall: Tally
    by_category: dict[str, Tally]
    by_stage: dict[str, Tally]
    latency_p50_ms: float
    latency_p95_ms: float
    cases: list[CaseResult]

    @property
    def misclassified(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.correct]


def load_suite(path: Path) -> list[SuiteCase]:
    if not path.is_file():
        raise ConfigError(
            f"{path}: guardrail suite not found; pass --suite a JSONL or YAML file of cases "
            "(goldsets/support/guardrail-suite.yaml is an example)"
        )
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            raw: Any = [json.loads(line) for line in text.split("\n") if line.strip()]
        else:
            raw = load_strict(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {'JSONL' if path.suffix == '.jsonl' else 'YAML'}: {exc}") from exc
    if isinstance(raw, dict):
        raw = raw.get("cases")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: expected a non-empty list of cases (or a mapping with `cases:`)")
    cases, problems, seen = [], [], set()
    for n, entry in enumerate(raw):
        try:
            case = SuiteCase.model_validate(entry)
        except ValidationError as exc:
            for e in exc.errors():
                loc = ".".join(str(p) for p in e["loc"]) or "(case)"
                who = entry.get("id", f"#{n}") if isinstance(entry, dict) else f"#{n}"
                problems.append(f"{path}: case {who}: {loc}: {e['msg']}")
            continue
        if case.id in seen:
            problems.append(f"{path}: case {case.id}: duplicate id")
        seen.add(case.id)
        cases.append(case)
    if problems:
        raise ConfigError("\n".join(problems))
    return cases


def _decide(outcome: str, redacted: bool) -> Decision:
    if outcome in ("blocked", "refused", "failed"):
        return "block"
    if outcome == "challenged":
        return "challenge"
    return "redact" if redacted else "pass"


def evaluate_guardrails(
    cases: list[SuiteCase], guards: GuardrailSet, suite: str = "", progress: Progress = NO_PROGRESS
) -> GuardrailEvalResult:
    results: list[CaseResult] = []
    for n, case in enumerate(cases, start=1):
        progress("guardrails", n - 1, len(cases))
        chain = {"input": guards.input, "context": guards.context, "output": guards.output}[case.stage]
        source = GroundingSource(question=case.question, passages=tuple(case.passages)) if case.passages else None
        t0 = time.perf_counter()
        res = chain.apply(case.text, where=case.stage, item_id=case.id, source=source)
        ms = (time.perf_counter() - t0) * 1000
        got = _decide(res.outcome, any(a.action == "redacted" for a in res.actions))
        after = res.text if not res.stopped else guards.redact.apply(case.text, where="suite", item_id="").text
        left = sum(1 for v in case.pii if v and v.casefold() in after.casefold())
        findings = [f"{a.guardrail}:{a.action}:{f.entity}" for a in res.actions for f in a.findings]
        results.append(
            CaseResult(
                id=case.id,
                stage=case.stage,
                category=case.category or "(none)",
                expect=case.expect,
                got=got,
                correct=got == case.expect and left == 0,
                findings=findings,
                pii_left=left,
                latency_ms=round(ms, 3),
                shown_text=after[:600],
            )
        )
    progress("guardrails", len(cases), len(cases))
    overall = Tally()
    by_cat: dict[str, Tally] = defaultdict(Tally)
    by_stage: dict[str, Tally] = defaultdict(Tally)
    for r, case in zip(results, cases, strict=True):
        for g in (overall, by_cat[r.category], by_stage[r.stage]):
            g.n += 1
            g.correct += r.correct
            g.pii_values += len(case.pii)
            g.pii_left += r.pii_left
            if r.expect in ("block", "challenge"):
                g.should_stop += 1
                g.under_blocked += r.got not in ("block", "challenge")
            else:
                g.should_pass += 1
                g.over_blocked += r.got in ("block", "challenge")
    lat = [r.latency_ms for r in results]
    return GuardrailEvalResult(
        suite=suite,
        n=len(results),
        overall=overall,
        by_category=dict(sorted(by_cat.items())),
        by_stage=dict(sorted(by_stage.items())),
        latency_p50_ms=round(percentile(lat, 50), 3),
        latency_p95_ms=round(percentile(lat, 95), 3),
        cases=results,
    )
