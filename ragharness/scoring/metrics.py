"""The metric catalog: one `MetricSpec` per metric says what it is called, which family it belongs to, its short
label, which direction is better, whether it is a headline figure, and how it becomes the binary outcome that
McNemar's test compares. Report, comparison, trends, summary, nightly gate and CLI all read it; adding a metric
means adding one spec (a plugin scorer calls `register_metric`).

Every spec has a `level`: `answer` (one score per candidate answer, gated per candidate), `item` (one score per
gold item shared by all candidates, e.g. retrieval; kept in `summary.retrieval`) or `run` (one figure per run, e.g.
the guardrail figures). Gates, comparison and reports dispatch by it, never by a name's prefix.

Metric names that are not in the catalog still work everywhere (shown under their own name, higher is better,
success = value >= 1); `assert_*` metrics of per-item assertions share one spec. The scoring engine registers a
neutral spec with the scorer's level for every metric a scorer declares that the catalog lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from ragharness.core.errors import PluginError
from ragharness.core.types import Score

Family = Literal["answer", "judge", "assertion", "retrieval", "ops", "guardrail"]
Level = Literal["answer", "item", "run"]
Direction = Literal["higher", "lower"]
Outcome = Literal["label", "faithful", "full", "none"]


class MetricSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    family: Family
    short: str
    direction: Direction = "higher"
    headline: bool = False
    """Shown in the CLI summary table, the report's summary and the trend dashboard."""
    compared: bool = False
    """Compared by `ragharness compare` and the nightly gate (paired statistics, McNemar)."""
    outcome: Outcome = "full"
    """How a score becomes a success for McNemar: `label` (label in success_labels), `faithful` (value >= the
    scorers' groundedness_faithful_min), `full` (value >= 1), `none` (not a binary outcome)."""
    success_labels: tuple[str, ...] = ()
    description: str = ""
    level: Level = "answer"
    """Filled from the family when not given: retrieval -> item, guardrail -> run, else answer."""
    primary: bool = False
    """A correctness figure: the first primary metric a run has is what its per-intent table, the report's
    "needs attention", the review app's item history and a comparison's changed items follow."""

    @model_validator(mode="before")
    @classmethod
    def _level_from_family(cls, data: object) -> object:
        if isinstance(data, dict) and "level" not in data:
            data = {**data, "level": _FAMILY_LEVEL.get(str(data.get("family")), "answer")}
        return data

    def success(self, score: Score, faithful_min: float) -> bool:
        if self.outcome == "label":
            return score.label in self.success_labels
        if self.outcome == "faithful":
            return (score.value if score.value is not None else 1.0) >= faithful_min
        return (score.value or 0.0) >= 1.0


_FAMILY_LEVEL: dict[str, Level] = {"retrieval": "item", "guardrail": "run"}
_CATALOG: dict[str, MetricSpec] = {}


def register_metric(spec: MetricSpec, *, replace: bool = False) -> None:
    if spec.name in _CATALOG and not replace and _CATALOG[spec.name] != spec:
        raise PluginError(f"metric {spec.name!r} is already in the catalog; pick another name")
    _CATALOG[spec.name] = spec


def unregister_metric(name: str) -> None:
    """Drop a metric from the catalog (a plugin being unloaded, a test cleaning up)."""
    _CATALOG.pop(name, None)


def spec(name: str) -> MetricSpec:
    """The metric's spec; an uncatalogued name gets a neutral one (assertions share the `assert_*` spec)."""
    found = _CATALOG.get(name)
    if found is not None:
        return found
    if name.startswith("assert_"):
        return MetricSpec(name=name, family="assertion", short=name.removeprefix("assert_"), description="assertion")
    return MetricSpec(name=name, family="answer", short=name)


def known(name: str) -> bool:
    return name in _CATALOG


def register_declared(names: Iterable[str], level: Level) -> None:
    """Neutral specs, at the declaring scorer's level, for the metrics a scorer declares that the catalog lacks
    (an answer-level one is shown among the headline figures, as an uncatalogued plugin metric always was)."""
    for name in names:
        if name not in _CATALOG and not name.startswith("assert_"):
            _CATALOG[name] = MetricSpec(name=name, family="answer", short=name, level=level, headline=level == "answer")


def primary(present: Iterable[str]) -> str | None:
    """The run's correctness figure among the metrics present: offline correctness, else the judge's, else a
    plugin's primary metric; None when the run has none."""
    have = set(present)
    return next((s.name for s in _CATALOG.values() if s.primary and s.name in have), None)


def lead_metric(present: Iterable[str]) -> str:
    """`primary(present)`, or the catalog's first primary metric (offline correctness) when the run has none: the
    figure a report, table or comparison leads with."""
    return primary(present) or next(s.name for s in _CATALOG.values() if s.primary)


def catalog() -> list[MetricSpec]:
    return list(_CATALOG.values())


def names(
    *,
    family: Family | None = None,
    headline: bool | None = None,
    compared: bool | None = None,
    level: Level | None = None,
) -> list[str]:
    """Catalogued metric names in catalog order, filtered."""
    return [
        s.name
        for s in _CATALOG.values()
        if (family is None or s.family == family)
        and (level is None or s.level == level)
        and (headline is None or s.headline == headline)
        and (compared is None or s.compared == compared)
    ]


def ordered(present: Iterable[str], *, family: Family | None = None) -> list[str]:
    """The metrics present, catalogued ones first in catalog order, then the rest by name."""
    have = set(present)
    known = [n for n in _CATALOG if n in have and (family is None or _CATALOG[n].family == family)]
    rest = sorted(n for n in have - set(_CATALOG) if family is None or spec(n).family == family)
    return known + rest


def _builtin(*specs: MetricSpec) -> None:
    for s in specs:
        register_metric(s)


_CORRECT = ("correct",)
_builtin(
    MetricSpec(
        name="correctness",
        family="answer",
        short="correct",
        primary=True,
        headline=True,
        compared=True,
        outcome="label",
        success_labels=_CORRECT,
        description="agreement with the gold answer: correct 1, partially correct 0.5, incorrect/off-topic 0",
    ),
    MetricSpec(
        name="groundedness",
        family="answer",
        short="grounded",
        headline=True,
        compared=True,
        outcome="faithful",
        description="share of the answer's claims supported by the locked passages",
    ),
    MetricSpec(
        name="citation_coverage",
        family="answer",
        short="cite cov",
        headline=True,
        compared=True,
        description="share of the answer's claims that carry a citation",
    ),
    MetricSpec(
        name="citation_validity",
        family="answer",
        short="cite valid",
        headline=True,
        description="share of citations that point to a passage that exists",
    ),
    MetricSpec(
        name="citation_precision",
        family="answer",
        short="cite prec",
        headline=True,
        compared=True,
        description="share of citations whose passage supports the cited claim",
    ),
    MetricSpec(
        name="refusal",
        family="answer",
        short="refusal",
        headline=True,
        compared=True,
        description="refused exactly when the gold item must be refused",
    ),
    MetricSpec(
        name="assertions",
        family="assertion",
        short="asserts",
        headline=True,
        compared=True,
        description="share of the item's assertions (contains, regex, must_cite, ...) that hold",
    ),
    MetricSpec(
        name="judge_correctness",
        family="judge",
        short="J correct",
        primary=True,
        headline=True,
        compared=True,
        outcome="label",
        success_labels=_CORRECT,
        description="LLM judge: correct / partially correct / incorrect / off-topic against the gold answer",
    ),
    MetricSpec(
        name="judge_groundedness",
        family="judge",
        short="J grounded",
        headline=True,
        compared=True,
        outcome="faithful",
        description="LLM judge: share of claims supported by their passages",
    ),
    MetricSpec(
        name="judge_citation_coverage",
        family="judge",
        short="J cite cov",
        headline=True,
        description="LLM judge: share of claims that carry a citation",
    ),
    MetricSpec(
        name="judge_citation_precision",
        family="judge",
        short="J cite prec",
        headline=True,
        compared=True,
        description="LLM judge: share of citations pointing to a supporting passage",
    ),
    MetricSpec(
        name="judge_refusal",
        family="judge",
        short="J refusal",
        headline=True,
        description="LLM judge: refused exactly when the item must be refused",
    ),
    MetricSpec(
        name="judge_context_precision",
        family="judge",
        short="J ctx prec",
        headline=True,
        description="LLM judge: rank-weighted share of retrieved passages relevant to the question (no labels)",
    ),
    MetricSpec(
        name="judge_context_recall",
        family="judge",
        short="J ctx recall",
        headline=True,
        description="LLM judge: share of the gold answer's statements the retrieved passages support (no labels)",
    ),
    MetricSpec(
        name="retrieval_hit",
        family="retrieval",
        short="hit",
        headline=True,
        compared=True,
        description="an expected source is among the k passages",
    ),
    MetricSpec(name="retrieval_recall", family="retrieval", short="recall", description="expected sources found"),
    MetricSpec(name="retrieval_mrr", family="retrieval", short="MRR", description="reciprocal rank of the first hit"),
    MetricSpec(name="retrieval_ndcg", family="retrieval", short="nDCG", description="nDCG@k of expected sources"),
    MetricSpec(name="error_rate", family="ops", short="errors", direction="lower", outcome="none"),
    MetricSpec(name="latency_p50_ms", family="ops", short="p50 ms", direction="lower", headline=True, outcome="none"),
    MetricSpec(name="latency_p95_ms", family="ops", short="p95 ms", direction="lower", outcome="none"),
    MetricSpec(
        name="ttft_p50_ms",
        family="ops",
        short="TTFT p50",
        direction="lower",
        outcome="none",
        description="time to first token of streamed calls (no value when no call streamed)",
    ),
    MetricSpec(name="ttft_p95_ms", family="ops", short="TTFT p95", direction="lower", outcome="none"),
    MetricSpec(name="cost_usd", family="ops", short="cost $", direction="lower", headline=True, outcome="none"),
    MetricSpec(name="input_tokens", family="ops", short="in tokens", direction="lower", outcome="none"),
    MetricSpec(
        name="output_tokens", family="ops", short="out tokens", direction="lower", headline=True, outcome="none"
    ),
    MetricSpec(
        name="over_refusal",
        family="ops",
        short="over-refusal",
        direction="lower",
        outcome="none",
        description="share of the answerable items the candidate refused (from the refusal scorer's labels)",
    ),
    MetricSpec(
        name="cost_per_100_items",
        family="ops",
        short="$ / 100 items",
        direction="lower",
        outcome="none",
        description="cost of this run's calls per 100 of them (no value when a call is unpriced or none was made)",
    ),
)

_builtin(
    MetricSpec(
        name="guardrail_pii_leaks",
        family="guardrail",
        short="PII leaks",
        direction="lower",
        outcome="none",
        description="known PII values found in requests or run files (gate with max: 0)",
    ),
    MetricSpec(
        name="guardrail_under_blocking",
        family="guardrail",
        short="under-block",
        direction="lower",
        outcome="none",
        description="share of should-stop items a guardrail let through",
    ),
    MetricSpec(
        name="guardrail_over_blocking",
        family="guardrail",
        short="over-block",
        direction="lower",
        outcome="none",
        description="share of should-pass items a guardrail stopped",
    ),
    MetricSpec(
        name="guardrail_failed_checks",
        family="guardrail",
        short="failed checks",
        direction="lower",
        outcome="none",
        description="guardrail checks that failed (counted as blocks)",
    ),
    MetricSpec(
        name="guardrail_expectations_met",
        family="guardrail",
        short="expectations met",
        outcome="none",
        description="share of expect_guardrail entries met",
    ),
)
OPS_METRICS = tuple(names(family="ops"))
GUARDRAIL_METRICS = tuple(names(family="guardrail"))
"""Run-level guardrail figures a `thresholds:` gate may name."""
