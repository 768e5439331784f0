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

It writes bench/results/load.md (requests, req/s, p50/p95/p99/max and failures per endpoint and
in total; catalog reads and /readyz while a slow payment was in flight and otherwise; the checks)
and prints it; Locust's CSV and HTML reports, the per-request samples and the servers' logs go to
bench/results/load/. Throttles are raised for the run (THROTTLE_ANON and THROTTLE_USER 100000/min:
every simulated user shares 127.0.0.1), so 429s should not appear, and are tolerated if they do.

Exit status 0 when every check passes: no 5xx and no request without an answer; no Locust
failure (an unexpected status, such as a 400, 401, 403 or 404 on a request that should work;
409s for sold-out stock or a race between staff users are right answers, counted in the table);
no stall (the p99 of catalog reads, and of /readyz, while a slow payment was in flight stays
under 2 s, or under twice its p99 otherwise); the outbox drained; both audits clean. Else 1;
2 for a setup problem; 130 when interrupted.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import stack

ROOT = stack.ROOT
RESULTS = ROOT / "bench" / "results"
ARTEFACTS = RESULTS / "load"
REPORT = RESULTS / "load.md"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
SLOW_CARD = "4000000000000077"
SLOW_PAY = "POST /orders/{id}/pay/ (slow 0077)"
STOP_TIMEOUT_SECONDS = 10  # Locust lets a user finish its task (a slow payment) this long
DRAIN_TIMEOUT_SECONDS = 120
STALL_MS = 2000.0
EXPECTED_4XX = {409, 429}
CATALOG_READS = ("GET /products", "GET /categories")


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


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
            "JWT_ACCESS_MINUTES": str(max(_int("JWT_ACCESS_MINUTES", 15), seconds // 60 + 30)),
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
# Figures
# =============================================================================
def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def latency_row(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 0.50),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else math.nan,
    }


def endpoint_rows(run: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    by_name: dict[str, list[list[Any]]] = {}
    for sample in run["samples"]:
        by_name.setdefault(sample[0], []).append(sample)
    rows = []
    for name, samples in [*sorted(by_name.items()), ("Total", run["samples"])]:
        statuses = Counter(int(s[3]) for s in samples)
        rows.append(
            {
                "name": name,
                "requests": len(samples),
                "rps": len(samples) / seconds,
                **latency_row([float(s[2]) for s in samples]),
                "failures": sum(1 for s in samples if not s[4]),
                "expected_4xx": {code: statuses[code] for code in EXPECTED_4XX if statuses[code]},
                "statuses": statuses,
            }
        )
    return rows


def merged_intervals(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def max_in_flight(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def during_slow_payments(run: dict[str, Any]) -> dict[str, Any]:
    """Catalog reads and /readyz split by whether a slow payment was in flight meanwhile."""
    spans = [(s[1], s[1] + s[2] / 1000) for s in run["samples"] if s[0] == SLOW_PAY]
    windows = merged_intervals(spans)
    starts = [start for start, _ in windows]

    def overlaps(sample: list[Any]) -> bool:
        begin, end = sample[1], sample[1] + sample[2] / 1000
        index = bisect.bisect_left(starts, end) - 1  # the last window starting before it ends
        return index >= 0 and windows[index][1] > begin

    groups: dict[str, dict[bool, list[float]]] = {
        "Catalog reads": {True: [], False: []},
        "GET /readyz": {True: [], False: []},
    }
    for sample in run["samples"]:
        group = (
            "Catalog reads"
            if sample[0].startswith(CATALOG_READS)
            else "GET /readyz"
            if sample[0] == "GET /readyz"
            else None
        )
        if group:
            groups[group][overlaps(sample)].append(float(sample[2]))
    slow = sorted(s[2] for s in run["samples"] if s[0] == SLOW_PAY)
    return {
        "groups": groups,
        "slow_count": len(slow),
        "slow_p50": percentile(slow, 0.5),
        "max_in_flight": max_in_flight(spans),
        "seconds_in_flight": sum(end - start for start, end in windows),
    }


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


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
    products = _int("LOAD_PRODUCTS", 100_000)
    seconds = _int("LOAD_SECONDS", 60)
    users = _int("LOAD_USERS", 50)
    spawn_rate = _float("LOAD_SPAWN_RATE", 10)
    slow_share = _float("LOAD_SLOW_SHARE", 0.2)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    parameters = (
        f"LOAD_PRODUCTS={products} LOAD_SECONDS={seconds} LOAD_USERS={users} "
        f"LOAD_SPAWN_RATE={spawn_rate:g} LOAD_SLOW_SHARE={slow_share:g}"
    )

    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        print(f"Redis at {redis_url} does not answer ({error}); set REDIS_URL")
        return 2

    began = time.monotonic()
    load_average = os.getloadavg()
    load_environment(redis_url, seconds)
    from bench.bench_catalog_import import scratch_database, setup_django

    setup_django()
    logging.disable(logging.INFO)  # this process's own log lines (the servers log to files)
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    ARTEFACTS.mkdir(parents=True)
    processes: list[stack.Process] = []
    print(f"load: {parameters}; artefacts in {ARTEFACTS.relative_to(ROOT)}/", flush=True)
    try:
        with scratch_database("load") as database_url, tempfile.TemporaryDirectory() as tmp:
            try:
                outcome = run_stack(
                    database_url=database_url,
                    tmp=Path(tmp),
                    products=products,
                    seconds=seconds,
                    users=users,
                    spawn_rate=spawn_rate,
                    slow_share=slow_share,
                    began=began,
                    processes=processes,
                )
            finally:
                for process in reversed(processes):
                    process.stop()
        total_seconds = time.monotonic() - began
    except KeyboardInterrupt:
        print("interrupted; the stack is stopped and the scratch database dropped")
        return 130
    return report(
        outcome,
        parameters=parameters,
        products=products,
        seconds=seconds,
        redis_url=redis_url,
        load_average=load_average,
        total_seconds=total_seconds,
    )


def run_stack(
    *,
    database_url: str,
    tmp: Path,
    products: int,
    seconds: int,
    users: int,
    spawn_rate: float,
    slow_share: float,
    began: float,
    processes: list[stack.Process],
) -> dict[str, Any]:
    """Import, prepare, start the stack, run Locust, drain, audit; what the report needs."""
    env = {**os.environ, "DATABASE_URL": database_url}
    print(f"importing {products:,} products into {database_url.rsplit('/', 1)[1]}…", flush=True)
    import_seconds = import_products(products)
    print(f"  imported in {import_seconds:.1f} s", flush=True)
    data = prepare(users, slow_share)
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
        f"{spawn_rate:g}",
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


def report(
    outcome: dict[str, Any],
    *,
    parameters: str,
    products: int,
    seconds: int,
    redis_url: str,
    load_average: tuple[float, float, float],
    total_seconds: float,
) -> int:
    """Write and print bench/results/load.md; the exit status (1 if any check failed)."""
    run = outcome["run"]
    gunicorn = outcome["gunicorn"]
    audits: dict[str, tuple[bool, str]] = outcome["audits"]
    drain_problems: list[str] = outcome["drain_problems"]
    orders: dict[str, int] = outcome["orders"]
    locust_command: list[str] = outcome["locust_command"]
    # --- report ------------------------------------------------------------------------------
    measured = run["stopped"] - run["started"] if "started" in run and "stopped" in run else seconds
    rows = endpoint_rows(run, measured)
    slow = during_slow_payments(run)
    problems: list[str] = []
    no_answer = [
        (row["name"], code, count)
        for row in rows[:-1]
        for code, count in sorted(row["statuses"].items())
        if code >= 500 or code == 0
    ]
    for name, code, count in no_answer:
        problems.append(f"{count} x {'no answer' if code == 0 else f'HTTP {code}'} on `{name}`")
    for name, messages in sorted(run["failures"].items()):
        for message, count in sorted(messages.items(), key=lambda item: -item[1])[:5]:
            problems.append(f"{count} x Locust failure on `{name}`: {message}")
    stalls = []
    slow_effective = slow["slow_count"] > 0 and slow["slow_p50"] >= 1000
    for group, split in slow["groups"].items():
        during, otherwise = latency_row(split[True]), latency_row(split[False])
        if slow_effective and during["p99"] > max(STALL_MS, 2 * otherwise["p99"]):
            stalls.append(
                f"{group} stalled while slow payments were in flight: p99 {ms(during['p99'])} ms "
                f"(otherwise {ms(otherwise['p99'])} ms)"
            )
    problems += stalls
    problems += [f"outbox: {problem}" for problem in drain_problems]
    problems += [f"`manage.py {name}`: {output}" for name, (ok, output) in audits.items() if not ok]

    machine = (
        f"{os.cpu_count()} cores, {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average before the run "
        f"{' '.join(f'{x:.2f}' for x in load_average)}"
    )
    threads = f" x {gunicorn['threads']} threads" if gunicorn["threads"] > 1 else ""
    lines = [
        "# Load test (`make load`)",
        "",
        f"- When: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {machine}",
        f"- Command: `{parameters} python -m bench.load`",
        f"- Locust: `{shlex.join(['locust', *locust_command[1:]]).replace(str(ROOT) + '/', '')}`",
        f"- Stack: gunicorn {gunicorn['workers']} {gunicorn['worker_class']} workers{threads} "
        f"(config/gunicorn.conf.py), one Celery worker (`-Q critical,default,bulk`), Redis "
        f"{redis_url}, PostgreSQL scratch database; catalog cache "
        f"{os.environ.get('CATALOG_CACHE_SECONDS') or 'default (300 s)'}",
        f"- Catalog: {products:,} products imported in {outcome['import_seconds']:.1f} s; "
        f"setup (database, import, users) {outcome['setup_seconds']:.0f} s; the whole run "
        f"{total_seconds:.0f} s",
        f"- Measured: {measured:.1f} s; orders at the end: "
        + ", ".join(f"{status} {count}" for status, count in orders.items()),
        "",
        "| Endpoint | Requests | req/s | p50 ms | p95 ms | p99 ms | max ms | Failures | "
        "Expected 4xx |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        name = f"**{row['name']}**" if row["name"] == "Total" else f"`{row['name']}`"
        expected = ", ".join(f"{code}: {n}" for code, n in sorted(row["expected_4xx"].items()))
        lines.append(
            f"| {name} | {row['requests']:,} | {row['rps']:.1f} | {ms(row['p50'])} | "
            f"{ms(row['p95'])} | {ms(row['p99'])} | {ms(row['max'])} | {row['failures']} | "
            f"{expected or '-'} |"
        )
    lines += [
        "",
        "## Reads while slow payments are in flight",
        "",
        f"{slow['slow_count']} payments with the slow card ({SLOW_CARD}), p50 "
        f"{ms(slow['slow_p50'])} ms; at least one in flight for {slow['seconds_in_flight']:.1f} s "
        f"of the run, at most {slow['max_in_flight']} at once.",
    ]
    if not slow["slow_count"]:
        lines.append(
            "No payment used the slow card in this run (LOAD_SLOW_SHARE, or too short a run for "
            "the buyers), so nothing is measured here."
        )
    elif not slow_effective:
        lines.append(
            f"The slow card did not delay payments (p50 under 1 s): the test gateway "
            f"(payments/gateways/test.py) has no slow card {SLOW_CARD}, so nothing is measured "
            "here."
        )
    lines += [
        "",
        "| Requests | while a slow payment was in flight | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for group, split in slow["groups"].items():
        for in_flight in (True, False):
            figures = latency_row(split[in_flight])
            lines.append(
                f"| {group} | {'yes' if in_flight else 'no'}: {len(split[in_flight]):,} | "
                f"{ms(figures['p50'])} | {ms(figures['p95'])} | {ms(figures['p99'])} | "
                f"{ms(figures['max'])} |"
            )
    audit_lines = [
        f"- `manage.py {name}`: {'clean' if ok else 'NOT CLEAN'} ({output.splitlines()[-1]})"
        for name, (ok, output) in audits.items()
    ]
    lines += [
        "",
        "## Checks",
        "",
        f"- 5xx or no answer: {sum(n for *_, n in no_answer)}",
        f"- Locust failures (unexpected statuses): {rows[-1]['failures']}",
        f"- Stall (p99 while a slow payment is in flight over {STALL_MS:,.0f} ms and over twice "
        "the p99 otherwise): "
        + (
            "not measured" if not slow_effective else f"{len(stalls)} (below)" if stalls else "none"
        ),
        f"- Outbox drained by the worker {outcome['drain_seconds']:.1f} s after gunicorn stopped"
        + (f": {'; '.join(drain_problems)}" if drain_problems else ""),
        *audit_lines,
        "",
        f"**{'PASS' if not problems else 'FAIL'}**",
    ]
    if problems:
        lines += ["", *[f"- {problem}" for problem in problems]]
    report = "\n".join(lines) + "\n"
    REPORT.write_text(report)
    print()
    print(report)
    print(
        f"written to {REPORT.relative_to(ROOT)}; Locust's reports in {ARTEFACTS.relative_to(ROOT)}/"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
