"""PII redaction with Presidio, configured offline: pattern, checksum and context recognizers on a blank spaCy
pipeline.

What is detected offline (and what is not) is stated in the README and in every report:

- EMAIL_ADDRESS: any address with a dotted domain, including internal and reserved ones (`jane@acme.internal`,
  `it@printer.local`), plus-addressing, and obfuscated forms ("jane dot doe at acme dot com", "jane [at] acme
  [dot] com"). Presidio's own e-mail recognizer drops domains without a public suffix, which is exactly where
  support tickets' addresses live; it also fetches the suffix list at run time. Here the pattern alone decides.
- PHONE_NUMBER: Presidio's recognizer (Google's libphonenumber) for North American, European and other regions
  listed in PHONE_REGIONS, and any number written in international `+<country>` form.
- US_SSN: with separators (`123-45-6789`, `123 45 6789`); without separators only when a context word ("SSN",
  "social security") is near, because a bare 9-digit number is usually an order or ticket number. Context words
  work because the blank pipeline is given lower-cased lemmas (Presidio's context enhancer compares lemmas).
- CREDIT_CARD (Luhn-checked, with spaces or dashes), IP_ADDRESS, IBAN_CODE (checksum; with or without spaces).
- SECRET: credentials by the token shapes of detect-secrets' scanners (AWS access key ids, GitHub, GitLab,
  OpenAI, Slack, Stripe, JWT, private keys, URL userinfo, ...), `key = value` assignments of secret-named keys
  (detect-secrets' keyword scanner, e.g. `aws_secret_access_key=...`) and bearer tokens.

Not detected offline: person names and street addresses (they need an NER model, which cannot be installed
without a download). With `ner_model` naming an official spaCy English pipeline the user installed
(`en_core_web_lg`, ...), Presidio's spaCy recognizer adds PERSON and LOCATION; a model that is not installed is a
configuration error, never a silent fallback to the blank pipeline.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from ragharness.core.credentials import token_patterns
from ragharness.core.errors import ConfigError
from ragharness.core.normalise import VERSION as NORMALISE_VERSION
from ragharness.core.normalise import normalise
from ragharness.core.types import Finding
from ragharness.guardrails.base import Verdict
from ragharness.guardrails.leaks import LeakWatch

DEFAULT_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IP_ADDRESS", "IBAN_CODE", "SECRET")
NER_ENTITIES = ("PERSON", "LOCATION")
"""Found only with an installed spaCy NER pipeline (`ner_model`)."""
PHONE_REGIONS = ("US", "CA", "GB", "IE", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "SE", "IN", "AU", "BR")
REDACTOR_VERSION = "3"
"""Bumped whenever what is detected changes: part of the ingest signature, so stored text is redacted again."""

_SEP = r"(?:\s*(?:\(dot\)|\[dot\]|\{dot\}|<dot>)\s*|\s+dot\s+)"
_AT = r"(?:\s*(?:\(at\)|\[at\]|\{at\}|<at>)\s*|\s+at\s+)"
_TLDS = r"(?:com|org|net|edu|gov|io|co|uk|de|fr|eu|es|it|nl|info|biz|dev|app|ai|us|ca|local|internal|corp|example)"
_LOCAL = rf"[a-z0-9_%+-]+(?:(?:{_SEP}|\.)[a-z0-9_%+-]+)*"
_DOMAIN = rf"[a-z0-9-]+(?:(?:{_SEP}|\.)[a-z0-9-]+)*"
OBFUSCATED_EMAIL = rf"(?i)\b{_LOCAL}{_AT}{_DOMAIN}(?:{_SEP}[a-z]{{2,24}}|\.{_TLDS})\b(?!{_AT})"
"""`jane dot doe at acme dot ch`, `jane [at] acme [dot] com`, `jane(at)acme.io`, `jane at acme.io`: an obfuscated
dot takes any top-level domain; a literal one only the common ones (`in at 9.30` is no address)."""
SPACED_EMAIL = (
    r"(?i)\b[a-z0-9._%+-]+\s+@\s*[a-z0-9-]+(?:\.[a-z0-9-]+)+\b|\b[a-z0-9._%+-]+@\s+[a-z0-9-]+(?:\.[a-z0-9-]+)+\b"
)
_NOT_A_MAILBOX = frozenset(
    [
        "available",
        "found",
        "located",
        "online",
        "here",
        "there",
        "us",
        "them",
        "me",
        "site",
        "page",
        "docs",
        "help",
        "look",
        "visit",
        "go",
        "log",
        "sign",
        "live",
        "hosted",
        "published",
        "posted",
        "listed",
        "shown",
        "read",
        "see",
        "apply",
        "register",
        "order",
        "buy",
        "download",
        "support",
        "portal",
        "website",
        "open",
        "is",
        "are",
        "was",
        "be",
        "in",
        "on",
        "up",
        "out",
        "back",
        "off",
        "it",
        "this",
        "that",
        "arrive",
        "arrives",
        "arrived",
        "starts",
        "start",
        "ends",
        "end",
        "due",
        "billed",
        "charged",
        "renews",
        "expires",
    ]
)
CITATION_MARKER = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
DOTTED_CARD = re.compile(r"\b\d{4}\.\d{4,6}\.\d{4,5}(?:\.\d{1,4})?\b")
LOOSE_IBAN = re.compile(r"(?i)\b[a-z]{2}\d{2}(?:[ -]?[a-z0-9]{4}){2,7}(?:[ -]?[a-z0-9]{1,3})?\b")
"""Groups of four after the country and check digits, so a match never runs on into the next word."""
SEGMENT = 100_000
"""Characters analysed at a time: spaCy refuses texts over 1,000,000 characters (E088); long texts go in
overlapping segments."""
_OVERLAP = 400
BEARER = r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}"


def _secret_recognizer() -> Any:
    from detect_secrets.plugins.keyword import KeywordDetector
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class SecretRecognizer(EntityRecognizer):
        """Credentials: detect-secrets' token shapes anywhere, its keyword scanner line by line."""

        def __init__(self) -> None:
            super().__init__(supported_entities=["SECRET"], name="SecretRecognizer", supported_language="en")
            self._keyword = KeywordDetector()

        def load(self) -> None:
            return None

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            import re

            found: list[Any] = []
            for pattern in (*token_patterns(), re.compile(BEARER)):
                for m in pattern.finditer(text):
                    found.append(RecognizerResult("SECRET", m.start(), m.end(), 0.9))
            offset = 0
            for line in text.splitlines(keepends=True):
                # detect-secrets picks its assignment syntax by file type; YAML's covers `key: v` and `key = v`.
                for secret in self._keyword.analyze_line(filename="text.yaml", line=line, line_number=1):
                    # In prose the scanner may run on to the end of the line; a secret has no spaces.
                    value = (secret.secret_value or "").split()[0] if (secret.secret_value or "").strip() else ""
                    at = line.find(value) if value else -1
                    if at >= 0:
                        found.append(RecognizerResult("SECRET", offset + at, offset + at + len(value), 0.8))
                offset += len(line)
            return found

    return SecretRecognizer()


def iban_checksum_ok(text: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN written with any case, spaces or dashes."""
    code = re.sub(r"[\s-]", "", text).upper()
    if not (15 <= len(code) <= 34) or not code[:2].isalpha() or not code[2:4].isdigit() or not code.isalnum():
        return False
    digits = "".join(str(int(ch, 36)) for ch in code[4:] + code[:4])
    return int(digits) % 97 == 1


def detection_copy(text: str) -> str:
    """The normalised text as the detectors read it, of the same length (spans map back one to one): citation
    markers blanked (`+1 415 555 0188 [1]` is a phone number followed by a citation, not a longer number) and
    dotted card numbers written with dashes (Presidio's card pattern knows spaces and dashes only)."""
    if "[" in text:
        text = CITATION_MARKER.sub(lambda m: " " * len(m.group(0)), text)
    if "." in text:
        text = DOTTED_CARD.sub(lambda m: m.group(0).replace(".", "-"), text)
    return text


def check_ner_model(name: str) -> None:
    """An official spaCy pipeline must be installed to be named; nothing is downloaded."""
    import spacy.util

    if not spacy.util.is_package(name):
        raise ConfigError(
            f"ner_model {name!r}: the spaCy pipeline is not installed. Install spaCy's official release "
            f"(https://github.com/explosion/spacy-models/releases, package {name}) with pip, or remove ner_model "
            "and the NAME/ADDRESS entities"
        )


@functools.lru_cache(maxsize=4)
def _analyzer(entities: tuple[str, ...], ner_model: str | None = None) -> Any:
    import spacy
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )
    from spacy.language import Language

    class ObfuscatedEmailRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            local = re.split(r"(?i)\s*(?:\(at\)|\[at\]|\{at\}|<at>|\s+at\s+|@)", pattern_text, maxsplit=1)[0]
            return False if local.strip().lower() in _NOT_A_MAILBOX else None

    class LooseIbanRecognizer(PatternRecognizer):
        """IBANs Presidio's recognizer misses: lower case, dashes; kept only when the mod-97 checksum holds."""

        def __init__(self) -> None:
            super().__init__(
                supported_entity="IBAN_CODE",
                name="LooseIbanRecognizer",
                patterns=[Pattern("iban, any case", LOOSE_IBAN.pattern, 0.5)],
            )

        def validate_result(self, pattern_text: str) -> bool | None:
            return iban_checksum_ok(pattern_text)

    class AnyDomainEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool | None:
            return None  # the pattern's score stands: internal and reserved domains are real addresses too

    if not Language.has_factory("ragharness_lower_lemma"):

        @Language.component("ragharness_lower_lemma")
        def _lower_lemma(doc: Any) -> Any:
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    class BlankSpacyEngine(SpacyNlpEngine):
        """Tokenisation and lower-cased lemmas only: enough for patterns and Presidio's context words."""

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank"}])
            nlp = spacy.blank("en")
            nlp.add_pipe("ragharness_lower_lemma")
            self.nlp = {"en": nlp}  # type: ignore[assignment]  # the base declares None until load()

        def load(self) -> None:
            return None

    makers: dict[str, Callable[[], list[Any]]] = {
        "EMAIL_ADDRESS": lambda: [
            AnyDomainEmailRecognizer(),
            ObfuscatedEmailRecognizer(
                supported_entity="EMAIL_ADDRESS",
                name="ObfuscatedEmailRecognizer",
                patterns=[Pattern("obfuscated e-mail", OBFUSCATED_EMAIL, 0.6), Pattern("spaced @", SPACED_EMAIL, 0.6)],
            ),
        ],
        "PHONE_NUMBER": lambda: [PhoneRecognizer(supported_regions=PHONE_REGIONS)],
        "US_SSN": lambda: [UsSsnRecognizer()],
        "CREDIT_CARD": lambda: [CreditCardRecognizer()],
        "IP_ADDRESS": lambda: [IpRecognizer()],
        "IBAN_CODE": lambda: [IbanRecognizer(), LooseIbanRecognizer()],
        "SECRET": lambda: [_secret_recognizer()],
    }
    registry = RecognizerRegistry(supported_languages=["en"])
    for entity in entities:
        if entity in NER_ENTITIES:
            continue
        for recognizer in makers[entity]():
            registry.add_recognizer(recognizer)
    if ner_model is not None:
        from presidio_analyzer.predefined_recognizers import SpacyRecognizer

        ner = [e for e in entities if e in NER_ENTITIES]
        registry.add_recognizer(SpacyRecognizer(supported_entities=ner or list(NER_ENTITIES)))
        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": ner_model}])
        engine.load()
        return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])
    return AnalyzerEngine(nlp_engine=BlankSpacyEngine(), registry=registry, supported_languages=["en"])


class PiiRedactor:
    """Replaces each detected entity with `[REDACTED_<TYPE>]`; reports entity types and counts only."""

    name = "pii"

    def __init__(
        self,
        entities: list[str] | None = None,
        score_threshold: float = 0.3,
        ner_model: str | None = None,
        *,
        watch: LeakWatch | None = None,
    ) -> None:
        chosen = tuple(entities or DEFAULT_ENTITIES)
        unknown = sorted(set(chosen) - set(DEFAULT_ENTITIES) - set(NER_ENTITIES))
        if unknown:
            raise ValueError(f"unknown PII entities {unknown}; supported: {', '.join(DEFAULT_ENTITIES)}")
        needs = sorted(set(chosen) & set(NER_ENTITIES))
        if needs and ner_model is None:
            raise ValueError(f"{needs} need ner_model: an installed official spaCy pipeline such as en_core_web_lg")
        if ner_model is not None:
            check_ner_model(ner_model)
        self.entities = chosen
        self.score_threshold = score_threshold
        self.ner_model = ner_model
        self.watch = watch
        """Told every raw value found (in memory only), so a run can prove none reaches a model or a file."""
        self._cache: dict[str, Verdict] = {}

    @property
    def signature(self) -> str:
        """What decides the redacted text: stored with ingested chunks so a change re-redacts them."""
        ner = f":{self.ner_model}" if self.ner_model else ""
        return f"pii{REDACTOR_VERSION}n{NORMALISE_VERSION}:{','.join(self.entities)}:{self.score_threshold}{ner}"

    def warm(self) -> None:
        """Load the analyzer now (seconds of CPU), not on the first text: a run warms its chains before the first
        model call, so the loading never stalls the calls being timed."""
        _analyzer(self.entities, self.ner_model)

    def check(self, text: str) -> Verdict:
        """Normalise (`ragharness.core.normalise`), then redact; the verdict's text is the normalised, redacted text.
        Verdicts are cached by text (the same passage recurs across items and runs)."""
        cached = self._cache.get(text)
        if cached is None:
            cached = self._check(text)
            if len(self._cache) < 200_000:  # bounded: a 10k-item run must not grow without limit
                self._cache[text] = cached
        return cached

    def redact(self, text: str) -> str:
        return self.check(text).text

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Detected entities of an already normalised text as (start, end, type), overlaps resolved (highest
        score, then longest span). Texts longer than SEGMENT are analysed in overlapping segments."""
        if not text.strip():
            return []
        seen = detection_copy(text)
        analyzer = _analyzer(self.entities, self.ner_model)
        results: list[tuple[float, int, int, str]] = []
        start = 0
        while start < len(seen):
            end = min(len(seen), start + SEGMENT)
            if end < len(seen):  # cut at a space so a value is never split (the overlap catches the rest)
                cut = seen.rfind(" ", start + SEGMENT // 2, end)
                end = cut if cut > 0 else end
            for r in analyzer.analyze(
                text=seen[start:end], language="en", entities=list(self.entities), score_threshold=self.score_threshold
            ):
                results.append((r.score, start + r.start, start + r.end, r.entity_type))
            if end >= len(seen):
                break
            start = max(start + 1, end - _OVERLAP)
        ranked = sorted(set(results), key=lambda r: (-r[0], -(r[2] - r[1]), r[1]))
        kept: list[tuple[float, int, int, str]] = []
        for r in ranked:
            if all(r[2] <= k[1] or r[1] >= k[2] for k in kept):
                kept.append(r)
        return sorted((a, b, kind) for _, a, b, kind in kept)

    def _check(self, raw: str) -> Verdict:
        text = normalise(raw)
        found = self.spans(text)
        if not found:
            return Verdict(text=text)
        if self.watch is not None:  # what a person would call personal data is watched (see guardrails.leaks)
            self.watch.add_found((kind, text[a:b]) for a, b, kind in found)
        out = text
        for a, b, kind in reversed(found):
            out = out[:a] + f"[REDACTED_{kind}]" + out[b:]
        counts = Counter(kind for _, _, kind in found)
        return Verdict(
            text=out,
            action="redacted",
            findings=tuple(Finding(entity=e, count=n) for e, n in sorted(counts.items())),
        )
