"""The similar layouts a created version answers with say whether they were looked up: [] is "none found",
null is "not looked up" (the index could not be asked), never the one for the other."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from app.formversions.service import FormVersionProcessor
from graph.database import Graph
from graph.forms import FormVersionRepository, StoredVersion
from vectors.edge import EdgeLayoutIndex
from vectors.index import LayoutPoint

pytestmark = pytest.mark.anyio


def stored(form_key: str) -> StoredVersion:
    return StoredVersion(
        id=str(uuid.uuid4()),
        tenant="acme",
        form_key=form_key,
        number=1,
        content_hash="0" * 64,
        created_at=datetime.now(UTC),
        label=None,
        metadata={},
        source_format="pageforge",
        title=form_key,
        parents=[],
    )


def point(version: StoredVersion) -> LayoutPoint:
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    payload = {"tenant": "acme", "version_id": version.id, "form_key": version.form_key, "number": 1}
    return LayoutPoint(id=version.id, tenant="acme", vector=vector, payload=payload)


async def test_similar_is_a_list_when_the_index_answers_and_null_when_it_cannot(
    graph: Graph, index: EdgeLayoutIndex, caplog: pytest.LogCaptureFixture
) -> None:
    version, twin = stored("contact"), stored("contact-copy")
    processor = FormVersionProcessor(versions=FormVersionRepository(graph), relay=None, index=index)

    index.upsert([point(version)])
    assert await processor._similar("acme", version) == []  # nothing from another form yet
    index.upsert([point(twin)])
    found = await processor._similar("acme", version)
    assert found is not None
    assert [hit.version_id for hit in found] == [twin.id]

    index.close()
    with caplog.at_level(logging.WARNING, logger="app.formversions.service"):
        assert await processor._similar("acme", version) is None
    assert f"similar layouts of {version.id} unavailable" in caplog.text
