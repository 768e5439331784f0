"""Catalog read throughput under gunicorn, against a raw-SQL baseline served in the same run.

    DATABASE_URL=postgres://... [REDIS_URL=redis://...] python -m bench catalog_reads

In a scratch database `<your database>_bench` (created and dropped), imports a generated catalog of
BENCH_PRODUCTS products (default 100,000) with BENCH_IMAGES image rows each (default 2; the list
shows the primary's thumbnail, and so does the baseline), then starts three gunicorn servers on
127.0.0.1 with the project's gunicorn settings (WEB_CONCURRENCY workers, default 2; persistent
database connections through CONN_MAX_AGE): the app with the catalog cache off, the app with it on,
and `raw_application` below (psycopg + orjson, no framework) serving the same list rows. Each
measurement is BENCH_SECONDS seconds (default 4) of BENCH_CONCURRENCY client processes (default 4)
making fresh connections to one server, the servers compared taking turns in one-second slices (the
machine is shared, so load drifts); it reports requests/s and p50/p99 latency. Scenarios: the list
(a page of 20 filtered by category, including descendants), a full-text search and a product
detail, each uncached and cached, anonymous and with a customer's JWT. Ratios (ours to raw, JWT to
anonymous) are computed within each run; the medians over BENCH_RUNS runs (default 3) are what the
README quotes. Every request goes to 127.0.0.1 and the whole run is bounded by the durations above.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
SEARCHES = (
    "wireless headphones",
    "leather boots",
    "cast iron",
    "merino",
    "mechanical keyboard",
    "tent",
    "yoga mat",
    "usb-c charger",
    "desk lamp",
    "down jacket",
)

# =============================================================================
# The baseline: a minimal WSGI endpoint, raw SQL through psycopg, JSON by orjson.
# =============================================================================
_raw_connection: Any = None

RAW_COUNT = """
SELECT count(*) FROM inventory_product p
WHERE p.is_active AND p.category_id IN (
    SELECT id FROM inventory_category WHERE tree_path LIKE (
        SELECT tree_path FROM inventory_category WHERE id = %(category)s) || '%%')
"""
RAW_PAGE = """
SELECT p.id, p.sku, p.name, p.slug, p.description, p.category_id, c.full_path, p.price_cents,
       p.currency, p.metadata, p.primary_image, p.is_active, s.on_hand - s.reserved,
       p.created_at, p.updated_at
FROM inventory_product p
JOIN inventory_category c ON c.id = p.category_id
JOIN inventory_stocklevel s ON s.product_id = p.id
WHERE p.is_active AND p.category_id IN (
    SELECT id FROM inventory_category WHERE tree_path LIKE (
        SELECT tree_path FROM inventory_category WHERE id = %(category)s) || '%%')
ORDER BY p.id LIMIT 20 OFFSET %(offset)s
"""
RAW_KEYS = (
    "id", "sku", "name", "slug", "description", "category", "category_path", "price_cents",
    "currency", "metadata", "image", "is_active", "available", "created_at", "updated_at",
)  # fmt: skip
RAW_MEDIA_URL = "/media/"


def raw_application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """GET /products?category=<id>&page=<n>: the list page, the same rows and shape as ours."""
    global _raw_connection
    import psycopg

    if _raw_connection is None:
        _raw_connection = psycopg.connect(os.environ["BENCH_RAW_DATABASE_URL"], autocommit=True)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "category" not in query:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    params = {
        "category": int(query["category"][0]),
        "offset": (int(query.get("page", ["1"])[0]) - 1) * 20,
    }
    with _raw_connection.cursor() as cursor:
        cursor.execute(RAW_COUNT, params)
        (count,) = cursor.fetchone()
        cursor.execute(RAW_PAGE, params)
        results = [dict(zip(RAW_KEYS, row, strict=True)) for row in cursor.fetchall()]
    for result in results:  # the same URL the app gives (local storage)
        result["image"] = RAW_MEDIA_URL + result["image"] if result["image"] else None
    body = orjson.dumps(
        {"count": count, "next": None, "previous": None, "results": results},
        option=orjson.OPT_UTC_Z,
    )
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


# =============================================================================
# Load generation: client processes, a fresh connection per request (gunicorn sync workers
# close each one), every request to 127.0.0.1, each process stops after `seconds`.
# =============================================================================
def _client(args: tuple[int, list[str], dict[str, str], float, int]) -> list[float]:
    port, urls, headers, seconds, offset = args
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    index = offset
    while time.perf_counter() < deadline:
        url = urls[index % len(urls)]
        index += 1
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", url, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
        latencies.append(time.perf_counter() - started)
    return latencies


def interleaved(
    pool: Any,
    targets: dict[str, tuple[int, list[str], dict[str, str]]],
    *,
    seconds: float,
    clients: int,
    slices: int = 4,
) -> dict[str, dict[str, float]]:
    """Measure several targets in alternating slices, so a change in the machine's load (it is
    shared) hits all of them alike and their ratios stay meaningful."""
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    elapsed = dict.fromkeys(targets, 0.0)
    for slice_number in range(slices):
        for name, (port, urls, headers) in targets.items():
            started = time.perf_counter()
            per_client = pool.map(
                _client,
                [
                    (port, urls, headers, seconds / slices, slice_number * 13 + index * 7)
                    for index in range(clients)
                ],
            )
            elapsed[name] += time.perf_counter() - started
            latencies[name].extend(latency for client in per_client for latency in client)
    results = {}
    for name, values in latencies.items():
        values.sort()
        results[name] = {
            "rps": len(values) / elapsed[name],
            "p50_ms": values[len(values) // 2] * 1000,
            "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))] * 1000,
            "requests": len(values),
        }
    return results


# =============================================================================
# Servers
# =============================================================================
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(app: str, env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [GUNICORN, "-c", "config/gunicorn.conf.py", app],
        cwd=ROOT,
        env={**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz" if app == "config.wsgi" else "/")
                connection.getresponse().read()
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"gunicorn {app} did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def warm(port: int, urls: Iterable[str], headers: dict[str, str]) -> None:
    for url in urls:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", url, headers=headers)
        connection.getresponse().read()
        connection.close()


# =============================================================================
def prepare(products: int) -> dict[str, Any]:
    """Import the catalog and pick the URLs; returns what the measurements need."""
    from django.db import connection
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from inventory.catalog_csv import import_catalog
    from inventory.catalog_generator import write_catalog
    from inventory.models import Category, Product

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            write_catalog(out, products=products, seed=1)
        result = import_catalog(path)
        assert result.ok, result.first_errors
    images = int(os.environ.get("BENCH_IMAGES", "2"))
    with connection.cursor() as cursor:
        # Images as an upload and its renditions leave them (rows only: reads never open files).
        cursor.execute(
            """
            INSERT INTO inventory_productimage
                (product_id, file, thumbnail, medium, alt, position, width, height, created_at)
            SELECT p.id, 'products/' || p.id || '/' || md5(p.id || '-' || n) || '.jpg',
                   'products/' || p.id || '/' || md5(p.id || '-' || n) || '-320.webp',
                   'products/' || p.id || '/' || md5(p.id || '-' || n) || '-1024.webp',
                   p.name, n, 1600, 1200, now()
            FROM inventory_product p, generate_series(0, %s - 1) AS n
            """,
            [images],
        )
        # What `inventory.images.primary_image_refresh` keeps on each product row.
        cursor.execute(
            """
            UPDATE inventory_product p SET primary_image = i.thumbnail
            FROM inventory_productimage i WHERE i.product_id = p.id AND i.position = 0
            """
        )
        cursor.execute("VACUUM ANALYZE")
    categories = list(Category.objects.filter(depth=1).order_by("id").values_list("id", flat=True))
    list_urls = [f"?category={cid}&page={page}" for cid in categories for page in (1, 2, 3, 4, 5)]
    ids = list(Product.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))
    step = max(1, len(ids) // 50)
    customer = User.objects.create_user(email="bench-customer@example.com", password=None)
    return {
        "list": [f"/api/v1/products/{query}" for query in list_urls],
        "raw_list": [f"/products{query}" for query in list_urls],
        "search": [f"/api/v1/products/?search={term.replace(' ', '+')}" for term in SEARCHES],
        "detail": [f"/api/v1/products/{pid}/" for pid in ids[::step][:50]],
        "jwt": {"Authorization": f"Bearer {AccessToken.for_user(customer)}"},
    }


def one_run(
    pool: Any, data: dict[str, Any], env: dict[str, str], seconds: float, clients: int
) -> dict[str, dict[str, float]]:
    anonymous: dict[str, str] = {}
    jwt = data["jwt"]
    with (
        gunicorn("bench.bench_catalog_reads:raw_application", env) as raw,
        gunicorn("config.wsgi", {**env, "CATALOG_CACHE_SECONDS": "0"}) as cold,
        gunicorn("config.wsgi", {**env, "CATALOG_CACHE_SECONDS": "300"}) as cached,
    ):
        warm(raw, data["raw_list"][:10], anonymous)
        warm(cold, data["list"][:10], anonymous)
        uncached = interleaved(
            pool,
            {
                "raw list": (raw, data["raw_list"], anonymous),
                "list uncached": (cold, data["list"], anonymous),
                "list uncached JWT": (cold, data["list"], jwt),
                "search uncached": (cold, data["search"], anonymous),
                "detail uncached": (cold, data["detail"], anonymous),
            },
            seconds=seconds,
            clients=clients,
        )
        for headers in (anonymous, jwt):
            warm(cached, data["list"] + data["search"] + data["detail"], headers)
        warmed = interleaved(
            pool,
            {
                "raw list (2)": (raw, data["raw_list"], anonymous),
                "list cached": (cached, data["list"], anonymous),
                "list cached JWT": (cached, data["list"], jwt),
                "search cached": (cached, data["search"], anonymous),
                "detail cached": (cached, data["detail"], anonymous),
            },
            seconds=seconds,
            clients=clients,
        )
    results: dict[str, dict[str, float]] = {**uncached, **warmed}
    for name, row in results.items():
        print(
            f"  {name:<22} {row['rps']:8.1f} req/s  p50 {row['p50_ms']:6.1f} ms  "
            f"p99 {row['p99_ms']:6.1f} ms",
            flush=True,
        )
    results["ratios"] = {
        "list_uncached_vs_raw": uncached["list uncached"]["rps"] / uncached["raw list"]["rps"],
        "list_cached_vs_raw": warmed["list cached"]["rps"] / warmed["raw list (2)"]["rps"],
        "jwt_vs_anonymous_uncached": uncached["list uncached JWT"]["rps"]
        / uncached["list uncached"]["rps"],
        "jwt_vs_anonymous_cached": warmed["list cached JWT"]["rps"] / warmed["list cached"]["rps"],
    }
    print(
        "  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in results["ratios"].items()),
        flush=True,
    )
    return results


def main() -> None:
    if not os.environ.get("DATABASE_URL"):
        print("set DATABASE_URL (the benchmark creates and drops <database>_bench beside it)")
        return
    from bench.bench_catalog_import import scratch_database, setup_django

    products = int(os.environ.get("BENCH_PRODUCTS", "100000"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    seconds = float(os.environ.get("BENCH_SECONDS", "4"))
    clients = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    setup_django()
    with scratch_database("readbench") as url:
        data = prepare(products)
        env = {
            "DATABASE_URL": url,
            "BENCH_RAW_DATABASE_URL": url,
            # Never reached, yet a per-second window keeps each client's throttle history (the
            # list the throttle loads and stores on every request) as short as the default
            # per-minute rates keep it in production.
            "THROTTLE_ANON": "5000/s",
            "THROTTLE_USER": "5000/s",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        print(
            f"{products:,} products; {runs} runs of {seconds:g} s x {clients} clients; "
            f"cache: {'Redis' if os.environ.get('REDIS_URL') else 'local memory'}"
        )
        all_runs = []
        with multiprocessing.get_context("spawn").Pool(clients) as pool:
            for number in range(1, runs + 1):
                print(f"run {number}", flush=True)
                all_runs.append(one_run(pool, data, env, seconds, clients))
    keys = [key for key in all_runs[0] if key != "ratios"]
    median = {
        key: {
            field: statistics.median(run[key][field] for run in all_runs)
            for field in ("rps", "p50_ms", "p99_ms")
        }
        for key in keys
    }
    ratios = {
        key: statistics.median(run["ratios"][key] for run in all_runs)
        for key in all_runs[0]["ratios"]
    }
    print("median over runs:")
    for key, row in median.items():
        print(
            f"  {key:<22} {row['rps']:8.1f} req/s  p50 {row['p50_ms']:6.1f} ms  "
            f"p99 {row['p99_ms']:6.1f} ms"
        )
    print("  ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog_reads.json").write_text(
        json.dumps({"runs": all_runs, "median": median, "ratios": ratios}, indent=2)
    )


if __name__ == "__main__":
    sys.exit(main())
