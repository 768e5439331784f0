"""Canceling a charge that waits for the customer to authenticate (`payment_charge_cancel`:
orders calls it when the customer pays with another card, reconciliation when they never
authenticate), and reconciliation leaving such charges to their webhook until then."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from payments import services
from payments.exceptions import PaymentGatewayError, PaymentInProgress
from payments.gateways.base import GatewayError, GatewayResult
from payments.gateways.test import TestGateway
from payments.models import Payment

from .conftest import SCA_CARD

pytestmark = pytest.mark.django_db


def begin(user, method, amount_cents=4_000):
    return services.payment_charge_begin(
        user=user,
        payment_method_id=method.pk,
        order_id=uuid.uuid4(),
        amount_cents=amount_cents,
        currency="USD",
    )


@pytest.fixture
def waiting_charge(customer, make_method):
    """A checkout charge the test gateway answered `requires_action` (3-D Secure)."""
    return waiting(customer, make_method(customer, SCA_CARD))


def waiting(user, method):
    payment = begin(user, method)
    result = services.payment_charge_execute(payment_id=payment.pk)
    assert result.requires_action
    payment = services.payment_settle(payment_id=payment.pk, result=result)
    assert payment.is_pending
    assert payment.client_secret
    return payment


def age(payment, **delta):
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(**delta))


def test_cancel_a_charge_waiting_for_authentication(
    waiting_charge, gateway_calls, published, django_capture_on_commit_callbacks
):
    cancels = gateway_calls("cancel_charge")

    with django_capture_on_commit_callbacks(execute=True):
        payment = services.payment_charge_cancel(payment_id=waiting_charge.pk)

    assert (payment.status, payment.failure_code, payment.client_secret) == (
        "failed",
        "canceled",
        "",
    )
    assert [(c["gateway_reference"], c["idempotency_key"]) for c in cancels] == [
        (f"pi_test_{waiting_charge.pk}", str(waiting_charge.pk))
    ]
    assert published == [("payment.failed", payment.pk, payment.order_id)]


def test_a_charge_that_succeeded_meanwhile_is_settled_succeeded_and_published(
    waiting_charge, monkeypatch, published, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        TestGateway,
        "cancel_charge",
        lambda self, **kw: GatewayResult(True, kw["gateway_reference"]),
    )

    with django_capture_on_commit_callbacks(execute=True):
        payment = services.payment_charge_cancel(payment_id=waiting_charge.pk)

    assert (payment.status, payment.client_secret) == ("succeeded", "")
    assert published == [("payment.succeeded", payment.pk, payment.order_id)]


def test_an_unknown_cancel_outcome_keeps_the_charge_pending(waiting_charge, monkeypatch):
    def unreachable(self, **kw):
        raise GatewayError("timeout")

    monkeypatch.setattr(TestGateway, "cancel_charge", unreachable)

    with pytest.raises(PaymentGatewayError):
        services.payment_charge_cancel(payment_id=waiting_charge.pk)

    waiting_charge.refresh_from_db()
    assert waiting_charge.is_pending
    assert waiting_charge.client_secret


def test_a_settled_charge_is_returned_as_it_is(paid_charge, gateway_calls):
    cancels = gateway_calls("cancel_charge")
    payment = services.payment_charge_cancel(payment_id=paid_charge.pk)
    assert payment.status == "succeeded"
    assert cancels == []


def test_a_charge_still_in_flight_cannot_be_canceled(pending_charge, gateway_calls):
    cancels = gateway_calls("cancel_charge")
    with pytest.raises(PaymentInProgress):
        services.payment_charge_cancel(payment_id=pending_charge.pk)
    assert cancels == []


def test_reconcile_leaves_waiting_charges_to_their_webhook_within_the_limit(
    customer, make_method, settings, gateway_calls, django_capture_on_commit_callbacks
):
    """Three charges wait for authentication (younger than the abandonment age) and come first
    by age; with a limit of 2, the charge left by a timeout behind them is still reconciled."""
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30
    sca = make_method(customer, SCA_CARD)
    waiters = [waiting(customer, sca) for _ in range(3)]
    for waiter in waiters:
        age(waiter, minutes=40)
    timed_out = begin(customer, make_method(customer))
    age(timed_out, minutes=10)
    lookups = gateway_calls("lookup_charge")

    with django_capture_on_commit_callbacks(execute=True):
        settled = services.payment_reconcile_pending(older_than=timedelta(0), limit=2)

    assert settled == 1
    assert [lookup["idempotency_key"] for lookup in lookups] == [str(timed_out.pk)]
    timed_out.refresh_from_db()
    assert timed_out.status == "succeeded"
    assert Payment.objects.filter(pk__in=[w.pk for w in waiters], status="pending").count() == 3


def test_reconcile_cancels_an_abandoned_authentication_at_the_gateway(
    waiting_charge, settings, gateway_calls, published, django_capture_on_commit_callbacks
):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30
    age(waiting_charge, minutes=61)
    cancels = gateway_calls("cancel_charge")

    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_reconcile_pending(older_than=timedelta(0)) == 1

    assert [cancel["gateway_reference"] for cancel in cancels] == [f"pi_test_{waiting_charge.pk}"]
    waiting_charge.refresh_from_db()
    assert (waiting_charge.status, waiting_charge.failure_code) == (
        "failed",
        "authentication_abandoned",
    )
    assert published == [("payment.failed", waiting_charge.pk, waiting_charge.order_id)]


def test_reconcile_keeps_an_abandoned_charge_pending_when_the_cancel_is_unknown(
    waiting_charge, settings, monkeypatch
):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30
    age(waiting_charge, minutes=61)

    def unreachable(self, **kw):
        raise GatewayError("timeout")

    monkeypatch.setattr(TestGateway, "cancel_charge", unreachable)

    assert services.payment_reconcile_pending(older_than=timedelta(0)) == 0
    waiting_charge.refresh_from_db()
    assert waiting_charge.is_pending
