"""Layout prints: what parent suggestion compares of two definitions, small enough to store with a version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.hashing import content_hash
from ingest.model import FormDefinition
from ingest.native import export_native


@dataclass(frozen=True, slots=True)
class LayoutPrints:
    """A definition's layout nodes and field keys as 64-bit hashes, and its layout hash."""

    nodes: frozenset[int]
    field_keys: frozenset[int]
    # The content hash with the form key left out: equal for byte-identical layouts of different forms.
    layout: str


def print_id(text: str) -> int:
    """A signed 64-bit hash of a print (Neo4j integers are signed 64-bit)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big", signed=True
    )


def node_prints(native: dict[str, Any]) -> frozenset[int]:
    """Each node of a native definition as the hash of its own properties, children left out."""
    prints: set[int] = set()

    def walk(node: dict[str, Any], top: bool) -> None:
        own = {
            key: value
            for key, value in node.items()
            if not (top and key == "key")
            and not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value))
        }
        prints.add(print_id(json.dumps(own, sort_keys=True, ensure_ascii=False, default=str)))
        for value in node.values():
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, dict):
                        walk(child, False)

    walk(native, True)
    return frozenset(prints)


def field_key_prints(definition: FormDefinition) -> frozenset[int]:
    """The keys of the definition's fields, at any depth, as hashes."""
    return frozenset(print_id(field.key) for field in definition.fields())


def layout_hash(definition: FormDefinition) -> str:
    """The content hash of the definition as the layout of no particular form."""
    return content_hash(definition.model_copy(update={"key": ""}))


def layout_prints(definition: FormDefinition, native: dict[str, Any] | None = None) -> LayoutPrints:
    """The prints of a definition; `native` is its export when the caller already has it."""
    return LayoutPrints(
        nodes=node_prints(export_native(definition) if native is None else native),
        field_keys=field_key_prints(definition),
        layout=layout_hash(definition),
    )


def stored_prints(nodes: Iterable[int], field_keys: Iterable[int], layout: str) -> LayoutPrints:
    """Prints as a version stores them."""
    return LayoutPrints(nodes=frozenset(nodes), field_keys=frozenset(field_keys), layout=layout)
