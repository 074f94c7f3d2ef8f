"""Gold sets: typed, validated on load, every problem reported with file, item id and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ragharness.core.errors import GoldSetError
from ragharness.core.settings import check_filter_fields, format_validation_error
from ragharness.core.types import GoldItem, GoldSet
from ragharness.core.yamlio import load_strict


def _raw_items(file: Path) -> tuple[str, list[Any], list[str]]:
    problems: list[str] = []
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".jsonl":
        items: list[Any] = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.append(f"{file}: line {n}: not valid JSON ({exc.msg}); each line must be one item object")
        return file.stem, items, problems
    try:
        raw = load_strict(text)
    except yaml.YAMLError as exc:
        raise GoldSetError(f"{file}: not valid YAML: {exc}") from exc
    if isinstance(raw, list):
        return file.stem, raw, problems
    if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
        raise GoldSetError(f"{file}: expected a mapping with `name` and an `items` list (or a list of items)")
    unknown = sorted(set(raw) - {"name", "items"})
    if unknown:
        problems.append(f"{file}: top level: unknown key(s) {unknown}; allowed: name, items")
    return str(raw.get("name") or file.stem), raw["items"], problems


def load_goldset(path: str | Path, known_sources: set[str] | None = None) -> GoldSet:
    """Load a YAML or JSONL gold set. Raises GoldSetError listing every problem.

    `known_sources`, when given, are the document ids of the ingested corpus (a chunk id `doc#n` is checked
    by its document part): expected sources that
    name none of them are reported (a typo there silently zeroes retrieval metrics).
    """
    file = Path(path)
    if not file.is_file():
        raise GoldSetError(f"{file}: gold set file not found")
    try:
        name, raw_items, problems = _raw_items(file)
    except UnicodeDecodeError as exc:
        raise GoldSetError(f"{file}: not UTF-8 text ({exc.reason})") from exc
    items: list[GoldItem] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_items):
        item = _check_item(file, index, raw, seen, known_sources, problems)
        if item is not None:
            items.append(item)
    if not raw_items:
        problems.append(f"{file}: the gold set has no items")
    if problems:
        raise GoldSetError(f"{file}: {len(problems)} problem(s) in the gold set", problems)
    return GoldSet(name=name, source=str(file), items=items)


def _check_item(
    file: Path, index: int, raw: Any, seen: dict[str, int], known_sources: set[str] | None, problems: list[str]
) -> GoldItem | None:
    """Validate one raw item, appending every problem found; returns the item if it parsed."""
    label = f"item {raw.get('id')!r}" if isinstance(raw, dict) and raw.get("id") else f"item #{index + 1}"
    if not isinstance(raw, dict):
        problems.append(f"{file}: {label}: expected a mapping of fields, got {type(raw).__name__}")
        return None
    try:
        item = GoldItem.model_validate(raw)
    except ValidationError as exc:
        problems.extend(format_validation_error(f"{file}: {label}", exc, prefix="field"))
        return None
    try:
        check_filter_fields(item.filters)
    except ValueError as exc:
        problems.append(f"{file}: {label}: field filters: {exc}")
    if item.id in seen:
        problems.append(f"{file}: {label}: field id: duplicate of item #{seen[item.id] + 1}; ids must be unique")
    seen.setdefault(item.id, index)
    if item.answerable and not item.reference_answer.strip() and "retrieval-only" not in item.tags:
        problems.append(
            f"{file}: {label}: field reference_answer: required when answerable is true "
            "(or tag the item `retrieval-only`)"
        )
    if item.answerable and not item.expected_sources:
        problems.append(f"{file}: {label}: field expected_sources: list the doc or chunk ids holding the answer")
    problems += _assertion_problems(f"{file}: {label}", item, known_sources)
    if known_sources is not None:
        missing = [s for s in item.expected_sources if s.split("#", 1)[0] not in known_sources]
        if missing:
            problems.append(
                f"{file}: {label}: field expected_sources: {missing} not found in the ingested corpus; "
                "use document ids (see the ingest report) or chunk ids"
            )
    return item


def _assertion_problems(where: str, item: GoldItem, known_sources: set[str] | None) -> list[str]:
    problems: list[str] = []
    first: dict[str, int] = {}
    for n, a in enumerate(item.assertions):
        if a.metric in first:
            problems.append(
                f"{where}: field assertions[{n}]: a second {a.metric!r} (first: assertions[{first[a.metric]}]); "
                "give each a distinct `name`"
            )
        first.setdefault(a.metric, n)
        if a.type == "must_cite" and known_sources is not None and a.source.split("#", 1)[0] not in known_sources:
            problems.append(f"{where}: field assertions[{n}].source: {a.source!r} is not a document of the corpus")
    return problems


def goldset_json_schema() -> dict[str, Any]:
    return GoldSet.model_json_schema()
