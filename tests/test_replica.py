"""A read replica lags: whatever must read its own writes never reads it (reports/routers.py).

With `DATABASE_REPLICA_URL` set, only the staff reports read the replica. Here the replica is
`test_replica` (config/settings_test.py), a test mirror of the primary on a connection of its
own, so every query can be told apart by the connection that ran it: a cart, a checkout, a pay,
a stock adjustment and the reads around them run no query at all on it, while a report does.
A router that sent other reads to the replica (all of them, or one app's) fails this test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from conftest import client_for
from inventory.services import category_create, product_create
from orders.tests.conftest import ADDRESS
from reports import routers

MIRROR = "test_replica"
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", MIRROR])


@pytest.fixture
def replica(monkeypatch: pytest.MonkeyPatch) -> str:
    """The replica the reports read is the test mirror, for this test."""
    monkeypatch.setattr(routers, "REPLICA", MIRROR)
    return MIRROR


def _sql(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def _touching(context: CaptureQueriesContext, table: str) -> list[str]:
    return [sql for sql in _sql(context) if table in sql]


def test_cart_checkout_pay_and_stock_never_read_the_replica(
    replica: str, make_user: Callable[..., User], staff: User
) -> None:
    assert routers.reports_database() == MIRROR
    product = product_create(
        sku="REP-1",
        name="Replica lamp",
        category=category_create(name="Replica"),
        price_cents=1500,
        on_hand=10,
    )
    shopper, clerk = client_for(make_user(email="rita@example.com")), client_for(staff)
    stock = f"/api/v1/products/{product.pk}/stock/"

    def ok(response: Any, status: int) -> Any:
        assert response.status_code == status, response.content
        return response.json() if response.content else None

    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[MIRROR]) as mirror,
    ):
        line = ok(shopper.post("/api/v1/cart/items/", {"product": product.pk, "quantity": 1}), 201)
        ok(shopper.patch(f"/api/v1/cart/items/{line['id']}/", {"quantity": 3}), 200)
        assert ok(shopper.get("/api/v1/cart/"), 200)["subtotal_cents"] == 4500
        order = ok(
            shopper.post(
                "/api/v1/orders/",
                {"shipping_address": ADDRESS},
                HTTP_IDEMPOTENCY_KEY="replica-checkout",
            ),
            201,
        )
        card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
        method = ok(shopper.post("/api/v1/payment-methods/", {"card": card}), 201)
        paid = ok(
            shopper.post(
                f"/api/v1/orders/{order['id']}/pay/",
                {"payment_method": method["id"]},
                HTTP_IDEMPOTENCY_KEY="replica-pay",
            ),
            200,
        )
        assert paid["status"] == "paid"
        ok(clerk.post(f"{stock}adjust/", {"delta": 5, "reason": "receipt"}), 201)
        assert ok(clerk.get(stock), 200) == {
            "on_hand": 12,  # 10 - 3 sold + 5 received
            "reserved": 0,
            "available": 12,
            "low_stock_threshold": 0,
        }
        assert ok(shopper.get(f"/api/v1/orders/{order['id']}/"), 200)["status"] == "paid"
        assert ok(shopper.get("/api/v1/cart/"), 200)["items"] == []

    assert _sql(mirror) == []
    # All of it ran on the primary (the capture works: these are the statements that count).
    for table in (
        "orders_cartitem",
        "orders_order",
        "inventory_stocklevel",
        "inventory_stockmovement",
        "payments_payment",
        "common_idempotencykey",
    ):
        assert _touching(primary, table), table

    # A report, meanwhile, is read on the replica, not the primary.
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[MIRROR]) as mirror,
    ):
        report = ok(clerk.get("/api/v1/reports/inventory/"), 200)
    assert report["units_on_hand"] == 12  # committed, so the mirror's connection sees it
    assert _touching(mirror, "inventory_stocklevel")
    assert not _touching(primary, "inventory_stocklevel")
