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


def gunicorn_settings(monkeypatch: pytest.MonkeyPatch, **variables: str | None) -> dict[str, Any]:
    """What config/gunicorn.conf.py makes of an environment (None: the variable unset)."""
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return runpy.run_path(GUNICORN_CONF)


# --- the configuration -------------------------------------------------------------------------


def test_threaded_workers_accept_only_what_their_threads_can_serve(monkeypatch):
    conf = gunicorn_settings(monkeypatch, WEB_CONCURRENCY=None, WEB_THREADS=None)
    assert (conf["worker_class"], conf["workers"], conf["threads"]) == ("gthread", 2, 4)
    # A worker whose threads are all busy stops accepting: the next request goes to another.
    assert conf["worker_connections"] == conf["threads"]
    assert conf["keepalive"] == 0

    conf = gunicorn_settings(monkeypatch, WEB_CONCURRENCY="3", WEB_THREADS="6")
    assert (conf["workers"], conf["threads"], conf["worker_connections"]) == (3, 6, 6)


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
