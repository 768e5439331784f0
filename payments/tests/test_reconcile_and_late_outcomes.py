"""Reconciliation from the gateway's state (lookups, never a second create), charges the
gateway never created, abandoned authentication, and outcomes that arrive after a payment was
settled: a failed charge that succeeded, a refund that failed after it had succeeded."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from payments import services
from payments.gateways.base import GatewayError, GatewayNotFound, GatewayResult
from payments.gateways.test import TestGateway
from payments.models import Payment

from .conftest import SCA_CARD

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_create_calls(monkeypatch):
    """Reconciliation must never create a charge or refund again."""

    def refuse(self, **request):
        raise AssertionError("reconciliation called the create endpoint")

    monkeypatch.setattr(TestGateway, "charge", refuse)
    monkeypatch.setattr(TestGateway, "refund", refuse)


def begin(user, method):
    return services.payment_charge_begin(
        user=user,
        payment_method_id=method.pk,
        order_id=uuid.uuid4(),
        amount_cents=3_000,
        currency="USD",
    )


def age(payment, **delta):
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(**delta))


def reconcile():
    return services.payment_reconcile_pending(older_than=timedelta(0))


def not_found(self, **lookup):
    raise GatewayNotFound("not created at the gateway yet")


def unknown(self, **lookup):
    raise GatewayError("the gateway is unreachable")


def test_reconcile_looks_the_charge_up(
    customer,
    make_method,
    no_create_calls,
    gateway_calls,
    published,
    django_capture_on_commit_callbacks,
):
    payment = begin(customer, make_method(customer))
    lookups = gateway_calls("lookup_charge")

    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile() == 1

    assert [lookup["idempotency_key"] for lookup in lookups] == [str(payment.pk)]
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert published == [("payment.succeeded", payment.pk, payment.order_id)]


def test_a_charge_the_gateway_never_created_waits_then_fails_not_created(
    customer, make_method, monkeypatch, settings, published, django_capture_on_commit_callbacks
):
    settings.PAYMENT_RECONCILE_NOT_FOUND_SECONDS = 600
    monkeypatch.setattr(TestGateway, "lookup_charge", not_found)
    payment = begin(customer, make_method(customer))
    age(payment, seconds=300)

    assert reconcile() == 0  # maybe not searchable yet
    payment.refresh_from_db()
    assert payment.status == "pending"

    age(payment, seconds=601)
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "not_created")
    assert published == [("payment.failed", payment.pk, payment.order_id)]


def test_a_charge_the_gateway_cannot_tell_about_is_never_failed_as_not_created(
    customer, make_method, monkeypatch, settings
):
    settings.PAYMENT_RECONCILE_NOT_FOUND_SECONDS = 600
    monkeypatch.setattr(TestGateway, "lookup_charge", unknown)
    payment = begin(customer, make_method(customer))
    age(payment, hours=2)

    assert reconcile() == 0
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("pending", "")


def test_a_charge_the_gateway_answered_for_is_never_failed_as_not_created(
    customer, make_method, monkeypatch
):
    monkeypatch.setattr(TestGateway, "lookup_charge", not_found)
    payment = begin(customer, make_method(customer))
    Payment.objects.filter(pk=payment.pk).update(gateway_reference="pi_processing")
    age(payment, hours=2)

    assert reconcile() == 0
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_a_charge_waiting_for_authentication_stays_pending_then_is_abandoned(
    customer, make_method, settings, no_create_calls, published, django_capture_on_commit_callbacks
):
    settings.ORDER_PAYMENT_TIMEOUT_MINUTES = 30
    payment = begin(customer, make_method(customer, SCA_CARD))
    Payment.objects.filter(pk=payment.pk).update(gateway_reference=f"pi_test_{payment.pk}")
    age(payment, minutes=59)

    assert reconcile() == 0
    payment.refresh_from_db()
    assert (payment.status, payment.client_secret) == (
        "pending",
        f"pi_test_{payment.pk}_secret_test",
    )

    age(payment, minutes=61)
    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.client_secret) == (
        "failed",
        "authentication_abandoned",
        "",
    )
    assert published == [("payment.failed", payment.pk, payment.order_id)]


def test_a_pending_refund_is_looked_up(
    paid_charge, no_create_calls, published, django_capture_on_commit_callbacks
):
    refund = services.payment_refund_begin(
        order_id=paid_charge.order_id, amount_cents=2_500, user=None, reason="duplicate"
    )
    assert refund.description == "duplicate"

    with django_capture_on_commit_callbacks(execute=True):
        assert reconcile() == 1

    refund.refresh_from_db()
    assert (refund.status, refund.gateway_reference) == ("succeeded", f"re_test_{refund.pk}")
    assert published == [("payment.refunded", refund.pk, paid_charge.order_id)]


def test_a_lookup_stating_other_money_settles_nothing(customer, make_method, monkeypatch, caplog):
    payment = begin(customer, make_method(customer))

    def other_amount(self, **lookup):
        return GatewayResult(
            succeeded=True, gateway_reference="pi_x", amount_cents=1, currency="USD"
        )

    monkeypatch.setattr(TestGateway, "lookup_charge", other_amount)
    assert reconcile() == 0
    payment.refresh_from_db()
    assert payment.status == "pending"
    assert "another amount or currency" in caplog.text


# --- late outcomes ------------------------------------------------------------------------


def test_a_failed_charge_that_succeeded_at_the_gateway_becomes_succeeded(
    customer, make_method, monkeypatch, webhook, published, caplog
):
    """The double charge of the issue: a timed-out charge failed locally whose success
    arrives later is applied (orders then pays or refunds the order)."""
    monkeypatch.setattr(TestGateway, "lookup_charge", not_found)
    payment = begin(customer, make_method(customer))
    age(payment, hours=1)
    reconcile()
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "not_created")
    published.clear()

    response = webhook(
        "payment.succeeded",
        payment_id=payment.pk,
        gateway_reference="pi_late",
        payment_intent="pi_late",
        amount_cents=3_000,
        currency="usd",
    )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.gateway_reference) == (
        "succeeded",
        "",
        "pi_late",
    )
    assert services.payment_captured_cents(order_id=payment.order_id) == 3_000
    assert published == [("payment.succeeded", payment.pk, payment.order_id)]
    assert "succeeded at the gateway" in caplog.text


def test_a_succeeded_refund_that_fails_later_is_failed_published_and_staff_emailed(
    paid_charge, staff, admin_user, webhook, published
):
    refund = services.payment_refund_begin(
        order_id=paid_charge.order_id, amount_cents=10_000, user=None
    )
    refund = services.payment_settle(
        payment_id=refund.pk, result=services.payment_refund_execute(payment_id=refund.pk)
    )
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 0
    mail.outbox.clear()

    response = webhook(
        "refund.failed",
        payment_id=refund.pk,
        gateway_reference=refund.gateway_reference,
        payment_intent=paid_charge.gateway_reference,
        failure_code="expired_or_canceled_card",
    )

    assert response.status_code == 200
    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == ("failed", "expired_or_canceled_card")
    assert services.payment_captured_cents(order_id=paid_charge.order_id) == 10_000
    assert published == [("payment.refund_failed", refund.pk, paid_charge.order_id)]
    (email,) = mail.outbox
    assert sorted(email.to) == ["admin@example.com", "staff@example.com"]
    assert email.subject == f"Refund failed at the gateway: order {paid_charge.order_id} ($100.00)"
    assert "expired_or_canceled_card" in email.body
    assert str(refund.pk) in email.body


@pytest.mark.parametrize(
    ("kind", "status", "event_type"),
    [
        ("charge", "succeeded", "payment.failed"),
        ("refund", "failed", "payment.refunded"),
    ],
)
def test_no_other_move_of_a_settled_payment(
    paid_charge,
    monkeypatch,
    caplog,
    published,
    django_capture_on_commit_callbacks,
    kind,
    status,
    event_type,
):
    if kind == "charge":
        payment = paid_charge
    else:
        monkeypatch.setattr(
            TestGateway,
            "refund",
            lambda self, **r: GatewayResult(False, "re_refused", "charge_already_refunded"),
        )
        payment = services.payment_refund_begin(
            order_id=paid_charge.order_id, amount_cents=100, user=None
        )
        payment = services.payment_settle(
            payment_id=payment.pk, result=services.payment_refund_execute(payment_id=payment.pk)
        )
    assert payment.status == status

    result = GatewayResult(succeeded=event_type != "payment.failed", gateway_reference="x")
    with django_capture_on_commit_callbacks(execute=True):
        again = services.payment_settle(payment_id=payment.pk, result=result, publish=True)

    assert again.status == status
    assert published == []
    assert "disagrees" in caplog.text
