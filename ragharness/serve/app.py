"""`ragharness serve`: the review app over a run store (FastAPI + server-rendered Jinja pages, a little JavaScript
from /static, plotly served from the installed package: nothing from the network).

Every request passes one middleware: the Host header must name this server (a page on another site cannot reach
it by DNS rebinding), the caller is identified (API key header, session cookie, or the local single-user mode),
rate-limited per key (429 with Retry-After), and every response carries a strict Content-Security-Policy."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from ragharness.core.errors import NotFoundError, RagharnessError
from ragharness.serve.auth import LOCAL, Principal
from ragharness.serve.csp import CSP
from ragharness.serve.state import HERE, LOGIN_COOKIE, SESSION_COOKIE, ServeState

log = logging.getLogger("ragharness.serve")

PUBLIC = ("/login", "/static/", "/healthz", "/favicon.ico")
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#24476b"/>'
    b'<path d="M4 11V5h3.2a1.9 1.9 0 0 1 0 3.8H4m3.2 0L10 11m2-6v6" stroke="#fff" stroke-width="1.4" '
    b'fill="none"/></svg>'
)
"""The app's icon: every browser asks for /favicon.ico on its own; it must be served, never answered with a login
page (whose fresh login cookie would make the form on screen stale)."""
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}


@lru_cache(maxsize=1)
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).encode()


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def create_app(state: ServeState) -> FastAPI:
    app = FastAPI(
        title="ragharness review app",
        version="1",
        description="Runs, comparisons, trends and human review over a ragharness run store. Authenticate with "
        "`Authorization: Bearer <key>` or `X-API-Key: <key>` (keys: `ragharness keys create`).",
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.state.serve = state

    @app.middleware("http")
    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        return await gatekeeper(state, request, call_next)

    @app.exception_handler(RagharnessError)
    async def ragharness_error(request: Request, exc: RagharnessError) -> Response:
        from ragharness.core.credentials import scrub

        status = 404 if isinstance(exc, NotFoundError) else 400
        return _error(request, state, status, scrub(str(exc)))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            return _unauthorised(request, state, str(exc.detail))
        return _error(request, state, exc.status_code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return _error(request, state, 500, f"unexpected error ({type(exc).__name__}); the server log names it")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name == "plotly.min.js":
            body = _plotly_js()
            kind = "text/javascript"
        elif name in STATIC:
            body, kind = (HERE / "static" / name).read_bytes(), STATIC[name]
        else:
            raise HTTPException(404, "no such file")
        return Response(body, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})

    _login_routes(app, state)
    from ragharness.serve import api, pages, review_pages

    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(review_pages.router)
    return app


async def _check_key(state: ServeState, request: Request, key: str, bucket: str) -> Principal | Response | None:
    """The key's principal; a 429 when this address has tried too many keys not verified before; None for a wrong
    key. Every such try takes a token of the per-address limiter before scrypt runs, so refused keys cost no
    hashing beyond the limit (and a key found wrong once is never hashed again)."""
    principal, needs_hash = state.keys.lookup(key)
    if principal is not None:
        return principal
    wait = state.login_limiter.take(f"{bucket}:{_client(request)}")
    if wait:
        return _too_many(wait)
    return await run_in_threadpool(state.keys.verify, key) if needs_hash else None


async def _identify(state: ServeState, request: Request) -> Response | None:
    """Set request.state.principal from the key header, the session cookie or local mode; a wrong key is refused."""
    request.state.principal = None
    request.state.session = None
    request.state.by_header = False
    header_key = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        header_key = auth[7:].strip()
    if header_key:
        checked = await _check_key(state, request, header_key, "key")
        if isinstance(checked, Response):
            return checked
        if checked is None:
            return _unauthorised(request, state, "the API key is not valid (revoked or mistyped)")
        request.state.principal, request.state.by_header = checked, True
        return None
    session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is not None and not state.keys.active(session.principal.id):
        state.sessions.end(request.cookies.get(SESSION_COOKIE))  # its key was revoked
        session = None
    if session is not None:
        request.state.principal, request.state.session = session.principal, session
    elif state.local_mode(_client(request)):
        request.state.principal = LOCAL
    return None


async def gatekeeper(
    state: ServeState, request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Host check, who is asking, rate limit, security headers: every request, before any route."""
    host = (request.headers.get("host") or "").rsplit(":", 1)[0].lower()
    if host.startswith("[") and "]" in (request.headers.get("host") or ""):
        host = (request.headers.get("host") or "").split("]")[0].lower() + "]"
    if not state.any_host and host not in state.allowed_hosts:
        return PlainTextResponse(f"unknown host; serve with --allowed-host {host or 'NAME'} to allow it", 400)
    path = request.url.path
    refused = await _identify(state, request)
    if refused is not None:
        return refused
    public = any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)
    principal = request.state.principal
    if not path.startswith("/static/"):
        wait = state.limiter.take(f"key:{principal.id}" if principal else f"addr:{_client(request)}")
        if wait:
            return _too_many(wait)
    if principal is None and not public:
        return _unauthorised(request, state, "log in with an API key")
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _login_routes(app: FastAPI, state: ServeState) -> None:
    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return _login(request, state, "", 200)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        sent, cookie = str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE) or ""
        if not cookie or not hmac.compare_digest(sent, cookie):
            return _login(request, state, "the login form expired; try again", 403)
        key = str(form.get("key") or "").strip()
        checked = await _check_key(state, request, key, "login") if key else None
        if isinstance(checked, Response):
            return checked
        principal = checked
        if principal is None:
            return _login(request, state, "that key is not valid (revoked or mistyped)", 401)
        token, _ = state.sessions.start(principal)
        target = str(form.get("next") or "/")
        local = target.startswith("/") and not target.startswith("//") and "\\" not in target
        response = RedirectResponse(target if local else "/", 303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=state.settings.secure_cookies,
            max_age=int(state.sessions.lifetime),
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        form = await request.form()
        state.check_csrf(request, str(form.get("csrf") or ""))
        state.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response


def _too_many(wait: float) -> Response:
    seconds = max(1, int(wait + 0.999))
    return PlainTextResponse(
        f"too many requests; retry in {seconds} s",
        429,
        headers={"Retry-After": str(seconds), "Cache-Control": "no-store"},
    )


def _login(request: Request, state: ServeState, message: str, status: int) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    nxt = request.url.path if request.url.path not in ("/login", "/logout") else "/"
    # rendered as for nobody (no nav form with a session token beside the login's own)
    html = state.env.get_template("login.html.j2").render(
        message=message, login_csrf=token, next=nxt, me=None, csrf="", read_only=False, local_mode=False
    )
    response = HTMLResponse(html, status)
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=state.settings.secure_cookies, max_age=3600
    )
    return response


def _is_page(request: Request) -> bool:
    """A browser navigating to a page (not fetching an image, script or data): only then is the login form, with
    its own login cookie, the answer. Anything else gets a plain 401 and leaves the login cookie alone."""
    dest = request.headers.get("sec-fetch-dest", "")
    if dest:  # what every browser says of its own requests
        return dest in ("document", "iframe")
    accept = request.headers.get("accept", "")
    return request.method == "POST" or "text/html" in accept or "*/*" in accept or not accept


def _unauthorised(request: Request, state: ServeState, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, 401, headers={"WWW-Authenticate": "Bearer"})
    if not _is_page(request):
        return PlainTextResponse(message, 401, headers={"Cache-Control": "no-store"})
    return _login(request, state, message if request.url.path != "/" else "", 401)


def _error(
    request: Request, state: ServeState, status: int, message: str, headers: dict[str, Any] | None = None
) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status, headers=headers)
    html = state.render("error.html.j2", request, status=status, message=message)
    return HTMLResponse(html, status, headers=headers)
