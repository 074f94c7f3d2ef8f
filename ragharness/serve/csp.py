"""The review app's Content-Security-Policy: the one for its own pages, and one per stored page (a run report) that
lets exactly that page's inline scripts run (by hash)."""

from __future__ import annotations

import base64
import hashlib
import re

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def hashed_csp(html: str) -> str:
    """A CSP for a stored page (the run report) that lets exactly its own inline scripts run."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.encode()).digest()).decode()}'"
        for m in _INLINE_SCRIPT.findall(html)
    )
    return CSP.replace("script-src 'self'", f"script-src 'self' {hashes}".rstrip()).replace(
        "form-action 'self'", "form-action 'none'"
    )
