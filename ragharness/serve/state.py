"""The review app's shared state and the request-level helpers every route uses: who is asking, may they, the CSRF
check, and the Jinja environment (the app's templates first, then the report's, so the app reuses the report's and
the comparison's partials)."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from fastapi import HTTPException, Request

from ragharness.core.errors import ConfigError
from ragharness.reporting.jinja import TEMPLATES as REPORT_TEMPLATES
from ragharness.reporting.jinja import environment as report_environment
from ragharness.runs.store import RunStore
from ragharness.serve.auth import LOCAL, KeyRing, Principal, RateLimiter, Role, Sessions
from ragharness.serve.catalog import RunCatalog
from ragharness.serve.reviews import NoteRedactor

HERE = Path(__file__).parent
SESSION_COOKIE = "rh_session"
LOGIN_COOKIE = "rh_login"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    rate_per_minute: int = 600
    read_only: bool = False
    allowed_hosts: list[str] = field(default_factory=list)
    secure_cookies: bool = False
    local: bool = False
    """Local mode (`serve --local`): every loopback client without a key is one local admin. Only with a loopback
    bind address and no other allowed host; chosen at start-up, never entered later by a change in the store."""

    def __post_init__(self) -> None:
        if self.local and (not is_loopback(self.host) or self.allowed_hosts):
            raise ConfigError(
                "--local serves this machine only: bind a loopback address (--host 127.0.0.1) and allow no other "
                "host name (no --allowed-host); behind a proxy, create API keys instead"
            )


def state_of(request: Request) -> ServeState:
    """The app's shared state, for a route."""
    state: ServeState = request.app.state.serve
    return state


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeState:
    def __init__(self, store: RunStore, cache_dir: Path, settings: Settings, *, redactor: Any = None) -> None:
        self.store = store
        self.settings = settings
        self.catalog = RunCatalog(store, cache_dir)
        self.keys = KeyRing(store)
        self.sessions = Sessions()
        self.limiter = RateLimiter(settings.rate_per_minute)
        self.login_limiter = RateLimiter(20, burst=10)  # failed logins per address: slows guessing
        self.redact = redactor if redactor is not None else NoteRedactor()
        self._local_csrf = secrets.token_urlsafe(24)
        hosts = {"127.0.0.1", "localhost", "[::1]", "::1", settings.host, *settings.allowed_hosts}
        self.allowed_hosts = {h.lower() for h in hosts if h and h not in ("0.0.0.0", "::")}  # noqa: S104
        self.any_host = settings.host in ("0.0.0.0", "::") and not settings.allowed_hosts  # noqa: S104

    @cached_property
    def env(self) -> jinja2.Environment:
        base = report_environment()
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(str(HERE / "templates")), jinja2.FileSystemLoader(str(REPORT_TEMPLATES))]
            ),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters.update(base.filters)
        env.globals.update(base.globals)
        return env

    def render(self, template: str, request: Request, **context: object) -> str:
        principal: Principal | None = getattr(request.state, "principal", None)
        return self.env.get_template(template).render(
            me=principal,
            csrf=self.csrf_token(request),
            read_only=self.settings.read_only,
            local_mode=principal is LOCAL,
            **context,
        )

    # -- who is asking --------------------------------------------------------------------------------------
    def local_mode(self, client_host: str) -> bool:
        """`serve --local`: the app serves its own machine only, as one local admin (whatever the store holds)."""
        return self.settings.local and is_loopback(client_host)

    def csrf_token(self, request: Request) -> str:
        session = getattr(request.state, "session", None)
        if session is not None:
            return str(session.csrf)
        if getattr(request.state, "principal", None) is LOCAL:
            return self._local_csrf
        return ""

    def check_csrf(self, request: Request, sent: str | None) -> None:
        """Forms and cookie-authenticated API calls must carry the session's CSRF token; a key sent as a header
        needs none (a browser never adds it on its own)."""
        if getattr(request.state, "by_header", False):
            return
        expected = self.csrf_token(request)
        if not expected or not sent or not hmac.compare_digest(expected, sent):
            raise HTTPException(403, "CSRF token missing or wrong: reload the page and submit again")

    def require(self, request: Request, role: Role) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            raise HTTPException(401, "log in with an API key")
        if not principal.can(role):
            raise HTTPException(403, f"this needs the {role} role; your key is a {principal.role} key")
        if role != "viewer" and self.settings.read_only:
            raise HTTPException(403, "the app runs read-only (--read-only): labels, votes and pins are off")
        return principal
