"""Another tenant's latency while one tenant abuses the API, as ratios to the same requests when idle.

Starts a Neo4j of its own and the API (uvicorn, a child process, Qdrant Edge in a temp dir). Tenant B
measures three requests, idle and then while tenant A runs (1) two PDF render bombs at a time (a form
of --bomb-fields fields, each render with other prefill data, so nothing is cached), and (2) the ingest
of a form of --ingest-fields fields: `/health`, B's `GET /api/v1/tenant`, and B's PDF of a small form
(new prefill data each time). Prints medians and worst cases, and each as a ratio to idle.

    python -m bench.bench_abuse [--bomb-fields 4900] [--ingest-fields 10000] [--samples 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.api_process import start_api, stop_api
from tests.conftest import migrated, settings_for, start_test_neo4j
from tests.e2e.conftest import TenantKey, create_tenant


def form(key: str, fields: int) -> dict[str, Any]:
    layout = [{"node": "field", "key": f"f{i}", "label": f"Field {i}"} for i in range(fields)]
    return {"key": key, "title": key, "layout": layout}


class Probe:
    """B's three requests, each timed."""

    def __init__(self, base: str, tenant: TenantKey, small_version: str) -> None:
        self.base, self.tenant, self.small = base, tenant, small_version
        self.counter = 0

    def health(self) -> float:
        return self._timed(lambda c: c.get(f"{self.base}/health"))

    def tenant_read(self) -> float:
        return self._timed(lambda c: c.get(f"{self.base}/api/v1/tenant", headers=self.tenant.headers))

    def small_pdf(self) -> float:
        self.counter += 1
        url = f"{self.base}/api/v1/form-versions/{self.small}/render?format=pdf"
        data = {"data": {"f0": f"sample {self.counter}"}}
        return self._timed(lambda c: c.post(url, json=data, headers=self.tenant.headers))

    @staticmethod
    def _timed(call: Callable[[httpx.Client], httpx.Response]) -> float:
        with httpx.Client(timeout=600) as client:
            began = time.perf_counter()
            response = call(client)
            elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        return elapsed


def measure(probe: Probe, samples: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"health": [], "tenant": [], "small pdf": []}
    for _ in range(samples):
        results["health"].append(probe.health())
        results["tenant"].append(probe.tenant_read())
        results["small pdf"].append(probe.small_pdf())
    return results


def report(label: str, idle: dict[str, list[float]], loaded: dict[str, list[float]]) -> None:
    for name, times in loaded.items():
        base = statistics.median(idle[name])
        median, worst = statistics.median(times), max(times)
        print(
            f"{label:14} {name:10} idle {base * 1000:7.1f} ms | median {median * 1000:8.1f} ms "
            f"({median / base:5.2f}x) | worst {worst * 1000:8.1f} ms ({worst / base:6.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bomb-fields", type=int, default=4_900)
    parser.add_argument("--ingest-fields", type=int, default=10_000)  # PAGEFORGE_API__MAX_FIELDS
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pageforge-bench-") as scratch:
        root = Path(scratch)
        neo4j = migrated(start_test_neo4j(root / "neo4j"))
        process = None
        try:
            settings = settings_for(neo4j.bolt_uri, root)
            a, b = create_tenant(settings), create_tenant(settings)
            process, base = start_api(
                {
                    "PAGEFORGE_NEO4J__URI": neo4j.bolt_uri,
                    "PAGEFORGE_VECTORS__PATH": str(root / "vectors"),
                    "PAGEFORGE_API__MAX_BODY_BYTES": "50000000",
                    "PAGEFORGE_RENDER__PDF_TIMEOUT_S": "600",
                    "PAGEFORGE_RENDER__MAX_PDF_PAGES": "100000",
                    # The bombs render within their requests (by default a PDF this big is a job).
                    "PAGEFORGE_RENDER__PDF_JOB_FIELDS": "100000",
                },
                root / "api.log",
            )
            with httpx.Client(timeout=600) as client:

                def post(tenant: TenantKey, key: str, fields: int) -> str:
                    response = client.post(
                        f"{base}/api/v1/forms/{key}/versions",
                        json={"definition": form(key, fields)},
                        headers=tenant.headers,
                    )
                    response.raise_for_status()
                    version_id: str = response.json()["id"]
                    return version_id

                bomb = post(a, "bomb", args.bomb_fields)
                probe = Probe(base, b, post(b, "small", 3))
            probe.small_pdf()  # the first PDF starts a worker process
            idle = measure(probe, args.samples)

            stop = threading.Event()
            bombs = [0]

            def bomber(lane: int) -> None:
                with httpx.Client(timeout=900) as bomb_client:
                    while not stop.is_set():
                        bombs[0] += 1
                        bomb_client.post(
                            f"{base}/api/v1/form-versions/{bomb}/render?format=pdf",
                            json={"data": {"f0": f"lane {lane} bomb {bombs[0]}"}},
                            headers=a.headers,
                        )

            threads = [threading.Thread(target=bomber, args=(lane,), daemon=True) for lane in range(2)]
            for thread in threads:
                thread.start()
            time.sleep(2)
            loaded = measure(probe, args.samples)
            stop.set()
            report("render bombs", idle, loaded)

            ingest_done = threading.Event()

            def ingest() -> None:
                with httpx.Client(timeout=900) as ingest_client:
                    began = time.perf_counter()
                    response = ingest_client.post(
                        f"{base}/api/v1/forms/huge/versions",
                        json={"definition": form("huge", args.ingest_fields)},
                        headers=a.headers,
                    )
                    print(f"ingest of {args.ingest_fields} fields: {response.status_code} "
                          f"in {time.perf_counter() - began:.1f} s")  # fmt: skip
                ingest_done.set()

            during: dict[str, list[float]] = {"health": [], "tenant": []}
            threading.Thread(target=ingest, daemon=True).start()
            while not ingest_done.is_set():
                during["health"].append(probe.health())
                during["tenant"].append(probe.tenant_read())
            report("big ingest", idle, during)
        finally:
            if process is not None:
                stop_api(process)
            neo4j.stop()


if __name__ == "__main__":
    main()
