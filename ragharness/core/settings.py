"""The base of every settings model and the checks every settings file gets: strict models (an unknown key is an
error), secrets only as `${ENV}` references (resolved at the point of use), and validation errors as one line per
problem naming the file and key path. Each room's settings live in its own `settings.py`; `pipeline/config.py`
composes them into harness.yaml."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragharness.core.credentials import has_userinfo_password, looks_like_secret, remember
from ragharness.core.errors import ConfigError
from ragharness.core.types import FILTERABLE_FIELDS, FilterValue

ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
SECRET_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|credential|authorization|cookie|webhook)", re.IGNORECASE
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Located(Strict):
    """Settings read from a file: relative paths resolve against the file's folder, errors name the file."""

    base_dir: Path = Field(Path("."), exclude=True)
    source_file: Path = Field(Path("harness.yaml"), exclude=True)

    def resolve(self, path: str) -> Path:
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (self.base_dir / p).resolve()


def check_filter_fields(filters: dict[str, FilterValue]) -> dict[str, FilterValue]:
    unknown = sorted(set(filters) - set(FILTERABLE_FIELDS))
    if unknown:
        raise ValueError(f"unknown filter field(s) {unknown}; allowed: {', '.join(FILTERABLE_FIELDS)}")
    return filters


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(
    source: str | Path,
    err: ValidationError,
    prefix: str = "",
    suggest: Callable[[tuple[str | int, ...]], str] | None = None,
) -> list[str]:
    """One line per problem: `file: key.path: message (got value)`; `suggest` adds "did you mean" to unknown keys."""
    lines = []
    for e in err.errors():
        loc = _loc(tuple(e["loc"]))
        if prefix:
            loc = f"{prefix} {loc}" if loc != "(top level)" else prefix
        got = e.get("input")
        secretish = any(isinstance(p, str) and SECRET_KEY.search(p) for p in e["loc"])
        hidden = e["type"] == "missing" or isinstance(got, dict) or secretish
        if isinstance(got, str) and has_userinfo_password(got):
            hidden = True
        shown = "" if hidden else f" (got {got!r})"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            hint = suggest(tuple(e["loc"])) if suggest is not None else ""
            msg = f"unknown key{hint or '; check the spelling against `ragharness config-reference`'}"
        lines.append(f"{source}: {loc}: {msg}{shown}")
    return lines


_SHAPED = (
    "the value has the shape of a credential (an API token, a bearer value or a key in a URL query); give it as an "
    "environment reference like '${MY_API_KEY}' (the value is not shown)"
)


def check_secrets(node: Any, path: str, problems: list[str]) -> None:
    """Credential-like keys (api_key, token, Authorization header, webhook, ...) must hold `${ENV}` references, and
    no value may carry `user:password@` in a URL. A rejected value is never echoed."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and SECRET_KEY.search(str(key)) and not ENV_REF.match(value):
                problems.append(
                    f"{sub}: secrets must be environment references like '${{MY_API_KEY}}', not literal values "
                    "(the value is not shown)"
                )
            elif isinstance(value, str) and has_userinfo_password(value):
                problems.append(
                    f"{sub}: a URL with 'user:password@' carries a credential; give the whole URL as an environment "
                    "reference like '${MY_URL}' or use the backend's username/password options (the value is not shown)"
                )
            elif isinstance(value, str) and not ENV_REF.match(value) and looks_like_secret(value):
                problems.append(f"{sub}: {_SHAPED}")
            else:
                check_secrets(value, sub, problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str) and has_userinfo_password(value):
                problems.append(
                    f"{path}[{i}]: a URL with 'user:password@' carries a credential (the value is not shown)"
                )
            elif isinstance(value, str) and not ENV_REF.match(value) and looks_like_secret(value):
                problems.append(f"{path}[{i}]: {_SHAPED}")
            else:
                check_secrets(value, f"{path}[{i}]", problems)


def resolve_env(value: str, *, what: str) -> str:
    """Resolve `${NAME}` from the environment at the point of use. Literal values pass through."""
    m = ENV_REF.match(value)
    if not m:
        return value
    name = m.group(1)
    resolved = os.environ.get(name)
    if resolved is None:
        raise ConfigError(f"{what}: environment variable {name} is not set; export it before running")
    remember(resolved)  # every later stored error, log line or message is scrubbed of it
    return resolved
