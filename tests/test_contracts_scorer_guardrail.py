"""Contract suites for the Scorer and Guardrail seams, run by every registered implementation."""

from __future__ import annotations

import pytest

from ragharness.guardrails.base import Guardrail, Verdict
from ragharness.registry import GUARDRAILS, SCORERS
from ragharness.retrieval.embedders import HashingEmbedder
from ragharness.scoring.base import Scorer, ScorerContext, ScoringInput, run_scorer
from ragharness.types import ContextPack, ErrorInfo, Generation, GoldItem, Passage, SearchMode

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
    ),
    "must_refuse": GoldItem(id="q", question="What is the weather?", intent="oos", answerable=False),
}
ANSWERS = {
    "grounded": "Refunds are paid within 10 business days [1].",
    "hallucinated": "Refunds are paid within 45 days [2].",
    "refusal": "I can't answer that from the available documentation.",
    "empty": "",
}
SCORER_KINDS = SCORERS.kinds()


@pytest.fixture(params=SCORER_KINDS)
def scorer(request: pytest.FixtureRequest) -> Scorer:
    return SCORERS.create(request.param, ScorerContext(embedder=HashingEmbedder()))


class TestScorerContract:
    def test_declares_itself(self, scorer: Scorer) -> None:
        assert isinstance(scorer, Scorer)
        assert scorer.name and scorer.version and scorer.level in ("answer", "item") and scorer.metrics

    @pytest.mark.parametrize("item_kind", list(ITEMS))
    @pytest.mark.parametrize("answer_kind", list(ANSWERS))
    def test_every_metric_is_a_record_with_a_reason(self, scorer: Scorer, item_kind: str, answer_kind: str) -> None:
        gen = Generation(item_id="q", candidate="c", text=ANSWERS[answer_kind])
        inp = ScoringInput(item=ITEMS[item_kind], pack=PACK, generation=gen if scorer.level == "answer" else None)
        scores = run_scorer(scorer, inp)
        assert sorted(s.metric for s in scores) == sorted(scorer.metrics)
        for s in scores:
            assert s.scorer == scorer.name and s.scorer_version == scorer.version and s.reason
            assert s.label != "scorer_error", s.reason
            assert (s.value is None and s.label == "n/a") or (s.value is not None and 0.0 <= s.value <= 1.0)

    def test_a_failed_generation_counts_as_zero(self, scorer: Scorer) -> None:
        if scorer.level != "answer":
            pytest.skip("item-level scorers do not look at generations")
        gen = Generation(item_id="q", candidate="c", error=ErrorInfo(type="HTTP500", message="x", retryable=True))
        for s in run_scorer(scorer, ScoringInput(item=ITEMS["answerable"], pack=PACK, generation=gen)):
            assert (s.value, s.label, s.error) == (0.0, "error", "HTTP500")


GUARDRAIL_OPTIONS = {"pii": {}, "deny_patterns": {"patterns": ["weather"]}}


@pytest.fixture(params=GUARDRAILS.kinds())
def guardrail(request: pytest.FixtureRequest) -> Guardrail:
    return GUARDRAILS.create(request.param, GUARDRAIL_OPTIONS[request.param])


class TestGuardrailContract:
    def test_is_a_guardrail(self, guardrail: Guardrail) -> None:
        assert isinstance(guardrail, Guardrail) and guardrail.name

    @pytest.mark.parametrize("text", ["", "   ", "Refunds are paid within 10 business days.", "é ✓ 中文"])
    def test_clean_text_passes_unchanged(self, guardrail: Guardrail, text: str) -> None:
        verdict = guardrail.check(text)
        assert isinstance(verdict, Verdict) and verdict.action == "pass" and verdict.text == text

    def test_a_finding_is_data_without_the_raw_value(self, guardrail: Guardrail) -> None:
        raw = "jane.doe@example.com"
        verdict = guardrail.check(f"What is the weather for {raw}?")
        assert verdict.action in ("redacted", "blocked", "flagged") and verdict.findings
        assert all(raw not in f.model_dump_json() for f in verdict.findings)
