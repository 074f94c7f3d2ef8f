"""Human preference votes between two candidates on the same item and the same locked context, and what they say:
B's win rate over the decisive votes with a Wilson 95 % interval, an exact sign test, and the items where the
reviewers' preference and the automatic scores point opposite ways."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field

from ragharness.analysis.labels import parse_records

Choice = Literal["a", "b", "tie", "both_bad"]


class PreferenceVote(BaseModel):
    run_a: str
    candidate_a: str
    run_b: str
    candidate_b: str
    item_id: str
    choice: Choice = Field(description="In terms of A and B, whatever side each was shown on.")
    left: Literal["a", "b"] = Field(description="Which answer was shown on the left (the order is randomised).")
    context_hash: str = Field("", description="The locked context both answers were given (one hash: the same).")
    reviewer: str
    at: str

    @property
    def pair(self) -> tuple[str, str, str, str]:
        return (self.run_a, self.candidate_a, self.run_b, self.candidate_b)


class Disagreement(BaseModel):
    item_id: str
    human: Literal["a", "b"]
    automatic: Literal["a", "b"]
    votes: int
    score_a: float
    score_b: float


class Preference(BaseModel):
    votes: int = Field(description="Latest vote of each reviewer on each item.")
    a: int
    b: int
    tie: int
    both_bad: int
    win_rate_b: float | None = Field(description="B's wins over the decisive votes (A or B).")
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = Field(None, description="Exact two-sided sign test of B's wins against 1/2.")
    metric: str = Field("correctness", description="The automatic score the votes are compared with.")
    disagreements: list[Disagreement] = Field(default_factory=list)


def read_votes(lines: Iterable[str], where: str) -> list[PreferenceVote]:
    return parse_records(lines, PreferenceVote, where)


def latest_votes(votes: Iterable[PreferenceVote], pair: tuple[str, str, str, str]) -> list[PreferenceVote]:
    """The latest vote of each reviewer on each item for this pair (a changed mind is a new record)."""
    latest: dict[tuple[str, str], PreferenceVote] = {}
    for v in votes:
        if v.pair == pair:
            latest[(v.item_id, v.reviewer)] = v
    return list(latest.values())


def preference(
    votes: list[PreferenceVote], scores_a: dict[str, float], scores_b: dict[str, float], metric: str = "correctness"
) -> Preference:
    """`scores_*`: the automatic per-item score of each side (higher is better)."""
    from scipy.stats import binomtest

    counts = Counter(v.choice for v in votes)
    a, b = counts["a"], counts["b"]
    decisive = a + b
    rate = ci_low = ci_high = p = None
    if decisive:
        test = binomtest(b, decisive, 0.5)
        ci = test.proportion_ci(confidence_level=0.95, method="wilson")
        rate, ci_low, ci_high, p = b / decisive, float(ci.low), float(ci.high), float(test.pvalue)
    per_item: dict[str, Counter[str]] = {}
    for v in votes:
        per_item.setdefault(v.item_id, Counter())[v.choice] += 1
    disagreements = []
    for item, c in sorted(per_item.items()):
        if c["a"] == c["b"] or item not in scores_a or item not in scores_b or scores_a[item] == scores_b[item]:
            continue
        human: Literal["a", "b"] = "b" if c["b"] > c["a"] else "a"
        auto: Literal["a", "b"] = "b" if scores_b[item] > scores_a[item] else "a"
        if human != auto:
            disagreements.append(
                Disagreement(
                    item_id=item,
                    human=human,
                    automatic=auto,
                    votes=sum(c.values()),
                    score_a=scores_a[item],
                    score_b=scores_b[item],
                )
            )
    return Preference(
        votes=len(votes),
        a=a,
        b=b,
        tie=counts["tie"],
        both_bad=counts["both_bad"],
        win_rate_b=rate,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p,
        metric=metric,
        disagreements=disagreements,
    )
