"""Content hash: same content, same hash, whatever the key order, whitespace or export bookkeeping."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ingest.model import FormDefinition

# Editor bookkeeping on a layout node (Form.io component ids, NAV navId): kept in extras, never hashed.
VOLATILE_NODE_EXTRAS = frozenset({"id", "navId", "keyModified"})


def content_hash(defn: FormDefinition) -> str:
    """'sha256:<hex>' over the canonical JSON of the definition without metadata and volatile extras."""
    content = defn.model_dump(mode="json", exclude={"metadata"})
    content["layout"] = [_without_volatile(node) for node in content["layout"]]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _without_volatile(node: dict[str, Any]) -> dict[str, Any]:
    stripped = dict(node)
    stripped["extras"] = {k: v for k, v in node["extras"].items() if k not in VOLATILE_NODE_EXTRAS}
    if "children" in node:
        stripped["children"] = [_without_volatile(child) for child in node["children"]]
    return stripped
