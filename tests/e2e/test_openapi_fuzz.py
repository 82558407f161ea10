"""Schemathesis against the app's own OpenAPI document, on the real stack: every operation, called in-process
(ASGI) with a valid read-write key of a fresh tenant that holds a little real data.

No answer may be a server error, and each must be one the document lists for the operation: its status, its
media type, its headers and its schema; data the document calls invalid must be refused. The run is
reproducible: derandomized generation and no example database, so CI sends what a developer's run sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure
from schemathesis.errors import FailureGroup
from schemathesis.python import asgi

from app.jobs.archive import ARCHIVE_TYPES
from app.main import create_app
from app.scopes import Scope
from app.settings import Settings
from tests.e2e.conftest import TenantKey, create_tenant, revision_files
from tests.e2e.jobs import zipped

pytestmark = pytest.mark.slow


# Generated cases per operation and kind (made-up values, the tenant's own ids, invalid values); the
# documented examples are sent as well.
MAX_EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# Archive uploads: bytes of any kind, and archives of nothing, of a bad definition, of a bad manifest.
for media_type in ARCHIVE_TYPES:
    schemathesis.openapi.media_type(
        media_type,
        st.one_of(
            st.binary(max_size=256),
            st.sampled_from([zipped({}), zipped({"a.json": b"{"}), zipped({"c/manifest.jsonl": b"[1]\n"})]),
        ),
    )

# Operations whose valid answer is an endless event stream.
STREAMS = {"GET /api/v1/events"}


@dataclass
class Run:
    """What the run sent and what it found."""

    headers: dict[str, str]
    operations: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def send(self, case: Case) -> None:
        """Call the operation with the case, with the tenant's key, and check the answer; the first case of
        each kind of failure of an operation is kept."""
        response = case.call(headers=self.headers)
        self.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                self.failed(case, failure)
        except Failure as failure:
            self.failed(case, failure)

    def failed(self, case: Case, failure: Failure) -> None:
        self.failures.setdefault(
            (case.operation.label, failure.title), f"{failure}\n{case.as_curl_command()}"
        )


def call(schema: BaseSchema, path: str, method: str, **case: Any) -> Any:
    """Call an operation with the given data through schemathesis' transport; it must succeed."""
    response = schema[path][method].Case(headers=schema.config.headers, **case).call()
    assert response.status_code in (200, 201), response.text
    return response.json()


def seed(schema: BaseSchema, corpora: Path) -> dict[str, list[str]]:
    """Two forms, one with three versions in a chain, and two releases of a system pinning them; the values
    each parameter can take from them."""
    posted = "/api/v1/forms/{form_key}/versions"
    versions = [
        call(schema, posted, "POST", path_parameters={"form_key": "number"}, body={"definition": document})
        for document in revision_files(corpora, "number")[:3]
    ]
    textfield = revision_files(corpora, "textfield")[0]
    other = call(
        schema, posted, "POST", path_parameters={"form_key": "textfield"}, body={"definition": textfield}
    )
    releases = [
        call(
            schema,
            "/api/v1/systems/{system_key}/releases",
            "POST",
            path_parameters={"system_key": "portal"},
            body={
                "version": name,
                "forms": [
                    {"form_key": "number", "version_id": version["id"]},
                    {"form_key": "textfield", "version_id": other["id"]},
                ],
            },
        )
        for name, version in (("2024.1", versions[0]), ("2024.2", versions[2]))
    ]
    version_ids = [version["id"] for version in [*versions, other]]
    release_ids = [release["id"] for release in releases]
    return {
        "version_id": version_ids,
        "against": version_ids,
        "with": version_ids,
        "version": version_ids,
        "release_id": release_ids,
        "release": release_ids,
        "form_key": ["number", "textfield"],
        "system_key": ["portal"],
        "system": ["portal"],
        "field_key": ["number", "veiledning"],
    }


def seeded_cases(operation: APIOperation, known: dict[str, list[str]]) -> st.SearchStrategy[Case]:
    """Valid cases whose ids and keys (in the path and the query) are the tenant's own."""
    path = {p.name: st.sampled_from(known[p.name]) for p in operation.path_parameters if p.name in known}
    query = {p.name: st.sampled_from(known[p.name]) for p in operation.query if p.name in known}
    return st.tuples(st.fixed_dictionaries(path), st.fixed_dictionaries(query)).flatmap(
        lambda chosen: operation.as_strategy(path_parameters=chosen[0] or None, query=chosen[1] or None)
    )


def explore(strategy: st.SearchStrategy[Case], send: Callable[[Case], None], max_examples: int) -> None:
    """Send up to max_examples cases drawn from the strategy, derandomized."""

    @settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # no shrinking: the first failing case of each kind is reported as is
        suppress_health_check=list(HealthCheck),  # slow calls and rejected draws are expected here
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        send(case)

    run()


@pytest.fixture
def api_schema(app_settings: Settings) -> Iterator[BaseSchema]:
    """The app's document, loaded in-process (which starts the app, on schemathesis' own event loop); every
    call carries a key of a fresh tenant that grants every scope (the admin's key routes included)."""
    tenant: TenantKey = create_tenant(app_settings, scopes=tuple(Scope))
    config = schemathesis.Config()
    config.projects.default.update(headers=tenant.headers)
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings), config=config)
    asgi.shutdown_lifespans()  # the app's shutdown (schemathesis' pytest plugin would do it after the test)


def test_every_operation_answers_as_documented_and_never_with_a_server_error(
    api_schema: BaseSchema, corpora: Path
) -> None:
    known = seed(api_schema, corpora)
    run = Run(headers=api_schema.config.headers)
    for result in api_schema.get_all_operations():
        operation = result.ok()
        run.operations.append(operation.label)
        if operation.label in STREAMS:
            # A valid request opens a stream that ends only when the client leaves: only its refusals are
            # fuzzed here (tests/e2e/test_event_stream.py reads the stream itself).
            explore(operation.as_strategy(GenerationMode.NEGATIVE), run.send, MAX_EXAMPLES)
            continue
        for example in operation.get_strategies_from_examples():
            explore(example, run.send, max_examples=1)
        explore(operation.as_strategy(GenerationMode.POSITIVE), run.send, MAX_EXAMPLES)
        explore(seeded_cases(operation, known), run.send, MAX_EXAMPLES)
        # Invalid input for each operation that says it refuses some (the others take any string, or nothing).
        if "422" in operation.definition.raw["responses"]:
            explore(operation.as_strategy(GenerationMode.NEGATIVE), run.send, MAX_EXAMPLES)
    print(
        f"\nschemathesis: {len(run.operations)} operations, {run.statuses.total()} requests, "
        f"statuses {dict(sorted(run.statuses.items()))}, failures {sorted(run.failures)}"
    )
    documented = sum(len(path_item) for path_item in api_schema.raw_schema["paths"].values())
    assert len(run.operations) == documented, run.operations
    assert not run.failures, "\n\n".join(
        f"{label}: {failure}" for (label, _), failure in run.failures.items()
    )
