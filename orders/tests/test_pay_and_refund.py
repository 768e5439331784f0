"""Paying, refunding and cancelling paid orders through the payments gateway (API.md rows pay,
cancel and refund). The built-in test gateway answers by card number; a failing gateway is
stood in for by replacing its `charge` / `refund` (we cannot reach a card network)."""

from __future__ import annotations

import io
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from conftest import client_for
from orders.models import Order
from orders.services import order_expire_unpaid
from orders.tests.helpers import pay_url, stock_of
from payments.gateways.base import CardDetails, GatewayError
from payments.gateways.test import TestGateway
from payments.models import Payment
from payments.services import payment_method_create, payment_reconcile_pending

pytestmark = pytest.mark.django_db

SUCCESS = "4242424242424242"
DECLINES = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": "processing_error",
}


def method_for(user, number=SUCCESS):
    card = CardDetails(number=number, exp_month=12, exp_year=2040, cvc="123")
    return payment_method_create(user=user, card=card)


def refund_url(order):
    return f"/api/v1/orders/{order.pk}/refund/"


@pytest.fixture
def paid_order(customer, customer_client, order):
    method = method_for(customer)
    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})
    assert response.status_code == 200, response.content
    return Order.objects.get(pk=order.pk)


# --- pay ---------------------------------------------------------------------------------------


def test_pay_charges_the_total_and_sells_the_reserved_units(customer, customer_client, order):
    method = method_for(customer)
    assert stock_of(order) == (10, 2)

    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "paid"
    assert [(p["kind"], p["status"], p["amount_cents"]) for p in body["payments"]] == [
        ("charge", "succeeded", 2000)
    ]
    assert [(e["from_status"], e["to_status"]) for e in body["events"]][-1] == ("pending", "paid")
    assert stock_of(order) == (8, 0)  # reserved units became a sale


@pytest.mark.parametrize(("number", "code"), sorted(DECLINES.items()))
def test_a_decline_is_402_with_the_gateway_code_and_the_order_stays_pending(
    customer, customer_client, order, number, code
):
    method = method_for(customer, number)

    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})

    assert response.status_code == 402
    assert response.json()["errors"][0]["code"] == code
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert stock_of(order) == (10, 2)
    assert list(Payment.objects.values_list("status", "failure_code")) == [("failed", code)]


def test_decline_then_success_with_another_card(customer, customer_client, order):
    declined = method_for(customer, "4000000000000002")
    good = method_for(customer)
    first = customer_client.post(pay_url(order), {"payment_method": str(declined.pk)})
    second = customer_client.post(pay_url(order), {"payment_method": str(good.pk)})
    assert (first.status_code, second.status_code) == (402, 200)
    assert second.json()["status"] == "paid"
    statuses = [p["status"] for p in second.json()["payments"]]
    assert statuses == ["failed", "succeeded"]


def test_only_the_owner_pays(customer, staff, make_user, order):
    for other in (staff, make_user()):
        method = method_for(other)
        response = client_for(other).post(pay_url(order), {"payment_method": str(method.pk)})
        assert response.status_code == 404
    assert Payment.objects.count() == 0


def test_another_users_payment_method_is_404(customer_client, make_user, order):
    stranger_method = method_for(make_user())
    response = customer_client.post(pay_url(order), {"payment_method": str(stranger_method.pk)})
    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "payment_method"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


def test_paying_a_paid_order_is_409_and_charges_nothing(customer, customer_client, paid_order):
    method = method_for(customer, "5555555555554444")
    response = customer_client.post(pay_url(paid_order), {"payment_method": str(method.pk)})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "invalid_transition"
    assert Payment.objects.count() == 1


def test_an_expired_order_cannot_be_paid(customer, customer_client, order):
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    method = method_for(customer)
    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "order_expired"
    assert Payment.objects.count() == 0


def test_pay_input_is_validated(customer_client, order):
    response = customer_client.post(pay_url(order), {"payment_method": "not-a-uuid"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "payment_method"


def test_one_idempotency_key_charges_once(customer, customer_client, order):
    method = method_for(customer)
    body = {"payment_method": str(method.pk)}
    first = customer_client.post(pay_url(order), body, HTTP_IDEMPOTENCY_KEY="pay-1")
    again = customer_client.post(pay_url(order), body, HTTP_IDEMPOTENCY_KEY="pay-1")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Payment.objects.filter(kind=Payment.Kind.CHARGE).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_pays_of_one_order_make_one_charge(customer, order):
    method = method_for(customer)
    barrier = threading.Barrier(4)
    statuses: list[int] = []
    lock = threading.Lock()

    def pay():
        try:
            barrier.wait()
            response = client_for(customer).post(
                pay_url(order), {"payment_method": str(method.pk)}, format="json"
            )
        finally:
            connection.close()
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409, 409, 409]
    assert Payment.objects.filter(kind=Payment.Kind.CHARGE, status="succeeded").count() == 1
    assert Payment.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert stock_of(order) == (8, 0)


# --- a gateway that fails between the steps ----------------------------------------------------


def test_a_gateway_timeout_leaves_nothing_paid_until_reconciliation(
    customer, customer_client, order, monkeypatch, django_capture_on_commit_callbacks
):
    method = method_for(customer)
    real_charge = TestGateway.charge

    def timeout(self, **kwargs):
        raise GatewayError("read timeout")

    monkeypatch.setattr(TestGateway, "charge", timeout)
    customer_client.raise_request_exception = False
    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})

    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "gateway_error"
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert Payment.objects.get().status == Payment.Status.PENDING
    # While the outcome is unknown the order is neither paid again, cancelled nor expired.
    again = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})
    assert again.json()["errors"][0]["code"] == "payment_in_progress"
    cancel = customer_client.post(f"/api/v1/orders/{order.pk}/cancel/")
    assert cancel.json()["errors"][0]["code"] == "payment_in_progress"
    assert order_expire_unpaid(now=timezone.now() + timedelta(days=1)) == 0
    assert stock_of(order) == (10, 2)

    # The gateway had in fact charged: reconciliation asks again and the order becomes paid.
    monkeypatch.setattr(TestGateway, "charge", real_charge)
    with django_capture_on_commit_callbacks(execute=True):
        assert payment_reconcile_pending(older_than=timedelta(0)) == 1

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert stock_of(order) == (8, 0)


def test_a_crash_after_the_gateway_charged_is_settled_later(
    customer, order, monkeypatch, django_capture_on_commit_callbacks
):
    """The process dies between the gateway's answer and the settling transaction."""
    from orders.services import order_pay
    from orders.services import payment as order_money

    method = method_for(customer)

    def crash(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(order_money, "payment_settle", crash)
    with pytest.raises(SystemExit):
        order_pay(order_id=order.pk, user=customer, payment_method_id=method.pk)
    monkeypatch.undo()

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING  # no order paid without a settled charge
    assert Payment.objects.get().status == Payment.Status.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        payment_reconcile_pending(older_than=timedelta(0))
    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # no succeeded charge without a paid order
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED


def test_a_charge_that_succeeds_on_a_cancelled_order_is_refunded(customer, order):
    from orders.services import order_on_payment_event
    from payments.gateways.base import GatewayResult
    from payments.services import payment_charge_begin, payment_settle

    method = method_for(customer)
    charge = payment_charge_begin(
        user=customer,
        payment_method_id=method.pk,
        order_id=order.pk,
        amount_cents=order.total_cents,
        currency=order.currency,
    )
    # The order was cancelled by hand while the charge was unknown (e.g. by an admin in SQL).
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    result = GatewayResult(succeeded=True, gateway_reference=f"ch_test_{charge.pk}")
    payment_settle(payment_id=charge.pk, result=result)

    order_on_payment_event(payment_id=charge.pk, order_id=order.pk)

    # The money goes back at once: the handler sends the refund it began.
    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert (refund.amount_cents, refund.status) == (order.total_cents, Payment.Status.SUCCEEDED)
    assert refund.initiated_by is None
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    # Applying the same event again asks for no second refund.
    order_on_payment_event(payment_id=charge.pk, order_id=order.pk)
    assert Payment.objects.filter(kind=Payment.Kind.REFUND).count() == 1


# --- refund ------------------------------------------------------------------------------------


def test_partial_refunds_up_to_the_total_then_refunded(staff_client, paid_order):
    first = staff_client.post(refund_url(paid_order), {"amount_cents": 500, "restock": False})
    assert first.status_code == 200
    assert first.json()["status"] == "paid"  # a partial refund keeps the status
    refunds = [p for p in first.json()["payments"] if p["kind"] == "refund"]
    assert [(r["amount_cents"], r["status"]) for r in refunds] == [(500, "succeeded")]

    rest = staff_client.post(refund_url(paid_order), {"amount_cents": 1500, "restock": False})
    assert rest.status_code == 200
    assert rest.json()["status"] == "refunded"
    assert rest.json()["events"][-1]["to_status"] == "refunded"


def test_a_refund_past_what_was_captured_is_400_and_changes_nothing(staff_client, paid_order):
    staff_client.post(refund_url(paid_order), {"amount_cents": 1500, "restock": False})
    response = staff_client.post(refund_url(paid_order), {"amount_cents": 501, "restock": False})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "refund_exceeds_captured"
    assert Payment.objects.filter(kind=Payment.Kind.REFUND).count() == 1
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID


def test_a_full_refund_by_default_with_restock(staff_client, paid_order):
    assert stock_of(paid_order) == (8, 0)
    response = staff_client.post(refund_url(paid_order), {"restock": True, "reason": "damaged"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "refunded"
    assert body["events"][-1]["note"] == "damaged"
    refunds = [p for p in body["payments"] if p["kind"] == "refund"]
    assert [(r["amount_cents"], r["status"]) for r in refunds] == [(2000, "succeeded")]
    assert stock_of(paid_order) == (10, 0)


def test_restock_needs_a_full_refund(staff_client, paid_order):
    response = staff_client.post(refund_url(paid_order), {"amount_cents": 100, "restock": True})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "restock_needs_full_refund"
    assert not Payment.objects.filter(kind=Payment.Kind.REFUND).exists()


def test_customers_cannot_refund_and_restock_is_required(customer_client, staff_client, paid_order):
    assert customer_client.post(refund_url(paid_order), {"restock": False}).status_code == 403
    missing = staff_client.post(refund_url(paid_order), {})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["attr"] == "restock"
    assert not Payment.objects.filter(kind=Payment.Kind.REFUND).exists()


def test_refund_of_a_pending_order_is_an_invalid_transition(staff_client, customer, place_order):
    pending = place_order(customer)
    response = staff_client.post(refund_url(pending), {"restock": False})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "invalid_transition"


def test_a_shipped_order_can_be_refunded(staff_client, paid_order):
    staff_client.post(f"/api/v1/orders/{paid_order.pk}/ship/", {"carrier": "UPS"})
    response = staff_client.post(refund_url(paid_order), {"restock": False})
    assert response.status_code == 200
    assert response.json()["status"] == "refunded"


def test_one_idempotency_key_refunds_once(staff_client, paid_order):
    body = {"amount_cents": 300, "restock": False}
    first = staff_client.post(refund_url(paid_order), body, HTTP_IDEMPOTENCY_KEY="refund-1")
    again = staff_client.post(refund_url(paid_order), body, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (first.status_code, again.status_code) == (200, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(kind=Payment.Kind.REFUND).count() == 1


def test_a_refused_refund_is_reported_and_the_order_keeps_its_status(
    staff_client, paid_order, monkeypatch
):
    from payments.gateways.base import GatewayResult

    def refuse(self, **kwargs):
        return GatewayResult(
            succeeded=False, gateway_reference="", failure_code="charge_already_refunded"
        )

    monkeypatch.setattr(TestGateway, "refund", refuse)
    staff_client.raise_request_exception = False
    response = staff_client.post(refund_url(paid_order), {"restock": False})
    assert response.status_code == 409  # a final answer of the gateway, never a 502
    error = response.json()["errors"][0]
    assert error["code"] == "refund_failed"
    assert "charge_already_refunded" in error["detail"]
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID
    assert Payment.objects.get(kind=Payment.Kind.REFUND).status == Payment.Status.FAILED


# --- cancel of a paid order --------------------------------------------------------------------


def test_cancelling_a_paid_order_refunds_in_full_and_restocks(customer_client, paid_order):
    response = customer_client.post(f"/api/v1/orders/{paid_order.pk}/cancel/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    refunds = [p for p in body["payments"] if p["kind"] == "refund"]
    assert [(r["amount_cents"], r["status"]) for r in refunds] == [(2000, "succeeded")]
    assert stock_of(paid_order) == (10, 0)
    out = io.StringIO()
    call_command("audit_stock", stdout=out)  # exits 1 on drift: the ledger still adds up


def test_a_refund_settled_later_by_the_gateway_moves_the_order(
    paid_order, monkeypatch, staff_client, django_capture_on_commit_callbacks
):
    real_refund = TestGateway.refund

    def timeout(self, **kwargs):
        raise GatewayError("read timeout")

    monkeypatch.setattr(TestGateway, "refund", timeout)
    staff_client.raise_request_exception = False
    response = staff_client.post(refund_url(paid_order), {"restock": False})
    assert response.status_code == 502
    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID

    monkeypatch.setattr(TestGateway, "refund", real_refund)
    with django_capture_on_commit_callbacks(execute=True):
        payment_reconcile_pending(older_than=timedelta(0))
    order = Order.objects.get(pk=paid_order.pk)
    assert order.status == Order.Status.REFUNDED
    assert stock_of(order) == (10, 0)  # paid, not shipped: the units go back


def test_unknown_order_events_are_ignored():
    from orders.services import order_on_payment_event

    order_on_payment_event(payment_id=uuid.uuid4(), order_id=uuid.uuid4())
    assert Order.objects.count() == 0


def test_staff_refund_from_the_order_console_goes_through_the_service(staff, paid_order):
    from django.test import Client

    web = Client()
    web.force_login(staff)  # a staff member, not an admin: the Staff group allows it
    response = web.post(
        "/admin/orders/order/",
        {"action": "refund", "_selected_action": [str(paid_order.pk)], "restock": "on"},
        follow=True,
    )
    assert response.status_code == 200
    order = Order.objects.get(pk=paid_order.pk)
    assert order.status == Order.Status.REFUNDED
    assert order.events.values_list("note", flat=True).last() == "refunded by staff"
    assert Payment.objects.get(kind=Payment.Kind.REFUND).status == Payment.Status.SUCCEEDED
    assert stock_of(order) == (10, 0)
