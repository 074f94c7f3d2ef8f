"""PII leak accounting: known PII values must never reach a model, a judge, a file or a report; and only leaks
count as leaks.

Known values are (a) the lines of `guardrails.pii_canaries` (values the team planted in or knows to be in its
corpus and questions, watched as written) and (b) the values a PII guardrail found that a person would call
personal data: e-mail addresses (not on the reserved example domains), phone numbers, SSNs, card numbers, IBANs,
public IP addresses and token-shaped credentials, never a dictionary word (a `password: secret` example finds the
word "secret"; the word is no leak). Found values are kept as salted SHA-256 digests of their normal form in
`data_dir/pii-watch.json`, never raw, so every run, incremental or not, watches every value any ingest or run found.

The watch checks every request before it is sent (candidates and judge) and, at the end of a run, every file of
the run directory; a hit counts as a leak, recorded by where it was found and never by value. Texts are read in
the normal form of `ragharness.core.normalise`, values match on token boundaries (`xjane@acme.io` does not hold
`jane@acme.io`), and numbers match by their digits (a card written with spaces is the same card without them).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from ragharness.core.errors import ConfigError
from ragharness.core.fileio import atomic_write_text
from ragharness.core.normalise import normalise
from ragharness.core.text import STOPWORDS

_DIGITS = re.compile(r"\D+")
_SPACES = re.compile(r"[\s-]")
_NUMBER = re.compile(r"\+?\d[\d ()./-]{5,}\d")
"""A number as people write it: digits with spaces, dashes, dots, slashes or brackets between them."""
_EMAIL = re.compile(r"(?i)(?<![\w.+%-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+(?![\w@-])")
_IBAN = re.compile(r"(?i)\b[a-z]{2}\d{2}(?:[ -]?[a-z0-9]{4}){2,7}(?:[ -]?[a-z0-9]{1,3})?\b")
_TOKEN = re.compile(r"(?<![\w/+=.-])[A-Za-z0-9_/+=.-]{16,}(?![\w/+=.-])")
_IP = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
PENDING_MAX = 2000
"""Canaries added after the trie was built are checked one by one up to this many; then the trie is rebuilt."""
MIN_DIGITS = 7
"""A value matches by digits alone only when it has at least this many (shorter runs are everywhere)."""
EXACT_BELOW = 12
"""A number of fewer digits must be a whole number in the text; a longer one may stand inside a longer run."""
RESERVED_DOMAINS = ("example.com", "example.net", "example.org", "example", "test", "invalid", "localhost")
"""RFC 2606 / 6761 names: documentation's placeholder addresses (`john.doe@example.com`) are nobody's."""
WATCHED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "SECRET")
WATCH_FILE = "pii-watch.json"


def trie_pattern(values: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of the values on token boundaries, built as a trie (shared prefixes factored out),
    so a text is scanned once whatever the number of values."""
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

    body = build(trie)
    return re.compile(rf"(?<![\w@.+-])(?:{body})(?![\w@-])" if body else "(?!)")


def _digest(salt: bytes, key: str) -> str:
    return hashlib.sha256(salt + key.encode()).hexdigest()[:32]


def _keys(kind: str, value: str) -> list[str]:
    """The normal forms a found value is watched under ([] when it is no personal data worth watching)."""
    v = normalise(value).strip()
    if kind == "EMAIL_ADDRESS":
        v = v.casefold()
        domain = v.rsplit("@", 1)[-1] if "@" in v else ""
        if not domain or any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS):
            return []
        return [f"@{v}"]
    if kind in ("PHONE_NUMBER", "US_SSN", "CREDIT_CARD"):
        digits = _DIGITS.sub("", v)
        if len(digits) < MIN_DIGITS:
            return []
        if kind == "PHONE_NUMBER" and len(digits) > 10:  # also as written at home, without the country code
            return [f"#{digits}", f"#{digits[-10:]}"]
        return [f"#{digits}"]
    if kind == "IBAN_CODE":
        code = _SPACES.sub("", v).upper()
        return [f"${code}"] if len(code) >= 15 else []
    if kind == "IP_ADDRESS":
        try:
            ip = ipaddress.ip_address(v)
        except ValueError:
            return []
        return [] if not ip.is_global else [f"ip{ip}"]
    if kind == "SECRET":
        token = v.split()[0] if v.split() else ""
        shaped = len(token) >= 16 and any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
        return [f"t{token}"] if shaped else []
    return []


class LeakWatch:
    """Canaries as written (in memory, from the team's file) and found values as salted digests (persisted to
    `path` when given). `leaks` counts hits by place."""

    def __init__(self, values: Iterable[str] = (), *, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._texts: set[str] = set()
        self._digits: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._pending: set[str] = set()  # added since the trie was built: checked one by one until there are many
        self.path = path
        self._salt = secrets.token_bytes(16)
        self._found_keys: set[str] = set()
        self._new = False
        if path is not None and path.is_file():
            self._load(path)
        self.leaks: Counter[str] = Counter()
        self.add(values)

    @classmethod
    def from_file(cls, path: Path, *, store: Path | None = None) -> LeakWatch:
        if not path.is_file():
            raise ConfigError(
                f"{path}: PII canary file not found (guardrails.pii_canaries); create it with one known value per "
                "line, or remove the key"
            )
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").split("\n")]
        return cls((ln for ln in lines if ln and not ln.startswith("#")), path=store)

    # -- what is watched ---------------------------------------------------------------------------------------
    def add(self, values: Iterable[str]) -> None:
        """Canaries: watched as written (any text of five or more characters that is not a stop word)."""
        with self._lock:
            for raw in values:
                v = normalise(raw).strip()
                if len(v) < 5 or v.casefold() in STOPWORDS:
                    continue
                if v.casefold() not in self._texts:
                    self._texts.add(v.casefold())
                    self._pending.add(v.casefold())
                digits = _DIGITS.sub("", v)
                if len(digits) >= MIN_DIGITS and len(digits) >= len(v.replace(" ", "")) * 0.6:
                    self._digits.add(digits)

    def add_found(self, found: Iterable[tuple[str, str]]) -> None:
        """Values a PII guardrail found, as (entity type, value): only personal data is watched (see WATCHED)."""
        with self._lock:
            for kind, value in found:
                if kind not in WATCHED:
                    continue
                for key in _keys(kind, value):
                    digest = _digest(self._salt, key)
                    if digest not in self._found_keys:
                        self._found_keys.add(digest)
                        self._new = True

    def __len__(self) -> int:
        return len(self._texts) + len(self._found_keys)

    # -- persistence -----------------------------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._salt = bytes.fromhex(data["salt"])
            self._found_keys = set(data["values"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}: the PII watch list is damaged ({type(exc).__name__}); delete it and run `ragharness "
                "ingest --rebuild` so every value is found again"
            ) from exc

    def save(self) -> None:
        """Write the found values' digests (merged with what another process saved meanwhile) under a lock."""
        if self.path is None or not self._new:
            return
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=60), self._lock:
            if self.path.is_file():
                other = LeakWatch(path=self.path)
                if other._salt == self._salt:
                    self._found_keys |= other._found_keys
            data = {"version": 1, "salt": self._salt.hex(), "values": sorted(self._found_keys)}
            atomic_write_text(self.path, json.dumps(data))
            self._new = False

    # -- finding ---------------------------------------------------------------------------------------------------
    def hits(self, text: str) -> int:
        """How many known values the text holds."""
        return len(self._found(text))

    def _candidates(self, text: str) -> Iterable[str]:
        """The keys (as in `_keys`) of everything in the text that could be a found value."""
        for m in _EMAIL.finditer(text):
            yield f"@{m.group(0).casefold()}"
        for m in _NUMBER.finditer(text):
            yield f"#{_DIGITS.sub('', m.group(0))}"
        for m in _IBAN.finditer(text):
            yield "$" + _SPACES.sub("", m.group(0)).upper()
        for m in _IP.finditer(text):
            yield f"ip{m.group(0)}"
        for m in _TOKEN.finditer(text):
            yield f"t{m.group(0)}"
            yield f"t{m.group(0).rstrip('.=')}"  # a token at the end of a sentence

    def _found(self, text: str) -> set[str]:
        """The known values in the text: canaries by text (`value`) or digits (`#digits`), found values by digest."""
        if not text or not len(self):
            return set()
        text = normalise(text)
        found: set[str] = set()
        if self._found_keys:
            for key in self._candidates(text):
                digest = _digest(self._salt, key)
                if digest in self._found_keys:
                    found.add(digest)
        if self._texts:
            folded = text.casefold()
            with self._lock:
                if self._pattern is None or len(self._pending) > PENDING_MAX:
                    self._pattern, self._pending = trie_pattern(self._texts), set()
                pattern, pending = self._pattern, list(self._pending)
            found |= {m.group(0) for m in pattern.finditer(folded)}
            found |= {v for v in pending if re.search(rf"(?<![\w@.+-]){re.escape(v)}(?![\w@-])", folded)}
            if self._digits:
                runs = {_DIGITS.sub("", m) for m in _NUMBER.findall(text)}
                found |= {
                    f"#{d}"
                    for d in self._digits
                    if any(d == r or (len(d) >= EXACT_BELOW and d in r) for r in runs)
                    and not self._found_as_text(d, folded)
                }
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
        if not len(self):
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
