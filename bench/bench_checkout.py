"""Checkout under contention, over HTTP against gunicorn on 127.0.0.1.

Each round has two kinds of checkout, run in alternating batches of BATCH (A-B-B-A order) so
the background load of a shared machine falls on both alike:

- **hot**: BUYERS buyers (CONCURRENCY at a time) each check out one unit of the *same* product,
  which has exactly BUYERS units; then EXTRA more buyers try the sold-out product (all get 409).
- **spread**: BUYERS buyers each check out one unit of a product of their own.

Reported per kind: orders per second (wall time of the round) and p50/p99 latency; the figure
that matters is the same-run ratio hot / spread (target ≥ 0.8: a stock row is locked for one
statement at the end of the checkout transaction, never across our own work). Afterwards it
proves there was no oversell: the hot product sold exactly its on-hand units in every round, and
the ledger explains every stock level and `manage.py audit_stock` is clean.

Needs `DATABASE_URL` (PostgreSQL): it creates a scratch database `<name>_bench_checkout` beside
it, migrates it, and drops it at the end; your data is never touched. Bounded: ROUNDS x (2 x
BUYERS + EXTRA) checkouts, and it stops by itself after DEADLINE_SECONDS whatever happens.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shop python -m bench checkout
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BUYERS = int(os.environ.get("BENCH_BUYERS", "200"))
EXTRA = 40  # buyers who arrive after the hot product sold out
BATCH = 40  # buyers per batch; hot and spread batches alternate
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
DEADLINE_SECONDS = 600
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
    seconds: float
    latencies: list[float]
    statuses: list[int]

    @property
    def orders_per_second(self) -> float:
        return self.statuses.count(201) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scratch_database(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_bench_checkout"
    return name, urlunsplit(parts._replace(path=f"/{name}"))


def _admin_sql(base_url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _post(port: int, path: str, token: str, body: dict[str, Any]) -> tuple[int, float]:
    payload = json.dumps(body)
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            body=payload,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def _checkout_all(port: int, tokens: list[str], deadline: float) -> RoundResult:
    def one(token: str) -> tuple[int, float]:
        if time.monotonic() > deadline:
            return 0, 0.0
        return _post(port, "/api/v1/orders/", token, {"shipping_address": ADDRESS})

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


def main() -> None:
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url:
        print("bench_checkout needs DATABASE_URL (PostgreSQL); skipped")
        return
    deadline = time.monotonic() + DEADLINE_SECONDS
    name, url = _scratch_database(base_url)
    _admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "THROTTLE_USER": "100000/min",
    }
    env.pop("REDIS_URL", None)  # local-memory cache; emails rendered in-process, not queued
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")})
        os.environ.pop("REDIS_URL", None)
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from django.db.models import Sum
        from django.utils import timezone
        from rest_framework_simplejwt.tokens import AccessToken

        from accounts.models import User
        from inventory.models import StockLevel, StockMovement
        from inventory.services import category_create, product_create
        from orders.models import OrderItem
        from orders.services import cart_item_add

        category = category_create(name="Bench")
        users_needed = ROUNDS * (2 * BUYERS + EXTRA) + 20
        now = timezone.now()
        users = User.objects.bulk_create(
            User(email=f"buyer{i}@bench.local", password="!", email_verified_at=now)  # noqa: S106
            for i in range(users_needed)
        )
        pool = iter(users)

        def buyers_for(product_ids: list[int]) -> list[str]:
            tokens = []
            for product_id in product_ids:
                user = next(pool)
                cart_item_add(user=user, product_id=product_id, quantity=1)
                tokens.append(str(AccessToken.for_user(user)))
            return tokens

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

        port = _free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                "config/gunicorn.conf.py",
                "config.wsgi",
            ],
            cwd=ROOT,
            env={**env, "PORT": str(port), "WEB_CONCURRENCY": str(WORKERS)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)

        # Warm every worker (imports, database connections) before measuring.
        _checkout_all(port, buyers_for([product(1) for _ in range(4 * WORKERS)]), deadline)

        results: list[RoundResult] = []
        hot_products: list[int] = []
        for round_number in range(ROUNDS):
            hot = product(BUYERS)
            hot_products.append(hot)
            hot_tokens = buyers_for([hot] * BUYERS)
            late_tokens = buyers_for([hot] * EXTRA)
            spread_tokens = buyers_for([product(5) for _ in range(BUYERS)])
            # Batches in A-B-B-A order, so load from elsewhere on the machine falls on both
            # kinds alike; each kind's rate is its orders over the sum of its batches' times.
            merged = {
                "hot": RoundResult("hot", 0.0, [], []),
                "spread": RoundResult("spread", 0.0, [], []),
            }
            order = (
                ["hot", "spread", "spread", "hot"]
                if round_number % 2 == 0
                else ["spread", "hot", "hot", "spread"]
            )
            tokens_of = {"hot": hot_tokens, "spread": spread_tokens}
            for batch in range(0, BUYERS, BATCH):
                for kind in order[:2] if (batch // BATCH) % 2 == 0 else order[2:]:
                    part = _checkout_all(port, tokens_of[kind][batch : batch + BATCH], deadline)
                    merged[kind].seconds += part.seconds
                    merged[kind].latencies += part.latencies
                    merged[kind].statuses += part.statuses
            results += [merged["hot"], merged["spread"]]
            late = _checkout_all(port, late_tokens, deadline)
            assert late.statuses == [409] * EXTRA, f"sold-out product: {late.statuses}"
            if time.monotonic() > deadline:
                print("deadline reached; stopping early")
                break

        # No oversell: each hot product sold exactly its units, and the ledger is clean.
        for hot in hot_products:
            level = StockLevel.objects.get(product_id=hot)
            sold = OrderItem.objects.filter(product_id=hot).aggregate(n=Sum("quantity"))["n"]
            assert (level.on_hand, level.reserved, sold) == (BUYERS, BUYERS, BUYERS), (
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

        print(
            f"{ROUNDS} rounds x {BUYERS} buyers, {CONCURRENCY} concurrent clients, "
            f"{WORKERS} gunicorn workers"
        )
        for result in results:
            print(
                f"  {result.kind:6} {result.orders_per_second:7.1f} orders/s  "
                f"p50 {result.percentile(0.50):6.1f} ms  p99 {result.percentile(0.99):6.1f} ms  "
                f"({result.statuses.count(201)} orders in {result.seconds:.2f} s)"
            )
        ratios = []
        for hot_result, spread_result in zip(
            [r for r in results if r.kind == "hot"],
            [r for r in results if r.kind == "spread"],
            strict=False,
        ):
            ratios.append(hot_result.orders_per_second / spread_result.orders_per_second)
        for kind in ("hot", "spread"):
            of_kind = [r for r in results if r.kind == kind]
            print(
                f"  median {kind:6} {statistics.median(r.orders_per_second for r in of_kind):7.1f}"
                f" orders/s  p99 {statistics.median(r.percentile(0.99) for r in of_kind):6.1f} ms"
            )
        print(
            f"  hot/spread per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"median {statistics.median(ratios):.2f} (target >= 0.80)"
        )
        print(
            f"  no oversell: each hot product sold exactly {BUYERS} of {BUYERS} units; "
            f"{EXTRA} late buyers per round all got 409; audit_stock clean"
        )
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 - Django may not be set up yet
            pass
        _admin_sql(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
