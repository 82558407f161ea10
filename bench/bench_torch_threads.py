"""Encoding throughput by torch threads per process, alone and with two processes encoding at once.

What `make test` relies on (tests/conftest.py sets one torch thread per process): two test workers encode
at once, and two processes with one thread each get more done together than two with two threads each
(they contend for the same two cores). Each case runs in fresh processes that encode the same corpus layout
texts; texts/s per process are printed with their ratio to one process with one thread, in the same run.

    .venv/bin/python -m bench.bench_torch_threads [--texts 40]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from ingest import layout_text
from tests.corpora import corpus_files, imported


def corpus_texts(count: int) -> list[str]:
    """The first `count` distinct layout texts of NAV's test forms."""
    files = corpus_files("nav-formio/test-forms/*.json")
    return list(dict.fromkeys(layout_text(imported(path)) for path in files))[:count]


def worker(threads: int, count: int) -> None:
    """Encode the texts once to warm up, then time a second encode; print texts per second."""
    from vectors.embedder import Embedder

    embedder = Embedder(torch_threads=threads)
    texts = corpus_texts(count)
    embedder.encode(texts[:4])
    started = time.perf_counter()
    embedder.encode(texts)
    print(len(texts) / (time.perf_counter() - started))


def texts_per_second(threads: int, processes: int, count: int) -> list[float]:
    """Throughput of each of `processes` processes encoding at the same time with `threads` threads."""
    command = [sys.executable, "-m", "bench.bench_torch_threads", "--worker", str(threads)]
    command += ["--texts", str(count)]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    return [float(process.communicate()[0].strip().splitlines()[-1]) for process in running]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.texts)
        return
    cases = [(1, 1), (2, 1), (1, 2), (2, 2)]
    results = {case: texts_per_second(*case, args.texts) for case in cases}
    baseline = results[(1, 1)][0]
    print(f"{'torch threads':>13} {'processes':>9} {'texts/s per process':>22} {'x baseline':>11}")
    for (threads, processes), rates in results.items():
        for rate in rates:
            print(f"{threads:>13} {processes:>9} {rate:>22.1f} {rate / baseline:>11.2f}")


if __name__ == "__main__":
    main()
