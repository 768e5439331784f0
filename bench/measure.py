"""Load from client processes and the figures of its latencies, for the benchmarks that compare
servers in one run (bench_catalog_reads, bench_pool, bench_checkout).

A client process GETs its paths in turn from 127.0.0.1, a fresh connection per request (the
gunicorn workers close every one), until its time is up; `timed_map` runs one per offset in a
`multiprocessing` pool and returns the seconds that took and every latency.
"""

from __future__ import annotations

import http.client
import statistics
import time
from typing import Any

# (port, paths, headers, seconds, first path's index, timeout of a request)
ClientArgs = tuple[int, list[str], dict[str, str], float, int, float]


def get_in_turn(args: ClientArgs) -> list[float]:
    """One client process: GETs of `paths` in turn for `seconds`, from the `offset`th on; the
    latency of each, in seconds. Raises on any status but 200."""
    port, paths, headers, seconds, offset, timeout = args
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    index = offset
    while time.perf_counter() < deadline:
        path = paths[index % len(paths)]
        index += 1
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {body[:200]!r}")
        latencies.append(time.perf_counter() - started)
    return latencies


def timed_map(
    pool: Any,
    port: int,
    paths: list[str],
    *,
    seconds: float,
    offsets: list[int],
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[float, list[float]]:
    """A client process per offset, all at once in `pool`: (the seconds they took, every
    latency)."""
    started = time.perf_counter()
    per_client = pool.map(
        get_in_turn,
        [(port, paths, headers or {}, seconds, offset, timeout) for offset in offsets],
    )
    return time.perf_counter() - started, [latency for client in per_client for latency in client]


def percentile_ms(latencies: list[float], share: float) -> float:
    """The latency (in ms) at index `share` x their number, sorted; 0.0 for none."""
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
