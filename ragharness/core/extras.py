"""The optional extras: what each brings, and the error that names the one a missing import belongs to.

The embedded defaults (LanceDB, MiniLM, offline candidates and scorers, HTML reports) need none of them; their
imports are lazy, so a missing extra is only noticed when the config asks for what it brings."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ragharness.core.errors import MissingExtraError

P = ParamSpec("P")
R = TypeVar("R")

EXTRAS: dict[str, tuple[str, str]] = {
    "boto3": (
        "aws",
        "Amazon Bedrock, Titan embeddings, Bedrock Guardrails and batch inference, S3 corpora and run stores",
    ),
    "botocore": (
        "aws",
        "Amazon Bedrock, Titan embeddings, Bedrock Guardrails and batch inference, S3 corpora and run stores",
    ),
    "s3transfer": ("aws", "S3 corpora and run stores"),
    "opensearchpy": ("opensearch", "the OpenSearch store"),
    "fastapi": ("serve", "the review app (`ragharness serve`)"),
    "starlette": ("serve", "the review app (`ragharness serve`)"),
    "uvicorn": ("serve", "the review app (`ragharness serve`)"),
    "multipart": ("serve", "the review app's forms (`ragharness serve`)"),
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


def require(module: str) -> None:
    """Import `module` now, when the component that needs it is built: a missing extra is a config error naming
    the extra before any call is made, never a failed call per item."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        raise missing from exc


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
