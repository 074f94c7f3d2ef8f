"""PII leak accounting: known PII values must never reach a model, a judge, a file or a report.

Known values are (a) the lines of `guardrails.pii_canaries` (a file of values the team planted in or knows to be in
its corpus and questions) and (b) every value a PII guardrail found in this process (held in memory only, never
written). The watch checks every request before it is sent (candidates and judge) and, at the end of a run, every
file of the run directory; a hit counts as a leak, recorded by where it was found and never by value. Values and
texts are compared after `ragharness.normalise` (a full-width or zero-width-split value is the same value). Numbers
are also matched by their digits alone (a card written with spaces is the same card without them).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from ragharness.errors import ConfigError
from ragharness.normalise import normalise

_DIGITS = re.compile(r"\D+")
_NUMBER = re.compile(r"\+?\d[\d ()./-]{5,}\d")
"""A number as people write it: digits with spaces, dashes, dots, slashes or brackets between them."""
PENDING_MAX = 2000
"""Values added after the trie was built are checked one by one up to this many; then the trie is rebuilt."""
MIN_DIGITS = 7
"""A value matches by digits alone only when it has at least this many (shorter runs are everywhere)."""


def trie_pattern(values: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of the values, built as a trie (shared prefixes factored out), so a text is scanned
    once whatever the number of values (an alternation of 100,000 literals would try each at every position)."""
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for v in values:
        node = trie
        for ch in v:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:  # type: ignore[type-arg]
        end = "" in node
        parts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not parts:
            return ""
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        return f"(?:{body})?" if end else body

    return re.compile(build(trie) or "(?!)")


class LeakWatch:
    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._texts: set[str] = set()
        self._digits: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._pending: set[str] = set()  # added since the trie was built: checked one by one until there are many
        self.leaks: Counter[str] = Counter()
        self.add(values)

    @classmethod
    def from_file(cls, path: Path) -> LeakWatch:
        if not path.is_file():
            raise ConfigError(
                f"{path}: PII canary file not found (guardrails.pii_canaries); create it with one known value per "
                "line, or remove the key"
            )
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").split("\n")]
        return cls(ln for ln in lines if ln and not ln.startswith("#"))

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            for raw in values:
                v = normalise(raw).strip()  # compared in the one normal form every text is read in
                if len(v) < 5:
                    continue
                if v.casefold() not in self._texts:
                    self._texts.add(v.casefold())
                    self._pending.add(v.casefold())
                digits = _DIGITS.sub("", v)
                if len(digits) >= MIN_DIGITS and len(digits) >= len(v.replace(" ", "")) * 0.6:
                    self._digits.add(digits)

    def __len__(self) -> int:
        return len(self._texts)

    def hits(self, text: str) -> int:
        """How many known values the text holds (by text, case-insensitive, or by digits)."""
        return len(self._found(text))

    def _found(self, text: str) -> set[str]:
        """The known values in the text (a value found by its digits only is keyed `#<digits>`)."""
        if not text or not self._texts:
            return set()
        text = normalise(text)
        folded = text.casefold()
        with self._lock:
            if self._pattern is None or len(self._pending) > PENDING_MAX:
                self._pattern, self._pending = trie_pattern(self._texts), set()
            pattern, pending = self._pattern, list(self._pending)
        found = {m.group(0) for m in pattern.finditer(folded)} | {v for v in pending if v in folded}
        if self._digits:
            runs = {_DIGITS.sub("", m) for m in _NUMBER.findall(text)}
            found |= {f"#{d}" for d in self._digits if any(d in r for r in runs) and not self._found_as_text(d, folded)}
        return found

    def _found_as_text(self, digits: str, folded: str) -> bool:
        """A value already counted by its text is not counted again by its digits."""
        return any(_DIGITS.sub("", v) == digits and v in folded for v in self._texts)

    def check(self, text: str, where: str) -> int:
        n = self.hits(text)
        if n:
            with self._lock:
                self.leaks[where] += n
        return n

    def scan_dir(self, root: Path, include: Callable[[str], bool] = lambda rel: True) -> Counter[str]:
        """Known values in every file under root whose relative path `include` accepts: how many distinct values each
        file holds. Files are read line by line (a run's scores file may be large); bytes that are not UTF-8 are
        replaced, so binary files are searched too."""
        found: Counter[str] = Counter()
        if not self._texts:
            return found
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if not include(rel) or path.name.endswith(".lock"):
                continue
            values: set[str] = set()
            with path.open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    values |= self._found(line)
            if values:
                found[rel] = len(values)
        return found
