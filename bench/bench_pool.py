"""Pooled against persistent database connections under the gthread workers, in the same run.

Two servers run side by side with the same gunicorn settings (config/gunicorn.conf.py: WORKERS
gthread workers of THREADS threads) against the same scratch database:

- **pool**: what gunicorn does by default: DATABASE_POOL_MAX_SIZE = THREADS, a psycopg_pool per
  worker (CONN_MAX_AGE 0; a connection taken from the pool when a request first queries and
  handed back when it ends, checked socket first by common/postgresql);
- **persistent**: `DATABASE_POOL_MAX_SIZE=0`: Django's persistent connections, one per thread,
  kept for CONN_MAX_AGE (60 s; a run is shorter, so reconnecting every minute costs nothing here)
  and checked socket first at the start of each request;
- with `BENCH_SYNC=1` also **sync**: the configuration before gthread (WORKERS sync workers, one
  request per process, persistent connections), for scale.

The load is a database-bound read: GET `/api/v1/products/{id}/` for PRODUCTS products, anonymous,
with the catalog cache off (CATALOG_CACHE_SECONDS=0), so every request takes a connection and
queries PostgreSQL. CONCURRENCY client processes (default: WORKERS x THREADS, every thread busy)
each make a fresh connection per request (the workers close every one); the servers take turns in
slices of SLICE_SECONDS so the load of a shared machine falls on both alike. Reported per run:
requests per second, p50 and p99 for each server, pool / persistent (the ratio within the run),
and how many connections each server held to PostgreSQL at the end of the run (by
`application_name`); then the medians over RUNS runs.

Needs `DATABASE_URL` (PostgreSQL) and `SECRET_KEY`: it creates a scratch database
`<name>_bench_pool` beside it, migrates it, and drops it at the end; your data is never touched.
Bounded: RUNS x servers x SLICES x SLICE_SECONDS of load, and it stops by itself after
DEADLINE_SECONDS whatever happens. Only 127.0.0.1 is ever contacted.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python -m bench pool
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stack
from bench.measure import median, percentile_ms, timed_map

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", str(WORKERS * THREADS)))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "200"))
SLICES = 4  # per server and run; the servers alternate, the order turning every slice
SLICE_SECONDS = float(os.environ.get("BENCH_SLICE_SECONDS", "2"))
SYNC = os.environ.get("BENCH_SYNC", "") == "1"
DEADLINE_SECONDS = 600


@dataclass
class Result:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return percentile_ms(self.latencies, q)


def _connections_held(base_url: str, database: str) -> dict[str, int]:
    """Connections to `database` by application_name (each server has its own)."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s "
            "GROUP BY application_name",
            [database],
        ).fetchall()
    return {str(application): int(count) for application, count in rows}


def _load(clients: Any, port: int, paths: list[str], seconds: float, turn: int) -> Result:
    offsets = [turn * 31 + number * 7 for number in range(CONCURRENCY)]
    took, latencies = timed_map(clients, port, paths, seconds=seconds, offsets=offsets)
    return Result(seconds=took, latencies=latencies)


def main() -> None:
    stack.run_in_scratch_database("bench_pool", run)


def run(scratch: stack.Scratch) -> None:
    """The benchmark in its scratch database; the servers it starts are stopped afterwards."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL", "THROTTLE_CACHE_URL"}
    }
    env.update(
        {
            "DATABASE_URL": scratch.url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "EMAIL_URL": "dummymail://",
            "LOG_LEVEL": "WARNING",
            "CATALOG_CACHE_SECONDS": "0",  # every read goes to PostgreSQL
            "THROTTLE_ANON": "1000000/min",
            "THROTTLE_USER": "1000000/min",  # also counts anonymous reads, by address
            "WEB_CONCURRENCY": str(WORKERS),
            "WEB_THREADS": str(THREADS),
        }
    )
    env.pop("DATABASE_POOL_MAX_SIZE", None)
    variants: list[tuple[str, dict[str, str], list[str]]] = [
        ("pool", {}, []),
        ("persistent", {"DATABASE_POOL_MAX_SIZE": "0"}, []),
    ]
    if SYNC:
        variants.append(("sync", {"DATABASE_POOL_MAX_SIZE": "0"}, ["-k", "sync", "--threads", "1"]))
    names = [variant[0] for variant in variants]
    ports: dict[str, int] = {}
    logs = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    stack.migrate_and_setup(env)
    from django.db import connections

    ids = stack.bench_products(
        PRODUCTS, sku="P", name="Pool bench product", price_cents=lambda n: 1000 + n, on_hand=10
    )
    connections.close_all()
    paths = [f"/api/v1/products/{pk}/" for pk in ids]

    for variant, extra_env, flags in variants:
        server_env = {
            **env,
            **extra_env,
            "DATABASE_URL": stack.database_url(
                scratch.base_url, scratch.name, application_name=f"bench-{variant}"
            ),
        }
        ports[variant] = stack.free_port()
        server = stack.gunicorn(
            server_env,
            logs / f"{variant}.log",
            port=ports[variant],
            timeout=max(1.0, deadline - time.monotonic()),
            flags=flags,
        )
        scratch.processes.append(server)

    results: dict[str, list[Result]] = {variant: [] for variant in names}
    connections_held: dict[str, list[int]] = {variant: [] for variant in names}
    with multiprocessing.get_context("spawn").Pool(CONCURRENCY) as clients:
        for port in ports.values():  # imports, connections, every thread's first query
            _load(clients, port, paths, 1.0, 0)
        for run_number in range(RUNS):
            merged = {variant: Result() for variant in names}
            for turn in range(SLICES):
                order = names[turn % len(names) :] + names[: turn % len(names)]
                if (turn + run_number) % 2:
                    order.reverse()
                for variant in order:
                    sliced = _load(clients, ports[variant], paths, SLICE_SECONDS, turn + run_number)
                    merged[variant].seconds += sliced.seconds
                    merged[variant].latencies += sliced.latencies
            held = _connections_held(scratch.base_url, scratch.name)
            parts = []
            for variant in names:
                results[variant].append(merged[variant])
                connections_held[variant].append(held.get(f"bench-{variant}", 0))
                parts.append(f"{variant} {merged[variant].per_second:7.1f} req/s")
            ratio = merged["pool"].per_second / merged["persistent"].per_second
            print(
                f"  run {run_number + 1}: {'; '.join(parts)}; pool/persistent {ratio:.2f}",
                flush=True,
            )
            if time.monotonic() > deadline:
                print("deadline reached; stopping early")
                break

    runs = len(results["pool"])
    print(
        f"{runs} runs x {SLICES} slices of {SLICE_SECONDS:g} s per server; {CONCURRENCY} "
        f"client processes; GET /api/v1/products/{{id}}/ over {PRODUCTS} products, uncached; "
        f"{WORKERS} gthread workers x {THREADS} threads"
        + (f" (sync: {WORKERS} sync workers)" if SYNC else "")
    )
    for variant in names:
        of = results[variant]
        print(
            f"  median {variant:10} {median([r.per_second for r in of]):7.1f} req/s  "
            f"p50 {median([r.percentile(0.5) for r in of]):6.1f} ms  "
            f"p99 {median([r.percentile(0.99) for r in of]):6.1f} ms  "
            f"connections held {max(connections_held[variant])}"
        )
    ratios = [
        p.per_second / q.per_second
        for p, q in zip(results["pool"], results["persistent"], strict=True)
    ]
    print(
        f"  pool/persistent per run: {', '.join(f'{x:.2f}' for x in ratios)}; "
        f"median {median(ratios):.2f}"
    )
