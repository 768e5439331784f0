"""Slow requests do not block the others (config/gunicorn.conf.py: gthread workers).

Live: several payments with the test gateway's slow card (it answers after
SLOW_CARD_DELAY_SECONDS) are in flight at once on the live stack's gunicorn (tests/conftest.py),
and meanwhile `/readyz` and a catalog read answer 200, before any of those payments has settled.
With the sync workers of before, two such payments held both processes and every other request
waited for them. The configuration itself, and the database pool it sizes, are checked without a
server below.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from rest_framework_simplejwt.tokens import RefreshToken

from common.throttling import rate_of
from inventory.services import category_create, product_create
from orders.models import Order
from orders.tests.conftest import ADDRESS
from payments.gateways.base import CardDetails
from payments.gateways.test import SLOW_CARD_DELAY_SECONDS
from payments.models import Payment
from payments.services import payment_method_create
from tests.conftest import LiveStack, wait_for

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = str(ROOT / "config" / "gunicorn.conf.py")
SLOW_CARD = "4000000000000077"


def gunicorn_settings(
    monkeypatch: pytest.MonkeyPatch, dotenv: str = "", **variables: str | None
) -> dict[str, Any]:
    """What config/gunicorn.conf.py makes of an environment (None: the variable unset) and a
    `.env` beside it (`dotenv`: by default an empty one, whatever this checkout's says)."""
    for name, value in variables.items():
        # Recorded either way, so the test ends with the variable as it was, whatever the
        # settings' hooks (on_starting) write to it meanwhile.
        monkeypatch.setenv(name, value or "")
        if value is None:
            monkeypatch.delenv(name)
    with tempfile.TemporaryDirectory() as checkout:
        conf = Path(checkout, "config", "gunicorn.conf.py")
        conf.parent.mkdir()
        shutil.copy(GUNICORN_CONF, conf)
        Path(checkout, ".env").write_text(dotenv)
        return runpy.run_path(str(conf))


# --- the configuration -------------------------------------------------------------------------


def test_threaded_workers_accept_only_what_their_threads_can_serve(monkeypatch):
    conf = gunicorn_settings(monkeypatch, WEB_CONCURRENCY=None, WEB_THREADS=None)
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gthread", 2, 4)
    # A worker whose threads are all busy stops accepting: the next request goes to another.
    assert conf["worker_connections"] == conf["threads"]
    assert conf["keepalive"] == 0

    conf = gunicorn_settings(monkeypatch, WEB_CONCURRENCY="3", WEB_THREADS="6")
    assert (conf["workers"], conf["threads"], conf["worker_connections"]) == (3, 6, 6)


SERVER_VARIABLES = ("HOST", "PORT", "WEB_CONCURRENCY", "WEB_THREADS")


@pytest.mark.parametrize(
    ("environment", "dotenv", "expected"),
    [
        ({}, "", ("127.0.0.1:8000", 2, 4)),
        # Empty counts as unset: loopback (not every interface), the default port and sizes.
        (dict.fromkeys(SERVER_VARIABLES, ""), "", ("127.0.0.1:8000", 2, 4)),
        (
            dict.fromkeys(SERVER_VARIABLES, ""),
            "HOST=\nPORT=\nWEB_CONCURRENCY=\nWEB_THREADS=\n",
            ("127.0.0.1:8000", 2, 4),
        ),
        # `.env` fills in what the environment leaves unset or empty, as for the settings.
        (
            {"PORT": "", "WEB_THREADS": ""},
            "PORT=9100\nWEB_CONCURRENCY=3\nWEB_THREADS=5\n",
            ("127.0.0.1:9100", 3, 5),
        ),
        # The environment wins over `.env`.
        (
            {"HOST": "0.0.0.0", "PORT": "9200", "WEB_CONCURRENCY": "1"},  # noqa: S104
            "HOST=10.0.0.1\nPORT=9100\nWEB_CONCURRENCY=3\n",
            ("0.0.0.0:9200", 1, 4),
        ),
    ],
    ids=["unset", "empty", "empty-in-dotenv-too", "dotenv", "environment-over-dotenv"],
)
def test_empty_server_variables_count_as_unset(monkeypatch, environment, dotenv, expected):
    variables: dict[str, str | None] = dict.fromkeys(SERVER_VARIABLES, None)
    conf = gunicorn_settings(monkeypatch, dotenv, **(variables | environment))
    assert (conf["bind"], conf["workers"], conf["threads"]) == expected
    assert conf["worker_connections"] == conf["threads"]


def test_the_per_user_control_socket_is_off(monkeypatch):
    # gunicorn's default (~/.gunicorn/gunicorn.ctl) is shared by every gunicorn of the user.
    assert gunicorn_settings(monkeypatch)["control_socket_disable"] is True


@pytest.mark.parametrize("name", ["PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"])
def test_an_empty_metrics_directory_writes_no_metric_files_where_the_process_runs(tmp_path, name):
    """Unset, prometheus_client keeps its values in memory; set to "" it used to write each
    process's files (`counter_<pid>.db`) into the working directory. Every process of the shop
    imports the `config` package first (config/__init__.py)."""
    env = {key: value for key, value in os.environ.items() if "multiproc_dir" not in key.lower()}
    probe = (
        "import config\n"
        "from prometheus_client import Counter\n"
        "Counter('probe_requests', 'A probe.').inc()\n"
        "print(__import__('os').environ.get('" + name + "'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env | {name: "", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"  # gone for whatever the process starts, too
    assert list(tmp_path.iterdir()) == []


def test_the_master_makes_its_own_metrics_directory_when_the_variable_is_empty(monkeypatch):
    conf = gunicorn_settings(monkeypatch, PROMETHEUS_MULTIPROC_DIR="", DATABASE_POOL_MAX_SIZE=None)
    server = SimpleNamespace(
        log=SimpleNamespace(info=lambda *args: None), cfg=SimpleNamespace(threads=4)
    )
    conf["on_starting"](server)
    try:
        directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        assert directory.is_dir()
        assert directory.name.startswith(f"shop-metrics-{os.getpid()}-")
    finally:
        conf["on_exit"](server)
    assert not directory.exists()


@pytest.mark.parametrize(
    ("given", "workers_see"),
    [(None, "5"), ("", "5"), ("0", "0"), ("3", "3")],
    ids=["unset", "empty", "pool off", "explicit"],
)
def test_the_workers_pool_one_connection_per_thread(monkeypatch, given, workers_see):
    """The master sets DATABASE_POOL_MAX_SIZE for its workers before the first fork (settings
    turn it into psycopg_pool's max_size) to the threads in effect (here `--threads 5` on the
    command line over WEB_THREADS=6); a value in the environment wins (0: no pool)."""
    conf = gunicorn_settings(
        monkeypatch, WEB_THREADS="6", DATABASE_POOL_MAX_SIZE=given, PROMETHEUS_MULTIPROC_DIR=None
    )
    server = SimpleNamespace(
        log=SimpleNamespace(info=lambda *args: None), cfg=SimpleNamespace(threads=5)
    )
    conf["on_starting"](server)
    try:
        assert os.environ["DATABASE_POOL_MAX_SIZE"] == workers_see
    finally:
        conf["on_exit"](server)  # the metrics directory on_starting made


# --- live: slow payments in flight, the rest still answered -----------------------------------


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_slow_payments_do_not_hold_up_readiness_or_the_catalog(
    live_stack: LiveStack, make_user, monkeypatch, record_property
) -> None:
    conf = gunicorn_settings(
        monkeypatch,
        WEB_CONCURRENCY=live_stack.env.get("WEB_CONCURRENCY"),
        WEB_THREADS=live_stack.env.get("WEB_THREADS"),
    )
    # More slow payments than the sync server had processes, and enough to fill a worker's
    # threads, with at least two threads left for the requests that must not wait. Every pay
    # attempt in flight holds a slot of the per-address decline limit (payments/throttles.py;
    # all come from 127.0.0.1), so no more than it allows.
    declines_allowed, _ = rate_of("payment_decline")
    payers = min(conf["workers"] * conf["threads"] - 2, declines_allowed)
    assert payers > max(conf["workers"], conf["threads"]), (conf, declines_allowed)
    # Declines by earlier tests of the session keep their slots for an hour: forget them (the
    # live stack's throttle counters: REDIS_URL's database + 2, config/settings.py).
    redis.Redis(port=live_stack.redis_port, db=2).flushdb()

    category = category_create(name="Workers")
    product = product_create(
        sku="WORKERS-1", name="Workers product", category=category, price_cents=1500, on_hand=50
    )
    orders: list[tuple[str, str, str]] = []  # (token, order id, payment method id)
    for number in range(payers):
        customer = make_user(email=f"slow{number}@example.com")
        token = str(RefreshToken.for_user(customer).access_token)
        line = json.dumps({"product": product.pk, "quantity": 1}).encode()
        status, _, body = live_stack.request("POST", "/api/v1/cart/items/", body=line, token=token)
        assert status == 201, body
        checkout = json.dumps({"shipping_address": ADDRESS}).encode()
        status, _, body = live_stack.request("POST", "/api/v1/orders/", body=checkout, token=token)
        assert status == 201, body
        # Saved in-process: the card throttle (per address, per hour) is not what is tested here.
        card = CardDetails(number=SLOW_CARD, exp_month=12, exp_year=2040, cvc="123")
        method = payment_method_create(user=customer, card=card)
        orders.append((token, json.loads(body)["id"], str(method.pk)))
    order_ids = [order_id for _, order_id, _ in orders]
    answers: dict[str, int] = {}

    def pay(token: str, order_id: str, method_id: str) -> None:
        body = json.dumps({"payment_method": method_id}).encode()
        status, _, _ = live_stack.request(
            "POST",
            f"/api/v1/orders/{order_id}/pay/",
            body=body,
            token=token,
            timeout=SLOW_CARD_DELAY_SECONDS * 4,
        )
        answers[order_id] = status

    def still_pending() -> int:
        return Payment.objects.filter(order_id__in=order_ids, status=Payment.Status.PENDING).count()

    threads = [threading.Thread(target=pay, args=order, daemon=True) for order in orders]
    for thread in threads:
        thread.start()
    try:
        # Every charge recorded as pending: each pay request is now waiting on the gateway.
        wait_for(
            lambda: still_pending() == payers,
            timeout=SLOW_CARD_DELAY_SECONDS,
            what=f"{payers} slow payments in flight at once\n{live_stack.web.tail()}",
        )
        # A server held up by the payments would answer once one of them settled: the delay
        # bounds the wait, and the check below says which came first.
        ready, _, ready_body = live_stack.get("/readyz", timeout=SLOW_CARD_DELAY_SECONDS)
        product_status, _, _ = live_stack.get(
            f"/api/v1/products/{product.pk}/", timeout=SLOW_CARD_DELAY_SECONDS
        )
        unsettled_after_the_probes = still_pending()
        answered_before_the_probes = dict(answers)
    finally:
        for thread in threads:
            thread.join(timeout=SLOW_CARD_DELAY_SECONDS * 6)

    assert (ready, product_status) == (200, 200), ready_body
    # The ordering invariant: both answered while every slow payment was still unsettled.
    assert (unsettled_after_the_probes, answered_before_the_probes) == (payers, {})
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(answers.values()) == [200] * payers, answers
    assert Order.objects.filter(pk__in=order_ids, status=Order.Status.PAID).count() == payers
    record_property("slow_payments_in_flight", payers)
