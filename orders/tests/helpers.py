"""Test helpers for the orders tests."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from orders.models import Order
from orders.services import order_mark_paid
from payments.gateways.base import CardDetails
from payments.models import PaymentMethod
from payments.services import (
    payment_charge_begin,
    payment_charge_execute,
    payment_method_create,
    payment_settle,
)

SUCCESS_CARD = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")


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
