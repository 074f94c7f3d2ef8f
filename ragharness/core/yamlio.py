"""YAML that refuses duplicate keys and aliases. `a: 1` then `a: 2` silently keeps the second in PyYAML, which hides
typos in configs, gold sets and front matter: `load_strict` raises a YAMLError naming both lines instead. Anchors and
aliases (`&a` / `*a`, also `<<: *a` merges) are refused: a few hundred bytes of nested aliases expand to gigabytes
(a "billion laughs" bomb in a document's front matter), and no file the harness reads needs them."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML's stubs leave it untyped
            raise ComposerError(
                None,
                None,
                f"found the alias *{event.anchor}: aliases are refused (they can expand without limit); write the "
                "value out in full",
                event.start_mark,
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges may be overridden on purpose
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: let the base constructor report it
            continue
        if first is not None:
            raise ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r} (first at line {first.start_mark.line + 1}); keep only one",
                key_node.start_mark,
            )
        seen[key] = key_node
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_strict(text: str | bytes) -> Any:
    """`yaml.safe_load` that raises `yaml.YAMLError` on a duplicate mapping key or an alias."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
