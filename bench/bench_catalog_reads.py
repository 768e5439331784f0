"""Catalog read throughput under gunicorn, against a raw-SQL baseline served in the same run.

    DATABASE_URL=postgres://... [REDIS_URL=redis://...] python -m bench catalog_reads

In a scratch database `<your database>_bench` (created and dropped), imports a generated catalog of
BENCH_PRODUCTS products (default 100,000) with BENCH_IMAGES image rows each (default 2; the list
shows the primary's thumbnail, and so does the baseline), then starts three gunicorn servers on
127.0.0.1 with the project's gunicorn settings (WEB_CONCURRENCY workers, default 2; persistent
database connections through CONN_MAX_AGE): the app with the catalog response cache off, the app
with it on, and `raw_application` below (psycopg + orjson, no framework) serving the same rows in
the same shape from the same tables. Each measurement is BENCH_SECONDS seconds (default 4) of
BENCH_CONCURRENCY client processes (default 4) making fresh connections to one server, the servers
compared taking turns in one-second slices (the machine is shared, so load drifts); it reports
requests/s and p50/p99 latency.

Scenarios, each for the raw baseline, ours uncached (response cache off) and ours cached:
- list: pages 1-5 of the whole catalog (`?page=N`, about 97% of the products are active);
- category: pages 1-5 of each top-level-but-one category (`?category=<id>&page=N`, including
  descendants; what "list" measured before issue 14);
- search: ten full-text searches, first page (`?search=…`); one of them ("wireless headphones")
  finds nothing by full text, so ours takes the fuzzy (trigram) fallback, which raw does not have;
- detail: 50 products by id, with their images.
List and category are also read with a customer's JWT. The raw baseline counts on every request;
ours keeps a filter's count in the cache (per catalog version) even with the response cache off,
which is what production does.

Ratios are computed within each run (servers measured in the same interleaved slices) and named
for the targets of issue 14: `search_vs_list_uncached` (search / list, both ours uncached),
`list_uncached_vs_raw` and `category_uncached_vs_raw` (ours uncached / raw),
`detail_cached_vs_raw_detail_uncached` (a cached hit / the raw uncached detail), the cached lists
against raw, and JWT / anonymous. The medians over BENCH_RUNS runs (default 3) are what the README
quotes. Every request goes to 127.0.0.1 and the whole run is bounded by the durations above.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson

from bench import measure, stack

RESULTS = stack.ROOT / "bench" / "results"
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
# One connection per thread: gunicorn's gthread workers serve several requests at once, and one
# shared connection would serialize the baseline's queries (flattering every ratio to it).
_raw_local = threading.local()

# A page's rows (the product, its category's path, what is available), and the filter of a
# category with its descendants (the subtree's ids from the small category table).
RAW_PAGE = """
    SELECT p.id, p.sku, p.name, p.slug, p.description, p.category_id, c.full_path,
           p.price_cents, p.currency, p.metadata, p.primary_image, p.is_active,
           s.on_hand - s.reserved, p.created_at, p.updated_at
    FROM inventory_product p
    JOIN inventory_category c ON c.id = p.category_id
    JOIN inventory_stocklevel s ON s.product_id = p.id
"""
RAW_IN_CATEGORY = """
    p.is_active AND p.category_id IN (
        SELECT id FROM inventory_category WHERE tree_path LIKE (
            SELECT tree_path FROM inventory_category WHERE id = %(category)s) || '%%')
"""
# (count, page) for each kind of list: the whole catalog, a category, a full-text search; built
# from the constants above only (the values are parameters). A ranked page's ids are sorted on
# the product table alone, then only they are joined (what the app does too).
RAW_LISTS = {
    "list": (
        "SELECT count(*) FROM inventory_product p WHERE p.is_active",
        f"{RAW_PAGE} WHERE p.is_active ORDER BY p.id LIMIT 20 OFFSET %(offset)s",
    ),
    "category": (
        f"SELECT count(*) FROM inventory_product p WHERE {RAW_IN_CATEGORY}",  # noqa: S608
        f"{RAW_PAGE} WHERE {RAW_IN_CATEGORY} ORDER BY p.id LIMIT 20 OFFSET %(offset)s",
    ),
    "search": (
        """
        SELECT count(*) FROM inventory_product p
        WHERE p.is_active AND p.search_vector @@ websearch_to_tsquery('english', %(search)s)
        """,
        f"""{RAW_PAGE}
        WHERE p.id IN (
            SELECT id FROM inventory_product
            WHERE is_active AND search_vector @@ websearch_to_tsquery('english', %(search)s)
            ORDER BY ts_rank(search_vector, websearch_to_tsquery('english', %(search)s)) DESC, id
            LIMIT 20 OFFSET %(offset)s)
        ORDER BY ts_rank(p.search_vector, websearch_to_tsquery('english', %(search)s)) DESC, p.id
        """,  # noqa: S608
    ),
}
RAW_DETAIL = """
SELECT p.id, p.sku, p.name, p.slug, p.description, p.category_id, c.full_path, p.price_cents,
       p.currency, p.metadata, p.primary_image, p.is_active, s.on_hand - s.reserved,
       p.created_at, p.updated_at, ARRAY(
           SELECT json_build_object('id', i.id, 'file', i.file, 'thumbnail', i.thumbnail,
                                    'alt', i.alt, 'position', i.position, 'width', i.width,
                                    'height', i.height)
           FROM inventory_productimage i WHERE i.product_id = p.id ORDER BY i.position, i.id)
FROM inventory_product p
JOIN inventory_category c ON c.id = p.category_id
JOIN inventory_stocklevel s ON s.product_id = p.id
WHERE p.is_active AND p.id = %(id)s
"""
RAW_KEYS = (
    "id", "sku", "name", "slug", "description", "category", "category_path", "price_cents",
    "currency", "metadata", "image", "is_active", "available", "created_at", "updated_at",
)  # fmt: skip
RAW_MEDIA_URL = "/media/"


def _raw_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    results = [dict(zip(RAW_KEYS, row[: len(RAW_KEYS)], strict=True)) for row in rows]
    for result in results:  # the same URL the app gives (local storage)
        result["image"] = RAW_MEDIA_URL + result["image"] if result["image"] else None
    return results


def _raw_respond(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def raw_application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The app's catalog reads, the same rows and shape, with nothing but psycopg and orjson:

    GET /products?page=<n>                    the whole catalog
    GET /products?category=<id>&page=<n>      a category with its descendants
    GET /products?search=<terms>&page=<n>     full text, best rank first (no fuzzy fallback)
    GET /products/<id>                        one product with its images
    """
    import psycopg

    connection = getattr(_raw_local, "connection", None)
    if connection is None:
        connection = psycopg.connect(os.environ["BENCH_RAW_DATABASE_URL"], autocommit=True)
        _raw_local.connection = connection
    path = environ.get("PATH_INFO", "")
    with connection.cursor() as cursor:
        if path.startswith("/products/"):
            cursor.execute(RAW_DETAIL, {"id": int(path.removeprefix("/products/").strip("/"))})
            row = cursor.fetchone()
            if row is None:
                return _raw_respond(start_response, "404 Not Found", b"{}")
            (detail,) = _raw_rows([row])
            images = []
            for image in row[len(RAW_KEYS)]:
                url = RAW_MEDIA_URL + image["file"]
                thumbnail = RAW_MEDIA_URL + image["thumbnail"] if image["thumbnail"] else url
                images.append(
                    {
                        "id": image["id"],
                        "url": url,
                        "thumbnail_url": thumbnail,
                        "alt": image["alt"],
                        "position": image["position"],
                        "width": image["width"],
                        "height": image["height"],
                    }
                )
            detail["images"] = images
            return _raw_respond(
                start_response, "200 OK", orjson.dumps(detail, option=orjson.OPT_UTC_Z)
            )
        query = parse_qs(environ.get("QUERY_STRING", ""))
        params: dict[str, Any] = {"offset": (int(query.get("page", ["1"])[0]) - 1) * 20}
        kind = "list"
        if "category" in query:
            kind, params["category"] = "category", int(query["category"][0])
        elif "search" in query:
            kind, params["search"] = "search", query["search"][0]
        count_sql, page_sql = RAW_LISTS[kind]
        cursor.execute(count_sql, params)
        (count,) = cursor.fetchone()
        results: list[dict[str, Any]] = []
        if count > params["offset"]:
            cursor.execute(page_sql, params)
            results = _raw_rows(cursor.fetchall())
    body = orjson.dumps(
        {"count": count, "next": None, "previous": None, "results": results},
        option=orjson.OPT_UTC_Z,
    )
    return _raw_respond(start_response, "200 OK", body)


# =============================================================================
# Load generation: client processes (bench/measure.py), every request to 127.0.0.1, each process
# stops after its slice.
# =============================================================================
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
            took, values = measure.timed_map(
                pool,
                port,
                urls,
                headers=headers,
                seconds=seconds / slices,
                offsets=[slice_number * 13 + index * 7 for index in range(clients)],
                timeout=10,
            )
            elapsed[name] += took
            latencies[name].extend(values)
    return {
        name: {
            "rps": len(values) / elapsed[name],
            "p50_ms": measure.percentile_ms(values, 0.5),
            "p99_ms": measure.percentile_ms(values, 0.99),
            "requests": len(values),
        }
        for name, values in latencies.items()
    }


# =============================================================================
# Servers
# =============================================================================
@contextmanager
def gunicorn(app: str, env: dict[str, str], logs: Path) -> Iterator[int]:
    """`app` under gunicorn (bench/stack.py) for the block; yields its port."""
    port = stack.free_port()
    server = stack.gunicorn(
        {**os.environ, **env},
        logs / f"{app.rsplit(':', 1)[-1]}-{port}.log",
        port=port,
        timeout=30,
        app=app,
        ready_path="/healthz" if app == "config.wsgi" else "/products",
    )
    try:
        yield port
    finally:
        server.stop(timeout=20)


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

    from accounts.models import User
    from accounts.tokens import token_pair_for
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
    pages = (1, 2, 3, 4, 5)
    list_queries = [f"?page={page}" for page in pages]
    category_queries = [f"?category={cid}&page={page}" for cid in categories for page in pages]
    search_queries = [f"?search={term.replace(' ', '+')}" for term in SEARCHES]
    ids = list(Product.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))
    step = max(1, len(ids) // 50)
    detail_ids = ids[::step][:50]
    customer = User.objects.create_user(email="bench-customer@example.com", password=None)
    return {
        "list": [f"/api/v1/products/{query}" for query in list_queries],
        "raw_list": [f"/products{query}" for query in list_queries],
        "category": [f"/api/v1/products/{query}" for query in category_queries],
        "raw_category": [f"/products{query}" for query in category_queries],
        "search": [f"/api/v1/products/{query}" for query in search_queries],
        "raw_search": [f"/products{query}" for query in search_queries],
        "detail": [f"/api/v1/products/{pid}/" for pid in detail_ids],
        "raw_detail": [f"/products/{pid}" for pid in detail_ids],
        "jwt": {"Authorization": f"Bearer {token_pair_for(customer).access}"},
    }


KINDS = ("list", "category", "search", "detail")
RATIOS = {
    # name: (numerator, denominator), rows of the same interleaved block
    "search_vs_list_uncached": ("search uncached", "list uncached"),
    "list_uncached_vs_raw": ("list uncached", "raw list"),
    "category_uncached_vs_raw": ("category uncached", "raw category"),
    "search_uncached_vs_raw": ("search uncached", "raw search"),
    "detail_uncached_vs_raw": ("detail uncached", "raw detail"),
    "detail_cached_vs_raw_detail_uncached": ("detail cached", "raw detail (2)"),
    "list_cached_vs_raw": ("list cached", "raw list (2)"),
    "category_cached_vs_raw": ("category cached", "raw category (2)"),
    "jwt_vs_anonymous_uncached": ("category uncached JWT", "category uncached"),
    "jwt_vs_anonymous_cached": ("category cached JWT", "category cached"),
}


def targets(
    raw: int,
    ours: int,
    data: dict[str, Any],
    *,
    label: str,
    raw_suffix: str,
    raw_kinds: tuple[str, ...],
) -> dict[str, tuple[int, list[str], dict[str, str]]]:
    """One interleaved block: for each kind, the raw baseline's row (for the kinds in
    `raw_kinds`) and ours (`<kind> <label>`), the category also with the customer's JWT."""
    rows: dict[str, tuple[int, list[str], dict[str, str]]] = {}
    for kind in KINDS:
        if kind in raw_kinds:
            rows[f"raw {kind}{raw_suffix}"] = (raw, data[f"raw_{kind}"], {})
        rows[f"{kind} {label}"] = (ours, data[kind], {})
        if kind == "category":
            rows[f"category {label} JWT"] = (ours, data["category"], data["jwt"])
    return rows


def one_run(
    pool: Any, data: dict[str, Any], env: dict[str, str], seconds: float, clients: int
) -> dict[str, dict[str, float]]:
    anonymous: dict[str, str] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-catalog-reads-") as logs,
        gunicorn("bench.bench_catalog_reads:raw_application", env, Path(logs)) as raw,
        gunicorn("config.wsgi", {**env, "CATALOG_CACHE_SECONDS": "0"}, Path(logs)) as cold,
        gunicorn("config.wsgi", {**env, "CATALOG_CACHE_SECONDS": "300"}, Path(logs)) as cached,
    ):
        for kind in KINDS:
            warm(raw, data[f"raw_{kind}"][:10], anonymous)
            # The response cache is off here; each filter's count is cached once read (as in
            # production, where a filter's first read after a catalog write counts).
            warm(cold, data[kind], anonymous)

        def block(ours: int, label: str, raw_suffix: str, raw_kinds: tuple[str, ...]) -> Any:
            rows = targets(raw, ours, data, label=label, raw_suffix=raw_suffix, raw_kinds=raw_kinds)
            return interleaved(pool, rows, seconds=seconds, clients=clients)

        uncached = block(cold, "uncached", "", KINDS)
        for headers in (anonymous, data["jwt"]):
            warm(cached, data["list"] + data["category"] + data["search"] + data["detail"], headers)
        warmed = block(cached, "cached", " (2)", ("list", "category", "detail"))
    results: dict[str, dict[str, float]] = {**uncached, **warmed}
    print_rows(results)
    results["ratios"] = {
        name: results[numerator]["rps"] / results[denominator]["rps"]
        for name, (numerator, denominator) in RATIOS.items()
    }
    print_ratios(results["ratios"])
    return results


def print_rows(rows: dict[str, dict[str, float]]) -> None:
    for name, row in rows.items():
        print(
            f"  {name:<24} {row['rps']:8.1f} req/s  p50 {row['p50_ms']:6.1f} ms  "
            f"p99 {row['p99_ms']:6.1f} ms",
            flush=True,
        )


def print_ratios(ratios: dict[str, float]) -> None:
    print("  ratios:", flush=True)
    for name, value in ratios.items():
        numerator, denominator = RATIOS[name]
        print(f"    {name:<38} {value:5.2f}  ({numerator} / {denominator})", flush=True)


def main() -> None:
    if not stack.setup_django_on_database_url():
        return
    products = int(os.environ.get("BENCH_PRODUCTS", "100000"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    seconds = float(os.environ.get("BENCH_SECONDS", "4"))
    clients = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    with stack.scratch_database("readbench") as url:
        data = prepare(products)
        env = {
            "DATABASE_URL": url,
            "BENCH_RAW_DATABASE_URL": url,
            # Never reached: the throttles count as in production (one Redis call per read),
            # without refusing the benchmark's clients.
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
    print_rows(median)
    print_ratios(ratios)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog_reads.json").write_text(
        json.dumps({"runs": all_runs, "median": median, "ratios": ratios}, indent=2)
    )


if __name__ == "__main__":
    main()
