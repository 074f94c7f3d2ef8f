"""Contract suite for the Scorer seam: subclasses supply a `scorer` fixture. Sync and async scorers both pass
through `arun_scorer`, the path a run and a re-score use."""

from __future__ import annotations

import pytest

from ragharness.core.types import (
    ContainsAssertion,
    ContextPack,
    EqualsNumberAssertion,
    ErrorInfo,
    Generation,
    GoldItem,
    MaxWordsAssertion,
    MustCiteAssertion,
    NotContainsAssertion,
    Passage,
    RegexAssertion,
    SearchMode,
)
from ragharness.scoring.base import Scorer, ScoringInput, run_scorer

PACK = ContextPack(
    item_id="q",
    question="How long do refunds take?",
    mode=SearchMode.hybrid,
    k=2,
    passages=(
        Passage(number=1, chunk_id="r#0", doc_id="r", text="Refunds are paid within 10 business days."),
        Passage(number=2, chunk_id="s#0", doc_id="s", text="SSO needs the Enterprise plan."),
    ),
)
ITEMS = {
    "answerable": GoldItem(
        id="q",
        question="How long do refunds take?",
        intent="billing",
        reference_answer="Within 10 business days.",
        expected_sources=["r"],
        assertions=[
            ContainsAssertion(type="contains", value="business days"),
            NotContainsAssertion(type="not_contains", value="45 days"),
            RegexAssertion(type="regex", pattern=r"\b10\b"),
            MustCiteAssertion(type="must_cite", source="r"),
            MaxWordsAssertion(type="max_words", value=40),
            EqualsNumberAssertion(type="equals_number", value=10),
        ],
    ),
    "must_refuse": GoldItem(id="q", question="What is the weather?", intent="oos", answerable=False),
}
ANSWERS = {
    "grounded": "Refunds are paid within 10 business days [1].",
    "hallucinated": "Refunds are paid within 45 days [2].",
    "refusal": "I can't answer that from the available documentation.",
    "empty": "",
}


class ScorerContract:
    def test_declares_itself(self, scorer: Scorer) -> None:
        assert isinstance(scorer, Scorer)
        assert scorer.name and scorer.version and scorer.level in ("answer", "item") and scorer.metrics

    @pytest.mark.parametrize("item_kind", list(ITEMS))
    @pytest.mark.parametrize("answer_kind", list(ANSWERS))
    def test_every_metric_is_a_record_with_a_reason(self, scorer: Scorer, item_kind: str, answer_kind: str) -> None:
        gen = Generation(item_id="q", candidate="c", text=ANSWERS[answer_kind])
        inp = ScoringInput(item=ITEMS[item_kind], pack=PACK, generation=gen if scorer.level == "answer" else None)
        scores = run_scorer(scorer, inp)
        produced = {s.metric for s in scores}
        assert set(scorer.metrics) <= produced, "every declared metric gets a record (n/a when it does not apply)"
        extra = produced - set(scorer.metrics)
        prefix = getattr(scorer, "detail_prefix", None)
        assert not extra or (prefix and all(m.startswith(prefix) for m in extra)), extra
        assert len(scores) == len({(s.metric, s.item_id, s.candidate) for s in scores}), "one record per metric"
        for s in scores:
            assert s.scorer == scorer.name and s.scorer_version == scorer.version and s.reason
            assert s.label not in ("scorer_error", "judge_error"), s.reason
            assert (s.value is None and s.label == "n/a") or (s.value is not None and 0.0 <= s.value <= 1.0)

    def test_a_failed_generation_counts_as_zero(self, scorer: Scorer) -> None:
        gen = Generation(item_id="q", candidate="c", error=ErrorInfo(type="HTTP500", message="x", retryable=True))
        scores = run_scorer(scorer, ScoringInput(item=ITEMS["answerable"], pack=PACK, generation=gen))
        if scorer.level == "item":  # an item-level scorer judges the item, whatever became of the answer
            alone = run_scorer(scorer, ScoringInput(item=ITEMS["answerable"], pack=PACK))
            assert [(s.metric, s.value, s.label) for s in scores] == [(s.metric, s.value, s.label) for s in alone]
            return
        assert {s.metric for s in scores} == set(scorer.metrics)
        for s in scores:
            assert (s.value, s.label, s.error) == (0.0, "error", "HTTP500")

    def test_scores_name_the_item_and_candidate(self, scorer: Scorer) -> None:
        gen = Generation(item_id="q", candidate="cand-x", text=ANSWERS["grounded"])
        inp = ScoringInput(item=ITEMS["answerable"], pack=PACK, generation=gen if scorer.level == "answer" else None)
        for s in run_scorer(scorer, inp):
            assert s.item_id == "q" and s.candidate == ("cand-x" if scorer.level == "answer" else "")
