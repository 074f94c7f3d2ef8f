"""Pattern filters: block (replace the text with a fixed message) or flag text matching denied patterns."""

from __future__ import annotations

import re
from typing import Literal

from ragharness.core.types import Finding
from ragharness.guardrails.base import Verdict


class DenyPatterns:
    def __init__(
        self,
        patterns: list[str],
        action: Literal["block", "flag"] = "block",
        message: str = "I can't help with that request.",
        label: str = "denied_topic",
    ) -> None:
        if not patterns:
            raise ValueError("deny_patterns needs at least one pattern")
        try:
            self._patterns = [re.compile(p, re.IGNORECASE) for p in patterns]
        except re.error as exc:
            raise ValueError(f"invalid regular expression {exc.pattern!r}: {exc}") from exc
        self.action = action
        self.message = message
        self.label = label
        self.name = f"deny_patterns:{label}"

    def check(self, text: str) -> Verdict:
        hits = sum(len(p.findall(text)) for p in self._patterns)
        if not hits:
            return Verdict(text=text)
        findings = (Finding(entity=self.label, count=hits),)
        if self.action == "flag":
            return Verdict(text=text, action="flagged", findings=findings)
        return Verdict(text=self.message, action="blocked", findings=findings)
