"""Contract suite for the Guardrail seam: subclasses supply a `guardrail` fixture whose options make it act on the
`sensitive` text (default: an e-mail address, override the fixture for another kind of finding)."""

from __future__ import annotations

import pytest

from ragharness.guardrails.base import Guardrail, Verdict


class GuardrailContract:
    @pytest.fixture
    def sensitive(self) -> str:
        return "jane.doe@example.com"

    def test_is_a_guardrail(self, guardrail: Guardrail) -> None:
        assert isinstance(guardrail, Guardrail) and guardrail.name

    @pytest.mark.parametrize("text", ["", "   ", "Refunds are paid within 10 business days.", "é ✓ 中文"])
    def test_clean_text_passes_unchanged(self, guardrail: Guardrail, text: str) -> None:
        verdict = guardrail.check(text)
        assert isinstance(verdict, Verdict) and verdict.action == "pass" and verdict.text == text

    def test_a_finding_is_data_without_the_raw_value(self, guardrail: Guardrail, sensitive: str) -> None:
        verdict = guardrail.check(f"What is the weather for {sensitive}?")
        assert verdict.action in ("redacted", "blocked", "flagged") and verdict.findings
        assert all(sensitive not in f.model_dump_json() for f in verdict.findings)
        if verdict.action == "redacted":
            assert sensitive not in verdict.text

    def test_is_deterministic(self, guardrail: Guardrail, sensitive: str) -> None:
        text = f"Contact {sensitive} about the weather."
        assert guardrail.check(text) == guardrail.check(text)
