"""Fault tests against the live stack (tests/conftest.py): real processes, a real Redis that is
stopped and started, a Celery worker that is killed mid-task. Each checks a promise of the
README's "Failure behaviour" section, and ends with `audit_stock` and `audit_payments` clean (the
suite's autouse check)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import psycopg
import pytest
import redis
from celery import Celery
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from common.models import OutboxMessage
from inventory.models import Category, Product, StockMovement
from inventory.services import category_create, product_create
from orders.models import Order, OrderEvent
from orders.services import cart_item_add, order_place
from orders.tests.conftest import ADDRESS
from tests.conftest import LiveStack, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
PASSWORD = "a long passphrase 42"


@pytest.fixture
def category(db: None) -> Category:
    return category_create(name="Faults")


def make_product(category: Category, number: int, *, on_hand: int = 10) -> Product:
    return product_create(
        sku=f"FAULT-{number:03d}",
        name=f"Fault product {number}",
        category=category,
        price_cents=1000 + number,
        on_hand=on_hand,
    )


def json_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def client_app(stack: LiveStack) -> Celery:
    """A Celery client for the live broker (the tests' own Celery runs eagerly)."""
    return Celery("fault-tests", broker=stack.broker_url, set_as_current=False)


def test_redis_down_while_serving_then_back(
    live_stack: LiveStack, make_user, category, record_property
) -> None:
    """Redis stops: catalog, login, checkout and pay still work, `/readyz` names Redis, nothing
    answers 500. Redis returns: readiness comes back by itself and every email queued meanwhile
    is sent, once."""
    user = make_user(email="ann@example.com")
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="argon2"))
    product = make_product(category, 1)
    statuses: Counter[int] = Counter()
    slowest = {"seconds": 0.0}

    def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        started = time.monotonic()
        status, _, body = live_stack.request(method, path, **kwargs)
        slowest["seconds"] = max(slowest["seconds"], time.monotonic() - started)
        statuses[status] += 1
        return status, json.loads(body) if body else None

    live_stack.stop_redis()
    try:
        started = time.monotonic()
        status, products = call("GET", "/api/v1/products/")
        assert status == 200
        assert [p["sku"] for p in products["results"]] == ["FAULT-001"]
        status, ready = call("GET", "/readyz")
        assert status == 503
        assert ready["failed"] == ["broker", "cache"]
        assert ready["detail"] == "broker (Redis), cache (Redis) did not answer"

        login = {"email": "ann@example.com", "password": PASSWORD}
        status, tokens = call("POST", "/api/v1/auth/token/", body=json_body(login))
        assert status == 200
        token = tokens["access"]
        line = {"product": product.pk, "quantity": 2}
        assert call("POST", "/api/v1/cart/items/", body=json_body(line), token=token)[0] == 201
        checkout = json_body({"shipping_address": ADDRESS})
        headers = {"Idempotency-Key": "checkout-during-outage"}
        status, order = call("POST", "/api/v1/orders/", body=checkout, token=token, headers=headers)
        assert status == 201
        status, replay = call(
            "POST", "/api/v1/orders/", body=checkout, token=token, headers=headers
        )
        assert (status, replay["id"]) == (201, order["id"])
        card = {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040}}
        card["card"]["cvc"] = "123"
        status, method = call("POST", "/api/v1/payment-methods/", body=json_body(card), token=token)
        assert status == 201
        pay = json_body({"payment_method": method["id"]})
        status, paid = call("POST", f"/api/v1/orders/{order['id']}/pay/", body=pay, token=token)
        assert (status, paid["status"]) == (200, "paid")
        outage_seconds = time.monotonic() - started
    finally:
        live_stack.start_redis()

    assert statuses[500] == 0
    # A refused connection fails fast and the outbox stops asking for a few seconds: no request
    # waits on Redis (a checkout once took 6 s here, retrying the broker for kombu's timeout).
    assert slowest["seconds"] < 3, slowest
    assert outage_seconds < 10
    # While Redis was down the order's emails waited in PostgreSQL.
    assert OutboxMessage.objects.filter(done_at__isnull=True).count() >= 1

    back = time.monotonic()
    wait_for(lambda: live_stack.get("/readyz")[0] == 200, timeout=30, what="readiness")
    ready_after = time.monotonic() - back
    wait_for(
        lambda: not OutboxMessage.objects.filter(done_at__isnull=True).exists(),
        timeout=60,
        what=f"the outbox to drain\n{live_stack.worker.tail()}",
    )
    # Figures for the README's "Failure behaviour" (pytest --junitxml shows them).
    record_property("slowest_request_during_outage_s", round(slowest["seconds"], 3))
    record_property("ready_again_after_s", round(ready_after, 2))
    record_property("outbox_drained_after_s", round(time.monotonic() - back, 2))
    sent = OutboxMessage.objects.filter(task="common.tasks.send_email_task")
    assert sorted(m.kwargs["template"] for m in sent) == ["order_confirmation"]
    assert [m.attempts for m in OutboxMessage.objects.all()] == [1] * OutboxMessage.objects.count()
    assert order["number"] in live_stack.worker.output()  # the worker sent it (console email)


def test_worker_killed_in_the_middle_of_expiry(
    live_stack: LiveStack, make_user, category, record_property
) -> None:
    """Expiry cancels two orders, blocks on the third, and the worker is killed (SIGKILL, every
    process). A new worker and the next run finish the job: each order cancelled once, each
    reservation released once."""
    customer = make_user(email="bob@example.com")
    orders = []
    for number in range(1, 5):
        product = make_product(category, number)
        cart_item_add(user=customer, product_id=product.pk, quantity=1)
        orders.append(order_place(user=customer, shipping_address=ADDRESS))
    now = timezone.now()
    for position, order in enumerate(orders):  # due, in this order
        Order.objects.filter(pk=order.pk).update(
            expires_at=now.replace(year=2020, day=1 + position)
        )
    blocked = orders[2]
    blocked_product = blocked.items.get().product_id
    app = client_app(live_stack)

    with psycopg.connect(
        live_stack.env["DATABASE_URL"].replace("postgres://", "postgresql://")
    ) as lock:
        lock.execute(
            "SELECT 1 FROM inventory_stocklevel WHERE product_id = %s FOR UPDATE", [blocked_product]
        )
        app.send_task("orders.tasks.expire_unpaid_orders", queue="critical")

        def two_cancelled_and_blocked() -> bool:
            cancelled = Order.objects.filter(status=Order.Status.CANCELLED).count()
            with connection.cursor() as cursor:  # autocommit: a fresh activity snapshot
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                (blocked_backends,) = cursor.fetchone()
            return cancelled == 2 and blocked_backends == 1

        wait_for(two_cancelled_and_blocked, timeout=30, what="expiry to block on the third order")
        live_stack.worker.kill()  # the whole worker, mid-transaction
        lock.rollback()  # the killed worker's transaction can only roll back now

    restarted = time.monotonic()
    live_stack.start_worker()
    app.send_task("orders.tasks.expire_unpaid_orders", queue="critical")  # beat's next minute
    wait_for(
        lambda: Order.objects.filter(status=Order.Status.CANCELLED).count() == 4,
        timeout=60,
        what=f"expiry to finish\n{live_stack.worker.tail()}",
    )
    record_property("expiry_done_after_worker_restart_s", round(time.monotonic() - restarted, 2))
    for order in orders:
        cancels = OrderEvent.objects.filter(order=order, to_status=Order.Status.CANCELLED)
        assert cancels.count() == 1
        releases = StockMovement.objects.filter(
            reference=f"order:{order.number}", reason=StockMovement.Reason.RELEASE
        )
        assert releases.count() == 1
    app.close()


def test_a_flood_of_emails_does_not_delay_expiry(
    live_stack: LiveStack, make_user, category, record_property
):
    """1,000 emails are queued before one expiry run; the worker consumes every queue (as
    `make worker` does) and still runs expiry first, not after the emails: queues by urgency."""
    customer = make_user(email="cy@example.com")
    cart_item_add(user=customer, product_id=make_product(category, 1).pk, quantity=1)
    order = order_place(user=customer, shipping_address=ADDRESS)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now().replace(year=2020))
    live_stack.worker.kill()
    app = client_app(live_stack)
    broker = redis.Redis(port=live_stack.redis_port)
    flood = 1000
    try:
        with app.producer_or_acquire() as producer:
            for number in range(flood):
                app.send_task(
                    "common.tasks.send_email_task",
                    kwargs={"template": "_test", "to": [f"n{number}@example.com"], "context": {}},
                    queue="default",
                    producer=producer,
                )
        app.send_task("orders.tasks.expire_unpaid_orders", queue="critical")
        assert broker.llen("default") == flood
        live_stack.start_worker()
        wait_for(
            lambda: Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED,
            timeout=60,
            what=f"expiry\n{live_stack.worker.tail()}",
        )
        waiting_emails = broker.llen("default")
    finally:
        broker.delete("default")
        app.close()
    record_property("emails_still_queued_when_expiry_ran", waiting_emails)
    assert waiting_emails >= flood - 100, waiting_emails


def test_a_crashed_payment_settles_by_itself(
    live_stack: LiveStack, make_user, category, record_property
) -> None:
    """The pay request died after recording its charge (the gateway may or may not have been
    asked). Reconciliation asks the gateway again with the same key and the outbox applies the
    outcome: the order is paid with no one touching it, within the reconcile settings (here 3 s
    of age and a 2 s interval; 60 s and 60 s by default)."""
    from payments.gateways.base import CardDetails
    from payments.services import payment_charge_begin, payment_method_create

    customer = make_user(email="dee@example.com")
    cart_item_add(user=customer, product_id=make_product(category, 1).pk, quantity=1)
    order = order_place(user=customer, shipping_address=ADDRESS)
    card = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
    method = payment_method_create(user=customer, card=card)
    crashed_at = time.monotonic()
    payment_charge_begin(
        user=customer,
        payment_method_id=method.pk,
        order_id=order.pk,
        amount_cents=order.total_cents,
        currency=order.currency,
    )
    wait_for(
        lambda: Order.objects.get(pk=order.pk).status == Order.Status.PAID,
        timeout=30,
        what=f"reconciliation to settle the charge\n{live_stack.worker.tail()}",
    )
    record_property("crashed_payment_paid_after_s", round(time.monotonic() - crashed_at, 2))


def test_database_connections_dropped_under_gunicorn(
    live_stack: LiveStack, make_user, category, record_property
) -> None:
    """Every database connection of the serving processes is terminated (as a PostgreSQL
    restart or a failover does) between and during requests: answers are 200/201 or a clean 503
    with Retry-After, never a 500, no order is half-written, and the processes recover without a
    restart."""
    customer = make_user(email="eve@example.com")
    token = str(RefreshToken.for_user(customer).access_token)
    product = make_product(category, 1, on_hand=100)
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()

    def terminate_app_connections() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )

    for round_number in range(12):
        if round_number % 3 == 0:
            terminate_app_connections()
        line = json_body({"product": product.pk, "quantity": 1})
        status, headers, _ = live_stack.request(
            "POST", "/api/v1/cart/items/", body=line, token=token
        )
        statuses[status] += 1
        if round_number % 3 == 1:
            terminate_app_connections()
        checkout = json_body({"shipping_address": ADDRESS})
        status, headers, _ = live_stack.request(
            "POST", "/api/v1/orders/", body=checkout, token=token
        )
        statuses[status] += 1
        if status == 503:
            retry_after.add(headers.get("Retry-After", ""))
        status, _, _ = live_stack.get("/api/v1/products/")
        statuses[status] += 1

    record_property("statuses_with_dropped_connections", dict(statuses))
    assert set(statuses) <= {200, 201, 400, 503}, statuses
    assert statuses[500] == 0
    assert retry_after <= {"5"}
    # Every order that exists is whole: its items, its event, its reservation (audit_stock).
    for order in Order.objects.all():
        assert order.items.count() == 1
        assert order.events.count() == 1
    # Recovered: a request after the storm simply works.
    assert live_stack.get("/api/v1/products/")[0] == 200
    wait_for(lambda: live_stack.get("/readyz")[0] == 200, timeout=15, what="readiness")
