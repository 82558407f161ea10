"""The layout index value types: point ids, tenants in payloads, filters and vector checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from vectors.index import (
    TIE_MARGIN,
    LayoutFilter,
    LayoutHit,
    LayoutPoint,
    best_first,
    top_hits,
    vector_as_list,
)

POINT_ID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def test_point_ids_are_stored_in_canonical_uuid_form() -> None:
    point = LayoutPoint(id=POINT_ID.upper(), tenant="acme", vector=None)

    assert point.id == POINT_ID


def test_a_point_id_that_is_not_a_uuid_is_refused() -> None:
    with pytest.raises(ValueError, match="not a UUID"):
        LayoutPoint(id="version-17", tenant="acme", vector=None)


def test_the_stored_payload_always_carries_the_tenant() -> None:
    point = LayoutPoint(id=POINT_ID, tenant="acme", vector=None, payload={"form_key": "nav100750"})

    assert point.stored_payload() == {"form_key": "nav100750", "tenant": "acme"}
    assert point.payload == {"form_key": "nav100750"}


def test_a_payload_naming_another_tenant_is_refused() -> None:
    with pytest.raises(ValueError, match="payload tenant 'other'"):
        LayoutPoint(id=POINT_ID, tenant="acme", vector=None, payload={"tenant": "other"})
    with pytest.raises(ValueError, match="needs a tenant"):
        LayoutPoint(id=POINT_ID, tenant="", vector=None)


def test_points_compare_by_id_tenant_and_payload_not_vector() -> None:
    first = LayoutPoint(id=POINT_ID, tenant="acme", vector=np.ones(3), payload={"x": "1"})
    second = LayoutPoint(id=POINT_ID, tenant="acme", vector=np.zeros(3), payload={"x": "1"})

    assert first == second
    assert first != LayoutPoint(id=POINT_ID, tenant="acme", vector=None, payload={"x": "2"})


def test_a_filter_value_must_be_a_list_not_a_bare_string() -> None:
    with pytest.raises(TypeError, match="'form_key' takes a list"):
        LayoutFilter(must={"form_key": "nav100750"})
    with pytest.raises(TypeError, match="'status' takes a list"):
        LayoutFilter(must_not={"status": "draft"})


def test_vectors_are_checked_for_size_and_finite_values() -> None:
    assert vector_as_list(np.array([0.5, 0.25], dtype=np.float64), 2) == [0.5, 0.25]
    with pytest.raises(ValueError, match="3 dimensions, the index expects 2"):
        vector_as_list([1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match="NaN"):
        vector_as_list([1.0, math.nan], 2)
    with pytest.raises(ValueError, match="required"):
        vector_as_list(None, 2)


def test_hits_whose_scores_agree_to_the_shown_decimals_come_back_in_id_order_whatever_the_engine_said() -> (
    None
):
    # The same layout scored by two replicas: a float's last bits apart (seen in a cluster test).
    first = LayoutHit(id="b4488249-46ce-499c-b200-607f7ab7facc", score=0.22980001, payload={})
    second = LayoutHit(id="cd07f6b3-f2ef-4367-9038-301148bc150c", score=0.22980004, payload={})
    better = LayoutHit(id="ff000000-0000-0000-0000-000000000000", score=0.2299, payload={})

    for answer in ([second, first, better], [first, better, second], [better, second, first]):
        assert [hit.id for hit in best_first(answer)] == [better.id, first.id, second.id]


def test_the_k_best_hits_are_the_same_whichever_replica_broke_a_tie_at_the_kth_place() -> None:
    # Five layouts with one text: two replicas score them a float's last bits apart, in opposite orders,
    # and only some of them fit in k. Each replica ranks by its raw scores and the engine cuts at its limit.
    ids = [f"{n:08x}-0000-0000-0000-000000000000" for n in range(1, 6)]
    better = LayoutHit(id="ff000000-0000-0000-0000-000000000000", score=0.3, payload={})

    def replica(offsets: list[float]) -> Callable[[int], list[LayoutHit]]:
        scored = [
            better,
            *(LayoutHit(id=i, score=0.2298 + off, payload={}) for i, off in zip(ids, offsets, strict=True)),
        ]

        def query(limit: int) -> list[LayoutHit]:
            return sorted(scored, key=lambda hit: -hit.score)[:limit]

        return query

    rising = [n * 1e-9 for n in range(5)]
    one = top_hits(replica(rising), 3)
    other = top_hits(replica(rising[::-1]), 3)

    assert [hit.id for hit in one] == [hit.id for hit in other] == [better.id, ids[0], ids[1]]


def test_a_tie_wider_than_the_margin_is_asked_for_again_until_it_is_whole() -> None:
    same = [
        LayoutHit(id=f"{n:08x}-0000-0000-0000-000000000000", score=0.5 + n * 1e-9, payload={})
        for n in range(40)
    ]
    lower = [LayoutHit(id=f"{n:08x}-1111-0000-0000-000000000000", score=0.1, payload={}) for n in range(100)]
    asked: list[int] = []

    def query(limit: int) -> list[LayoutHit]:
        asked.append(limit)
        return sorted([*same, *lower], key=lambda hit: -hit.score)[:limit]

    answer = top_hits(query, 2)

    assert [hit.id for hit in answer] == [same[0].id, same[1].id]
    assert TIE_MARGIN == 8
    assert asked == [10, 20, 40, 80]
