"""Offline, deterministic scorers (no LLM): citations, groundedness, correctness, refusal.

Every score carries a reason a person can check. Refusals are not claims: groundedness and citation metrics
are 'n/a' for them (reported as such, with counts); refusal and correctness scorers judge them instead.
"""

from __future__ import annotations

from typing import Literal

from ragharness.eval.scorers.base import ScorerContext, ScoringInput, make_score
from ragharness.eval.scorers.support import SupportJudge
from ragharness.eval.text import content_words, is_refusal, numbers, parse_citations, sentences, stem
from ragharness.types import Generation, Passage, Score


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
        self.judge = SupportJudge(ctx.embedder)

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
        self.judge = SupportJudge(ctx.embedder)

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
        label = "grounded" if value == 1 else ("partially_grounded" if value >= 0.5 else "ungrounded")
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


class CorrectnessScorer:
    """correct / partially_correct / incorrect / off_topic against the reference answer.

    Measures: recall of the reference's stemmed content words in the answer; embedding similarity of answer
    and reference; agreement of numbers (a number in the reference missing from the answer, or a number in the
    answer absent from reference and passages, caps the label at partially correct / incorrect).
      correct:   (recall >= 0.6 or similarity >= 0.8) and numbers agree
      partially: recall >= 0.3 or similarity >= 0.6
      off_topic: similarity to both reference and question < 0.25 and recall < 0.1
      else incorrect.
    Unanswerable items: a refusal is correct, an answer incorrect. Values: 1 / 0.5 / 0 / 0.
    """

    name = "correctness"
    version = "1"
    level: Literal["answer"] = "answer"
    metrics = ("correctness",)

    def __init__(self, ctx: ScorerContext) -> None:
        self.judge = SupportJudge(ctx.embedder)

    def score(self, inp: ScoringInput) -> list[Score]:
        gen = _answer(inp)
        refused = bool(gen.blocked_by) or is_refusal(gen.text) or not gen.text.strip()
        item = inp.item
        if not item.answerable:
            if refused:
                return [make_score(self, inp, "correctness", 1.0, "correct", "must-refuse item, refused")]
            return [make_score(self, inp, "correctness", 0.0, "incorrect", "must-refuse item, answered instead")]
        if refused and not _claims(gen):
            return [make_score(self, inp, "correctness", 0.0, "incorrect", "refused an answerable question")]
        ref_words = {stem(w) for w in content_words(item.reference_answer)}
        ans_words = {stem(w) for w in content_words(gen.text)}
        recall = len(ref_words & ans_words) / len(ref_words) if ref_words else 0.0
        sim = self.judge.similarity(gen.text, item.reference_answer)
        sim_q = self.judge.similarity(gen.text, item.question)
        ref_nums, ans_nums = numbers(item.reference_answer), numbers(gen.text)
        ctx_nums = set().union(*(numbers(p.text) for p in inp.pack.passages)) if inp.pack.passages else set()
        missing_nums = sorted(ref_nums - ans_nums)
        foreign_nums = sorted(ans_nums - ref_nums - ctx_nums)
        facts = f"recall {recall:.2f}, similarity {sim:.2f}"
        if missing_nums:
            facts += f"; reference numbers missing: {missing_nums}"
        if foreign_nums:
            facts += f"; numbers in neither reference nor passages: {foreign_nums}"
        if (recall >= 0.6 or sim >= 0.8) and not missing_nums and not foreign_nums:
            return [make_score(self, inp, "correctness", 1.0, "correct", facts)]
        if sim < 0.25 and sim_q < 0.25 and recall < 0.1:
            return [make_score(self, inp, "correctness", 0.0, "off_topic", facts + f", to question {sim_q:.2f}")]
        if (recall >= 0.3 or sim >= 0.6) and not foreign_nums:
            return [make_score(self, inp, "correctness", 0.5, "partially_correct", facts)]
        return [make_score(self, inp, "correctness", 0.0, "incorrect", facts)]
