"""The parent ranking on small hand-made definitions: structure first, cosine next, recency last."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.similarity.parents import (
    field_keys,
    jaccard,
    layout_fingerprints,
    layout_prints,
    parent_overlap,
    rank_parents,
)
from graph.similarity import HitContext
from vectors.index import LayoutHit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def field(key: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"node": "field", "key": key, "label": label, "kind": "text", **extra}


def form(form_key: str, *fields: dict[str, Any], title: str = "Application") -> dict[str, Any]:
    return {
        "key": form_key,
        "title": title,
        "layout": [{"node": "page", "key": "p1", "children": list(fields)}],
    }


def candidates(
    *rows: tuple[str, dict[str, Any] | None, float, int],
) -> tuple[list[LayoutHit], dict[str, HitContext]]:
    """(id, definition, cosine, minutes after T0) per candidate, as vector hits with their context."""
    hits = [LayoutHit(id=vid, score=cosine, payload={}) for vid, _, cosine, _ in rows]
    context = {
        vid: HitContext(
            id=vid,
            form_key=f"form-{vid}",
            number=1,
            created_at=T0 + timedelta(minutes=minutes),
            is_latest=True,
            pin_count=0,
            definition=definition,
        )
        for vid, definition, _, minutes in rows
    }
    return hits, context


def ranked_ids(target: dict[str, Any], hits: list[LayoutHit], context: dict[str, HitContext]) -> list[str]:
    return [hit.id for hit, _ in rank_parents(target, hits, context)]


def test_the_form_key_is_not_part_of_the_fingerprints() -> None:
    a = form("r0001", field("name", "Name"))
    b = form("r0002", field("name", "Name"))
    assert layout_fingerprints(a) == layout_fingerprints(b)
    assert parent_overlap(layout_prints(a), layout_prints(b)) == 1.0


def test_field_keys_are_collected_at_any_depth() -> None:
    nested = form("f", field("a", "A"), {"node": "group", "key": "g", "children": [field("b", "B")]})
    assert field_keys(nested) == {"a", "b"}


def test_jaccard_of_two_empty_sets_is_zero() -> None:
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert jaccard(frozenset({"x"}), frozenset({"x", "y"})) == 0.5


def test_the_parent_beats_the_grandparent_it_was_edited_from() -> None:
    grandparent = form("g", field("name", "Name"), field("email", "E-mail"), field("phone", "Phone"))
    parent = form("p", field("name", "Full name"), field("email", "E-mail"), field("phone", "Phone"))
    child = form("c", field("name", "Full name"), field("email", "E-mail address"), field("phone", "Phone"))
    # The grandparent is the closer vector and the newer one: only the structure can say which is which.
    hits, context = candidates(("parent", parent, 0.90, 1), ("grandparent", grandparent, 0.95, 2))
    assert ranked_ids(child, hits, context) == ["parent", "grandparent"]


def test_shared_field_keys_decide_when_the_node_overlap_ties() -> None:
    target = form("t", field("a", "A"), field("b", "B"), field("c", "C"), field("d", "D"))
    # Both keep a and b unchanged and differ in two more nodes: the same node overlap.
    other_form = form("x", field("a", "A"), field("b", "B"), field("e", "C"), field("f", "D"))
    same_keys = form("y", field("a", "A"), field("b", "B"), field("c", "C?"), field("d", "D?"))
    t, x, y = layout_prints(target), layout_prints(other_form), layout_prints(same_keys)
    assert jaccard(t.nodes, x.nodes) == jaccard(t.nodes, y.nodes)
    hits, context = candidates(("other-form", other_form, 0.99, 5), ("same-keys", same_keys, 0.90, 1))
    assert ranked_ids(target, hits, context) == ["same-keys", "other-form"]
    assert parent_overlap(t, y) > parent_overlap(t, x)


def test_a_cosine_gap_orders_structural_ties_before_recency() -> None:
    target = form("t", field("a", "A"), field("b", "B"))
    left = form("l", field("a", "A"), field("b", "B1"))
    right = form("r", field("a", "A"), field("b", "B2"))
    hits, context = candidates(("older-closer", left, 0.97, 1), ("newer", right, 0.93, 2))
    assert ranked_ids(target, hits, context) == ["older-closer", "newer"]


def test_near_equal_cosines_leave_structural_ties_to_recency() -> None:
    target = form("t", field("a", "A"), field("b", "B"))
    left = form("l", field("a", "A"), field("b", "B1"))
    right = form("r", field("a", "A"), field("b", "B2"))
    # 0.9712 and 0.9688 round to the same two decimals: embedding noise, so the newer goes first.
    hits, context = candidates(("older", left, 0.9712, 1), ("newer", right, 0.9688, 2))
    assert ranked_ids(target, hits, context) == ["newer", "older"]


def test_structure_outweighs_recency_and_cosine() -> None:
    target = form("t", field("a", "A"), field("b", "B"), field("c", "C"))
    close = form("close", field("a", "A"), field("b", "B"), field("c", "C changed"))
    far = form("far", field("a", "A"), field("x", "X"), field("y", "Y"))
    hits, context = candidates(("far", far, 0.99, 9), ("close", close, 0.80, 1))
    assert ranked_ids(target, hits, context) == ["close", "far"]


def test_hits_without_a_version_or_a_definition_are_left_out() -> None:
    target = form("t", field("a", "A"))
    hits, context = candidates(("kept", form("k", field("a", "A")), 0.9, 1), ("bare", None, 0.99, 2))
    hits.append(LayoutHit(id="unknown", score=1.0, payload={}))
    assert ranked_ids(target, hits, context) == ["kept"]
