"""A deterministic fake of the LLM judge, for tests of code that scores with the judge (a plugin's pipeline, a
notebook's evaluation) without a model: given the judge's prompt, it returns the JSON a real judge returns.

Every answer sentence is one claim supported by passage 1 (cited where the sentence cites [1]); a sentence that
holds one of `wrong` is contradicted and the answer incorrect; an answer that says it can't help is a refusal.
With the context-metrics prompt it also judges passage 1 relevant and needed, the others not, and the reference
answer one statement supported by passage 1. Serve it from any local OpenAI-compatible test server:

    from ragharness.testing.judge import FakeJudge
    judge = FakeJudge(wrong=("50 GB",))
    content = json.dumps(judge(request_body["messages"]))    # the assistant message's content
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _between(text: str, tag: str) -> str:
    start, end = f"<{tag}>", f"</{tag}>"
    return text.split(start, 1)[1].split(end, 1)[0].strip() if start in text and end in text else ""


@dataclass(frozen=True)
class FakeJudge:
    wrong: Sequence[str] = ("50 GB", "sunny")
    """Substrings that make a claim contradicted and the answer incorrect."""
    refusals: Sequence[str] = ("can't", "cannot")

    def __call__(self, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The judge's JSON for a chat request (`messages`: system first, the user's prompt last)."""
        system, user = str(messages[0]["content"]), str(messages[-1]["content"])
        answer = _between(user, "answer")
        refusal = any(r in answer for r in self.refusals)
        sentences = [s.strip() for s in _SENTENCE.split(answer) if s.strip()]
        claims = [] if refusal else [self._claim(s) for s in sentences]
        label = "incorrect" if any(w in answer for w in self.wrong) else "correct"
        out: dict[str, Any] = {"claims": claims, "correctness": {"label": label, "reason": "fake"}}
        out["is_refusal"] = refusal
        if "reference_statements" in system:  # the context-metrics prompt: passages and reference judged too
            n = len(re.findall(r"^\[(\d+)\]", _between(user, "passages"), re.MULTILINE))
            out["passages"] = [{"number": i, "relevant": i == 1, "needed": i == 1} for i in range(1, n + 1)]
            reference = _between(user, "reference_answer")
            out["reference_statements"] = (
                [] if reference.startswith("(this question") else [{"text": reference, "supporting_passages": [1]}]
            )
        return out

    def _claim(self, sentence: str) -> dict[str, Any]:
        bad = any(w in sentence for w in self.wrong)
        return {
            "text": sentence,
            "verdict": "contradicted" if bad else "supported",
            "supporting_passages": [] if bad else [1],
            "cited_passages": [1] if "[1]" in sentence else [],
        }
