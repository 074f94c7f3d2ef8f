"""Small text utilities shared by providers and scorers: sentences, content words, numbers, citations, refusals."""

from __future__ import annotations

import re

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n+")
_CITATION = re.compile(r"\[(\d{1,3})\]")
_CITATION_GROUP = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})+)\]")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)*%?")
_NAME = re.compile(r"\b[A-Z][a-zA-Z0-9]+(?:[-\s][A-Z][a-zA-Z0-9]+)*\b")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "may",
        "must",
        "might",
        "per",
        "via",
        "yes",
        "one",
        "use",
        "used",
        "using",
    ]
)

_REFUSAL = re.compile(
    r"(\bI\s+(?:can(?:no|')t|cannot|am\s+not\s+able\s+to|'m\s+not\s+able\s+to|am\s+unable\s+to|'m\s+unable\s+to|"
    r"do\s+not\s+have|don't\s+have|won't\s+be\s+able)\b"
    r"|\b(?:not|no)\s+(?:enough\s+)?information\s+(?:in|about|on|to)\b"
    r"|\bthe\s+(?:provided\s+)?(?:documents|passages|context|sources)\s+do(?:es)?\s+not\s+(?:contain|cover|mention|say)"
    r"|\bunable\s+to\s+(?:answer|help|find)\b|\bcan(?:no|')t\s+(?:help|assist|answer)\b"
    r"|\boutside\s+(?:the\s+)?scope\b)",
    re.IGNORECASE,
)


_TRAILING_CITES = re.compile(r"([.!?])((?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+)")
_ONLY_CITES = re.compile(r"^(?:\[\d{1,3}(?:\s*,\s*\d{1,3})*\]\s*)+[.!?]?$")


def sentences(text: str) -> list[str]:
    """Split prose into sentences; Markdown list items and lines count as sentences.

    Citations written after the full stop ("... 30 days. [2]") belong to the sentence before them.
    """
    text = _TRAILING_CITES.sub(lambda m: " " + " ".join(m.group(2).split()) + m.group(1), text.strip())
    out: list[str] = []
    for raw in _SENT_SPLIT.split(text):
        part = raw.strip(" -*\t")
        if not part:
            continue
        if _ONLY_CITES.match(part) and out:
            out[-1] = f"{out[-1]} {part}"
            continue
        out.append(part)
    return [p for p in out if len(_WORD.findall(strip_citations(p).lower())) >= 2]


def parse_citations(text: str) -> list[int]:
    """Passage numbers cited as [n] or [n, m], in order of first use."""
    seen: dict[int, None] = {}
    for group in _CITATION_GROUP.findall(text):
        for n in group.split(","):
            seen.setdefault(int(n), None)
    for n in _CITATION.findall(text):
        seen.setdefault(int(n), None)
    ordered = sorted(seen, key=lambda n: _first_pos(text, n))
    return ordered


def _first_pos(text: str, n: int) -> int:
    m = re.search(rf"\[(?:\d+\s*,\s*)*{n}(?:\s*,\s*\d+)*\]", text)
    return m.start() if m else len(text)


def strip_citations(text: str) -> str:
    return _CITATION.sub("", _CITATION_GROUP.sub("", text)).strip()


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def content_words(text: str) -> list[str]:
    return [w for w in words(strip_citations(text)) if w not in STOPWORDS and not w.isdigit()]


def stem(word: str) -> str:
    """A deliberately tiny suffix stripper: enough to match 'refunds'/'refund', 'billed'/'billing'."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def numbers(text: str) -> set[str]:
    """Numbers and amounts, normalised ('1,200' -> '1200', '$30' -> '30')."""
    out = set()
    for raw in _NUMBER.findall(strip_citations(text)):
        norm = raw.strip("$€£%").replace(",", "")
        if norm.endswith(".0") and norm.count(".") == 1:
            norm = norm[:-2]
        if norm:
            out.add(norm)
    return out


def names(text: str) -> set[str]:
    """Capitalised terms not at a sentence start: product names, people, places (lower-cased)."""
    out = set()
    for s in sentences(text) or [text]:
        for m in _NAME.finditer(strip_citations(s)):
            if m.start() == 0:
                continue
            term = m.group(0).lower()
            if term not in STOPWORDS:
                out.add(term)
    return out


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))
