"""How long the managed Neo4j takes from start() until Bolt answers, and to stop.

Prints each run and the median, for default JVM flags and for the C1-only JIT the test run uses;
the ratio between the two is the figure that holds on a noisy machine.

    .venv/bin/python bench/bench_neo4j_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from graph.server import LocalNeo4jServer, free_port


def time_starts(data_dir: Path, runs: int, jvm_options: Sequence[str]) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(runs):
        server = LocalNeo4jServer(data_dir=data_dir, bolt_port=free_port(), jvm_options=jvm_options)
        began = time.perf_counter()
        server.start(timeout=300)
        starts.append(time.perf_counter() - began)
        began = time.perf_counter()
        server.stop()
        stops.append(time.perf_counter() - began)
    return starts, stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    LocalNeo4jServer(data_dir=Path(tempfile.gettempdir()), bolt_port=free_port()).build()
    medians = {}
    for name, options in (("default JIT", ()), ("C1-only JIT", ("-XX:TieredStopAtLevel=1",))):
        with tempfile.TemporaryDirectory() as tmp:
            starts, stops = time_starts(Path(tmp), args.runs, options)
        medians[name] = statistics.median(starts)
        print(
            f"{name:12s} start: {', '.join(f'{s:.1f}s' for s in starts)} (median {medians[name]:.1f}s; "
            f"first run creates the database); stop: median {statistics.median(stops):.1f}s"
        )
    print(f"C1-only / default start-up: {medians['C1-only JIT'] / medians['default JIT']:.2f}x")


if __name__ == "__main__":
    main()
