"""Aggregation: per candidate, per intent, per metric; counts of errors and n/a; gates from thresholds.

Means are over applicable scores; a failed generation or judge is a 0 in that mean (never dropped), and 'n/a'
(the metric does not apply, e.g. citation coverage of a refusal) is counted separately and shown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from sys import intern
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from ragharness.core.types import Candidate, Generation, GoldItem, GuardrailAction, GuardrailTiming, Score
from ragharness.runs.guardrail_summary import GuardrailSummary, summarise_guardrails
from ragharness.runs.latest import current_scores
from ragharness.scoring import metrics as catalog
from ragharness.scoring.metrics import OPS_METRICS
from ragharness.scoring.settings import Threshold


class MetricSummary(BaseModel):
    mean: float | None = Field(description="Mean over applicable scores (errors count as 0); None if none apply.")
    n: int
    n_applicable: int
    n_errors: int
    labels: dict[str, int] = {}
    ci_low: float | None = Field(None, description="95% bootstrap interval of the mean over items (percentile).")
    ci_high: float | None = None


BOOTSTRAP_RESAMPLES = 1000


def mean_ci(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean, resampling items (seeded: the same run gives the same
    interval). Resampled in blocks, so a 20,000-item metric needs a few MB, not hundreds."""
    import numpy as np

    xs = np.asarray(values, dtype=float)
    n = len(xs)
    if n == 0:
        return (0.0, 0.0)
    if n == 1 or float(xs.min()) == float(xs.max()):
        return (float(xs[0]), float(xs[0]))
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, 2_000_000 // n))
    means: list[float] = []
    while len(means) < resamples:
        take = min(block, resamples - len(means))
        means.extend(xs[rng.integers(0, n, size=(take, n))].mean(axis=1).tolist())
    low, high = np.percentile(means, [2.5, 97.5])
    return (float(low), float(high))


class CandidateSummary(BaseModel):
    candidate: str
    provider: str
    prompt: str
    generations: int
    errors: int
    retries: int = Field(description="Extra attempts beyond the first, summed over calls.")
    cached: int = Field(
        0,
        description="Answers served from the response cache: no call in this run, so they are left out of this "
        "run's tokens, cost and latency (each still carries the latency and cost of the call that produced it).",
    )
    unpriced: int = Field(0, description="Calls whose model has no price: their cost is unknown, not zero.")
    cost_by_intent: dict[str, float] = {}
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_p50_ms: float
    latency_p95_ms: float
    ttft_p50_ms: float | None = Field(None, description="Time to first token of this run's streamed calls.")
    ttft_p95_ms: float | None = None
    metrics: dict[str, MetricSummary]
    by_intent: dict[str, dict[str, MetricSummary]]

    @property
    def calls(self) -> int:
        """Answers this run called a model for (not served from the cache)."""
        return self.generations - self.cached

    @property
    def over_refusal(self) -> float | None:
        """Answerable items this candidate refused, of the answerable ones (None without a refusal scorer)."""
        refusal = self.metrics.get("refusal")
        if refusal is None:
            return None
        wrong = refusal.labels.get("wrongly_refused", 0)
        answerable = wrong + refusal.labels.get("answered", 0)
        return wrong / answerable if answerable else None

    @property
    def cost_per_100_items(self) -> float | None:
        """Cost per 100 calls of this run; unknown where a call is unpriced, none where nothing was called."""
        return self.cost_usd / self.calls * 100 if self.calls and not self.unpriced else None

    def value(self, metric: str) -> float | None:
        """A metric or ops figure; None where it is unknown, never a made-up zero: latency when no call was
        measured in this run (all cached or failed), cost when some call is unpriced."""
        if metric == "error_rate":
            return self.errors / self.generations if self.generations else 0.0
        if metric in OPS_METRICS:
            if metric in ("latency_p50_ms", "latency_p95_ms") and self.calls - self.errors <= 0:
                return None
            if metric == "cost_usd" and self.unpriced:
                return None
            raw = getattr(self, metric)
            return None if raw is None else float(raw)
        m = self.metrics.get(metric)
        return m.mean if m else None


class GateResult(BaseModel):
    metric: str
    candidate: str
    value: float | None
    min: float | None = None
    max: float | None = None
    passed: bool
    message: str


class ModelUse(BaseModel):
    """The calls one scorer model made in a run (cached answers are not calls of this run)."""

    calls: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def _model_use(calls: Iterable[Generation]) -> dict[str, ModelUse]:
    use: dict[str, ModelUse] = {}
    for c in calls:
        if c.cached:
            continue
        u = use.setdefault(c.candidate, ModelUse())
        u.calls += 1
        u.cost_usd = round(u.cost_usd + c.cost_usd, 6)
        u.unpriced += c.unpriced
        u.input_tokens += c.usage.input_tokens
        u.output_tokens += c.usage.output_tokens
    return dict(sorted(use.items()))


class RunSummary(BaseModel):
    run_id: str
    name: str
    n_items: int
    candidates: list[CandidateSummary]
    retrieval: dict[str, MetricSummary]
    retrieval_by_intent: dict[str, dict[str, MetricSummary]]
    guardrails: dict[str, int] = Field(description="Guardrail action counts by 'stage:guardrail:entity'.")
    guardrail: GuardrailSummary = Field(
        default_factory=GuardrailSummary,
        description="Actions per guardrail, latency, cost, under/over-blocking against the gold set, PII leaks.",
    )
    gates: list[GateResult] = []
    complete: bool = True
    pending: int = Field(0, description="(item, candidate) pairs with no generation yet.")
    budget_exhausted: bool = False
    cost_usd: float = Field(0.0, description="Candidates' calls, USD.")
    judge_cost_usd: float = Field(
        0.0, description="Calls scorers made to models (the LLM judge's and any plugin's), USD."
    )
    judge_unpriced: int = Field(0, description="Scorer model calls whose model has no price (their cost is unknown).")
    scorer_models: dict[str, ModelUse] = Field(
        default_factory=dict,
        description="Per model a scorer added to the pool (`judge`, a plugin's own name): calls made in this run, "
        "their cost and how many are unpriced. judge_cost_usd is their sum.",
    )

    @property
    def unpriced(self) -> int:
        """Candidates' calls whose cost is unknown."""
        return sum(c.unpriced for c in self.candidates)

    status: Literal["pass", "fail", "incomplete"] = "pass"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]); 0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class _Slim(NamedTuple):
    """What a summary needs of a Score: a 10,000-item run has ~200,000 of them, so only this is kept."""

    item_id: str
    candidate: str
    metric: str
    value: float | None
    label: str
    error: str


def summarise_metric(scores: Iterable[Score | _Slim]) -> MetricSummary:
    items = list(scores)
    values = [s.value for s in items if s.value is not None]
    low, high = mean_ci(values) if values else (None, None)
    return MetricSummary(
        mean=sum(values) / len(values) if values else None,
        n=len(items),
        n_applicable=len(values),
        n_errors=sum(1 for s in items if s.error),
        labels=dict(Counter(s.label for s in items if s.label)),
        ci_low=low,
        ci_high=high,
    )


def _group(scores: Iterable[_Slim]) -> dict[str, MetricSummary]:
    by_metric: dict[str, list[_Slim]] = defaultdict(list)
    for s in scores:
        by_metric[s.metric].append(s)
    return {m: summarise_metric(v) for m, v in sorted(by_metric.items())}


def summarise(
    run_id: str,
    name: str,
    items: Sequence[GoldItem],
    candidates: Sequence[Candidate],
    generations: Sequence[Generation],
    scores: Iterable[Score],
    actions: Iterable[GuardrailAction],
    thresholds: Sequence[Threshold],
    *,
    judge_calls: Iterable[Generation] = (),
    budget_exhausted: bool = False,
    timings: Iterable[GuardrailTiming] = (),
    leaks: dict[str, int] | None = None,
    known_pii_values: int = 0,
) -> RunSummary:
    """Aggregates of a run, every field computed here. `scores` may be a stream (read from scores.jsonl): only a
    slim copy of each is kept. `judge_calls` are every call scorers made to models (their cost is shown apart)."""
    intent = {i.id: i.intent for i in items}
    models = _model_use(judge_calls)
    slim = list(
        current_scores(  # re-scoring appends; only the records that count are kept, slim
            scores, lambda s: _Slim(s.item_id, intern(s.candidate), intern(s.metric), s.value, intern(s.label), s.error)
        ).values()
    )
    cands: list[CandidateSummary] = []
    for cand in candidates:
        gens = [g for g in generations if g.candidate == cand.name]
        called = [g for g in gens if not g.cached]  # the ops figures are this run's calls only
        mine = [s for s in slim if s.candidate == cand.name]
        by_intent: dict[str, list[_Slim]] = defaultdict(list)
        for s in mine:
            by_intent[intent.get(s.item_id, "?")].append(s)
        lat = [g.latency_ms for g in called if g.ok]
        ttft = [g.ttft_ms for g in called if g.ok and g.ttft_ms is not None]
        cands.append(
            CandidateSummary(
                candidate=cand.name,
                provider=cand.provider,
                prompt=f"{cand.prompt.id}@v{cand.prompt.version}",
                generations=len(gens),
                errors=sum(1 for g in gens if not g.ok),
                retries=sum(max(0, g.attempts - 1) for g in gens),
                cached=sum(1 for g in gens if g.cached),
                unpriced=sum(1 for g in called if g.unpriced),
                cost_by_intent=_cost_by_intent(called, intent),
                input_tokens=sum(g.usage.input_tokens for g in called),
                output_tokens=sum(g.usage.output_tokens for g in called),
                cost_usd=round(sum(g.cost_usd for g in called), 6),
                latency_p50_ms=percentile(lat, 50),
                latency_p95_ms=percentile(lat, 95),
                ttft_p50_ms=percentile(ttft, 50) if ttft else None,
                ttft_p95_ms=percentile(ttft, 95) if ttft else None,
                metrics=_group(mine),
                by_intent={k: _group(v) for k, v in sorted(by_intent.items())},
            )
        )
    item_scores = [s for s in slim if not s.candidate]
    ret_by_intent: dict[str, list[_Slim]] = defaultdict(list)
    for s in item_scores:
        ret_by_intent[intent.get(s.item_id, "?")].append(s)
    acts = list(actions)
    guard = Counter(f"{a.stage}:{a.guardrail}:{f.entity}" for a in acts for f in a.findings for _ in range(f.count))
    expected = len(items) * len(candidates)
    pending = expected - len(generations)
    summary = RunSummary(
        run_id=run_id,
        name=name,
        n_items=len(items),
        candidates=cands,
        retrieval=_group(item_scores),
        retrieval_by_intent={k: _group(v) for k, v in sorted(ret_by_intent.items())},
        guardrails=dict(guard),
        guardrail=summarise_guardrails(items, generations, acts, timings, leaks, known_pii_values),
        complete=pending == 0 and all(g.ok for g in generations),
        pending=pending,
        budget_exhausted=budget_exhausted,
        cost_usd=round(sum(g.cost_usd for g in generations if not g.cached), 6),
        judge_cost_usd=round(sum(u.cost_usd for u in models.values()), 6),
        judge_unpriced=sum(u.unpriced for u in models.values()),
        scorer_models=models,
    )
    summary.gates = evaluate_gates(summary, thresholds)
    if not all(g.passed for g in summary.gates):
        summary.status = "fail"
    elif not summary.complete:
        summary.status = "incomplete"
    return summary


def _cost_by_intent(gens: Sequence[Generation], intent: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for g in gens:
        out[intent.get(g.item_id, "?")] += g.cost_usd
    return {k: round(v, 6) for k, v in sorted(out.items())}


def evaluate_gates(summary: RunSummary, thresholds: Sequence[Threshold]) -> list[GateResult]:
    """One result per gate and candidate, dispatched by the metric's level in the catalog: item-level metrics are
    read from the item scores, run-level ones from the run, the rest per candidate. A metric the catalog lacks
    (a plugin whose spec this process never registered) is item-level when the run holds item scores of it."""
    results = []
    for t in thresholds:
        targets = [c for c in summary.candidates if not t.candidates or c.candidate in t.candidates]
        level = catalog.spec(t.metric).level
        if not catalog.known(t.metric) and t.metric in summary.retrieval:
            level = "item"
        if level == "item":
            value = summary.retrieval.get(t.metric, MetricSummary(mean=None, n=0, n_applicable=0, n_errors=0)).mean
            who = "(retrieval)" if catalog.spec(t.metric).family == "retrieval" else "(items)"
            results.append(_gate(t, who, value))
            continue
        if level == "run":
            results.append(_gate(t, "(guardrails)", summary.guardrail.value(t.metric)))
            continue
        for c in targets:
            results.append(_gate(t, c.candidate, c.value(t.metric)))
    return results


def _gate(t: Threshold, who: str, value: float | None) -> GateResult:
    ok = value is not None and (t.min is None or value >= t.min) and (t.max is None or value <= t.max)
    bound = " and ".join(
        x for x in (f">= {t.min}" if t.min is not None else "", f"<= {t.max}" if t.max is not None else "") if x
    )
    shown = "no value" if value is None else f"{value:.3f}"
    return GateResult(
        metric=t.metric,
        candidate=who,
        value=value,
        min=t.min,
        max=t.max,
        passed=ok,
        message=f"{t.metric} for {who}: {shown} (needs {bound})",
    )
