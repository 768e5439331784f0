"""`make load`: Locust, headless, for a fixed time against the whole stack over a large catalog.

    DATABASE_URL=postgres://... [REDIS_URL=redis://...] python -m bench.load

What it does, every process on 127.0.0.1 and the whole run bounded:

1. creates the scratch database `<your database>_load` beside DATABASE_URL's (dropped at the end,
   also on Ctrl-C), migrates it and imports a generated catalog of LOAD_PRODUCTS products
   (default 100,000; inventory/catalog_generator.py, seed 1) with `import_catalog`;
2. creates LOAD_USERS customers (verified email; a 4242 card and the slow test card
   4000000000000077 each), a few staff users, and their access tokens;
3. starts gunicorn with config/gunicorn.conf.py (WEB_CONCURRENCY and the rest as the project
   sets them) and a Celery worker (`-Q critical,default,bulk`, as `make worker`), both on the
   Redis of REDIS_URL (its database and the next two: broker, cache, throttles; without
   REDIS_URL, redis://127.0.0.1:6379/13). Point REDIS_URL at databases no running server uses:
   another server's worker would take this run's tasks, and this run's worker theirs;
4. runs bench/locustfile.py headless for LOAD_SECONDS (default 60) with LOAD_USERS simulated
   users (default 50) started LOAD_SPAWN_RATE a second (default 10): browsing 60 %, search 15 %,
   product detail 10 %, cart → checkout → pay 10 % (LOAD_SLOW_SHARE of the payments, default
   0.2, with the slow card), staff stock and order work 5 %, and /readyz once a second;
5. stops gunicorn (in-flight requests finish), waits for the worker to drain the outbox, stops it,
   and runs `manage.py audit_stock` and `manage.py audit_payments` on the scratch database.

It writes bench/results/load.md (bench/load_report.py: requests, req/s, p50/p95/p99/max and
failures per endpoint and in total; catalog reads and /readyz while a slow payment was in flight
and otherwise; the checks) and prints it; Locust's CSV and HTML reports, the per-request
samples and the servers' logs go to bench/results/load/. Throttles are raised for the run
(THROTTLE_ANON and THROTTLE_USER 100000/min: every simulated user shares 127.0.0.1), so 429s should
not appear, and are tolerated if they do.

Exit status 0 when every check passes: no 5xx and no request without an answer; no Locust
failure (an unexpected status, such as a 400, 401, 403 or 404 on a request that should work;
409s for sold-out stock or a race between staff users are right answers, counted in the table);
no stall (the p99 of catalog reads, and of /readyz, while a slow payment was in flight stays
under 2 s, or under twice its p99 otherwise); the outbox drained; both audits clean. Else 1;
2 for a setup problem; 130 when interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import stack
from bench.load_report import ARTEFACTS, SLOW_CARD, SLOW_PAY, Settings, env_int, report

ROOT = stack.ROOT
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
STOP_TIMEOUT_SECONDS = 10  # Locust lets a user finish its task (a slow payment) this long
DRAIN_TIMEOUT_SECONDS = 120


def _stopped_by_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


# =============================================================================
# Setup
# =============================================================================
def load_environment(redis_url: str, seconds: int) -> None:
    """The settings every process of the run reads (this one, gunicorn, Celery, the audits)."""
    for name in (
        "CELERY_BROKER_URL",
        "CACHE_URL",
        "THROTTLE_CACHE_URL",
        "DATABASE_REPLICA_URL",
        "PROMETHEUS_MULTIPROC_DIR",
        "SENTRY_DSN",
    ):
        os.environ.pop(name, None)  # everything from REDIS_URL; gunicorn makes its own metrics dir
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "REDIS_URL": redis_url,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "EMAIL_URL": "dummymail://",
            "PAYMENT_GATEWAY": "test",
            "THROTTLE_ANON": "100000/min",
            "THROTTLE_USER": "100000/min",
            # The tokens made before the run must outlive it.
            "JWT_ACCESS_MINUTES": str(max(env_int("JWT_ACCESS_MINUTES", 15), seconds // 60 + 30)),
        }
    )


def import_products(products: int) -> float:
    from django.db import connection

    from bench.bench_catalog_import import generate
    from inventory.catalog_csv import import_catalog

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.csv"
        generate(path, products=products, seed=1)
        result = import_catalog(path)
        if not result.ok:
            raise RuntimeError(f"import failed: {result.first_errors[:5]}")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def search_terms() -> list[str]:
    """Words and phrases a shopper types, from the generator's vocabulary (and two typos)."""
    from inventory.catalog_generator import ADJECTIVES, COLORS, LEAVES

    rng = random.Random(7)
    nouns = sorted({noun.lower() for leaf in LEAVES for noun in leaf.nouns})
    brands = sorted({brand for leaf in LEAVES for brand in leaf.brands})
    materials = sorted({material for leaf in LEAVES for material in leaf.materials})
    terms = [*nouns, *brands[:10], *materials[:6], "hedphones", "keybaord"]
    terms += [f"{rng.choice(COLORS)} {rng.choice(nouns).split()[-1]}" for _ in range(10)]
    terms += [f"{rng.choice(ADJECTIVES).lower()} {rng.choice(nouns)}" for _ in range(10)]
    terms += [f"{brand} {rng.choice(nouns).split()[-1]}" for brand in brands[:6]]
    return terms


def prepare(users: int, slow_share: float) -> dict[str, Any]:
    """Customers, staff and what the simulated users pick from (the JSON Locust reads)."""
    from django.utils import timezone

    from accounts.models import User
    from accounts.tokens import ShopRefreshToken
    from inventory.models import Category, Product
    from payments.gateways.base import CardDetails
    from payments.services import payment_method_create

    def token(user: User) -> str:
        return str(ShopRefreshToken.for_user(user).access_token)

    now = timezone.now()
    staff = [
        User.objects.create_user(email=f"staff{n}@load.local", role=User.Role.STAFF)
        for n in range(users // 20 + 1)
    ]
    customers = []
    for n in range(users):
        user = User.objects.create_user(email=f"buyer{n}@load.local", email_verified_at=now)
        card = payment_method_create(
            user=user, card=CardDetails("4242424242424242", 12, now.year + 5, "123")
        )
        slow = payment_method_create(
            user=user, card=CardDetails(SLOW_CARD, 12, now.year + 5, "123")
        )
        customers.append({"token": token(user), "card": str(card.pk), "slow_card": str(slow.pk)})
    active = Product.objects.filter(is_active=True)
    return {
        "categories": list(Category.objects.values("id", "slug")),
        "products": list(active.order_by("?").values("id", "slug")[:2000]),
        "buyable": list(
            active.filter(stock__on_hand__gte=20).order_by("?").values_list("id", flat=True)[:1000]
        ),
        # A quarter of the buyers' picks: a few products with 2 units, which sell out during the
        # run (409 `insufficient_stock`); staff restock only the others.
        "scarce": list(
            active.filter(stock__on_hand__range=(1, 2))
            .order_by("?")
            .values_list("id", flat=True)[:5]
        ),
        "search_terms": search_terms(),
        "customers": customers,
        "staff": [token(user) for user in staff],
        "slow_share": slow_share,
        "slow_pay_name": SLOW_PAY,
    }


# =============================================================================
# After the run
# =============================================================================
def drain_outbox(timeout: float) -> tuple[float, list[str]]:
    """Wait until the worker has run every queued task; (seconds, problems)."""
    from common.models import OutboxMessage

    started = time.monotonic()
    while True:
        failed = list(OutboxMessage.objects.exclude(last_error="").filter(done_at__isnull=True))
        waiting = OutboxMessage.objects.filter(done_at__isnull=True, last_error="").count()
        if failed:
            return time.monotonic() - started, [
                f"task {m.task} failed ({m.attempts} attempt(s)): {m.last_error[:200]}"
                for m in failed[:10]
            ]
        if not waiting:
            return time.monotonic() - started, []
        if time.monotonic() - started > timeout:
            return time.monotonic() - started, [
                f"{waiting} task(s) still queued after {timeout:g} s"
            ]
        time.sleep(0.5)


def audit(command: str, env: dict[str, str]) -> tuple[bool, str]:
    result = subprocess.run(
        [sys.executable, "manage.py", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0, output


def order_counts() -> dict[str, int]:
    from django.db.models import Count

    from orders.models import Order

    return {
        row["status"]: row["n"]
        for row in Order.objects.values("status").annotate(n=Count("id")).order_by("status")
    }


# =============================================================================
def main() -> int:
    signal.signal(signal.SIGTERM, _stopped_by_signal)
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url:
        print(
            "make load needs DATABASE_URL (a PostgreSQL server you can create databases on; the "
            "run creates and drops <your database>_load beside yours)"
        )
        return 2
    settings = Settings.from_environment()
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL

    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        print(f"Redis at {redis_url} does not answer ({error}); set REDIS_URL")
        return 2

    began = time.monotonic()
    load_average = os.getloadavg()
    load_environment(redis_url, settings.seconds)
    stack.setup_django()
    logging.disable(logging.INFO)  # this process's own log lines (the servers log to files)
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    ARTEFACTS.mkdir(parents=True)
    processes: list[stack.Process] = []
    print(f"load: {settings.parameters}; artefacts in {ARTEFACTS.relative_to(ROOT)}/", flush=True)
    try:
        with stack.scratch_database("load") as database_url, tempfile.TemporaryDirectory() as tmp:
            try:
                outcome = run_stack(settings, database_url, Path(tmp), began, processes)
            finally:
                for process in reversed(processes):
                    process.stop()
        total_seconds = time.monotonic() - began
    except KeyboardInterrupt:
        print("interrupted; the stack is stopped and the scratch database dropped")
        return 130
    return report(outcome, settings, redis_url, load_average, total_seconds)


def run_stack(
    settings: Settings,
    database_url: str,
    tmp: Path,
    began: float,
    processes: list[stack.Process],
) -> dict[str, Any]:
    """Import, prepare, start the stack, run Locust, drain, audit; what the report needs. The
    processes it starts go into `processes` (the caller stops them)."""
    products, seconds, users = settings.products, settings.seconds, settings.users
    env = {**os.environ, "DATABASE_URL": database_url}
    print(f"importing {products:,} products into {database_url.rsplit('/', 1)[1]}…", flush=True)
    import_seconds = import_products(products)
    print(f"  imported in {import_seconds:.1f} s", flush=True)
    data = prepare(users, settings.slow_share)
    data_path = tmp / "data.json"  # access tokens: kept out of the results
    data_path.write_text(json.dumps(data))
    setup_seconds = time.monotonic() - began

    port = stack.free_port()
    web = stack.gunicorn(env, ARTEFACTS / "gunicorn.log", port=port)
    processes.append(web)
    worker = stack.celery_worker(env, ARTEFACTS / "celery.log")
    processes.append(worker)
    if stack.http_status(port, "/readyz") != 200:
        raise RuntimeError(f"/readyz is not 200:\n{web.tail()}")

    samples_path = ARTEFACTS / "samples.json"
    locust_command = [
        str(stack.BIN / "locust"),
        "-f",
        "bench/locustfile.py",
        "--headless",
        "--host",
        f"http://127.0.0.1:{port}",
        "-u",
        str(users),
        "-r",
        f"{settings.spawn_rate:g}",
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_SECONDS),
        "--only-summary",
        "--csv",
        str(ARTEFACTS / "locust"),
        "--html",
        str(ARTEFACTS / "locust.html"),
    ]
    print(f"running Locust for {seconds} s with {users} users…", flush=True)
    locust = stack.Process(
        "locust",
        locust_command,
        {**env, "LOAD_DATA": str(data_path), "LOAD_SAMPLES": str(samples_path)},
        ARTEFACTS / "locust.log",
    )
    processes.append(locust)
    run_started = time.monotonic()
    deadline = run_started + seconds + STOP_TIMEOUT_SECONDS + 60
    while locust.wait(15) is None:
        if time.monotonic() > deadline:
            locust.stop(signal.SIGTERM, timeout=30)
            break
        print(f"  {time.monotonic() - run_started:.0f} s", flush=True)
    if not samples_path.exists():
        raise RuntimeError(f"Locust wrote no samples:\n{locust.tail()}")

    web.stop()  # graceful: requests in flight finish first
    drain_seconds, drain_problems = drain_outbox(DRAIN_TIMEOUT_SECONDS)
    worker.stop()
    return {
        "run": json.loads(samples_path.read_text()),
        "locust_command": locust_command,
        "gunicorn": stack.gunicorn_settings(),
        "import_seconds": import_seconds,
        "setup_seconds": setup_seconds,
        "drain_seconds": drain_seconds,
        "drain_problems": drain_problems,
        "audits": {name: audit(name, env) for name in ("audit_stock", "audit_payments")},
        "orders": order_counts(),
    }


if __name__ == "__main__":
    sys.exit(main())
