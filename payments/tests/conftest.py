"""Fixtures for the payments tests: test cards, saved methods, charged orders."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.models import User
from payments import events, services
from payments.gateways.base import CardDetails
from payments.gateways.test import TestGateway, sign
from payments.models import Payment, PaymentMethod

SUCCESS = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
PROCESSING_ERROR = "4000000000000119"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
TEST_CARDS = (SUCCESS, DECLINED, INSUFFICIENT_FUNDS, PROCESSING_ERROR)
SCA_CARD = "4000002500003155"
EXP_YEAR = 2040
WEBHOOK_URL = "/api/v1/payments/webhooks/test/"


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


@pytest.fixture
def webhook(
    api_client: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> Callable[..., Any]:
    """POST a signed test-gateway event (its on-commit work run): `webhook("payment.succeeded",
    payment_id=..., gateway_reference=..., amount_cents=...)` → the response."""
    settings.PAYMENT_WEBHOOK_SECRET = "whsec_test_secret"

    def post(event_type: str, *, event_id: str | None = None, **data: Any) -> Any:
        body = json.dumps(
            {
                "id": event_id or f"evt_{uuid.uuid4().hex}",
                "type": event_type,
                "data": {key: str(v) if isinstance(v, uuid.UUID) else v for key, v in data.items()},
            }
        ).encode()
        header = sign(body, timestamp=int(time.time()), secret=settings.PAYMENT_WEBHOOK_SECRET)
        with django_capture_on_commit_callbacks(execute=True):
            return api_client.post(
                WEBHOOK_URL, data=body, content_type="application/json", HTTP_X_SIGNATURE=header
            )

    return post


@pytest.fixture
def gateway_calls(monkeypatch: Any) -> Callable[[str], list[dict[str, Any]]]:
    """Record what the test gateway is asked: `calls = gateway_calls("charge")` lists the
    keyword arguments of every `TestGateway.charge` call (the call itself still happens)."""

    def record(name: str) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        original = getattr(TestGateway, name)

        def spy(self: TestGateway, *args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(TestGateway, name, spy)
        return calls

    return record


@pytest.fixture
def pending_charge(customer: User, make_method: Callable[..., PaymentMethod]) -> Payment:
    """A charge of 5 000 cents begun for a fresh order, not sent to the gateway yet."""
    return services.payment_charge_begin(
        user=customer,
        payment_method_id=make_method(customer).pk,
        order_id=uuid.uuid4(),
        amount_cents=5_000,
        currency="USD",
    )
