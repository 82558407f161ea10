"""Jobs on a real server process (embedded default): a real corpus uploaded as an archive is ingested while
the server runs, survives a kill -9 of the server mid-way, and gives the versions and lineage
`pageforge ingest` gives; its end is an event; bad archives are refused, changing nothing."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.scopes import Scope
from app.settings import Settings
from graph.server import LocalNeo4jServer
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant
from tests.e2e.jobs import wait_finished, zipped
from tests.e2e.servers import ApiServer, server_env
from tests.e2e.sse import Listener

pytestmark = pytest.mark.slow

CORPUS = "nav-formio"
WAIT_S = 600.0


def tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return buffer.getvalue()


def upload(http: httpx.Client, data: bytes, media: str = "application/gzip") -> httpx.Response:
    return http.post("/api/v1/jobs/ingest", content=data, headers={"content-type": media})


def wait_job(http: httpx.Client, path: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        job: dict[str, Any] = http.get(path).json()
        if done(job):
            return job
        assert time.monotonic() < deadline, f"job not there within {WAIT_S:.0f} s: {job}"
        time.sleep(0.2)


def pages(http: httpx.Client, path: str, headers: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = http.get(path, params=params, headers=headers).json()
        yield from page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return


def lineage(http: httpx.Client, headers: dict[str, str] | None = None) -> dict[str, list[Any]]:
    """Per form of the tenant: its versions' numbers, content hashes and parents' content hashes."""
    forms: dict[str, list[Any]] = {}
    for form in pages(http, "/api/v1/forms", headers):
        versions = list(pages(http, f"/api/v1/forms/{form['key']}/versions", headers))
        hashes = {version["id"]: version["content_hash"] for version in versions}
        forms[form["key"]] = sorted(
            (v["number"], v["content_hash"], sorted(hashes[p] for p in v["parents"])) for v in versions
        )
    return forms


def run_cli_ingest(settings: Settings, folder: Path, tenant: str) -> subprocess.CompletedProcess[str]:
    env = server_env(settings, log_level="WARNING")
    cli = Path(sys.executable).with_name("pageforge")
    return subprocess.run(
        [str(cli), "ingest", str(folder), "--tenant", tenant],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture
def settings(neo4j_server: LocalNeo4jServer, tmp_path: Path) -> Settings:
    return settings_for(neo4j_server.bolt_uri, tmp_path / "server")


def test_a_corpus_ingested_through_a_job_survives_a_kill_and_matches_pageforge_ingest(
    settings: Settings, corpora: Path, neo4j_server: LocalNeo4jServer, tmp_path: Path
) -> None:
    env = server_env(settings, jobs__lease_s="3", jobs__poll_s="0.2")
    tenant = create_tenant(settings, scopes=tuple(Scope))
    archive = tar_gz(corpora / CORPUS)
    first = ApiServer(env, tmp_path / "first.log")
    try:
        first.wait_healthy()
        with httpx.Client(base_url=first.url, headers=tenant.headers, timeout=60) as http:
            accepted = upload(http, archive)
            assert accepted.status_code == 202, accepted.text
            location = accepted.headers["location"]
            assert location == f"/api/v1/jobs/{accepted.json()['id']}"
            assert accepted.json()["state"] == "queued"
            running = wait_job(
                http, location, lambda job: job["progress"]["done"] > 0 or job["state"] != "queued"
            )
        assert running["state"] == "running", running
        first.kill()  # mid-ingest: nothing of the runner's shutdown runs
    finally:
        first.close()

    second = ApiServer(env, tmp_path / "second.log")
    try:
        second.wait_healthy()
        with httpx.Client(base_url=second.url, headers=tenant.headers, timeout=60) as http:
            job = wait_job(http, location, lambda job: job["state"] not in ("queued", "running"))
            assert job["state"] == "succeeded", job
            assert job["attempts"] >= 2  # taken up again once the dead runner's lease ran out
            rows = sum(1 for line in (corpora / CORPUS / "manifest.jsonl").read_text().splitlines() if line)
            assert job["progress"] == {"done": rows, "total": rows}
            assert job["result"]["files"] == rows
            assert job["result"]["failed"] == 0, job["errors"][:5]
            assert job["result"]["created"] + job["result"]["present"] == rows
            listed = http.get("/api/v1/jobs").json()["items"]
            assert [item["id"] for item in listed] == [job["id"]]
            through_job = lineage(http)
            assert sorted(through_job) == job["result"]["forms"]
            assert any(parents for versions in through_job.values() for _, _, parents in versions)

            finished = Listener(f"{second.url}/api/v1/events?after=0", tenant.headers)
            try:
                finished.wait_until(
                    lambda: any(m["event"] == "job.completed" for m in finished.messages), "job.completed"
                )
            finally:
                finished.close()
            event = next(m for m in finished.messages if m["event"] == "job.completed")
            assert event["data"]["data"] == {
                "job_id": job["id"],
                "kind": "ingest",
                "state": "succeeded",
                "path": location,
            }

            # `pageforge ingest` of the same folder, for another tenant, with its own index folder.
            by_cli = create_tenant(settings)
            completed = run_cli_ingest(
                settings_for(neo4j_server.bolt_uri, tmp_path / "cli"), corpora / CORPUS, by_cli.name
            )
            assert completed.returncode == 0, completed.stderr[-3000:]
            assert lineage(http, by_cli.headers) == through_job
    finally:
        second.close()


def tarred(members: list[tarfile.TarInfo], contents: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member in members:
            content = contents.get(member.name, b"")
            member.size = len(content) if member.isfile() else 0
            archive.addfile(member, io.BytesIO(content) if member.isfile() else None)
    return buffer.getvalue()


def test_a_zip_of_definitions_is_ingested_with_errors_per_file(
    client: TestClient, tenant: TenantKey, app_settings: Settings, corpora: Path
) -> None:
    forms = corpora / CORPUS / "test-forms"
    files = {
        f"forms/{name}.json": (forms / f"{name}.json").read_bytes() for name in ("accordion", "activities")
    }
    files["forms/broken.json"] = b"{not json"
    accepted = client.post(
        "/api/v1/jobs/ingest?source_format=formio",
        headers={**tenant.headers, "content-type": "application/zip"},
        content=zipped(files),
    )
    assert accepted.status_code == 202, accepted.text
    job = wait_finished(client, tenant, accepted.headers["location"])
    assert job["state"] == "succeeded", job
    assert job["result"]["created"] == 2
    assert job["result"]["forms"] == ["accordion", "activities"]
    assert [error["item"] for error in job["errors"]] == ["broken.json"]
    assert client.get("/api/v1/forms/accordion/versions", headers=tenant.headers).json()["items"]

    other = create_tenant(app_settings)
    assert client.get(accepted.headers["location"], headers=other.headers).status_code == 404
    assert client.get("/api/v1/jobs", headers=other.headers).json()["items"] == []
    # A finished job is answered as it is.
    assert client.post(f"{accepted.headers['location']}/cancel", headers=tenant.headers).json()["state"] == (
        "succeeded"
    )


def truncated_tar_gz() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        content = b"{}" * 50_000
        info = tarfile.TarInfo("a.json")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    whole = buffer.getvalue()
    return whole[: len(whole) // 2]


def corrupted_zip() -> bytes:
    damaged = bytearray(zipped({"a.json": b"{}" * 100}))
    damaged[damaged.index(b"{}")] = ord("[")  # stored uncompressed: its CRC no longer matches
    return bytes(damaged)


def escaping(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def linked(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    return info


@pytest.mark.parametrize(
    ("body", "media", "status", "detail"),
    [
        (b"just bytes", "application/gzip", 422, "not a tar, tar.gz or zip archive"),
        (b"PK\x03\x04 broken", "application/zip", 422, "not a valid zip archive"),
        (tarred([escaping("../evil.json")], {"../evil.json": b"{}"}), "application/x-tar", 422, "outside"),
        (
            tarred([escaping("/etc/evil.json")], {"/etc/evil.json": b"{}"}),
            "application/x-tar",
            422,
            "outside",
        ),
        (tarred([linked("form.json")], {}), "application/x-tar", 422, "links are refused"),
        (tarred([], {}), "application/x-tar", 422, "holds no files"),
        (truncated_tar_gz(), "application/gzip", 422, "the archive is damaged"),
        (corrupted_zip(), "application/zip", 422, "the archive is damaged: Bad CRC-32"),
        (
            tarred([tarfile.TarInfo("a"), tarfile.TarInfo("a/b.json")], {"a": b"{}", "a/b.json": b"{}"}),
            "application/x-tar",
            422,
            "is both a file and a folder",
        ),
        (
            zipped({"corpus/manifest.jsonl": b"{oops\n", "corpus/a.json": b"{}"}),
            "application/zip",
            422,
            "manifest.jsonl:1: not JSON",
        ),
        (zipped({"a.json": b"{}"}), "application/json", 422, "send the archive as one of"),
        (zipped({"a.json": b"{}"}), "text/plain", 415, "request bodies are JSON"),
    ],
)
def test_a_bad_archive_is_refused_naming_the_problem_and_queues_nothing(
    client: TestClient, tenant: TenantKey, body: bytes, media: str, status: int, detail: str
) -> None:
    answer = client.post(
        "/api/v1/jobs/ingest", headers={**tenant.headers, "content-type": media}, content=body
    )
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    assert "/tmp" not in answer.json()["detail"]
    assert client.get("/api/v1/jobs", headers=tenant.headers).json()["items"] == []


def test_an_ingest_job_needs_a_writing_credential(client: TestClient, app_settings: Settings) -> None:
    reader = create_tenant(app_settings, scopes=(Scope.FORMS_READ,))
    answer = client.post(
        "/api/v1/jobs/ingest", headers={**reader.headers, "content-type": "application/zip"}, content=b"PK"
    )
    assert answer.status_code == 403
    assert answer.json()["missing_scope"] == "forms:write"
    unknown_format = client.post(
        "/api/v1/jobs/ingest?source_format=docx",
        headers={**create_tenant(app_settings).headers, "content-type": "application/zip"},
        content=zipped({"a.json": b"{}"}),
    )
    assert unknown_format.status_code == 422
