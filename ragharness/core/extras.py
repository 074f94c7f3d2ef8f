"""The optional extras: what each brings, and the error that names the one a missing import belongs to.

The embedded defaults (LanceDB, MiniLM, offline candidates and scorers, HTML reports) need none of them; their
imports are lazy, so a missing extra is only noticed when the config asks for what it brings."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ragharness.core.errors import MissingExtraError

P = ParamSpec("P")
R = TypeVar("R")

_AWS = ("aws", "Amazon Bedrock, Titan embeddings, Bedrock Guardrails and batch inference, S3 corpora and run stores")
_SERVE = ("serve", "the review app (`ragharness serve`)")
EXTRAS: dict[str, tuple[str, str]] = {
    "boto3": _AWS,
    "botocore": _AWS,
    "s3transfer": _AWS,
    "opensearchpy": ("opensearch", "the OpenSearch store"),
    "fastapi": _SERVE,
    "starlette": _SERVE,
    "uvicorn": _SERVE,
    "multipart": _SERVE,
}
"""Top-level module -> (extra, what it brings)."""


def missing_extra(exc: ImportError) -> MissingExtraError | None:
    """The error naming the extra a failed import belongs to (None: the module is no extra's)."""
    module = (exc.name or "").split(".")[0]
    if module not in EXTRAS:
        return None
    extra, what = EXTRAS[module]
    return MissingExtraError(
        f"{what} needs the `{extra}` extra (the module `{module}` is not installed): "
        f"pip install 'ragharness[{extra}]' (in this checkout: .venv/bin/pip install -e '.[{extra}]')"
    )


def naming_extras(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn`, whose ImportError of an extra's module becomes the MissingExtraError naming the extra."""

    @functools.wraps(fn)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ImportError as exc:
            missing = missing_extra(exc)
            if missing is None:
                raise
            raise missing from exc

    return wrapped


def installed(extra: str) -> bool:
    """Whether every module of `extra` can be imported (looked up, not imported)."""
    for module, (name, _) in EXTRAS.items():
        if name != extra:
            continue
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except ValueError:  # in sys.modules as None: hidden, as if not installed
            return False
    return True


def require(module: str) -> None:
    """Import `module` now, when the component that needs it is built: a missing extra is a config error naming
    the extra before any call is made, never a failed call per item."""
    naming_extras(importlib.import_module)(module)
