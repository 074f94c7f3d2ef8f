"""Per-item assertions: deterministic, offline checks a gold item states about every answer, in the spirit of
promptfoo's asserts. Each assertion is its own Score record (metric `assert_<name or type>`, value 1 or 0, with
the reason), and `assertions` is the share of an answer's assertions that hold (what summaries, gates and
comparisons use). An item without assertions gets `assertions` n/a.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from jsonschema import ValidationError, validators

from ragharness.core.text import strip_citations
from ragharness.core.types import (
    Assertion,
    ContainsAssertion,
    EqualsNumberAssertion,
    JsonSchemaAssertion,
    MaxWordsAssertion,
    MustCiteAssertion,
    NotContainsAssertion,
    RegexAssertion,
    Score,
)
from ragharness.scoring.base import ScorerContext, ScoringInput, make_score

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def check(a: Assertion, inp: ScoringInput) -> tuple[bool, str]:
    """Whether the assertion holds for the answer, and why."""
    gen = inp.generation
    text = gen.text if gen else ""
    if isinstance(a, ContainsAssertion | NotContainsAssertion):
        hay, needle = (text, a.value) if a.case_sensitive else (text.lower(), a.value.lower())
        found = needle in hay
        if isinstance(a, ContainsAssertion):
            return found, f"contains {a.value!r}" if found else f"does not contain {a.value!r}"
        return not found, f"contains {a.value!r}, which it must not" if found else f"does not contain {a.value!r}"
    if isinstance(a, RegexAssertion):
        m = re.search(a.pattern, text, re.IGNORECASE if a.ignore_case else 0)
        return m is not None, f"/{a.pattern}/ matches {_clip(m.group(0))!r}" if m else f"/{a.pattern}/ does not match"
    if isinstance(a, MustCiteAssertion):
        numbers = [p.number for p in inp.pack.passages if a.source in (p.doc_id, p.chunk_id)]
        if not numbers:
            return False, f"{a.source} is not among the retrieved passages, so it cannot be cited"
        cited = set(gen.citations if gen else ())
        hit = sorted(cited & set(numbers))
        if hit:
            return True, f"cites {a.source} as [{hit[0]}]"
        return False, f"does not cite {a.source} (passage {', '.join(f'[{n}]' for n in numbers)})"
    if isinstance(a, MaxWordsAssertion):
        words = len(strip_citations(text).split())
        return words <= a.value, f"{words} words (at most {a.value})"
    if isinstance(a, JsonSchemaAssertion):
        m = _FENCE.match(text)
        try:
            data = json.loads(m.group(1) if m else text)
        except json.JSONDecodeError as exc:
            return False, f"not JSON: {exc.msg} at position {exc.pos}"
        try:
            validators.validator_for(a.json_schema)(a.json_schema).validate(data)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            return False, f"JSON does not match the schema at {where}: {_clip(exc.message, 120)}"
        return True, "JSON matches the schema"
    if isinstance(a, EqualsNumberAssertion):
        stated = [float(n.replace(",", "")) for n in _NUMBER.findall(strip_citations(text))]
        close = [n for n in stated if abs(n - a.value) <= a.tolerance]
        want = f"{a.value:g}" + (f" ± {a.tolerance:g}" if a.tolerance else "")
        if close:
            return True, f"states {close[0]:g} ({want})"
        shown = ", ".join(f"{n:g}" for n in stated[:5]) or "no number"
        return False, f"expected {want}; the answer states {shown}"
    raise TypeError(f"unknown assertion {a!r}")  # the union above is exhaustive


class AssertionScorer:
    name = "assertions"
    version = "1"
    level: Literal["answer"] = "answer"
    detail_prefix = "assert_"
    """Besides `assertions`, one record per assertion under `assert_<name or type>`."""

    def __init__(self, ctx: ScorerContext) -> None:
        self.metrics: tuple[str, ...] = ("assertions",)

    def score(self, inp: ScoringInput) -> list[Score]:
        asserts = inp.item.assertions
        if not asserts:
            return [make_score(self, inp, "assertions", None, "n/a", "the item states no assertions")]
        out: list[Score] = []
        for a in asserts:
            ok, why = check(a, inp)
            out.append(make_score(self, inp, a.metric, 1.0 if ok else 0.0, "pass" if ok else "fail", why))
        failed = [s for s in out if s.label == "fail"]
        reason = f"{len(out) - len(failed)}/{len(out)} assertions hold"
        if failed:
            reason += "; " + "; ".join(f"{s.metric}: {s.reason}" for s in failed[:3])
        value = (len(out) - len(failed)) / len(out)
        return [make_score(self, inp, "assertions", value, "fail" if failed else "pass", reason), *out]
