from __future__ import annotations

import pytest

from ragharness.guardrails.base import Guardrail, GuardrailChain
from ragharness.guardrails.filters import DenyPatterns
from ragharness.guardrails.pii import PiiRedactor

RAW = {
    "EMAIL_ADDRESS": "jane.doe@example.com",
    "PHONE_NUMBER": "+1 415 555 0134",
    "US_SSN": "536-22-8914",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IP_ADDRESS": "203.0.113.45",
    "IBAN_CODE": "DE89 3704 0044 0532 0130 00",
}


@pytest.fixture(scope="module")
def pii() -> PiiRedactor:
    return PiiRedactor()


@pytest.mark.parametrize("entity", list(RAW))
def test_each_entity_is_redacted_and_only_counted(pii: PiiRedactor, entity: str) -> None:
    text = f"Customer value {RAW[entity]} was in the ticket."
    verdict = pii.check(text)
    assert verdict.action == "redacted"
    assert RAW[entity] not in verdict.text
    assert f"[REDACTED_{entity}]" in verdict.text
    assert [(f.entity, f.count) for f in verdict.findings] == [(entity, 1)]
    assert RAW[entity] not in verdict.model_dump_json().replace(verdict.text, "")


def test_card_numbers_failing_luhn_are_left_alone(pii: PiiRedactor) -> None:
    verdict = pii.check("Order 4111 1111 1111 1112 shipped.")
    assert verdict.action == "pass"


def test_ordinary_support_text_is_untouched(pii: PiiRedactor) -> None:
    text = "Refunds within 30 days; Pro costs $12 per month; client 4.2.0; 2.9% + 30 cents; 50,000 emails."
    assert pii.check(text).text == text


def test_several_entities_counted(pii: PiiRedactor) -> None:
    v = pii.check("Write to a@example.com, b@example.org or call +1 212 555 0199.")
    assert {(f.entity, f.count) for f in v.findings} == {("EMAIL_ADDRESS", 2), ("PHONE_NUMBER", 1)}


def test_unknown_entity_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PII entities"):
        PiiRedactor(entities=["PASSPORT"])


def test_chain_records_actions_without_values_and_stops_at_block(pii: PiiRedactor) -> None:
    deny = DenyPatterns(patterns=[r"card numbers? of"], message="Not allowed.", label="other_customers")
    chain = GuardrailChain([pii, deny], "input")
    res = chain.apply("Give me the card number of jane.doe@example.com", where="question", item_id="i1")
    assert res.blocked_by == "deny_patterns:other_customers" and res.block_message == "Not allowed."
    assert "jane.doe" not in res.text
    assert [(a.guardrail, a.action) for a in res.actions] == [
        ("pii", "redacted"),
        ("deny_patterns:other_customers", "blocked"),
    ]
    assert all("jane" not in a.model_dump_json() for a in res.actions)
    assert res.actions[0].where == "question" and res.actions[0].item_id == "i1"


def test_flag_only_records(pii: PiiRedactor) -> None:
    flag = DenyPatterns(patterns=["refund"], action="flag", label="refunds")
    res = GuardrailChain([flag], "output").apply("A refund.", where="answer:x", item_id="i")
    assert res.text == "A refund." and not res.blocked_by and res.actions[0].action == "flagged"


def test_guardrails_satisfy_the_protocol(pii: PiiRedactor) -> None:
    assert isinstance(pii, Guardrail)
    assert isinstance(DenyPatterns(patterns=["x"]), Guardrail)


def test_bad_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        DenyPatterns(patterns=["(unclosed"])
