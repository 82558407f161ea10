"""How long a request waits for 503 when Neo4j is down, against PAGEFORGE_NEO4J__CONNECTION_TIMEOUT_S.

Starts a Neo4j of its own, an app on it (TestClient, the Edge index in a temp dir), a tenant whose key the
app has cached, then stops Neo4j and times GET /api/v1/forms and POST /api/v1/forms/{key}/versions: each
time and its ratio to the configured timeout (the retry under way when the timeout passes still ends).

    python -m bench.bench_neo4j_down [--timeout 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import migrated, settings_for, start_test_neo4j
from tests.e2e.conftest import create_tenant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=5.0, help="PAGEFORGE_NEO4J__CONNECTION_TIMEOUT_S")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pageforge-bench-") as scratch:
        root = Path(scratch)
        server = migrated(start_test_neo4j(root / "neo4j"))
        try:
            settings = settings_for(server.bolt_uri, root)
            neo4j = settings.neo4j.model_copy(update={"connection_timeout_s": args.timeout})
            settings = settings.model_copy(update={"neo4j": neo4j})
            tenant = create_tenant(settings)
            with TestClient(create_app(settings)) as client:
                assert client.get("/api/v1/forms", headers=tenant.headers).status_code == 200
                server.stop()
                print(f"neo4j stopped; connection timeout {args.timeout:g} s")
                requests: list[tuple[str, str, dict[str, Any] | None]] = [
                    ("GET", "/api/v1/forms", None),
                    ("POST", "/api/v1/forms/down/versions", {"definition": {"components": []}}),
                ]
                for _ in range(args.rounds):
                    for method, path, body in requests:
                        began = time.monotonic()
                        response = client.request(method, path, headers=tenant.headers, json=body)
                        elapsed = time.monotonic() - began
                        print(
                            f"{method:4} {path:32} {response.status_code}  {elapsed:5.2f} s  "
                            f"{elapsed / args.timeout:4.2f}x the timeout"
                        )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
