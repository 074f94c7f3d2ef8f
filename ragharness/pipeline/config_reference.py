"""Every key of harness.yaml, from the config models themselves (so the reference can never drift from what is
validated): `ragharness config-reference` prints it as Markdown, and an unknown key's error suggests the nearest one."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from ragharness.pipeline.config import HarnessConfig

INTERNAL = {"base_dir", "source_file"}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds (`X`, `X | None`, `list[X]`, `dict[str, X]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("ragharness.config.", "")
    return text.replace("NoneType", "None")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    return repr(value) if value not in ("", None) else ("''" if value == "" else "none")


def entries(model: type[BaseModel] = HarnessConfig, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key path, type, default, description) of every key, sections before their keys."""
    for name, field in model.model_fields.items():
        if name in INTERNAL:
            continue
        key = field.alias or name
        path = f"{prefix}{key}"
        annotation = field.annotation
        many = typing.get_origin(annotation) in (list, tuple) or isinstance(annotation, types.GenericAlias)
        yield path, _type_name(annotation), _default(field), (field.description or "").replace("\n", " ")
        for sub in _models_in(annotation):
            yield from entries(sub, f"{path}[]." if many and typing.get_origin(annotation) is list else f"{path}.")


def markdown() -> str:
    lines = ["# harness.yaml: every key", "", "| key | type | default | what it is |", "| --- | --- | --- | --- |"]
    for path, kind, default, what in entries():
        lines.append(f"| `{path}` | `{kind}` | {default} | {what} |".replace("|  |", "| |"))
    return "\n".join(lines) + "\n"


def keys_at(loc: Sequence[str | int], model: type[BaseModel] = HarnessConfig) -> list[str]:
    """The keys allowed where `loc` (a validation error's location, without its last part) points."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for m in current:
            field = m.model_fields.get(str(part))
            if field is not None:
                nxt += _models_in(field.annotation)
        current = nxt or current
    return sorted({f.alias or n for m in current for n, f in m.model_fields.items() if n not in INTERNAL})


def suggestion(loc: Sequence[str | int]) -> str:
    """'; did you mean `x`?' for an unknown key at `loc`, or ''."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1], keys_at(loc[:-1]), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""
