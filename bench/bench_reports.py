"""Staff reports over three years of sales: from the daily rollup, and all live, in the same run.

    DATABASE_URL=postgres://... python -m bench reports      (or: make bench BENCH=reports)

Works in a scratch database `<your database>_bench_reports` (created beside DATABASE_URL,
migrated, dropped at the end), so your data is never touched. It generates BENCH_ORDERS
(100,000) paid orders of 1 to 3 lines over the last 1,095 days with SQL alone (generate_series;
about 90 a day, the last ones today), each with its succeeded charge, plus 3 % declined charges
and refunds for 5 % of the orders (half in full) settled up to a week later; then builds the
rollup with `manage.py rollup_reports` and times, in the store's time zone (BENCH_TIME_ZONE,
default Europe/Berlin):

- the one-year daily sales report (365 rows), through the selector and through the HTTP view
  (Django's full stack in-process: middleware, JWT authentication, DRF, serialization), with
  the cache off (`REPORTS_CACHE_SECONDS=0`) so every request computes;
- the same from rollups and all live (rollup tables emptied), in alternating rounds, checking
  that both give the same rows; also top-products over the year and sales by month over the full
  three years.

Prints the median of BENCH_RUNS (5) timings per round and the median over BENCH_ROUNDS (3)
rounds. Target: the one-year daily report under 100 ms from rollups. Bounded: it stops by itself
after DEADLINE_SECONDS whatever happens.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from bench import stack

ORDERS = int(os.environ.get("BENCH_ORDERS", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TIME_ZONE = os.environ.get("BENCH_TIME_ZONE", "Europe/Berlin")
DAYS = 1095
PRODUCTS = 200
USERS = 1000
DEADLINE_SECONDS = 900
TARGET_MS = 100.0


def _sql(statement: str, params: dict[str, Any] | None = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def _timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


# Orders spread evenly over the last DAYS days (the last ones a few minutes ago), each paid by
# one succeeded charge a moment after checkout.
GENERATE = [
    "SELECT setseed(0.42)",
    """
    CREATE TEMP TABLE bench_orders AS
    SELECT i,
           gen_random_uuid() AS id,
           %(first_user)s + i %% %(users)s AS user_id,
           now() - (%(orders)s - i) * (%(days)s * interval '1 day' / %(orders)s)
                 - random() * interval '10 minutes' AS paid_at
    FROM generate_series(1, %(orders)s) AS i
    """,
    """
    INSERT INTO orders_order (id, number, user_id, status, currency, subtotal_cents, total_cents,
                              shipping_address, note, carrier, tracking_number, created_at,
                              updated_at)
    SELECT id, 'BENCH-' || i, user_id,
           CASE WHEN i %% 40 = 0 THEN 'refunded' ELSE 'delivered' END,
           'USD', 0, 0, '{}'::jsonb, '', '', '', paid_at - interval '2 minutes', paid_at
    FROM bench_orders
    """,
    """
    INSERT INTO orders_orderitem (order_id, product_id, sku, name, unit_price_cents, quantity)
    SELECT o.id, p.id, p.sku, p.name, p.price_cents, 1 + (o.i + k) %% 3
    FROM bench_orders AS o
    CROSS JOIN LATERAL generate_series(0, o.i %% 3) AS k
    JOIN inventory_product AS p
      ON p.id = %(first_product)s + ((o.i * 7 + k * 31 + (o.i / 97) * 13) %% %(products)s)
    """,
    """
    UPDATE orders_order AS o SET subtotal_cents = t.total, total_cents = t.total
    FROM (SELECT order_id, sum(unit_price_cents * quantity) AS total
          FROM orders_orderitem GROUP BY order_id) AS t
    WHERE t.order_id = o.id
    """,
    # A declined attempt before 3 % of the charges: never counted.
    """
    INSERT INTO payments_payment (id, created_at, updated_at, order_id, user_id, kind,
                                  amount_cents, currency, status, failure_code, gateway,
                                  gateway_reference, settled_at)
    SELECT gen_random_uuid(), b.paid_at - interval '1 minute', b.paid_at, o.id, o.user_id,
           'charge', o.total_cents, 'USD', 'failed', 'card_declined', 'test', '',
           b.paid_at - interval '1 minute'
    FROM bench_orders AS b JOIN orders_order AS o ON o.id = b.id
    WHERE b.i %% 33 = 0
    """,
    """
    INSERT INTO payments_payment (id, created_at, updated_at, order_id, user_id, kind,
                                  amount_cents, currency, status, failure_code, gateway,
                                  gateway_reference, settled_at)
    SELECT gen_random_uuid(), b.paid_at - interval '1 second', b.paid_at, o.id, o.user_id,
           'charge', o.total_cents, 'USD', 'succeeded', '', 'test', '', b.paid_at
    FROM bench_orders AS b JOIN orders_order AS o ON o.id = b.id
    """,
    "ANALYZE bench_orders",
    "ANALYZE payments_payment",
    # Refunds for 5 % of the orders, settled 1 to 7 days later (never in the future).
    """
    INSERT INTO payments_payment (id, created_at, updated_at, order_id, user_id, kind,
                                  amount_cents, currency, status, failure_code, gateway,
                                  gateway_reference, settled_at, parent_id)
    SELECT gen_random_uuid(), r.at, r.at, c.order_id, c.user_id, 'refund',
           CASE WHEN b.i %% 40 = 0 THEN c.amount_cents ELSE greatest(c.amount_cents / 2, 1) END,
           'USD', 'succeeded', '', 'test', '', r.at, c.id
    FROM bench_orders AS b
    JOIN payments_payment AS c
      ON c.order_id = b.id AND c.kind = 'charge' AND c.status = 'succeeded'
    CROSS JOIN LATERAL (
        SELECT least(b.paid_at + (1 + b.i %% 7) * interval '1 day' + random() * interval '5 hours',
                     now()) AS at
    ) AS r
    WHERE b.i %% 20 = 0
    """,
    "DROP TABLE bench_orders",
]


def generate(*, first_user: int, first_product: int) -> None:
    params = {
        "first_user": first_user,
        "users": USERS,
        "orders": ORDERS,
        "days": DAYS,
        "first_product": first_product,
        "products": PRODUCTS,
    }
    for statement in GENERATE:
        _sql(statement, params)
    _sql("VACUUM ANALYZE")


def median_ms(action: Callable[[], Any], runs: int) -> tuple[float, Any]:
    action()  # warm: plan caches, buffers
    timings = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), result


def main() -> None:
    stack.run_in_scratch_database("bench_reports", run, secret_key=False)


def run(scratch: stack.Scratch) -> None:
    """The benchmark in its scratch database."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    os.environ.update(
        {
            "DATABASE_URL": scratch.url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "TIME_ZONE": TIME_ZONE,
            "REPORTS_CACHE_SECONDS": "0",  # every request computes its report
            "LOG_LEVEL": "WARNING",
            "THROTTLE_USER": "100000/min",
            "EMAIL_URL": "dummymail://",
        }
    )
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    for variable in ("REDIS_URL", "CACHE_URL", "DATABASE_REPLICA_URL"):
        os.environ.pop(variable, None)
    # WhiteNoise warns when static files were never collected; nothing here serves them.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    sys.path.insert(0, str(stack.ROOT))
    stack.setup_django()
    from django.core.management import call_command
    from django.utils import timezone
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from reports import selectors
    from reports.models import DailyProductSales, DailySales

    print(
        f"{ORDERS:,} orders over {DAYS} days, {PRODUCTS} products, time zone {TIME_ZONE}; "
        f"{ROUNDS} rounds x {RUNS} runs",
        flush=True,
    )
    _timed("migrate", lambda: call_command("migrate", verbosity=0))
    products = stack.bench_products(
        PRODUCTS,
        sku="R",
        name="Bench product",
        price_cents=lambda n: 199 + (n * 37) % 5000,
        on_hand=1000,
        low_stock_threshold=5,
    )
    users = User.objects.bulk_create(
        User(email=f"buyer{n}@bench.local", password="!")  # noqa: S106
        for n in range(USERS)
    )
    staff = User.objects.create_user(
        email="staff@bench.local", password=secrets.token_urlsafe(), role="staff"
    )
    _timed(
        "generate orders, items, charges and refunds (SQL)",
        lambda: generate(first_user=min(u.pk for u in users), first_product=min(products)),
    )
    ((orders, lines, charges, refunds),) = _sql(
        "SELECT (SELECT count(*) FROM orders_order), (SELECT count(*) FROM orders_orderitem),"
        " (SELECT count(*) FROM payments_payment WHERE kind = 'charge'"
        "  AND status = 'succeeded'),"
        " (SELECT count(*) FROM payments_payment WHERE kind = 'refund')"
    )
    print(f"  rows: {orders:,} orders, {lines:,} lines, {charges:,} charges, {refunds:,} refunds")
    today = selectors.store_today()
    first_day = today - dt.timedelta(days=DAYS)
    _timed(
        f"rollup_reports --from {first_day} (every finished day)",
        lambda: call_command("rollup_reports", "--from", str(first_day), verbosity=0),
    )
    _sql("VACUUM ANALYZE reports_dailysales")
    _sql("VACUUM ANALYZE reports_dailyproductsales")
    _sql("CREATE TABLE bench_saved_days AS SELECT * FROM reports_dailysales")
    _sql("CREATE TABLE bench_saved_products AS SELECT * FROM reports_dailyproductsales")
    print(
        f"  rollup rows: {DailySales.objects.count():,} days, "
        f"{DailyProductSales.objects.count():,} product-days"
    )
    plan = _sql("EXPLAIN " + selectors.sql.DATA_VERSION)
    index_used = any("payments_pay_succeeded_settled" in line for (line,) in plan)
    version_ms, _ = median_ms(selectors.sales_data_version, RUNS)
    print(
        f"  cache version lookup: {version_ms:.2f} ms "
        f"({'partial index payments_pay_succeeded_settled' if index_used else 'NO INDEX'})"
    )

    year_from = today - dt.timedelta(days=364)
    months_back = today.year * 12 + today.month - 1 - 35  # 36 months, this one included
    three_from = dt.date(months_back // 12, months_back % 12 + 1, 1)
    client = APIClient(SERVER_NAME="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(staff)}")
    year_query = {"date_from": str(year_from), "date_to": str(today), "interval": "day"}

    def http_year() -> Any:
        response = client.get("/api/v1/reports/sales/", year_query)
        assert response.status_code == 200, response.content
        return response.json()

    cases: dict[str, Callable[[], Any]] = {
        "sales, 1 year by day (HTTP view)": http_year,
        "sales, 1 year by day (selector)": lambda: selectors.sales_report(
            date_from=year_from, date_to=today, interval="day"
        ),
        "top products, 1 year (selector)": lambda: selectors.top_products_report(
            date_from=year_from, date_to=today, limit=10
        ),
        "sales, 36 months by month (selector)": lambda: selectors.sales_report(
            date_from=three_from, date_to=today, interval="month"
        ),
    }
    short = {label: f"case {n + 1}" for n, label in enumerate(cases)}
    results: dict[tuple[str, str], list[float]] = {}
    answers: dict[tuple[str, str], Any] = {}
    for round_number in range(ROUNDS):
        modes = ["rollup", "live"] if round_number % 2 == 0 else ["live", "rollup"]
        for mode in modes:
            _sql("TRUNCATE reports_dailysales, reports_dailyproductsales")
            if mode == "rollup":
                _sql("INSERT INTO reports_dailysales SELECT * FROM bench_saved_days")
                _sql("INSERT INTO reports_dailyproductsales SELECT * FROM bench_saved_products")
            _sql("ANALYZE reports_dailysales")
            _sql("ANALYZE reports_dailyproductsales")
            for label, action in cases.items():
                ms, answer = median_ms(action, RUNS)
                results.setdefault((label, mode), []).append(ms)
                previous = answers.setdefault((label, "answer"), answer)
                assert answer == previous, f"{label}: {mode} differs from the other mode"
            if time.monotonic() > deadline:
                break
        print(
            f"  round {round_number + 1}: "
            + "; ".join(
                f"{short[label]} {results[(label, 'rollup')][-1]:.1f}"
                f"/{results[(label, 'live')][-1]:.1f}"
                for label in cases
                if (label, "live") in results and (label, "rollup") in results
            )
            + " ms (rollup/live)",
            flush=True,
        )
        if time.monotonic() > deadline:
            print("deadline reached; stopping early")
            break

    (year_rows,) = [answers[("sales, 1 year by day (selector)", "answer")]]
    print(
        f"  1-year report: {len(year_rows)} rows, {sum(r.orders for r in year_rows):,} "
        f"orders, {sum(r.revenue_cents for r in year_rows) / 100:,.2f} revenue, "
        f"{sum(r.refunded_cents for r in year_rows) / 100:,.2f} refunded; today "
        f"({today}) live: {year_rows[-1].orders} orders; same rows from rollups and live"
    )
    print("median over rounds, ms                       from rollups   all live   live/rollup")
    for label in cases:
        rolled = statistics.median(results[(label, "rollup")])
        live = statistics.median(results[(label, "live")])
        print(f"  {short[label]}: {label:38} {rolled:8.1f} {live:10.1f} {live / rolled:9.1f}x")
    year_ms = statistics.median(results[("sales, 1 year by day (HTTP view)", "rollup")])
    verdict = "met" if year_ms < TARGET_MS else "NOT MET"
    print(
        f"  target: 1-year daily sales over HTTP from rollups < {TARGET_MS:.0f} ms: "
        f"{year_ms:.1f} ms, {verdict}"
    )
    print(
        f"  (inventory report: {median_ms(selectors.inventory_report, RUNS)[0]:.1f} ms; "
        f"generated at {timezone.now():%Y-%m-%d %H:%M} UTC)"
    )
