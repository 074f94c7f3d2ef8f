"""Offline, deterministic scorers (no LLM): citations, groundedness, correctness, refusal.

Every score carries a reason a person can check. Refusals are not claims: groundedness and citation metrics
are 'n/a' for them (reported as such, with counts); refusal and correctness scorers judge them instead.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from ragharness.core.text import (
    content_words,
    is_refusal,
    numbers,
    parse_citations,
    sentences,
    stem,
    strip_citations,
)
from ragharness.core.types import Generation, Passage, Score
from ragharness.scoring.base import ScorerContext, ScoringInput, correctness_value, groundedness_label, make_score
from ragharness.scoring.support import SupportJudge
from ragharness.scoring.thresholds import with_options


def _claims(gen: Generation) -> list[str]:
    """Answer sentences that make claims (refusal sentences excluded)."""
    return [s for s in sentences(gen.text) if not is_refusal(s)]


def _answer(inp: ScoringInput) -> Generation:
    if inp.generation is None:
        raise ValueError("answer scorer called without a generation")
    return inp.generation


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class CitationScorer:
    """citation_coverage: share of claim sentences citing a valid passage; citation_validity: share of cited
    numbers that exist in the locked context; citation_precision: share of (sentence, cited passage) pairs where
    that passage supports the sentence."""

    name = "citation"
    version = "1"
    level: Literal["answer"] = "answer"
    metrics = ("citation_coverage", "citation_validity", "citation_precision")

    def __init__(self, ctx: ScorerContext) -> None:
        self.judge = SupportJudge(ctx.embedder, with_options(ctx.thresholds, ctx.options))

    def score(self, inp: ScoringInput) -> list[Score]:
        gen = _answer(inp)
        claims = _claims(gen)
        n_passages = len(inp.pack.passages)
        by_number = {p.number: p for p in inp.pack.passages}
        if not claims:
            why = "refusal or empty answer: no claims to cite"
            return [make_score(self, inp, m, None, "n/a", why) for m in self.metrics]
        cited = [[n for n in parse_citations(s) if 1 <= n <= n_passages] for s in claims]
        covered = sum(1 for c in cited if c)
        coverage = covered / len(claims)
        label = "cited" if coverage == 1 else ("uncited" if covered == 0 else "partially_cited")
        uncited = [c for c, ok in zip(claims, cited, strict=True) if not ok]
        reason = f"{covered}/{len(claims)} sentences cite a passage"
        if uncited:
            reason += f"; uncited: {_short(uncited[0])!r}"
        out = [make_score(self, inp, "citation_coverage", coverage, label, reason)]
        all_cited = list(gen.citations)
        if not all_cited:
            out.append(make_score(self, inp, "citation_validity", None, "n/a", "the answer cites nothing"))
            out.append(make_score(self, inp, "citation_precision", None, "n/a", "the answer cites nothing"))
            return out
        invalid = [n for n in all_cited if not 1 <= n <= n_passages]
        validity = 1 - len(invalid) / len(all_cited)
        out.append(
            make_score(
                self,
                inp,
                "citation_validity",
                validity,
                "valid" if not invalid else "invalid",
                f"cites {all_cited}; context has passages 1-{n_passages}"
                + (f"; {invalid} do not exist" if invalid else ""),
            )
        )
        pairs = [(s, by_number[n]) for s, ns in zip(claims, cited, strict=True) for n in ns]
        if not pairs:
            out.append(make_score(self, inp, "citation_precision", 0.0, "invalid", "no valid citation to check"))
            return out
        bad = [(s, p.number) for s, p in pairs if not self.judge.support(s, [p]).supported]
        precision = 1 - len(bad) / len(pairs)
        reason = f"{len(pairs) - len(bad)}/{len(pairs)} citations support their sentence"
        if bad:
            reason += f"; [{bad[0][1]}] does not support {_short(bad[0][0])!r}"
        label = "precise" if not bad else ("imprecise" if precision < 0.5 else "partially_precise")
        out.append(make_score(self, inp, "citation_precision", precision, label, reason))
        return out


class GroundednessScorer:
    """Share of claim sentences supported by their cited passages (all retrieved passages if uncited)."""

    name = "groundedness"
    version = "1"
    level: Literal["answer"] = "answer"
    metrics = ("groundedness",)

    def __init__(self, ctx: ScorerContext) -> None:
        self.judge = SupportJudge(ctx.embedder, with_options(ctx.thresholds, ctx.options))

    def score(self, inp: ScoringInput) -> list[Score]:
        gen = _answer(inp)
        claims = _claims(gen)
        if not gen.text.strip():
            return [make_score(self, inp, "groundedness", 0.0, "ungrounded", "empty answer")]
        if not claims:
            return [make_score(self, inp, "groundedness", None, "n/a", "refusal: no claims to ground")]
        by_number = {p.number: p for p in inp.pack.passages}
        unsupported: list[str] = []
        for sent in claims:
            cited: list[Passage] = [by_number[n] for n in parse_citations(sent) if n in by_number]
            support = self.judge.support(sent, cited or list(inp.pack.passages))
            if not support.supported:
                unsupported.append(f"{_short(sent, 70)!r} ({support.why()})")
        value = 1 - len(unsupported) / len(claims)
        label = groundedness_label(value)
        reason = f"{len(claims) - len(unsupported)}/{len(claims)} sentences supported"
        if unsupported:
            reason += "; unsupported: " + "; ".join(unsupported[:2])
        return [make_score(self, inp, "groundedness", value, label, reason)]


class RefusalScorer:
    """Unanswerable items must be refused; answerable ones must not be."""

    name = "refusal"
    version = "1"
    level: Literal["answer"] = "answer"
    metrics = ("refusal",)

    def __init__(self, ctx: ScorerContext) -> None:
        return None

    def score(self, inp: ScoringInput) -> list[Score]:
        gen = _answer(inp)
        refused = bool(gen.blocked_by) or is_refusal(gen.text) or not gen.text.strip()
        how = f"blocked by {gen.blocked_by}" if gen.blocked_by else ("refused" if refused else "answered")
        if inp.item.answerable:
            if refused:
                return [make_score(self, inp, "refusal", 0.0, "wrongly_refused", f"answerable item was {how}")]
            return [make_score(self, inp, "refusal", 1.0, "answered", "answerable item was answered")]
        if refused:
            return [make_score(self, inp, "refusal", 1.0, "correctly_refused", f"must-refuse item was {how}")]
        return [make_score(self, inp, "refusal", 0.0, "should_have_refused", "must-refuse item was answered")]


_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = _PUNCT.sub(" ", strip_citations(text).lower().replace("’", "'"))
    return " ".join(_ARTICLES.sub(" ", text).split())


class _Match(BaseModel):
    reference: str
    contained: str
    recall: float
    missing: list[str]
    others: list[str]

    @property
    def replaced(self) -> bool:
        """A reference number is missing and the answer states other numbers: a wrong amount or date."""
        return bool(self.missing) and bool(self.others)


def _match(answer: str, accepted: list[str]) -> _Match:
    """Best-matching accepted answer: the first contained as a phrase, else the one with most words present."""
    answer_norm = f" {normalise_answer(answer)} "
    ans_words = {stem(w) for w in content_words(answer)}
    best, best_recall, contained = accepted[0], -1.0, ""
    for a in accepted:
        norm = normalise_answer(a)
        if norm and f" {norm} " in answer_norm and not contained:
            contained = a
        words = {stem(w) for w in content_words(a)}
        recall = len(words & ans_words) / len(words) if words else 0.0
        if recall > best_recall:
            best, best_recall = a, recall
    reference = contained or best
    ref_nums, ans_nums = numbers(reference), numbers(answer)
    return _Match(
        reference=reference,
        contained=contained,
        recall=max(best_recall, 0.0),
        missing=sorted(ref_nums - ans_nums),
        others=sorted(ans_nums - ref_nums),
    )


def _same_term(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 5 and long_.startswith(short)


def _terms(text: str) -> set[str]:
    return {stem(w) for w in content_words(text)} | numbers(text)


def distinctive_recall(accepted: str, answer: str, question: str) -> tuple[float, int, int]:
    """(share, n, found) of the accepted answer's distinctive terms found in the answer, when it has at most 4;
    (0, 0, 0) for longer answers. Terms the question already contains say nothing and are left out."""
    terms = _terms(accepted)
    asked = _terms(question)
    distinct = {t for t in terms if not any(_same_term(t, q) for q in asked)} or terms
    if not distinct or len(distinct) > 4:
        return 0.0, 0, 0
    said = _terms(answer)
    found = sum(1 for t in distinct if any(_same_term(t, a) for a in said))
    return found / len(distinct), len(distinct), found


class CorrectnessScorer:
    """correct / partially_correct / incorrect / off_topic against the reference (and alternative) answers.

    Evidence used, in order:
      1. containment: the normalised answer contains an accepted answer (reference or alternative) as a
         phrase -> correct (unless a number contradicts it);
      2. numbers: a number of the reference is missing while the answer states other numbers -> incorrect
         (a wrong amount, limit or date); missing without a replacement -> at most partially correct;
      2b. short accepted answers (<= 4 distinctive terms: stemmed content words and numbers not already in the
         question): at least `distinctive_recall_min` of them in the answer (a stem that is a prefix of another
         of >= 5 letters matches, e.g. 'cephalopod'/'Cephalopoda') -> correct. Long LLM answers that name
         'Carl Linnaeus' for 'Swedish botanist Carl Linnaeus' are right;
      3. short references (<= 4 content words): all their stemmed content words present -> correct, at least
         half -> partially correct;
      4. longer references: content-word recall >= `correct_recall_min` or MiniLM similarity >=
         `correct_similarity_min` -> correct; recall >= `partial_recall_min` or similarity >=
         `partial_similarity_min` -> partially correct;
      5. similarity to both reference and question < 0.25 with (almost) no shared words -> off_topic;
         else incorrect.
    Unanswerable items: a refusal is correct, an answer incorrect. Values: 1 / 0.5 / 0 / 0.
    Thresholds: ragharness/scoring/calibration.yaml (overridable under `scoring:`).
    """

    name = "correctness"
    version = "3"
    level: Literal["answer"] = "answer"
    metrics = ("correctness",)

    def __init__(self, ctx: ScorerContext) -> None:
        self.t = with_options(ctx.thresholds, ctx.options)
        self.judge = SupportJudge(ctx.embedder, self.t)

    def _result(self, inp: ScoringInput, label: str, reason: str) -> list[Score]:
        return [make_score(self, inp, "correctness", correctness_value(label), label, reason)]

    def score(self, inp: ScoringInput) -> list[Score]:
        gen = _answer(inp)
        refused = bool(gen.blocked_by) or is_refusal(gen.text) or not gen.text.strip()
        item = inp.item
        if not item.answerable:
            if refused:
                return self._result(inp, "correct", "must-refuse item, refused")
            return self._result(inp, "incorrect", "must-refuse item, answered instead")
        if refused and not _claims(gen):
            return self._result(inp, "incorrect", "refused an answerable question")
        accepted = [a for a in (item.reference_answer, *item.alternative_answers) if a.strip()]
        if not accepted:
            return [make_score(self, inp, "correctness", None, "n/a", "no reference answer (retrieval-only item)")]
        m = _match(gen.text, accepted)
        facts = f"recall {m.recall:.2f}"
        if m.missing:
            facts += f"; reference numbers missing: {m.missing}" + (f", answer says {m.others}" if m.replaced else "")
        if m.contained and not m.missing:
            return self._result(inp, "correct", f"answer contains the accepted answer {_short(m.contained, 60)!r}")
        if m.replaced:
            return self._result(inp, "incorrect", facts)
        key = max((distinctive_recall(a, gen.text, item.question) for a in accepted), key=lambda r: r[0])
        if key[1] and key[0] >= self.t.distinctive_recall_min:
            return self._result(
                inp, "correct", f"{facts}; the answer has {key[2]}/{key[1]} of the short answer's distinctive terms"
            )
        label, sim = self._grade(gen.text, item.reference_answer, m)
        if label:
            return self._result(inp, label, facts + (f", similarity {sim:.2f}" if sim is not None else ""))
        sim_ref = sim if sim is not None else self.judge.similarity(gen.text, item.reference_answer)
        sim_q = self.judge.similarity(gen.text, item.question)
        if sim_ref < 0.25 and sim_q < 0.25 and m.recall < 0.1:
            why = f"; similarity to reference {sim_ref:.2f}, question {sim_q:.2f}"
            return self._result(inp, "off_topic", facts + why)
        return self._result(inp, "incorrect", facts)

    def _grade(self, answer: str, reference: str, m: _Match) -> tuple[str, float | None]:
        """correct / partially_correct / '' from word recall (short references) or recall and similarity."""
        if len(content_words(m.reference)) <= 4:
            if m.recall >= 1.0 and not m.missing:
                return "correct", None
            return ("partially_correct" if m.recall >= 0.5 else ""), None
        sim = self.judge.similarity(answer, reference)
        if (m.recall >= self.t.correct_recall_min or sim >= self.t.correct_similarity_min) and not m.missing:
            return "correct", sim
        if m.recall >= self.t.partial_recall_min or sim >= self.t.partial_similarity_min:
            return "partially_correct", sim
        return "", sim
