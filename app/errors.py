"""The error tree of the API and the one handler that turns every error into problem+json."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api import API_PREFIX
from app.observability import PAYLOAD_TOO_LARGE, REQUEST_ID_HEADER, REQUEST_ID_STATE, request_id_var
from graph.errors import GraphUnavailable, SchemaOutOfDate, TenantExists, TenantNotFound
from ingest.errors import DefinitionError
from vectors.embedder import EmbedderUnavailable
from vectors.index import VectorIndexUnavailable

logger = logging.getLogger("pageforge.errors")

PROBLEM_JSON = "application/problem+json"


class PageForgeError(Exception):
    """Base of API errors; each subclass carries its HTTP status and problem title."""

    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def headers(self) -> dict[str, str] | None:
        """Response headers this error needs besides the problem body."""
        return None


class Unauthorized(PageForgeError):
    status_code = 401
    title = "Unauthorized"

    @property
    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(PageForgeError):
    status_code = 403
    title = "Forbidden"


class NotFound(PageForgeError):
    status_code = 404
    title = "Not found"


class UnsupportedMediaType(PageForgeError):
    status_code = 415
    title = "Unsupported media type"


class Conflict(PageForgeError):
    status_code = 409
    title = "Conflict"


class PayloadTooLarge(PageForgeError):
    status_code = 413
    title = "Payload too large"


class Invalid(PageForgeError):
    status_code = 422
    title = "Invalid request"


class TooManyRequests(PageForgeError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail, retry_after_s=round(retry_after_s, 3))
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class DependencyUnavailable(PageForgeError):
    status_code = 503
    title = "Dependency unavailable"


class DependencyTimeout(PageForgeError):
    status_code = 504
    title = "Dependency timed out"


# Errors raised below the API (graph, vectors, ingest) and what they mean to a client.
FOREIGN_ERRORS: dict[type[Exception], type[PageForgeError]] = {
    GraphUnavailable: DependencyUnavailable,
    SchemaOutOfDate: DependencyUnavailable,
    VectorIndexUnavailable: DependencyUnavailable,
    EmbedderUnavailable: DependencyUnavailable,
    DefinitionError: Invalid,
    TenantExists: Conflict,
    TenantNotFound: NotFound,
}


def problem_response(
    status: int,
    title: str,
    detail: str,
    request: Request,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json (RFC 9457) response carrying the request id."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_var.get() or request_id_of(request),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def request_id_of(request: Request) -> str | None:
    """The id RequestContextMiddleware gave the request (also after it has returned)."""
    request_id: str | None = request.scope.get("state", {}).get(REQUEST_ID_STATE)
    return request_id


def as_problem(exc: Exception) -> PageForgeError | None:
    """One of our errors, or a known foreign one as the error it means to a client; None for anything else
    (a bug)."""
    if isinstance(exc, PageForgeError):
        return exc
    error_class = next((cls for base, cls in FOREIGN_ERRORS.items() if isinstance(exc, base)), None)
    if error_class is None:
        return None
    if error_class.status_code >= 500:
        logger.warning("dependency error: %s (%s)", exc, exc.__cause__ or "no further cause")
    return error_class(str(exc))


def known_error_response(exc: Exception, request: Request) -> JSONResponse | None:
    """The problem+json answer to one of our errors or a known foreign one; None for anything else."""
    problem = as_problem(exc)
    if problem is None:
        return None
    return problem_response(
        problem.status_code, problem.title, problem.detail, request, problem.headers, **problem.extra
    )


# FastAPI answers every failure to decode a JSON body with this detail; its cause says what it was.
_BODY_PARSE_FAILED = "There was an error parsing the body"


def _body_parse_detail(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not UTF-8 (JSON bodies must be UTF-8)"
    if isinstance(cause, RecursionError):
        return "the body's JSON nests deeper than the parser allows"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return f"a number in the body is too long: {cause}"
    return "the body could not be decoded as JSON"


def install_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, leaves as problem+json."""

    async def handle_known(request: Request, exc: Exception) -> JSONResponse:
        response = known_error_response(exc, request)
        assert response is not None
        return response

    async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(422, Invalid.title, detail, request, errors=errors)

    async def handle_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # A streamed body over the limit is found while FastAPI reads it: the same title as a declared one.
        title = PAYLOAD_TOO_LARGE if exc.status_code == 413 else HTTPStatus(exc.status_code).phrase
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == _BODY_PARSE_FAILED:
            detail = _body_parse_detail(exc.__cause__)
        return problem_response(exc.status_code, title, detail, request, dict(exc.headers or {}))

    async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this outermost, past RequestContextMiddleware: the id header is added here.
        request_id = request_id_of(request)
        logger.exception("unhandled error", extra={"fields": {"request_id": request_id}})
        headers = {REQUEST_ID_HEADER: request_id} if request_id else None
        return problem_response(500, "Internal error", "an unexpected error occurred", request, headers)

    app.add_exception_handler(PageForgeError, handle_known)
    for foreign in FOREIGN_ERRORS:
        app.add_exception_handler(foreign, handle_known)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(Exception, handle_unexpected)


class Problem(BaseModel):
    """How every error is answered: RFC 9457 problem details, as application/problem+json."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="Always about:blank: the status and title say what kind of problem.")
    title: str = Field(description="The kind of problem, the same for every problem of this status.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What was wrong with this request, in words.")
    instance: str = Field(description="The path that was requested.")
    request_id: str | None = Field(description="The request's X-Request-ID, to find it in the logs.")
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="422 from validation: one {loc, msg, type} per parameter or body member that failed.",
    )
    retry_after_s: float | None = Field(default=None, description="429: seconds until a request is allowed.")
    missing_scope: str | None = Field(default=None, description="403: the scope the credential lacks.")


_HEADER_SCHEMA = {"schema": {"type": "string"}, "required": True}
PROBLEM_STATUSES: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body could not be read as JSON: not UTF-8, nested too deep, or a number too long.", {}),
    401: (
        "No API key, or a key no tenant has.",
        {"WWW-Authenticate": {**_HEADER_SCHEMA, "description": "Bearer"}},
    ),
    403: (
        "The API key or token lacks the scope this operation needs (`missing_scope` names it), or a token "
        "names a tenant its issuer may not name.",
        {},
    ),
    404: ("Not found among the tenant's data (another tenant's ids are not found either).", {}),
    409: ("The request conflicts with what is stored; nothing was written.", {}),
    413: ("The body is larger than the configured limit.", {}),
    415: ("The body is not UTF-8 JSON by its Content-Type.", {}),
    422: ("A parameter or the body is invalid; `detail` (and `errors`) name what.", {}),
    429: (
        "Over the tenant's request rate.",
        {"Retry-After": {**_HEADER_SCHEMA, "description": "Seconds to wait before the next request."}},
    ),
    503: (
        "A dependency (Neo4j, the layout index, the embedding model) is unavailable; `detail` names it.",
        {},
    ),
    504: ("The gateway: the service that owns the route did not answer in time.", {}),
}


PROBLEM_REF = "#/components/schemas/Problem"


def problem_responses(
    *statuses: int, descriptions: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for the problem statuses it can answer, each as application/problem+json
    (`descriptions` replaces the general description of a status where the route has more to say)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, headers = PROBLEM_STATUSES[status]
        description = (descriptions or {}).get(status, description)
        # The model puts Problem in the document's schemas (and, as FastAPI does, under application/json
        # too: document_problems takes that out again).
        response: dict[str, Any] = {
            "model": Problem,
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        if headers:
            response["headers"] = headers
        responses[status] = response
    return responses


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _can_fail_validation(operation: dict[str, Any]) -> bool:
    """Whether FastAPI can refuse a request to this operation: a body, or a parameter that is required
    (and not in the path, which the route matched) or constrained beyond being any string."""
    if "requestBody" in operation:
        return True
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        any_string = schema.get("type") == "string" and set(schema) <= {"type", "title", "description"}
        if not any_string or (parameter["in"] != "path" and parameter.get("required", False)):
            return True
    return False


def _problem_422() -> dict[str, Any]:
    description, _ = PROBLEM_STATUSES[422]
    return {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}


def document_problems(app: FastAPI, *, api_also: tuple[int, ...] = ()) -> None:
    """The app's OpenAPI document says what PageForge answers: problems only as application/problem+json;
    FastAPI's default 422 (HTTPValidationError, as application/json) is the problem 422 where a parameter or
    the body can fail validation, and is gone where none can. `api_also`: problems every /api/v1 operation
    can answer besides its own (the gateway's 504)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    added = {str(status): response for status, response in problem_responses(*api_also).items()}
    for response in added.values():
        response.pop("model")

    def openapi() -> dict[str, Any]:
        document = generate()
        for path, path_item in document.get("paths", {}).items():
            for operation in path_item.values():
                responses = operation.get("responses", {})
                if path.startswith(API_PREFIX + "/"):
                    responses.update(added)
                for response in responses.values():
                    if PROBLEM_JSON in response.get("content", {}):
                        response["content"].pop("application/json", None)
                fastapi_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
                if fastapi_422.get("schema", {}).get("$ref") != _FASTAPI_422:
                    continue
                if _can_fail_validation(operation):
                    responses["422"] = _problem_422()
                else:
                    del responses["422"]
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        # An app whose own routes list no problem (the renderer alone, today) still has the 422s made here.
        schemas.setdefault("Problem", Problem.model_json_schema(mode="serialization"))
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
