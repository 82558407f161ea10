"""The layout index value types: point ids, tenants in payloads, filters and vector checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vectors.index import LayoutFilter, LayoutHit, LayoutPoint, best_first, vector_as_list

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
