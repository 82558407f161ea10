"""Content hash: same content, same hash, whatever the key order, whitespace or export bookkeeping."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ingest.model import CONTAINER_TYPES, FormDefinition, LayoutNode

# Editor bookkeeping on a layout node (Form.io component ids, NAV navId): kept in extras, never hashed.
VOLATILE_NODE_EXTRAS = frozenset({"id", "navId", "keyModified"})


def content_hash(defn: FormDefinition) -> str:
    """'sha256:<hex>' over the canonical JSON of the definition without metadata and volatile extras."""
    # Fields at their default are left out, so adding an optional model field keeps every existing hash.
    content = defn.model_dump(mode="json", exclude_defaults=True, exclude={"metadata"}, serialize_as_any=True)
    _tag_nodes(defn.layout, content.get("layout", []))
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _tag_nodes(nodes: list[LayoutNode], dumped: list[dict[str, Any]]) -> None:
    """Put back each node's kind (a default, so left out above) and drop its volatile extras."""
    for node, out in zip(nodes, dumped, strict=True):
        out["node"] = node.node
        extras = out.get("extras")
        if extras and not VOLATILE_NODE_EXTRAS.isdisjoint(extras):
            kept = {k: v for k, v in extras.items() if k not in VOLATILE_NODE_EXTRAS}
            if kept:
                out["extras"] = kept
            else:
                del out["extras"]
        if isinstance(node, CONTAINER_TYPES):
            _tag_nodes(node.children, out.get("children", []))
