"""PDF renders of big forms as jobs (202 with the job's Location), on the real stack: the file is the job's
result; a render that cannot be made fails the job, saying why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.e2e.conftest import create_tenant, post_version
from tests.e2e.jobs import wait_finished


@pytest.fixture(scope="module")
def small_pdf_jobs(app_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app whose PDFs of forms over 2 fields are jobs, and whose PDFs stop at 2 pages."""
    render = app_settings.render.model_copy(update={"pdf_job_fields": 2, "max_pdf_pages": 2})
    vectors = app_settings.vectors.model_copy(
        update={
            "path": tmp_path_factory.mktemp("pdf-jobs"),
            "collection": app_settings.vectors.collection + "-pdf",
        }
    )
    with TestClient(
        create_app(app_settings.model_copy(update={"render": render, "vectors": vectors}))
    ) as client:
        yield client


def form_of(fields: int) -> dict[str, Any]:
    return {
        "key": "big",
        "title": "Big",
        "layout": [{"node": "field", "key": f"f{i}"} for i in range(fields)],
    }


def test_a_pdf_of_a_big_form_is_a_job_whose_file_is_its_result(
    small_pdf_jobs: TestClient, app_settings: Settings
) -> None:
    client = small_pdf_jobs
    tenant = create_tenant(app_settings)
    version = post_version(client, tenant, "big", form_of(3))
    queued = client.get(f"/api/v1/form-versions/{version['id']}/render?format=pdf", headers=tenant.headers)
    assert queued.status_code == 202, queued.text
    job = wait_finished(client, tenant, queued.headers["location"])
    assert job["kind"] == "render"
    assert job["state"] == "succeeded", job
    pdf = client.get(job["links"]["result"], headers=tenant.headers)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert job["result"] == {
        "version_id": version["id"],
        "media_type": "application/pdf",
        "bytes": len(pdf.content),
    }
    # Rendered now: the same PDF is served at once from the cache; HTML was never a job.
    assert client.get(
        f"/api/v1/form-versions/{version['id']}/render?format=pdf", headers=tenant.headers
    ).content == (pdf.content)
    assert (
        client.get(f"/api/v1/form-versions/{version['id']}/render", headers=tenant.headers).status_code == 200
    )
    other = create_tenant(app_settings)
    assert client.get(job["links"]["result"], headers=other.headers).status_code == 404

    small = post_version(client, tenant, "small", {**form_of(2), "key": "small"})
    inline = client.get(f"/api/v1/form-versions/{small['id']}/render?format=pdf", headers=tenant.headers)
    assert inline.status_code == 200
    assert inline.headers["content-type"] == "application/pdf"


def test_a_pdf_job_that_cannot_render_fails_saying_why(
    small_pdf_jobs: TestClient, app_settings: Settings
) -> None:
    client = small_pdf_jobs
    tenant = create_tenant(app_settings)
    version = post_version(client, tenant, "huge", {**form_of(60), "key": "huge"})
    queued = client.post(
        f"/api/v1/form-versions/{version['id']}/render?format=pdf",
        headers=tenant.headers,
        json={"data": {"f1": "x"}},
    )
    assert queued.status_code == 202, queued.text
    job = wait_finished(client, tenant, queued.headers["location"])
    assert job["state"] == "failed"
    assert job["errors"][0]["item"] == version["id"]
    assert "more than 2 pages" in job["errors"][0]["reason"]
    missing = client.get(job["links"]["result"], headers=tenant.headers)
    assert missing.status_code == 409
    assert "is failed and has no file" in missing.json()["detail"]
