"""PII redaction with Presidio, configured offline: regex/checksum recognizers on a blank spaCy pipeline.

Presidio's default engine needs a downloadable spaCy model (not installable offline) and its e-mail
recognizer fetches the public-suffix list at run time; both are replaced here by offline equivalents. Person
names are not detected (that needs an NER model): say so in reports rather than pretend.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

from ragharness.guardrails.base import Verdict
from ragharness.types import Finding

DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE")


@functools.lru_cache(maxsize=1)
def _offline_tld_extract() -> Any:
    import tldextract

    # Bundled snapshot of the public-suffix list; no HTTP fetch, no cache writes.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.lru_cache(maxsize=4)
def _analyzer(entities: tuple[str, ...]) -> Any:
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(_offline_tld_extract()(pattern_text).fqdn)

    class BlankSpacyEngine(SpacyNlpEngine):
        """Tokenisation only: regex recognizers need no trained pipeline."""

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank"}])
            self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]  # base declares None until load()

        def load(self) -> None:
            return None

    registry = RecognizerRegistry(supported_languages=["en"])
    makers = {
        "EMAIL_ADDRESS": OfflineEmailRecognizer,
        "PHONE_NUMBER": PhoneRecognizer,
        "US_SSN": UsSsnRecognizer,
        "CREDIT_CARD": CreditCardRecognizer,
        "IP_ADDRESS": IpRecognizer,
        "IBAN_CODE": IbanRecognizer,
    }
    for entity in entities:
        registry.add_recognizer(makers[entity]())
    return AnalyzerEngine(nlp_engine=BlankSpacyEngine(), registry=registry, supported_languages=["en"])


class PiiRedactor:
    """Replaces each detected entity with `[REDACTED_<TYPE>]`; reports entity types and counts only."""

    name = "pii"

    def __init__(self, entities: list[str] | None = None, score_threshold: float = 0.3) -> None:
        chosen = tuple(entities or DEFAULT_ENTITIES)
        unknown = sorted(set(chosen) - set(DEFAULT_ENTITIES))
        if unknown:
            raise ValueError(f"unknown PII entities {unknown}; supported: {', '.join(DEFAULT_ENTITIES)}")
        self.entities = chosen
        self.score_threshold = score_threshold
        self._cache: dict[str, Verdict] = {}

    def check(self, text: str) -> Verdict:
        """Redact; verdicts are cached by text (the same passage recurs across items and runs)."""
        cached = self._cache.get(text)
        if cached is None:
            cached = self._cache[text] = self._check(text)
        return cached

    def _check(self, text: str) -> Verdict:
        if not text.strip():
            return Verdict(text=text)
        results = _analyzer(self.entities).analyze(
            text=text, language="en", entities=list(self.entities), score_threshold=self.score_threshold
        )
        if not results:
            return Verdict(text=text)
        # Resolve overlaps: keep the highest-scoring, then longest, span.
        spans = sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start))
        kept: list[Any] = []
        for r in spans:
            if all(r.end <= k.start or r.start >= k.end for k in kept):
                kept.append(r)
        out = text
        for r in sorted(kept, key=lambda r: r.start, reverse=True):
            out = out[: r.start] + f"[REDACTED_{r.entity_type}]" + out[r.end :]
        counts = Counter(r.entity_type for r in kept)
        return Verdict(
            text=out,
            action="redacted",
            findings=tuple(Finding(entity=e, count=n) for e, n in sorted(counts.items())),
        )
