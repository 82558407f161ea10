"""The OpenAPI document is valid and truthful: every error an operation can answer is listed, as
application/problem+json with the Problem schema; the main request bodies carry valid examples."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pydantic import BaseModel

from app.errors import (
    PROBLEM_JSON,
    DependencyUnavailable,
    Forbidden,
    PageForgeError,
    Problem,
    TooManyRequests,
    Unauthorized,
    install_error_handlers,
)
from app.formversions.schemas import FormVersionCreate
from app.main import create_app
from app.observability import BodySizeLimitMiddleware, RequestContextMiddleware
from app.settings import Settings
from app.similarity.schemas import LayoutRecommend, LayoutSearch
from app.sysversions.schemas import ReleaseCreate

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document(service: str = "all") -> dict[str, Any]:
    return create_app(Settings(service=service)).openapi()  # type: ignore[arg-type]


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, path_item in spec["paths"].items()
        for method, operation in path_item.items()
    ]


def api_operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for method, path, operation in operations(document())
        if path.startswith("/api/v1/")
    ]


@pytest.mark.parametrize("service", ["all", "formversions", "sysversions", "renderer", "gateway"])
def test_the_document_of_every_deployment_is_valid_openapi(service: str) -> None:
    spec = document(service)
    validate(spec)
    assert "HTTPValidationError" not in str(spec)
    for method, path, operation in operations(spec):
        if path.startswith("/api/v1/"):
            assert ("504" in operation["responses"]) == (service == "gateway"), f"{method} {path}"


def test_every_api_operation_lists_the_problems_any_authenticated_request_can_get() -> None:
    checked = api_operations()
    assert len(checked) == 44
    for method, path, operation in checked:
        responses = operation["responses"]
        assert {"401", "429", "503"} <= set(responses), f"{method} {path}"
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (
                    f"{method} {path} {status}"
                )
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"]
        assert responses["429"]["headers"]["Retry-After"]["required"]


def test_bodies_writes_and_validation_are_listed_where_they_can_happen() -> None:
    for method, path, operation in api_operations():
        statuses = set(operation["responses"])
        body = {"400", "413", "415", "422"}
        if "requestBody" not in operation:
            assert not statuses & (body - {"422"}), path
        elif "application/json" in operation["requestBody"]["content"]:
            assert body <= statuses, path
        else:  # an archive upload: nothing of it is parsed as JSON
            assert body - {"400"} <= statuses, path
        # Any credential may lack the scope an operation needs (a token its issuer's tenant rules out).
        assert "403" in statuses, f"{method} {path}"
        needs = operation["security"][0]["HTTPBearer"]
        if method == "POST" and path.endswith(("/versions", "/releases", "/versions:batch", "/cancel")):
            assert needs == ["releases:write" if path.endswith("/releases") else "forms:write"], path
        elif "/render" in path:
            assert needs == ["renders:read"], path
        elif path == "/api/v1/jobs/ingest":
            assert needs == ["forms:write"], path
        elif path.startswith(("/api/v1/keys", "/api/v1/webhooks")):
            assert needs == ["admin"], path
        elif path != "/api/v1/tenant":
            assert needs == ["forms:read"], path
    # Only string path parameters: nothing FastAPI could refuse, so no 422 (FastAPI's default is gone).
    spec = document()
    for path in (
        "/forms/{form_key}",
        "/form-versions/{version_id}",
        "/systems/{system_key}",
        "/releases/{release_id}",
    ):
        assert "422" not in spec["paths"][f"/api/v1{path}"]["get"]["responses"], path
    # The render routes' 422 is the problem PageForge answers, not FastAPI's default.
    render_422 = spec["paths"]["/api/v1/form-versions/{version_id}/render"]["get"]["responses"]["422"]
    assert render_422["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/api/v1/forms/{form_key}/versions", FormVersionCreate),
        ("/api/v1/systems/{system_key}/releases", ReleaseCreate),
        ("/api/v1/layouts/search", LayoutSearch),
        ("/api/v1/layouts/recommend", LayoutRecommend),
    ],
)
def test_the_main_request_bodies_have_valid_examples(path: str, model: type[BaseModel]) -> None:
    body = document()["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    examples = body["examples"]
    assert examples
    for name, example in examples.items():
        assert example["summary"], name
        model.model_validate(example["value"])


def problem_app() -> FastAPI:
    """The error handlers and middleware create_app adds, around routes that raise each error."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=100)
    app.add_middleware(RequestContextMiddleware)
    errors: dict[str, PageForgeError] = {
        "401": Unauthorized("unknown API key"),
        "403": Forbidden("read-only key"),
        "429": TooManyRequests("too fast", retry_after_s=0.4),
        "503": DependencyUnavailable("Neo4j unreachable"),
    }

    @app.post("/raise/{status}")
    async def raise_error(status: str, body: dict[str, int]) -> None:
        raise errors[status]

    return app


# 400: not UTF-8; 413: over the limit; 422: not the object the route takes.
PROBLEM_BODIES = {"400": b"\xff", "413": b"{}" + b" " * 200, "422": b"[1]"}


@pytest.mark.parametrize("status", ["400", "401", "403", "413", "422", "429", "503"])
def test_every_problem_body_is_what_the_document_says(status: str) -> None:
    client = TestClient(problem_app())
    content = PROBLEM_BODIES.get(status, b"{}")
    response = client.post(f"/raise/{status}", content=content, headers={"content-type": "application/json"})
    assert response.status_code == int(status)
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = Problem.model_validate(response.json())
    assert problem.status == int(status)
    assert problem.request_id == response.headers["x-request-id"]
    documented = create_app(Settings()).openapi()["paths"]["/api/v1/forms/{form_key}/versions"]["post"]
    for header in documented["responses"][status].get("headers", {}):
        assert response.headers[header], header
