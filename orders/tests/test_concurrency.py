"""Real concurrent checkouts (threads, each with its own database connection)."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum

from conftest import client_for
from inventory.models import StockLevel, StockMovement
from orders.models import Cart, CartItem, Order, OrderItem
from orders.services import cart_item_add
from orders.tests.conftest import ADDRESS

ORDERS = "/api/v1/orders/"
BODY = {"shipping_address": ADDRESS}


def assert_stock_audit_clean() -> None:
    """The ledger explains every level, checked directly and by `manage.py audit_stock`."""
    for level in StockLevel.objects.all():
        totals = StockMovement.objects.filter(product_id=level.product_id).aggregate(
            on_hand=Sum("delta_on_hand"), reserved=Sum("delta_reserved")
        )
        assert (totals["on_hand"] or 0, totals["reserved"] or 0) == (level.on_hand, level.reserved)
    out = StringIO()
    call_command("audit_stock", stdout=out)  # raises CommandError on any drift
    assert "Stock ledger and levels agree." in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_thirty_buyers_for_ten_units_buy_exactly_ten(make_user, make_product):
    product = make_product(sku="HOT-1", on_hand=10)
    buyers = [make_user() for _ in range(30)]
    for buyer in buyers:
        cart_item_add(user=buyer, product_id=product.pk, quantity=1)
    barrier = threading.Barrier(len(buyers))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def buy(buyer) -> None:
        client = client_for(buyer)
        try:
            barrier.wait()
            response = client.post(ORDERS, BODY, format="json")
            body = response.json()
            outcome = f"{response.status_code} {body.get('status') or body['errors'][0]['code']}"
        finally:
            connection.close()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=buy, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert outcomes == {"201 pending": 10, "409 insufficient_stock": 20}
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.reserved) == (10, 10)
    assert Order.objects.count() == 10
    assert OrderItem.objects.aggregate(units=Sum("quantity"))["units"] == 10
    assert StockMovement.objects.filter(reason="reservation").count() == 10
    # Winners' carts are empty; losers keep theirs to try again.
    assert CartItem.objects.count() == 20
    assert_stock_audit_clean()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_checkouts_with_one_key_create_one_order(customer, product):
    cart_item_add(user=customer, product_id=product.pk, quantity=2)
    results: queue.Queue[tuple[int, dict[str, Any], str | None]] = queue.Queue()

    def checkout() -> None:
        try:
            response = client_for(customer).post(
                ORDERS, BODY, format="json", headers={"Idempotency-Key": "same-key"}
            )
            results.put(
                (response.status_code, response.json(), response.headers.get("Idempotent-Replayed"))
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=checkout) for _ in range(2)]
    # Hold the customer's cart so whichever request claims the key first stays in flight.
    with transaction.atomic():
        Cart.objects.select_for_update().get(user=customer)
        for thread in threads:
            thread.start()
        status, body, _ = results.get(timeout=30)
        assert status == 409
        assert body["errors"][0]["code"] == "idempotency_key_in_use"
    for thread in threads:
        thread.join(timeout=30)
    status, body, replayed = results.get(timeout=1)
    assert (status, body["status"], replayed) == (201, "pending", None)
    again = client_for(customer).post(
        ORDERS, BODY, format="json", headers={"Idempotency-Key": "same-key"}
    )
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == body
    assert Order.objects.count() == 1
    assert StockLevel.objects.get(product=product).reserved == 2
    assert_stock_audit_clean()


@pytest.mark.django_db(transaction=True)
def test_concurrent_checkouts_of_overlapping_carts_never_deadlock(make_user, make_product):
    """Carts holding the same products in different orders: locks go in product-id order."""
    products = [make_product(on_hand=100) for _ in range(4)]
    buyers = [make_user() for _ in range(12)]
    for index, buyer in enumerate(buyers):
        ordered = products if index % 2 else list(reversed(products))
        for product in ordered:
            cart_item_add(user=buyer, product_id=product.pk, quantity=1)
    barrier = threading.Barrier(len(buyers))
    statuses: list[int] = []

    def buy(buyer) -> None:
        try:
            barrier.wait()
            statuses.append(client_for(buyer).post(ORDERS, BODY, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(buyer,)) for buyer in buyers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [201] * 12
    assert (
        list(StockLevel.objects.order_by("product_id").values_list("reserved", flat=True))
        == [12] * 4
    )
    assert_stock_audit_clean()
