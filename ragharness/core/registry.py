"""Plugin registries, one per seam. Built-ins register exactly as a third-party plugin would.

A plugin package exposes an entry point in the group `ragharness.plugins` whose object is a callable taking
no arguments; it calls `PROVIDERS.register(...)` (or another registry) for what it adds. The built-ins are
registered by ragharness's own entry point (`ragharness.pipeline.builtins:register`), loaded first. Factories
import their heavy dependencies lazily, so listing or validating never loads ONNX Runtime or boto3.
`ragharness.plugins` re-exports what a plugin needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ragharness.core.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from ragharness.generation.providers.base import Provider
    from ragharness.guardrails.base import Guardrail
    from ragharness.retrieval.embedders import Embedder
    from ragharness.retrieval.store import VectorStore
    from ragharness.scoring.base import Scorer

T = TypeVar("T")


class NoOptions(BaseModel):
    """The options of a kind that takes none: any option given is an error naming it."""

    model_config = ConfigDict(extra="forbid")


def check_options(entry: Entry[Any], options: dict[str, Any], where: str) -> dict[str, Any]:
    """`options` validated by what `entry` declares (as given when it declares nothing); a ConfigError naming `where`
    and each bad option otherwise."""
    if entry.options is None:
        return options
    try:
        return entry.options.model_validate(options).model_dump(exclude_unset=True)
    except ValidationError as exc:
        accepted = ", ".join(entry.options.model_fields) or "none"
        problems = "; ".join(
            f"options.{'.'.join(map(str, e['loc']))}: "
            + ("unknown option" if e["type"] == "extra_forbidden" else f"{e['msg']} (got {e.get('input')!r})")
            for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}; {entry.kind} accepts options: {accepted}") from exc


@dataclass(frozen=True)
class Entry(Generic[T]):
    kind: str
    factory: Callable[..., T]
    form: str
    help: str
    options: type[BaseModel] | None = None
    """The options this kind accepts from harness.yaml (checked before the factory runs); None: the factory checks
    whatever it is given itself."""


class Registry(Generic[T]):
    def __init__(self, seam: str) -> None:
        self.seam = seam
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self,
        kind: str,
        factory: Callable[..., T],
        *,
        form: str | None = None,
        help: str = "",
        options: type[BaseModel] | None = None,
    ) -> None:
        """Add `kind` with a one-line `help` (shown by `ragharness plugins`) and, optionally, the pydantic model of
        the options it takes (`NoOptions`: none). A name already taken is an error (a plugin never silently
        replaces another's)."""
        if not help.strip():
            raise PluginError(f"{self.seam} {kind!r} ({_origin(factory)}): give it a one-line help= description")
        if kind in self._entries:
            raise PluginError(
                f"{self.seam} {kind!r} is registered twice (by {_origin(self._entries[kind].factory)} and by "
                f"{_origin(factory)}); give one of them another name"
            )
        self._entries[kind] = Entry(kind, factory, form or kind, help, options)

    def unregister(self, kind: str) -> None:
        """Remove `kind` (tests that register a plugin of their own clean up with this)."""
        self._entries.pop(kind, None)

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
"""Guardrails listed in `guardrails.input` / `.output`: factory(options, ctx: GuardrailContext) returns one; the
context carries the run's leak watch, which a guardrail that finds personal data tells what it found."""
GUARDRAIL_BACKENDS: Registry[list[Guardrail]] = Registry("guardrail backend")
"""Backends of `guardrails.policy` (local, bedrock, a plugin's): factory(policy, stage, ctx: GuardrailContext)
returns the stage's guardrails. A plugin backend should pass `ragharness.testing.guardrail.GuardrailPolicyContract`."""

_loaded = False
_BUILTINS = "ragharness.pipeline.builtins"


def _origin(factory: Callable[..., object]) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', '?')}"


def load_plugins() -> None:
    """Register the built-ins, then every other installed `ragharness.plugins` entry point. Idempotent. A plugin
    that fails to load is named in the error."""
    global _loaded  # noqa: PLW0603 - one process-wide registry, loaded once
    if _loaded:
        return
    _loaded = True
    eps = sorted(entry_points(group="ragharness.plugins"), key=lambda ep: (not ep.value.startswith(_BUILTINS), ep.name))
    if not any(ep.value.startswith(_BUILTINS) for ep in eps):
        raise PluginError(
            "ragharness's built-in plugins are not registered: the package is not installed. "
            "Install it (`pip install -e .` or `make setup`)"
        )
    for ep in eps:
        try:
            ep.load()()
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}, group ragharness.plugins) failed to load: {type(exc).__name__}: "
                f"{exc}; fix or uninstall the package that provides it (`pip show -f` names it)"
            ) from exc
