"""The test gateway's slow card (4000000000000077): its charge succeeds after
SLOW_CARD_DELAY_SECONDS, as a slow gateway would answer (the live worker test and the load test
use it); a call whose timeout is shorter fails as a gateway timeout once the timeout has passed.
The waits are recorded, not waited for."""

from __future__ import annotations

import time
import uuid

import pytest

from accounts.models import User
from payments import services
from payments.exceptions import PaymentGatewayError
from payments.gateways.base import CardDetails, GatewayError
from payments.gateways.test import SLOW_CARD_DELAY_SECONDS, TestGateway
from payments.models import Payment

pytestmark = pytest.mark.django_db

SLOW_CARD = "4000000000000077"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What the gateway sleeps, recorded instead of slept (the test gateway's `time.sleep`)."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def slow_card() -> CardDetails:
    return CardDetails(number=SLOW_CARD, exp_month=12, exp_year=2040, cvc="123")


def begin(customer: User) -> Payment:
    """A pending charge of 700 cents on the customer's slow card."""
    method = services.payment_method_create(user=customer, card=slow_card())
    return services.payment_charge_begin(
        user=customer,
        payment_method_id=method.pk,
        order_id=uuid.uuid4(),
        amount_cents=700,
        currency="USD",
    )


def test_the_slow_card_is_a_visa_whose_token_carries_the_slow_outcome():
    tokenized = TestGateway(webhook_secret="x").tokenize(slow_card())

    assert (tokenized.brand, tokenized.last4) == ("visa", "0077")
    assert tokenized.token.split(".")[1] == "slow"
    assert SLOW_CARD not in tokenized.token


def test_the_slow_card_succeeds_after_the_delay(waits):
    gateway = TestGateway(webhook_secret="x")
    token = gateway.tokenize(slow_card()).token

    result = gateway.charge(
        token=token,
        amount_cents=1_000,
        currency="USD",
        idempotency_key="k1",
        timeout=SLOW_CARD_DELAY_SECONDS * 2,
        customer_present=True,
        description="",
        metadata={},
        receipt_email="",
    )

    assert (result.succeeded, result.gateway_reference, result.failure_code) == (
        True,
        "ch_test_k1",
        None,
    )
    assert waits == [SLOW_CARD_DELAY_SECONDS]


def test_a_timeout_shorter_than_the_delay_is_a_gateway_error_after_the_timeout(waits):
    gateway = TestGateway(webhook_secret="x")
    token = gateway.tokenize(slow_card()).token

    with pytest.raises(GatewayError):
        gateway.charge(
            token=token,
            amount_cents=1_000,
            currency="USD",
            idempotency_key="k2",
            timeout=1.5,
            customer_present=True,
            description="",
            metadata={},
            receipt_email="",
        )

    assert waits == [1.5]


def test_a_charge_with_the_slow_card_succeeds(customer, waits):
    payment = begin(customer)

    result = services.payment_charge_execute(payment_id=payment.pk)
    payment = services.payment_settle(payment_id=payment.pk, result=result)

    assert (payment.status, payment.gateway_reference) == ("succeeded", f"ch_test_{payment.pk}")
    assert waits == [SLOW_CARD_DELAY_SECONDS]


def test_a_charge_that_times_out_on_the_slow_card_stays_pending(customer, waits, settings):
    """What pay then answers: 502 `gateway_error`, the charge pending (API.md)."""
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = SLOW_CARD_DELAY_SECONDS / 2
    payment = begin(customer)

    with pytest.raises(PaymentGatewayError):
        services.payment_charge_execute(payment_id=payment.pk)

    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING
    assert waits == [SLOW_CARD_DELAY_SECONDS / 2]
