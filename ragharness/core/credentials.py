"""Credentials never reach a file, a log line or a report.

Every secret ragharness resolves from an environment reference (`${NAME}`) is remembered here, in memory only,
so that any text about to be stored or printed can be scrubbed of it. Besides those exact values, `scrub`
removes what reveals a credential by its shape: `Authorization` / bearer values, URL userinfo
(`https://user:password@host`) and the token formats of detect-secrets' scanners (AWS key ids, GitHub, GitLab,
OpenAI, Slack, Stripe, JSON web tokens, private keys, ...). It sits below every other module: types use it to
scrub error messages as they are built.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

MASK = "[REDACTED_SECRET]"

_known: set[str] = set()
_known_lock = threading.Lock()
_MIN_SECRET_LEN = 6  # shorter values (e.g. "1", "on") would scrub ordinary words

_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key|cookie|set-cookie)(\s*[:=]\s*)"
    # a value, not a word of prose ("Authorization: secrets must be ..."): a scheme, or 8+ characters with a digit
    # or a symbol tokens carry
    r"((?:bearer|basic|token|aws4-hmac-sha256)\s+[^\s,;\"'}]+|(?=[^\s,;\"'}]*[0-9_+/=.\-])[^\s,;\"'}]{8,})"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{12,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:api[_-]?key|key|access[_-]?token|token|secret|sig|signature|password|auth)=)[^&#\s\"']{6,}"
)
EXTRA_TOKENS = (
    # shapes detect-secrets 1.5 does not know (its OpenAI plugin has only the legacy `sk-...T3BlbkFJ...` form)
    re.compile(r"\bsk-(?:proj|svcacct|admin|ant(?:-api\d+)?)-[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
)


def remember(value: str) -> None:
    """Register a resolved secret so every later `scrub` removes it."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _known_lock:
            _known.add(value)


@functools.lru_cache(maxsize=1)
def _token_patterns() -> tuple[re.Pattern[str], ...]:
    """Token shapes from detect-secrets' own scanners (not its entropy or keyword heuristics)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    skip = {"Base64 High Entropy String", "Hex High Entropy String", "Public IP (ipv4)", "Secret Keyword"}
    patterns: list[re.Pattern[str]] = []
    plugins: dict[str, Any] = get_mapping_from_secret_type_to_class()
    for secret_type, plugin in plugins.items():
        if secret_type in skip:
            continue
        patterns.extend(getattr(plugin(), "denylist", ()))
    return (*patterns, *EXTRA_TOKENS)


def token_patterns() -> tuple[re.Pattern[str], ...]:
    return _token_patterns()


def scrub(text: str) -> str:
    """The text with every known secret value and every credential-shaped token replaced by a mask."""
    if not text:
        return text
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    for pattern in _token_patterns():
        text = pattern.sub(MASK, text)
    return text


def looks_like_secret(value: str) -> bool:
    """A literal credential by its shape (a token format, a bearer value, a `?key=` query parameter), whatever the
    option holding it is called."""
    if _BEARER.search(value) or _QUERY_SECRET.search(value):
        return True
    return any(p.search(value) for p in _token_patterns())


def has_userinfo_password(value: str) -> bool:
    """True for a URL carrying `user:password@`: a literal credential inside a config value."""
    return bool(_USERINFO.search(value))
