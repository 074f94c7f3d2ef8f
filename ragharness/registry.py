"""Plugin registries, one per seam. Built-ins register exactly as a third-party plugin would.

A plugin package exposes an entry point in the group `ragharness.plugins` whose object is a callable taking
no arguments; it calls `PROVIDERS.register(...)` (or another registry) for what it adds. Factories import
their heavy dependencies lazily, so listing or validating never loads torch or boto3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ragharness.errors import ConfigError

if TYPE_CHECKING:
    from ragharness.eval.providers.base import Provider
    from ragharness.eval.scorers.base import Scorer
    from ragharness.guardrails.base import Guardrail
    from ragharness.retrieval.embedders import Embedder
    from ragharness.retrieval.store import VectorStore

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    kind: str
    factory: Callable[..., T]
    form: str
    help: str


class Registry(Generic[T]):
    def __init__(self, seam: str) -> None:
        self.seam = seam
        self._entries: dict[str, Entry[T]] = {}

    def register(self, kind: str, factory: Callable[..., T], *, form: str | None = None, help: str = "") -> None:
        self._entries[kind] = Entry(kind, factory, form or kind, help)

    def kinds(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def forms(self) -> list[str]:
        load_plugins()
        return [self._entries[k].form for k in sorted(self._entries)]

    def get(self, kind: str, *, where: str = "") -> Entry[T]:
        load_plugins()
        entry = self._entries.get(kind)
        if entry is None:
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}unknown {self.seam} {kind!r}; valid forms: {', '.join(self.forms())}")
        return entry

    def create(self, kind: str, *args: Any, where: str = "", **kwargs: Any) -> T:
        return self.get(kind, where=where).factory(*args, **kwargs)


PROVIDERS: Registry[Provider] = Registry("provider")
EMBEDDERS: Registry[Embedder] = Registry("embedder")
STORES: Registry[VectorStore] = Registry("store")
SCORERS: Registry[Scorer] = Registry("scorer")
GUARDRAILS: Registry[Guardrail] = Registry("guardrail")

_loaded = False


def load_plugins() -> None:
    """Register built-ins, then every installed `ragharness.plugins` entry point. Idempotent."""
    global _loaded  # noqa: PLW0603 - one process-wide registry, loaded once
    if _loaded:
        return
    _loaded = True
    from ragharness import builtins

    builtins.register()
    for ep in entry_points(group="ragharness.plugins"):
        ep.load()()
