"""Fixtures for the payments tests: test cards, saved methods, charged orders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.models import User
from payments import events, services
from payments.gateways.base import CardDetails
from payments.models import Payment, PaymentMethod

SUCCESS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
PROCESSING_ERROR = "4000000000000119"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
TEST_CARDS = (SUCCESS, DECLINED, INSUFFICIENT_FUNDS, PROCESSING_ERROR)
EXP_YEAR = 2040


def card_body(number: str = SUCCESS, **overrides: Any) -> dict[str, Any]:
    card = {"number": number, "exp_month": 12, "exp_year": EXP_YEAR, "cvc": "123"}
    card.update(overrides)
    return {"card": card}


@pytest.fixture
def make_method(db: None) -> Callable[..., PaymentMethod]:
    def make(user: User, number: str = SUCCESS, **fields: Any) -> PaymentMethod:
        card = CardDetails(number=number, exp_month=12, exp_year=EXP_YEAR, cvc="123")
        return services.payment_method_create(user=user, card=card, **fields)

    return make


@pytest.fixture
def paid_charge(customer: User, make_method: Callable[..., PaymentMethod]) -> Payment:
    """A succeeded charge of 10 000 cents for a fresh order."""
    method = make_method(customer)
    payment = services.payment_charge_begin(
        user=customer,
        payment_method_id=method.pk,
        order_id=uuid.uuid4(),
        amount_cents=10_000,
        currency="USD",
    )
    result = services.payment_charge_execute(payment_id=payment.pk)
    return services.payment_settle(payment_id=payment.pk, result=result)


@pytest.fixture
def published() -> Iterator[list[tuple[str, uuid.UUID, uuid.UUID]]]:
    """Every payment event delivered to a subscriber during the test."""
    seen: list[tuple[str, uuid.UUID, uuid.UUID]] = []
    handlers = {}
    for name in events.EVENT_NAMES:

        def handler(*, payment_id: uuid.UUID, order_id: uuid.UUID, _name: str = name) -> None:
            seen.append((_name, payment_id, order_id))

        handlers[name] = handler
        events.subscribe(name, handler)
    yield seen
    for name, handler in handlers.items():
        events.unsubscribe(name, handler)
