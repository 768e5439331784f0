"""Test helpers for the orders tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from rest_framework.test import APIClient

from accounts.models import User
from inventory.models import StockLevel
from orders.models import Order
from orders.services import order_mark_paid, order_mark_refunded
from payments.gateways.base import CardDetails
from payments.gateways.test import sign
from payments.models import PaymentMethod
from payments.services import (
    payment_captured_cents,
    payment_charge_begin,
    payment_charge_execute,
    payment_method_create,
    payment_refund_begin,
    payment_refund_execute,
    payment_settle,
)

SUCCESS_CARD = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
# The test gateway's card that needs authentication (3-D Secure) when the customer is present.
SCA_NUMBER = "4000002500003155"
WEBHOOK_URL = "/api/v1/payments/webhooks/test/"
WEBHOOK_SECRET = "whsec_orders_tests"


def pay_url(order: Order) -> str:
    return f"/api/v1/orders/{order.pk}/pay/"


def stock_of(order: Order) -> tuple[int, int]:
    """(on hand, reserved) of the product of a one-line order."""
    level = StockLevel.objects.get(product_id=order.items.get().product_id)
    return level.on_hand, level.reserved


def card_for(user: User, number: str = SUCCESS_CARD.number) -> PaymentMethod:
    """A saved card of the user at the test gateway (its number picks the outcome)."""
    card = CardDetails(number=number, exp_month=12, exp_year=2040, cvc="123")
    return payment_method_create(user=user, card=card)


def post_signed_webhook(client: APIClient, settings: Any, body: bytes) -> Any:
    """POST a body to the test gateway's webhook, signed as the test gateway signs."""
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    header = sign(body, timestamp=int(time.time()), secret=WEBHOOK_SECRET)
    return client.post(
        WEBHOOK_URL, data=body, content_type="application/json", HTTP_X_SIGNATURE=header
    )


def send_webhook(client: APIClient, settings: Any, event_type: str, **data: Any) -> Any:
    """A signed test-gateway webhook of `event_type` with `data` (a fresh event id)."""
    body = {"id": f"evt_{uuid.uuid4().hex}", "type": event_type, "data": data}
    response = post_signed_webhook(client, settings, json.dumps(body).encode())
    assert response.status_code == 200, response.content
    return response


def mark_paid(*, order_id: Any, actor: User | None, note: str = "") -> Order:
    """Pay an order as the pay flow does, money included: a succeeded test-gateway charge of
    its total, then `order_mark_paid`. (A paid order without its charge breaks the invariant
    that `audit_payments` checks after every test.)"""
    order = Order.objects.select_related("user").get(pk=order_id)
    method = PaymentMethod.objects.filter(user=order.user).first() or payment_method_create(
        user=order.user, card=SUCCESS_CARD
    )
    charge = payment_charge_begin(
        user=order.user,
        payment_method_id=method.pk,
        order_id=order.pk,
        amount_cents=order.total_cents,
        currency=order.currency,
    )
    payment_settle(payment_id=charge.pk, result=payment_charge_execute(payment_id=charge.pk))
    return order_mark_paid(order_id=order_id, actor=actor, note=note)


def mark_refunded(*, order_id: Any, actor: User | None, restock: bool, note: str = "") -> Order:
    """Refund an order as the refund flow does, money included: a succeeded test-gateway refund
    of everything captured, then `order_mark_refunded` (a refunded order that keeps money is
    what `audit_payments` reports)."""
    owed = payment_captured_cents(order_id=order_id)
    if owed > 0:
        refund = payment_refund_begin(order_id=order_id, amount_cents=owed, user=actor)
        payment_settle(payment_id=refund.pk, result=payment_refund_execute(payment_id=refund.pk))
    return order_mark_refunded(order_id=order_id, actor=actor, restock=restock, note=note)
