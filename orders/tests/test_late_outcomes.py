"""Outcomes the gateway reports after the fact, and what they do to the order (issue 16):

- a charge settled failed that the gateway later reports succeeded pays a pending order, and is
  refunded when the order was cancelled or another charge paid it meanwhile (a double charge);
- a refund made in the gateway's dashboard moves the order as any refund does;
- a refund that succeeded and later failed puts a `refunded` order back to the status it had.

The outcomes are told as the gateway tells them (signed test-gateway webhooks) or as payments
records them (`payment_settle` with the later result), and reach orders through the outbox.
After every test `audit_payments` must be clean (conftest)."""

from __future__ import annotations

import pytest

from orders.exceptions import InvalidTransition
from orders.models import Order
from orders.services import REFUND_FAILED_NOTE, order_transition
from orders.tests.helpers import card_for, pay_url, send_webhook, stock_of
from payments import events
from payments.gateways.base import GatewayError, GatewayResult
from payments.gateways.test import TestGateway
from payments.models import Payment
from payments.services import (
    payment_captured_cents,
    payment_charge_begin,
    payment_method_delete,
    payment_settle,
)

pytestmark = pytest.mark.django_db


def statuses(order: Order) -> list[tuple[str, str, str]]:
    return [
        (event.from_status, event.to_status, event.note)
        for event in order.events.order_by("created_at", "id")
    ]


@pytest.fixture
def failed_charge(customer, order):
    """A charge of the order we settled failed (the gateway had no record of it yet), its card
    since deleted by the customer: the double-charge setting of the issue."""
    method = card_for(customer, "5555555555554444")
    charge = payment_charge_begin(
        user=customer,
        payment_method_id=method.pk,
        order_id=order.pk,
        amount_cents=order.total_cents,
        currency=order.currency,
        description=f"Order {order.number}",
        order_number=order.number,
    )
    failed = GatewayResult(succeeded=False, gateway_reference="", failure_code="not_created")
    payment_settle(payment_id=charge.pk, result=failed)
    payment_method_delete(user=customer, payment_method_id=method.pk)
    return Payment.objects.get(pk=charge.pk)


def late_success(charge: Payment, capture) -> None:
    """The gateway reports that the charge succeeded after all."""
    result = GatewayResult(succeeded=True, gateway_reference=f"ch_test_{charge.pk}")
    with capture(execute=True):
        payment_settle(payment_id=charge.pk, result=result, publish=True)


def refunds() -> list[tuple[int, str, object]]:
    return list(
        Payment.objects.filter(kind=Payment.Kind.REFUND)
        .order_by("created_at")
        .values_list("amount_cents", "status", "parent_id")
    )


# --- a late success of a charge settled failed -------------------------------------------------


def test_a_late_success_pays_the_pending_order(
    order, failed_charge, django_capture_on_commit_callbacks
):
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING

    late_success(failed_charge, django_capture_on_commit_callbacks)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert stock_of(order) == (8, 0)
    assert refunds() == []


def test_a_late_success_on_a_cancelled_order_is_refunded_at_once(
    customer_client, order, failed_charge, django_capture_on_commit_callbacks
):
    assert customer_client.post(f"/api/v1/orders/{order.pk}/cancel/").status_code == 200

    late_success(failed_charge, django_capture_on_commit_callbacks)

    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert refunds() == [(2000, Payment.Status.SUCCEEDED, failed_charge.pk)]
    assert stock_of(order) == (10, 0)  # released at cancel, untouched since


def test_a_late_success_after_another_card_paid_is_refunded_as_a_duplicate(
    customer, customer_client, order, failed_charge, django_capture_on_commit_callbacks
):
    paid = customer_client.post(pay_url(order), {"payment_method": str(card_for(customer).pk)})
    assert paid.json()["status"] == "paid"

    late_success(failed_charge, django_capture_on_commit_callbacks)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # still paid, by the other charge
    assert refunds() == [(2000, Payment.Status.SUCCEEDED, failed_charge.pk)]
    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert (refund.description, refund.initiated_by_id) == ("duplicate", None)
    assert stock_of(order) == (8, 0)
    # The same outcome told again refunds nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        events.dispatch("payment.succeeded", payment_id=failed_charge.pk, order_id=order.pk)
    assert len(refunds()) == 1


def test_a_late_success_during_another_charge_keeps_one_of_them(
    customer, order, failed_charge, monkeypatch, django_capture_on_commit_callbacks
):
    """The late success arrives while the customer's second charge is at the gateway: the first
    to reach the order pays it, the other is refunded, never both kept or both refunded."""
    from orders.services import order_pay

    real_charge = TestGateway.charge

    def late_success_meanwhile(self, **request):
        late_success(failed_charge, django_capture_on_commit_callbacks)
        return real_charge(self, **request)

    monkeypatch.setattr(TestGateway, "charge", late_success_meanwhile)

    order = order_pay(order_id=order.pk, user=customer, payment_method_id=card_for(customer).pk)

    assert order.status == Order.Status.PAID
    second = Payment.objects.get(kind=Payment.Kind.CHARGE, payment_method__isnull=False)
    assert second.status == Payment.Status.SUCCEEDED
    (refund,) = refunds()  # one of the two charges is given back, the other kept
    assert refund[:2] == (2000, Payment.Status.SUCCEEDED)
    assert refund[2] in {failed_charge.pk, second.pk}
    assert payment_captured_cents(order_id=order.pk) == order.total_cents
    assert stock_of(order) == (8, 0)


def test_a_refund_the_gateway_did_not_take_is_sent_again_until_it_is(
    customer,
    customer_client,
    order,
    failed_charge,
    monkeypatch,
    django_capture_on_commit_callbacks,
    run_outbox,
    allow_outbox_failures,
):
    customer_client.post(pay_url(order), {"payment_method": str(card_for(customer).pk)})
    real_refund = TestGateway.refund

    def unreachable(self, **request):
        raise GatewayError("connection reset")

    monkeypatch.setattr(TestGateway, "refund", unreachable)
    late_success(failed_charge, django_capture_on_commit_callbacks)
    assert refunds() == [(2000, Payment.Status.PENDING, failed_charge.pk)]

    monkeypatch.setattr(TestGateway, "refund", real_refund)
    run_outbox()  # the event's delivery, again (the outbox retries a handler that raised)

    assert refunds() == [(2000, Payment.Status.SUCCEEDED, failed_charge.pk)]
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


# --- refunds made in the gateway's dashboard ---------------------------------------------------


@pytest.fixture
def paid_order(customer, customer_client, order):
    response = customer_client.post(pay_url(order), {"payment_method": str(card_for(customer).pk)})
    assert response.json()["status"] == "paid"
    return Order.objects.get(pk=order.pk)


def dashboard_refund(api_client, settings, order, amount_cents, capture, reference="re_dash_1"):
    charge = Payment.objects.get(order_id=order.pk, kind=Payment.Kind.CHARGE)
    with capture(execute=True):
        send_webhook(
            api_client,
            settings,
            "refund.external",
            gateway_reference=reference,
            payment_intent=charge.gateway_reference,
            amount_cents=amount_cents,
            currency=order.currency,
        )


def test_a_full_refund_in_the_dashboard_refunds_the_order_and_restocks_a_paid_one(
    api_client, settings, paid_order, django_capture_on_commit_callbacks
):
    dashboard_refund(api_client, settings, paid_order, 2000, django_capture_on_commit_callbacks)

    paid_order.refresh_from_db()
    assert paid_order.status == Order.Status.REFUNDED
    assert stock_of(paid_order) == (10, 0)  # never shipped: the units are back on hand
    assert statuses(paid_order)[-1][:2] == ("paid", "refunded")


def test_a_partial_refund_in_the_dashboard_keeps_the_status(
    api_client, settings, paid_order, django_capture_on_commit_callbacks
):
    dashboard_refund(api_client, settings, paid_order, 500, django_capture_on_commit_callbacks)
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID
    assert [r[:2] for r in refunds()] == [(500, Payment.Status.SUCCEEDED)]

    dashboard_refund(
        api_client, settings, paid_order, 1500, django_capture_on_commit_callbacks, "re_dash_2"
    )
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED


def test_a_dashboard_refund_of_a_shipped_order_does_not_restock(
    api_client, settings, staff_client, paid_order, django_capture_on_commit_callbacks
):
    staff_client.post(f"/api/v1/orders/{paid_order.pk}/ship/", {"carrier": "UPS"})

    dashboard_refund(api_client, settings, paid_order, 2000, django_capture_on_commit_callbacks)

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
    assert stock_of(paid_order) == (8, 0)  # the parcel left: nothing back on hand


# --- a refund that fails after it succeeded ----------------------------------------------------


def refund_fails_later(refund: Payment, capture) -> None:
    result = GatewayResult(
        succeeded=False,
        gateway_reference=refund.gateway_reference,
        failure_code="expired_or_canceled_card",
    )
    with capture(execute=True):
        payment_settle(payment_id=refund.pk, result=result, publish=True)


@pytest.mark.parametrize("moves", [[], ["ship"], ["ship", "deliver"]])
def test_a_refund_failing_later_puts_the_order_back_to_its_status_before(
    staff_client, paid_order, moves, django_capture_on_commit_callbacks
):
    for move in moves:
        assert staff_client.post(f"/api/v1/orders/{paid_order.pk}/{move}/").status_code == 200
    before = Order.objects.get(pk=paid_order.pk).status
    response = staff_client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"restock": False})
    assert response.json()["status"] == "refunded"

    refund_fails_later(
        Payment.objects.get(kind=Payment.Kind.REFUND), django_capture_on_commit_callbacks
    )

    order = Order.objects.get(pk=paid_order.pk)
    assert order.status == before
    assert statuses(order)[-2:] == [
        (before, "refunded", "refunded"),
        ("refunded", before, REFUND_FAILED_NOTE),
    ]
    # Told again (a replayed event): nothing more happens.
    with django_capture_on_commit_callbacks(execute=True):
        events.dispatch(
            "payment.refund_failed",
            payment_id=Payment.objects.get(kind=Payment.Kind.REFUND).pk,
            order_id=order.pk,
        )
    assert len(statuses(order)) == len(statuses(Order.objects.get(pk=order.pk)))


def test_a_partial_refund_failing_later_changes_no_status(
    staff_client, paid_order, django_capture_on_commit_callbacks
):
    staff_client.post(
        f"/api/v1/orders/{paid_order.pk}/refund/", {"amount_cents": 500, "restock": False}
    )
    events_before = statuses(paid_order)

    refund_fails_later(
        Payment.objects.get(kind=Payment.Kind.REFUND), django_capture_on_commit_callbacks
    )

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID
    assert statuses(paid_order) == events_before


def test_one_of_two_refunds_failing_later_puts_a_refunded_order_back(
    staff_client, paid_order, django_capture_on_commit_callbacks
):
    url = f"/api/v1/orders/{paid_order.pk}/refund/"
    staff_client.post(url, {"amount_cents": 500, "restock": False})
    staff_client.post(url, {"amount_cents": 1500, "restock": False})
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
    first = Payment.objects.filter(kind=Payment.Kind.REFUND).order_by("created_at")[0]

    refund_fails_later(first, django_capture_on_commit_callbacks)

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID


def test_refunded_goes_back_only_when_a_refund_failed(staff, staff_client, paid_order):
    staff_client.post(f"/api/v1/orders/{paid_order.pk}/refund/", {"restock": False})

    with pytest.raises(InvalidTransition):
        order_transition(order_id=paid_order.pk, to_status=Order.Status.PAID, actor=staff)

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.REFUNDED
