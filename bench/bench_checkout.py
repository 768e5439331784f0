"""Checkout under contention, over HTTP against gunicorn on 127.0.0.1, beside a raw floor.

Two servers run side by side with the same gunicorn settings (config/gunicorn.conf.py, WORKERS
gthread workers of WEB_THREADS threads) against the same scratch database:

- **project**: the Django app (`config.wsgi`);
- **raw**: `bench/raw_checkout_app.py`, the same checkout with no framework (psycopg 3 + orjson
  + PyJWT: the same JWT check, the same SQL work in one transaction, the same 201 body): the
  floor a framework-free app reaches on this machine at this moment;
- with `BENCH_PREPARED=1` also **prepared**: the project with server-side binding and prepared
  statements (`bench/prepared_settings.py`: psycopg 3 `prepare_threshold` in DATABASES
  OPTIONS), to measure them before anyone turns them on.

Each round has two kinds of checkout for each server, run in batches of BATCH that interleave
server and kind (the order turns every batch), so the background load of a shared machine falls
on all of them alike:

- **hot**: BUYERS buyers (CONCURRENCY at a time) each check out one unit of the *same* product,
  which has exactly BUYERS units; then EXTRA more buyers try the sold-out product (all get 409);
- **spread**: BUYERS buyers each check out one unit of a product of their own.

Reported: orders per second per server and kind (each kind's orders over the sum of its batches'
times) and p50/p99; per round and as medians, project / raw (target >= 0.4 for both kinds) and
the project's hot / spread (target >= 0.9: a stock row is locked by one statement at the end of
the checkout transaction, never across our own work); the SQL statements of one checkout of each
(BEGIN and COMMIT included; the project's counted in this process, the raw app's by the app).
Afterwards it proves there was no oversell for every server: each hot product sold exactly its
on-hand units, the ledger explains every stock level and `manage.py audit_stock` is clean.

Tasks: by default the project publishes its outbox rows to an in-process broker (`memory://`),
as production publishes to Redis, and no worker runs them; `BENCH_EAGER=1` runs them eagerly in
the request instead (the confirmation email rendered and sent before the 201).

`BENCH_SHOW_SQL=1` prints the project's statements of that one checkout.

Needs `DATABASE_URL` (PostgreSQL) and `SECRET_KEY`: it creates a scratch database
`<name>_bench_checkout` beside it, migrates it, and drops it at the end; your data is never
touched. Bounded: ROUNDS x servers x (2 x BUYERS + EXTRA) checkouts, and it stops by itself after
DEADLINE_SECONDS whatever happens. Only 127.0.0.1 is ever contacted.

    SECRET_KEY=x DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python -m bench checkout
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stack
from bench.measure import median, percentile_ms

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BUYERS = int(os.environ.get("BENCH_BUYERS", "200"))
EXTRA = 40  # buyers who arrive after the hot product sold out
BATCH = 40  # buyers per batch; servers and kinds alternate
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
PREPARED = os.environ.get("BENCH_PREPARED", "") == "1"
EAGER = os.environ.get("BENCH_EAGER", "") == "1"
DEADLINE_SECONDS = 600
PATH = "/api/v1/orders/"
KINDS = ("hot", "spread")
ADDRESS = {
    "name": "Bench Buyer",
    "line1": "1 Load Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


@dataclass
class RoundResult:
    kind: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def orders_per_second(self) -> float:
        return self.statuses.count(201) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return percentile_ms(self.latencies, q)

    def add(self, other: RoundResult) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.statuses += other.statuses


@dataclass
class Server:
    name: str
    port: int
    process: stack.Process


def _request(
    port: int, token: str, body: dict[str, Any]
) -> tuple[int, float, http.client.HTTPResponse]:
    payload = json.dumps(body)
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            PATH,
            body=payload,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started, response
    finally:
        conn.close()


def _checkout_all(port: int, tokens: list[str], deadline: float) -> RoundResult:
    def one(token: str) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return 0, 0.0
        status, seconds, _ = _request(port, token, {"shipping_address": ADDRESS})
        return status, seconds

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(one, tokens))
    seconds = time.perf_counter() - started
    return RoundResult(
        kind="",
        seconds=seconds,
        latencies=[latency for _, latency in results],
        statuses=[status for status, _ in results],
    )


def _start(name: str, app: str, env: dict[str, str], deadline: float, logs: Path) -> Server:
    port = stack.free_port()
    process = stack.gunicorn(
        {**env, "WEB_CONCURRENCY": str(WORKERS)},
        logs / f"{name}.log",
        port=port,
        timeout=max(1.0, deadline - time.monotonic()),
        app=app,
    )
    return Server(name, port, process)


def _print_ratios(
    label: str, tops: list[RoundResult], bottoms: list[RoundResult], target: str = ""
) -> None:
    """Orders per second of `tops` over `bottoms`, round by round, and their median."""
    ratios = [
        top.orders_per_second / bottom.orders_per_second
        for top, bottom in zip(tops, bottoms, strict=True)
    ]
    print(
        f"  {label} per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
        f"median {median(ratios):.2f}{target}"
    )


def main() -> None:
    stack.run_in_scratch_database("bench_checkout", run)


def run(scratch: stack.Scratch) -> None:
    """The benchmark in its scratch database; the servers it starts are stopped afterwards."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    env = {
        **os.environ,
        "DATABASE_URL": scratch.url,
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "THROTTLE_USER": "100000/min",
    }
    env.pop("REDIS_URL", None)  # local-memory caches; never the Redis others' tests use
    env.pop("CELERY_BROKER_URL", None)
    if not EAGER:
        env["CELERY_BROKER_URL"] = "memory://"  # published after commit, as to Redis; not run
    stack.migrate_and_setup(env)
    from django.core.management import call_command
    from django.db import connection, connections
    from django.db.models import Sum
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from inventory.models import StockLevel, StockMovement
    from inventory.services import category_create, product_create
    from orders.models import OrderItem
    from orders.services import cart_item_add

    apps = [("project", "config.wsgi", env), ("raw", "bench.raw_checkout_app:application", env)]
    if PREPARED:
        apps.append(
            (
                "prepared",
                "config.wsgi",
                {**env, "DJANGO_SETTINGS_MODULE": "bench.prepared_settings"},
            )
        )
    names = [app[0] for app in apps]

    category = category_create(name="Bench")
    users_needed = ROUNDS * len(apps) * (2 * BUYERS + EXTRA) + 40 * len(apps) + 20
    now = timezone.now()
    users = User.objects.bulk_create(
        User(email=f"buyer{i}@bench.local", password="!", email_verified_at=now)  # noqa: S106
        for i in range(users_needed)
    )
    pool = iter(users)

    def buyer(product_id: int) -> tuple[User, str]:
        user = next(pool)
        cart_item_add(user=user, product_id=product_id, quantity=1)
        return user, str(AccessToken.for_user(user))

    def buyers_for(product_ids: list[int]) -> list[str]:
        return [buyer(product_id)[1] for product_id in product_ids]

    sku = iter(range(1_000_000))

    def product(on_hand: int) -> int:
        number = next(sku)
        return product_create(
            sku=f"B-{number}",
            name=f"Bench product {number}",
            category=category,
            price_cents=1000,
            on_hand=on_hand,
        ).pk

    # SQL statements of one checkout. The project's in this process (same settings as its
    # server; Django logs BEGIN and COMMIT too); the raw app counts its own.
    statements: dict[str, str] = {}
    user, _ = buyer(product(5))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    commits = [0]
    real_commit = connection.commit

    def counting_commit() -> None:
        commits[0] += 1
        real_commit()

    connection.commit = counting_commit  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as captured:
            response = client.post(
                PATH, {"shipping_address": ADDRESS}, format="json", HTTP_HOST="127.0.0.1"
            )
    finally:
        del connection.commit
    assert response.status_code == 201, response.content
    if os.environ.get("BENCH_SHOW_SQL") == "1":
        for query in captured.captured_queries:
            print(f"    {query['sql'][:160]}")
    savepoints = sum(1 for q in captured.captured_queries if "SAVEPOINT" in q["sql"])
    statements["project"] = (
        f"{len(captured)} (BEGIN/COMMIT included; {commits[0]} transaction(s): the checkout, "
        f"then the outbox's publish without one; {savepoints} savepoint statements)"
    )

    logs = Path(tempfile.mkdtemp(prefix="bench-checkout-"))
    servers: list[Server] = []
    for app_name, app, app_env in apps:
        servers.append(_start(app_name, app, app_env, deadline, logs))
        scratch.processes.append(servers[-1].process)
    by_name = {server.name: server for server in servers}
    # Warm every worker (imports, database connections, prepared statements) first.
    for server in servers:
        _checkout_all(server.port, buyers_for([product(1) for _ in range(8 * WORKERS)]), deadline)
    _, token = buyer(product(5))
    status, _, raw_response = _request(by_name["raw"].port, token, {"shipping_address": ADDRESS})
    assert status == 201, status
    statements["raw"] = f"{raw_response.getheader('X-SQL-Statements')} (BEGIN/COMMIT included)"

    results: dict[tuple[str, str], list[RoundResult]] = {
        (app_name, kind): [] for app_name in names for kind in KINDS
    }
    hot_products: list[int] = []
    for round_number in range(ROUNDS):
        tokens: dict[tuple[str, str], list[str]] = {}
        late: dict[str, list[str]] = {}
        for app_name in names:
            hot = product(BUYERS)
            hot_products.append(hot)
            tokens[app_name, "hot"] = buyers_for([hot] * BUYERS)
            late[app_name] = buyers_for([hot] * EXTRA)
            tokens[app_name, "spread"] = buyers_for([product(5) for _ in range(BUYERS)])
        merged = {key: RoundResult(key[1]) for key in tokens}
        combos = list(tokens)
        for batch_number, batch in enumerate(range(0, BUYERS, BATCH)):
            # Every batch turns the order, so each server and kind runs first, last, in
            # between alike.
            shift = (batch_number + round_number) % len(combos)
            ordered = combos[shift:] + combos[:shift]
            if batch_number % 2:
                ordered.reverse()
            for key in ordered:
                port = by_name[key[0]].port
                merged[key].add(_checkout_all(port, tokens[key][batch : batch + BATCH], deadline))
        for key, result in merged.items():
            results[key].append(result)
        for app_name in names:
            refused = _checkout_all(by_name[app_name].port, late[app_name], deadline)
            assert refused.statuses == [409] * EXTRA, f"{app_name} sold out: {refused.statuses}"
        if time.monotonic() > deadline:
            print("deadline reached; stopping early")
            break

    # No oversell, for every server: each hot product sold exactly its units; a clean ledger.
    for hot in hot_products:
        level = StockLevel.objects.get(product_id=hot)
        sold = OrderItem.objects.filter(product_id=hot).aggregate(n=Sum("quantity"))["n"]
        assert (level.on_hand, level.reserved, sold) == (BUYERS, BUYERS, BUYERS), (
            hot,
            level.on_hand,
            level.reserved,
            sold,
        )
    for level in StockLevel.objects.all():
        totals = StockMovement.objects.filter(product_id=level.product_id).aggregate(
            on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved")
        )
        assert (totals["on_hand"], totals["reserved"]) == (level.on_hand, level.reserved)
    call_command("audit_stock")  # raises CommandError on any drift
    connections.close_all()

    rounds = len(results["project", "hot"])
    print(
        f"{rounds} rounds x {BUYERS} buyers per server and kind, {CONCURRENCY} concurrent "
        f"clients, {WORKERS} gunicorn workers per server; tasks "
        f"{'eager (in the request)' if EAGER else 'published to memory://'}"
    )
    for round_number in range(rounds):
        parts = []
        for kind in KINDS:
            project = results["project", kind][round_number].orders_per_second
            raw = results["raw", kind][round_number].orders_per_second
            extra = ""
            if PREPARED:
                prepared = results["prepared", kind][round_number].orders_per_second
                extra = f", prepared {prepared:6.1f} ({prepared / raw:.2f} of raw)"
            parts.append(
                f"{kind} project {project:6.1f} raw {raw:6.1f} o/s = {project / raw:.2f}{extra}"
            )
        print(f"  round {round_number + 1}: " + "; ".join(parts))
    for app_name in names:
        for kind in KINDS:
            of = results[app_name, kind]
            print(
                f"  median {app_name:8} {kind:6} "
                f"{median([r.orders_per_second for r in of]):7.1f} orders/s  "
                f"p50 {median([r.percentile(0.5) for r in of]):6.1f} ms  "
                f"p99 {median([r.percentile(0.99) for r in of]):6.1f} ms"
            )
    for kind in KINDS:
        _print_ratios(
            f"project/raw {kind:6}",
            results["project", kind],
            results["raw", kind],
            " (target >= 0.40)",
        )
        if PREPARED:
            _print_ratios(
                f"prepared/project {kind:6}", results["prepared", kind], results["project", kind]
            )
    for app_name in names:
        target = " (target >= 0.90)" if app_name == "project" else ""
        _print_ratios(
            f"hot/spread {app_name:8}",
            results[app_name, "hot"],
            results[app_name, "spread"],
            target,
        )
    for app_name, count in statements.items():
        print(f"  SQL statements per checkout, {app_name}: {count}")
    print(
        f"  no oversell ({', '.join(names)}): each hot product sold exactly {BUYERS} of "
        f"{BUYERS} units; {EXTRA} late buyers per round all got 409; audit_stock clean"
    )
