from __future__ import annotations

import pytest

from ragharness.core.text import parse_citations
from ragharness.core.types import ContextPack, ErrorInfo, Generation, GoldItem, Passage, SearchMode
from ragharness.retrieval.embedders import HashingEmbedder
from ragharness.retrieval.metrics import retrieval_metrics
from ragharness.scoring.base import Scorer, ScorerContext, ScoringInput, run_scorer
from ragharness.scoring.offline import (
    CitationScorer,
    CorrectnessScorer,
    GroundednessScorer,
    RefusalScorer,
)
from ragharness.scoring.retrieval import RetrievalScorer

P1 = "Annual plans can be refunded in full within 30 days of purchase."
P2 = "Refunds are paid to the original payment method within 10 business days."
P3 = "Single sign-on requires the Enterprise plan and a verified domain."


def pack(*texts: str, k: int = 6) -> ContextPack:
    passages = tuple(
        Passage(number=i, chunk_id=f"doc{i}#0", doc_id=f"doc{i}", text=t, title=f"Doc {i}")
        for i, t in enumerate(texts, start=1)
    )
    return ContextPack(
        item_id="q1",
        question="How long do I have to get a refund?",
        mode=SearchMode.hybrid,
        k=k,
        passages=passages,
    ).with_hash()


def item(answerable: bool = True, expected: list[str] | None = None) -> GoldItem:
    return GoldItem(
        id="q1",
        question="How long do I have to get a refund?",
        intent="billing",
        reference_answer="Annual plans can be refunded within 30 days of purchase." if answerable else "",
        expected_sources=expected if expected is not None else (["doc1"] if answerable else []),
        answerable=answerable,
    )


def gen(text: str, **kw: object) -> Generation:
    return Generation(item_id="q1", candidate="c", text=text, citations=tuple(parse_citations(text)), **kw)


CTX = ScorerContext(embedder=HashingEmbedder(64))


def scores(scorer: Scorer, g: Generation | None, it: GoldItem | None = None, p: ContextPack | None = None) -> dict:
    out = run_scorer(scorer, ScoringInput(item=it or item(), pack=p or pack(P1, P2, P3), generation=g))
    assert all(s.scorer == scorer.name and s.scorer_version == scorer.version and s.reason for s in out)
    return {s.metric: s for s in out}


def test_citation_scores_for_a_well_cited_answer() -> None:
    s = scores(
        CitationScorer(CTX),
        gen("Annual plans can be refunded within 30 days [1]. Money arrives within 10 business days [2]."),
    )
    assert s["citation_coverage"].value == 1 and s["citation_coverage"].label == "cited"
    assert s["citation_validity"].value == 1
    assert s["citation_precision"].value == 1


def test_citation_scores_catch_uncited_invalid_and_misattributed() -> None:
    s = scores(
        CitationScorer(CTX),
        gen(
            "Annual plans can be refunded within 30 days [3]. Money arrives within 10 "
            "business days. SSO needs Enterprise [7]."
        ),
    )
    assert s["citation_coverage"].value == pytest.approx(1 / 3)
    assert s["citation_coverage"].label == "partially_cited" and "uncited:" in s["citation_coverage"].reason
    assert s["citation_validity"].value == pytest.approx(0.5) and "[7] do not exist" in s["citation_validity"].reason
    assert s["citation_precision"].value == 0 and "[3] does not support" in s["citation_precision"].reason


def test_citations_not_applicable_to_refusals() -> None:
    s = scores(CitationScorer(CTX), gen("I can't answer that from the available documentation."))
    assert {m: (v.value, v.label) for m, v in s.items()} == {m: (None, "n/a") for m in CitationScorer.metrics}


def test_groundedness_catches_hallucinated_numbers_and_names() -> None:
    g = scores(GroundednessScorer(CTX), gen("Annual plans can be refunded within 45 days of purchase [1]."))
    assert g["groundedness"].value == 0 and "not in passages: 45" in g["groundedness"].reason
    g = scores(
        GroundednessScorer(CTX),
        gen(
            "Annual plans can be refunded within 30 days of purchase [1]. "
            "The same applies in Canada for Acme Starter [1]."
        ),
    )
    assert g["groundedness"].value == 0.5 and g["groundedness"].label == "partially_grounded"
    assert "canada" in g["groundedness"].reason


def test_groundedness_uses_all_passages_when_uncited_and_cited_ones_when_cited() -> None:
    assert scores(GroundednessScorer(CTX), gen("Refunds are paid within 10 business days."))["groundedness"].value == 1
    wrong_cite = gen("Refunds are paid to the original payment method within 10 business days [1].")
    assert scores(GroundednessScorer(CTX), wrong_cite)["groundedness"].value == 0


def test_groundedness_empty_and_refusal() -> None:
    assert scores(GroundednessScorer(CTX), gen(""))["groundedness"].value == 0
    assert scores(GroundednessScorer(CTX), gen("I cannot answer that."))["groundedness"].label == "n/a"


@pytest.mark.parametrize(
    ("answer", "label", "value"),
    [
        ("Annual plans can be refunded in full within 30 days of purchase [1].", "correct", 1.0),
        ("You can get an annual plan refunded within 45 days of purchase [1].", "incorrect", 0.0),
        ("Annual plans can be refunded, see the policy [1].", "partially_correct", 0.5),
        ("The desktop client crashes on macOS after update.", "off_topic", 0.0),
        ("I can't answer that from the available documentation.", "incorrect", 0.0),
    ],
)
def test_correctness_labels(answer: str, label: str, value: float) -> None:
    s = scores(CorrectnessScorer(CTX), gen(answer))["correctness"]
    assert (s.label, s.value) == (label, value), s.reason


def test_correctness_and_refusal_on_must_refuse_items() -> None:
    refused, answered = gen("I can't help with that."), gen("It will be sunny tomorrow.")
    unanswerable = item(answerable=False)
    assert scores(CorrectnessScorer(CTX), refused, unanswerable)["correctness"].label == "correct"
    assert scores(CorrectnessScorer(CTX), answered, unanswerable)["correctness"].label == "incorrect"
    assert scores(RefusalScorer(CTX), refused, unanswerable)["refusal"].label == "correctly_refused"
    assert scores(RefusalScorer(CTX), answered, unanswerable)["refusal"].label == "should_have_refused"
    assert scores(RefusalScorer(CTX), refused)["refusal"].label == "wrongly_refused"
    assert scores(RefusalScorer(CTX), answered)["refusal"].label == "answered"
    blocked = gen("Not allowed.", blocked_by="deny_patterns:x")
    assert (
        scores(RefusalScorer(CTX), blocked, unanswerable)["refusal"].reason == "must-refuse item was blocked by "
        "deny_patterns:x"
    )


def test_failed_generation_scores_zero_with_error_on_every_metric() -> None:
    failed = Generation(
        item_id="q1",
        candidate="c",
        error=ErrorInfo(type="ThrottlingException", message="slow down", retryable=True),
        attempts=5,
    )
    for scorer in (CitationScorer(CTX), GroundednessScorer(CTX), CorrectnessScorer(CTX), RefusalScorer(CTX)):
        for s in scores(scorer, failed).values():
            assert (s.value, s.label, s.error) == (0.0, "error", "ThrottlingException")
            assert "after 5 attempt(s)" in s.reason


def test_a_crashing_scorer_is_recorded_not_raised() -> None:
    class Broken(RefusalScorer):
        def score(self, inp: ScoringInput) -> list:  # type: ignore[override]
            raise ZeroDivisionError("boom")

    (s,) = run_scorer(Broken(CTX), ScoringInput(item=item(), pack=pack(P1), generation=gen("x y")))
    assert (s.value, s.label, s.error) == (0.0, "scorer_error", "ZeroDivisionError")


def test_retrieval_scorer_and_metrics() -> None:
    p = pack(P3, P2, P1)
    s = scores(RetrievalScorer(CTX), None, item(expected=["doc2", "doc3"]), p)
    assert s["retrieval_hit"].value == 1
    assert s["retrieval_recall"].value == 1
    assert s["retrieval_mrr"].value == pytest.approx(1 / 2)
    ideal = 1 + 1 / 1.5849625007211562
    assert s["retrieval_ndcg"].value == pytest.approx((1 / 1.5849625007211562 + 1 / 2) / ideal)
    none = scores(RetrievalScorer(CTX), None, item(answerable=False), p)
    assert all(v.label == "n/a" for v in none.values())


def test_retrieval_metrics_count_each_expected_source_once() -> None:
    ranked = [("a#0", "a"), ("a#1", "a"), ("b#0", "b"), ("c#2", "c")]
    m = retrieval_metrics(ranked, ["a", "c#2", "z"], k=3)
    assert m.matched == ["a"] and m.recall == pytest.approx(1 / 3) and m.mrr == 1
    m = retrieval_metrics(ranked, ["a", "c#2", "z"], k=4)
    assert m.matched == ["a", "c#2"]
    with pytest.raises(ValueError):
        retrieval_metrics(ranked, [], k=3)
