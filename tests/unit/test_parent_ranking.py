"""The parent ranking on small hand-made definitions: structure first, cosine next, recency last; one
suggestion per distinct layout; prints as stored with a version, or computed for one stored without."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.similarity.parents import jaccard, one_per_layout, parent_overlap, prints_of, rank_parents
from graph.similarity import HitContext, StoredPrints
from ingest.native import import_native
from ingest.prints import LayoutPrints, field_key_prints, layout_hash, node_prints, print_id
from ingest.prints import layout_prints as prints_of_definition
from vectors.index import LayoutHit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def field(key: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"node": "field", "key": key, "label": label, "kind": "text", **extra}


def layout_prints(native: dict[str, Any]) -> LayoutPrints:
    return prints_of_definition(import_native(native))


def hash_of(native: dict[str, Any]) -> str:
    return layout_hash(import_native(native))


def form(form_key: str, *fields: dict[str, Any], title: str = "Application") -> dict[str, Any]:
    return {
        "key": form_key,
        "title": title,
        "layout": [{"node": "page", "key": "p1", "children": list(fields)}],
    }


Candidates = tuple[list[LayoutHit], dict[str, HitContext], dict[str, LayoutPrints]]


def candidates(*rows: tuple[str, dict[str, Any] | None, float, int]) -> Candidates:
    """(id, definition, cosine, minutes after T0) per candidate: vector hits, their context, their prints."""
    hits = [LayoutHit(id=vid, score=cosine, payload={}) for vid, _, cosine, _ in rows]
    context = {
        vid: HitContext(
            id=vid,
            form_key=f"form-{vid}",
            number=1,
            created_at=T0 + timedelta(minutes=minutes),
            is_latest=True,
            pin_count=0,
        )
        for vid, _, _, minutes in rows
    }
    prints = {vid: layout_prints(definition) for vid, definition, _, _ in rows if definition is not None}
    return hits, context, prints


def ranked_ids(target: dict[str, Any], found: Candidates) -> list[str]:
    hits, context, prints = found
    return [hit.id for hit, _ in rank_parents(layout_prints(target), hits, context, prints)]


def suggested(target: dict[str, Any], found: Candidates) -> list[tuple[str, list[str]]]:
    """(likeliest version, the others with the same layout) per distinct layout."""
    hits, context, prints = found
    ranked = rank_parents(layout_prints(target), hits, context, prints)
    return [(s.hit.id, [hit.id for hit in s.same_layout]) for s in one_per_layout(ranked, prints)]


def test_the_form_key_is_not_part_of_the_fingerprints() -> None:
    a = form("r0001", field("name", "Name"))
    b = form("r0002", field("name", "Name"))
    assert node_prints(a) == node_prints(b)
    assert parent_overlap(layout_prints(a), layout_prints(b)) == 1.0


def test_field_keys_are_collected_at_any_depth() -> None:
    nested = form("f", field("a", "A"), {"node": "group", "key": "g", "children": [field("b", "B")]})
    assert field_key_prints(import_native(nested)) == {print_id("a"), print_id("b")}


def test_jaccard_of_two_empty_sets_is_zero() -> None:
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert jaccard(frozenset({1}), frozenset({1, 2})) == 0.5


def test_the_parent_beats_the_grandparent_it_was_edited_from() -> None:
    grandparent = form("g", field("name", "Name"), field("email", "E-mail"), field("phone", "Phone"))
    parent = form("p", field("name", "Full name"), field("email", "E-mail"), field("phone", "Phone"))
    child = form("c", field("name", "Full name"), field("email", "E-mail address"), field("phone", "Phone"))
    # The grandparent is the closer vector and the newer one: only the structure can say which is which.
    found = candidates(("parent", parent, 0.90, 1), ("grandparent", grandparent, 0.95, 2))
    assert ranked_ids(child, found) == ["parent", "grandparent"]


def test_shared_field_keys_decide_when_the_node_overlap_ties() -> None:
    target = form("t", field("a", "A"), field("b", "B"), field("c", "C"), field("d", "D"))
    # Both keep a and b unchanged and differ in two more nodes: the same node overlap.
    other_form = form("x", field("a", "A"), field("b", "B"), field("e", "C"), field("f", "D"))
    same_keys = form("y", field("a", "A"), field("b", "B"), field("c", "C?"), field("d", "D?"))
    t, x, y = layout_prints(target), layout_prints(other_form), layout_prints(same_keys)
    assert jaccard(t.nodes, x.nodes) == jaccard(t.nodes, y.nodes)
    found = candidates(("other-form", other_form, 0.99, 5), ("same-keys", same_keys, 0.90, 1))
    assert ranked_ids(target, found) == ["same-keys", "other-form"]
    assert parent_overlap(t, y) > parent_overlap(t, x)


def test_a_cosine_gap_orders_structural_ties_before_recency() -> None:
    target = form("t", field("a", "A"), field("b", "B"))
    left = form("l", field("a", "A"), field("b", "B1"))
    right = form("r", field("a", "A"), field("b", "B2"))
    found = candidates(("older-closer", left, 0.97, 1), ("newer", right, 0.93, 2))
    assert ranked_ids(target, found) == ["older-closer", "newer"]


def test_near_equal_cosines_leave_structural_ties_to_recency() -> None:
    target = form("t", field("a", "A"), field("b", "B"))
    left = form("l", field("a", "A"), field("b", "B1"))
    right = form("r", field("a", "A"), field("b", "B2"))
    # 0.9712 and 0.9688 round to the same two decimals: embedding noise, so the newer goes first.
    found = candidates(("older", left, 0.9712, 1), ("newer", right, 0.9688, 2))
    assert ranked_ids(target, found) == ["newer", "older"]


def test_structure_outweighs_recency_and_cosine() -> None:
    target = form("t", field("a", "A"), field("b", "B"), field("c", "C"))
    close = form("close", field("a", "A"), field("b", "B"), field("c", "C changed"))
    far = form("far", field("a", "A"), field("x", "X"), field("y", "Y"))
    found = candidates(("far", far, 0.99, 9), ("close", close, 0.80, 1))
    assert ranked_ids(target, found) == ["close", "far"]


def test_hits_without_a_version_or_a_definition_are_left_out() -> None:
    target = form("t", field("a", "A"))
    found = candidates(("kept", form("k", field("a", "A")), 0.9, 1), ("bare", None, 0.99, 2))
    found[0].append(LayoutHit(id="unknown", score=1.0, payload={}))
    assert ranked_ids(target, found) == ["kept"]


def test_the_layout_hash_ignores_the_form_key_and_nothing_else() -> None:
    name = hash_of(form("r0001", field("name", "Name")))
    assert hash_of(form("r0002", field("name", "Name"))) == name
    assert hash_of(form("r0001", field("name", "Name?"))) != name
    assert hash_of(form("r0001", field("name", "Name"), title="Other")) != name
    assert hash_of(form("f", field("a", "A"), field("b", "B"))) != hash_of(
        form("f", field("b", "B"), field("a", "A"))
    )


def test_identical_layouts_of_other_forms_are_one_suggestion() -> None:
    target = form("t", field("a", "A"), field("b", "B"), field("c", "C"))
    copied = form("c1", field("a", "A"), field("b", "B"), field("c", "C?"))
    # The same layout as `copied` under two other form keys, created before and after it.
    older_copy = form("c0", field("a", "A"), field("b", "B"), field("c", "C?"))
    newer_copy = form("c2", field("a", "A"), field("b", "B"), field("c", "C?"))
    # One field reordered: the same nodes and keys, so the same structural score, but another layout.
    reordered = form("ro", field("b", "B"), field("a", "A"), field("c", "C?"))
    other = form("o", field("a", "A"), field("x", "X"))
    found = candidates(
        ("copied", copied, 0.95, 2),
        ("older-copy", older_copy, 0.95, 1),
        ("newer-copy", newer_copy, 0.95, 3),
        ("reordered", reordered, 0.95, 0),
        ("other", other, 0.90, 4),
    )
    assert ranked_ids(target, found)[:3] == ["newer-copy", "copied", "older-copy"]
    assert suggested(target, found) == [
        ("newer-copy", ["copied", "older-copy"]),
        ("reordered", []),
        ("other", []),
    ]


def test_stored_prints_are_the_prints_computed_from_the_definition() -> None:
    native = form("f", field("a", "A"), {"node": "group", "key": "g", "children": [field("b", "B")]})
    computed = layout_prints(native)
    stored = StoredPrints(
        layout_nodes=sorted(computed.nodes),
        layout_keys=sorted(computed.field_keys),
        layout_hash=computed.layout,
        definition=None,
    )
    assert prints_of(stored) == computed
    # A version stored before prints were kept: they are computed from its definition.
    legacy = StoredPrints(layout_nodes=None, layout_keys=None, layout_hash=None, definition=native)
    assert prints_of(legacy) == computed
    assert prints_of(StoredPrints(None, None, None, None)) is None
    # Hashes are signed 64-bit integers, as Neo4j stores them.
    assert all(-(2**63) <= value < 2**63 for value in computed.nodes | computed.field_keys)
