"""Who may do what in the review app: API keys with a role, sessions, CSRF tokens and per-key rate limits.

- A key is `rhk_<id>_<secret>`, shown once by `ragharness keys create`; the store keeps its id, role and an scrypt
  hash of the secret (RFC 7914, n=2**14, r=8, p=1, per-key salt), in `_store/keys.json` of the run store.
- A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>` (JSON API), or exchanged for a session
  cookie at /login (HttpOnly, SameSite=Strict; sessions live in the server's memory and end with it).
- Roles: viewer (read), reviewer (+ label and vote), admin (+ pin a nightly baseline).
- Key changes are read-modify-writes under the store's lock (S3: conditional writes): concurrent `keys create` and
  `keys revoke` never lose one another.
- A key file that is missing or unreadable while the app runs refuses everyone (never a fallback to no keys).
  Local mode (every loopback client is one local admin) is only ever the explicit `serve --local` at start-up.
- A key that is not yet verified costs one scrypt: callers take a rate-limit token per address before it (see
  `KeyRing.lookup`), and a key found wrong is remembered, so guessing cannot make the server hash at will.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from ragharness.analysis.labels import now_utc
from ragharness.core.errors import ConfigError, RunError
from ragharness.runs.store import RunStore, read_meta_model, update_meta_model

Role = Literal["viewer", "reviewer", "admin"]
RANK: dict[str, int] = {"viewer": 0, "reviewer": 1, "admin": 2}
KEYS = "keys.json"
PREFIX = "rhk_"
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class KeyRecord(BaseModel):
    id: str
    name: str = ""
    role: Role
    salt: str
    hash: str = Field(description="scrypt(secret, salt), hex; the secret itself is never stored.")
    created_at: str
    revoked: bool = False


class KeyFile(BaseModel):
    keys: list[KeyRecord] = Field(default_factory=list)


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    role: Role

    def can(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


LOCAL = Principal(id="local", name="local", role="admin")


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, maxmem=64 * 1024 * 1024, **SCRYPT).hex()


_FIX = "restore it from a backup, or delete it and create the keys again"


def read_keys(store: RunStore) -> KeyFile:
    return read_meta_model(store, KEYS, KeyFile, "key file", _FIX)


def create_key(store: RunStore, role: Role, name: str = "") -> tuple[str, KeyRecord]:
    """A new key: the full key is returned once (print it, never store it); only its hash is kept."""
    if role not in RANK:
        raise ConfigError(f"--role {role!r}: use viewer, reviewer or admin")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = KeyRecord(id=key_id, name=name, role=role, salt=salt.hex(), hash=_hash(secret, salt), created_at=now_utc())
    update_meta_model(store, KEYS, KeyFile, "key file", _FIX, lambda keys: keys.keys.append(record))
    return f"{PREFIX}{key_id}_{secret}", record


def revoke_key(store: RunStore, key_id: str) -> KeyRecord:
    found: list[KeyRecord] = []

    def revoke(keys: KeyFile) -> None:
        for k in keys.keys:
            if k.id == key_id:
                k.revoked = True
                found.append(k)

    update_meta_model(store, KEYS, KeyFile, "key file", _FIX, revoke)
    if not found:
        raise ConfigError(f"no key {key_id!r} in {store.location}; `ragharness keys list` shows the ids")
    return found[0]


class KeyRing:
    """The store's keys, re-read every `ttl` seconds (a revocation takes effect within it). A verified key is
    remembered by a keyed digest for the process's life, so scrypt runs once per key, not once per request; a key
    found wrong is remembered too (bounded), so repeating it costs no hash.

    A key file that is missing or cannot be read refuses every key until it is readable again (`problem` says why):
    losing the file must never open the app."""

    def __init__(self, store: RunStore, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded = 0.0
        self._keys: dict[str, KeyRecord] = {}
        self._pepper = secrets.token_bytes(32)
        self._verified: dict[bytes, str] = {}
        self._wrong: dict[bytes, None] = {}
        self.problem = ""
        self.reload()

    def reload(self) -> None:
        try:
            text = self.store.read_meta(KEYS)
            problem = "" if text is not None else f"{self.store.location}/_store/{KEYS} is missing"
            keys = {k.id: k for k in KeyFile.model_validate_json(text).keys} if text is not None else {}
        except (RunError, OSError, ValueError) as exc:
            problem, keys = f"{self.store.location}/_store/{KEYS} cannot be read ({type(exc).__name__})", {}
        with self._lock:
            self._keys, self.problem = keys, problem
            self._loaded = time.monotonic()

    @property
    def empty(self) -> bool:
        """No active key (or no readable key file)."""
        self._maybe_reload()
        return not any(not k.revoked for k in self._keys.values())

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._loaded > self.ttl:
            self.reload()

    def name_of(self, key_id: str) -> str:
        """What the app shows for a reviewer: the key's name, never key material."""
        record = self._keys.get(key_id)
        if record is not None and record.name:
            return record.name
        if key_id in ("local", "csv", ""):
            return key_id
        return f"reviewer {hashlib.sha256(self._pepper + key_id.encode()).hexdigest()[:6]}"

    def active(self, key_id: str) -> bool:
        """The key exists and is not revoked (a session ends when its key is revoked)."""
        self._maybe_reload()
        record = self._keys.get(key_id)
        return record is not None and not record.revoked

    def lookup(self, key: str) -> tuple[Principal | None, bool]:
        """(the key's principal, whether a hash is needed to know): cheap, no scrypt. A principal means the key
        was verified before; (None, False) means it is refused without hashing."""
        self._maybe_reload()
        if not key.startswith(PREFIX) or len(key) > 200:
            return None, False
        key_id, _, secret = key[len(PREFIX) :].partition("_")
        record = self._keys.get(key_id)
        if record is None or record.revoked or not secret:
            return None, False
        digest = hmac.new(self._pepper, key.encode(), "sha256").digest()
        if self._verified.get(digest) == key_id:
            return self._principal(record), False
        return None, digest not in self._wrong

    def verify(self, key: str) -> Principal | None:
        """The key's principal, or None; runs scrypt at most once per distinct key (call `lookup` first to rate-limit
        the hashing)."""
        principal, needs_hash = self.lookup(key)
        if principal is not None or not needs_hash:
            return principal
        key_id, _, secret = key[len(PREFIX) :].partition("_")
        record = self._keys[key_id]
        digest = hmac.new(self._pepper, key.encode(), "sha256").digest()
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(record.salt)), record.hash):
            with self._lock:
                if len(self._wrong) >= 10_000:
                    self._wrong.pop(next(iter(self._wrong)))
                self._wrong[digest] = None
            return None
        with self._lock:
            self._verified[digest] = key_id
        return self._principal(record)

    @staticmethod
    def _principal(record: KeyRecord) -> Principal:
        return Principal(id=record.id, name=record.name or "reviewer", role=record.role)


@dataclass
class Session:
    principal: Principal
    csrf: str
    expires: float


@dataclass
class Sessions:
    """Server-side sessions: the cookie carries a random token only."""

    lifetime: float = 12 * 3600
    _by_token: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, principal: Principal) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(principal=principal, csrf=secrets.token_urlsafe(24), expires=time.time() + self.lifetime)
        with self._lock:
            now = time.time()
            for t in [t for t, s in self._by_token.items() if s.expires < now]:
                del self._by_token[t]
            self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            s = self._by_token.get(token)
            if s is None or s.expires < time.time():
                return None
            return s

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


class RateLimiter:
    """A token bucket per client (key id, or address before login): `per_minute` requests a minute on average,
    bursts of up to `burst`. `take` returns 0 when allowed, else the seconds to wait (for Retry-After)."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, per_minute // 2))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0
