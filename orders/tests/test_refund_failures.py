"""Refunds the gateway does not settle at once (issue 16, review round 2):

- a refund that fails after it succeeded leaves money with the shop: `audit_payments` reports a
  `refunded` order that still holds captured money, reconciliation puts it back to its status
  before (as `payment.refund_failed` does), and a cancelled order's refund is sent again, once;
- a refund the gateway accepts without deciding (`pending`) keeps the order as it is (202
  `refund_pending`); its later outcome moves the order through the usual events.

After every test `audit_payments` must be clean (conftest) unless the test says the mismatch is
its point (`allow_payment_mismatch`)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from orders.models import Order
from orders.selectors import payment_audit
from orders.services import REFUND_FAILED_NOTE, order_payments_reconcile
from orders.services.reconcile import RETRIED_REFUND
from orders.tests.helpers import card_for, pay_url, stock_of
from payments.gateways.base import GatewayResult
from payments.gateways.test import TestGateway
from payments.models import Payment
from payments.services import payment_reconcile_pending, payment_settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(customer, customer_client, order):
    response = customer_client.post(pay_url(order), {"payment_method": str(card_for(customer).pk)})
    assert response.json()["status"] == "paid"
    return Order.objects.get(pk=order.pk)


def refunds() -> list[tuple[int, str, str]]:
    return list(
        Payment.objects.filter(kind=Payment.Kind.REFUND)
        .order_by("created_at")
        .values_list("amount_cents", "status", "description")
    )


def fail_later(refund: Payment) -> None:
    """The gateway reports that a refund that had succeeded failed (its event not applied)."""
    result = GatewayResult(
        succeeded=False, gateway_reference=refund.gateway_reference, failure_code="lost_or_stolen"
    )
    payment_settle(payment_id=refund.pk, result=result)


def charged_long_ago(order: Order) -> None:
    """The charge is older than reconciliation's window for succeeded charges: only the refund
    that failed recently makes the order a candidate."""
    Payment.objects.filter(order_id=order.pk, kind=Payment.Kind.CHARGE).update(
        settled_at=timezone.now() - timedelta(days=30)
    )


def test_the_audit_reports_a_refunded_order_that_kept_the_money(
    staff_client, paid_order, allow_payment_mismatch
):
    staff_client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"restock": False})
    assert payment_audit() == []
    fail_later(Payment.objects.get(kind=Payment.Kind.REFUND))  # its event is not applied

    (mismatch,) = payment_audit()

    assert (mismatch.order_id, mismatch.status) == (paid_order.pk, Order.Status.REFUNDED)
    assert (mismatch.charged_cents, mismatch.refunded_cents) == (2000, 0)
    assert mismatch.problem == "refunded but money kept"
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("audit_payments", stdout=out)
    assert "refunded but money kept" in out.getvalue()


def test_reconciliation_puts_a_refunded_order_that_kept_the_money_back(staff_client, paid_order):
    staff_client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"restock": False})
    fail_later(Payment.objects.get(kind=Payment.Kind.REFUND))
    charged_long_ago(paid_order)

    assert order_payments_reconcile() == 1

    order = Order.objects.get(pk=paid_order.pk)
    assert order.status == Order.Status.PAID
    last = order.events.order_by("-created_at", "-id").values_list(
        "from_status", "to_status", "note"
    )[0]
    assert last == ("refunded", "paid", REFUND_FAILED_NOTE)
    assert order_payments_reconcile() == 0  # nothing left to resolve


def test_a_cancelled_orders_refund_failing_later_is_sent_again_and_succeeds(
    customer_client, paid_order, django_capture_on_commit_callbacks
):
    cancelled = customer_client.post(f"/api/v1/orders/{paid_order.pk}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        fail_later(Payment.objects.get(kind=Payment.Kind.REFUND))
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.CANCELLED
    assert [m.order_id for m in payment_audit()] == [paid_order.pk]
    charged_long_ago(paid_order)

    assert order_payments_reconcile() == 1

    assert refunds() == [
        (2000, Payment.Status.FAILED, ""),
        (2000, Payment.Status.SUCCEEDED, RETRIED_REFUND),
    ]
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.CANCELLED
    assert payment_audit() == []
    assert order_payments_reconcile() == 0


def test_a_refund_sent_again_is_sent_once(
    customer_client, paid_order, monkeypatch, caplog, allow_payment_mismatch
):
    customer_client.post(f"/api/v1/orders/{paid_order.pk}/cancel/")
    fail_later(Payment.objects.get(kind=Payment.Kind.REFUND))
    charged_long_ago(paid_order)
    refused = []

    def card_closed(self, **request):
        refused.append(request["idempotency_key"])
        return GatewayResult(False, f"re_test_{request['idempotency_key']}", "lost_or_stolen")

    monkeypatch.setattr(TestGateway, "refund", card_closed)

    order_payments_reconcile()
    order_payments_reconcile()  # the second failure: staff pay the customer back by hand

    assert len(refused) == 1
    assert [r[1:] for r in refunds()] == [
        (Payment.Status.FAILED, ""),
        (Payment.Status.FAILED, RETRIED_REFUND),
    ]
    assert "refund failed again" in caplog.text
    (mismatch,) = payment_audit()  # and the audit keeps reporting it
    assert mismatch.problem == "a succeeded charge that was not refunded"


# --- a refund the gateway has not decided ------------------------------------------------------


@pytest.fixture
def refunds_pending(monkeypatch):
    """The gateway accepts refunds without deciding them (Stripe's `pending`)."""

    def pending(self, **request):
        return GatewayResult(False, f"re_test_{request['idempotency_key']}", pending=True)

    monkeypatch.setattr(TestGateway, "refund", pending)
    monkeypatch.setattr(TestGateway, "lookup_refund", pending)


def settle_at_the_gateway(monkeypatch, capture, *, succeeded: bool) -> None:
    """The gateway decides; payment reconciliation learns it and publishes the outcome."""

    def decided(self, **lookup):
        key = lookup["idempotency_key"]
        return GatewayResult(succeeded, f"re_test_{key}", None if succeeded else "declined")

    monkeypatch.setattr(TestGateway, "lookup_refund", decided)
    with capture(execute=True):
        assert payment_reconcile_pending(older_than=timedelta(0)) == 1


def test_a_pending_refund_answers_202_and_the_order_keeps_its_status(
    staff_client, paid_order, refunds_pending, monkeypatch, django_capture_on_commit_callbacks
):
    response = staff_client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"restock": True})

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert response.status_code == 202, response.content
    assert response.json() == {"status": "refund_pending", "payment": str(refund.pk)}
    assert (refund.status, refund.gateway_reference) == ("pending", f"re_test_{refund.pk}")
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID
    assert stock_of(paid_order) == (8, 0)

    settle_at_the_gateway(monkeypatch, django_capture_on_commit_callbacks, succeeded=True)

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
    assert stock_of(paid_order) == (10, 0)  # a paid order's units never left


def test_a_pending_refund_that_fails_leaves_the_order_as_it_was(
    staff_client, paid_order, refunds_pending, monkeypatch, django_capture_on_commit_callbacks
):
    staff_client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"restock": False})

    settle_at_the_gateway(monkeypatch, django_capture_on_commit_callbacks, succeeded=False)

    assert Payment.objects.get(kind=Payment.Kind.REFUND).status == Payment.Status.FAILED
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID


def test_cancelling_a_paid_order_whose_refund_is_pending_answers_202(
    customer_client, paid_order, refunds_pending, monkeypatch, django_capture_on_commit_callbacks
):
    response = customer_client.post(f"/api/v1/orders/{paid_order.pk}/cancel/")

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert response.status_code == 202, response.content
    assert response.json() == {"status": "refund_pending", "payment": str(refund.pk)}
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID

    settle_at_the_gateway(monkeypatch, django_capture_on_commit_callbacks, succeeded=True)

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
    assert stock_of(paid_order) == (10, 0)
