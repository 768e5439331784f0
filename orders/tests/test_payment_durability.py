"""Payment outcomes are durable (README, "Failure behaviour"): a settled charge's consequence for
its order is recorded in the settlement's transaction (an outbox row) and applied by a retried
task until done; expiry, cancel and reconciliation treat "charged but not paid" as work to finish,
never as a reason to cancel. Each test injects the failure, then checks `audit_payments`."""

from __future__ import annotations

import io
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from common.models import OutboxMessage
from inventory.services import stock_release
from orders.models import Order
from orders.selectors import payment_audit
from orders.services import order_cancel, order_expire_unpaid, order_payments_reconcile
from orders.services import payment as order_money
from orders.services import reconcile as order_reconcile
from orders.services._shared import _stock_lines
from orders.services.state import _mark_paid
from orders.tests.helpers import stock_of
from payments.gateways.base import CardDetails, GatewayError, GatewayResult
from payments.gateways.test import TestGateway, sign
from payments.models import Payment
from payments.services import (
    payment_charge_begin,
    payment_method_create,
    payment_settle,
)

pytestmark = pytest.mark.django_db
WEBHOOK = "/api/v1/payments/webhooks/test/"


def method_for(user):
    card = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
    return payment_method_create(user=user, card=card)


@pytest.fixture
def charge_in_flight(customer, order):
    """A pending charge of the order: the pay request timed out at the gateway."""
    return payment_charge_begin(
        user=customer,
        payment_method_id=method_for(customer).pk,
        order_id=order.pk,
        amount_cents=order.total_cents,
        currency=order.currency,
    )


def succeeded_webhook(api_client, settings, payment):
    settings.PAYMENT_WEBHOOK_SECRET = "whsec_test"
    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "data": {"payment_id": str(payment.pk), "gateway_reference": f"ch_test_{payment.pk}"},
        }
    ).encode()
    header = sign(body, timestamp=int(time.time()), secret="whsec_test")
    return api_client.post(
        WEBHOOK, data=body, content_type="application/json", HTTP_X_SIGNATURE=header
    )


@pytest.fixture
def order_update_fails_once(monkeypatch):
    """The order update after a settlement fails once (a deadlock, a dropped connection)."""
    real = _mark_paid  # what applying a succeeded charge calls, under the order's lock
    failures = {"left": 1}

    def flaky(*args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("could not serialize access")
        return real(*args, **kwargs)

    monkeypatch.setattr(order_money, "_mark_paid", flaky)
    return failures


def test_a_failed_order_update_after_a_webhook_is_retried_until_done(
    api_client,
    settings,
    order,
    charge_in_flight,
    order_update_fails_once,
    django_capture_on_commit_callbacks,
    run_outbox,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = succeeded_webhook(api_client, settings, charge_in_flight)

    # The gateway hears 200 (its event is recorded), the money is recorded, the order update
    # failed into the outbox row written in the settlement's transaction: nothing is lost.
    assert response.status_code == 200
    assert Payment.objects.get().status == Payment.Status.SUCCEEDED
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    message = OutboxMessage.objects.get(task="payments.tasks.deliver_payment_event")
    assert "could not serialize access" in message.last_error
    assert [m.order_id for m in payment_audit()] == [order.pk]

    run_outbox()  # the retry, as the relay runs it once the backoff has passed
    message.refresh_from_db()
    assert message.done_at is not None
    assert message.attempts == 2
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert stock_of(order) == (8, 0)
    assert payment_audit() == []
    call_command("audit_payments", stdout=io.StringIO())  # exit 0: clean


def test_expiry_never_cancels_an_order_whose_charge_succeeded(
    api_client,
    settings,
    order,
    charge_in_flight,
    order_update_fails_once,
    django_capture_on_commit_callbacks,
    run_outbox,
):
    """The probe that broke the money promise: the update failed, then expiry came by."""
    with django_capture_on_commit_callbacks(execute=True):
        succeeded_webhook(api_client, settings, charge_in_flight)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = order_expire_unpaid(now=timezone.now() + timedelta(days=1))

    assert cancelled == 0
    order.refresh_from_db()
    assert order.status == Order.Status.PAID  # the customer's money bought the order
    assert stock_of(order) == (8, 0)  # sold, not released
    assert not Payment.objects.filter(kind=Payment.Kind.REFUND).exists()
    # The outbox's retry then finds the work done and changes nothing.
    run_outbox()
    assert OutboxMessage.objects.get(task="payments.tasks.deliver_payment_event").done_at
    assert list(order.events.values_list("to_status", flat=True)) == ["pending", "paid"]


def test_cancelling_a_pending_order_whose_charge_succeeded_refunds_it(
    customer, order, charge_in_flight, django_capture_on_commit_callbacks
):
    """Cancel comes before the outcome's handler: the money goes back, the units too."""
    result = GatewayResult(succeeded=True, gateway_reference=f"ch_test_{charge_in_flight.pk}")
    payment_settle(payment_id=charge_in_flight.pk, result=result)  # handler not run yet

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = order_cancel(order_id=order.pk, actor=customer)

    assert cancelled.status == Order.Status.CANCELLED
    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert (refund.status, refund.amount_cents) == (Payment.Status.SUCCEEDED, 2000)
    assert stock_of(order) == (10, 0)  # paid, then restocked: back on the shelf
    assert payment_audit() == []


def test_reconciliation_marks_paid_what_was_charged(order, charge_in_flight):
    result = GatewayResult(succeeded=True, gateway_reference=f"ch_test_{charge_in_flight.pk}")
    payment_settle(payment_id=charge_in_flight.pk, result=result)  # its event was lost

    assert order_payments_reconcile() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert order_payments_reconcile() == 0  # nothing left to resolve


def test_reconciliation_refunds_a_charge_kept_on_a_cancelled_order(order, charge_in_flight):
    # Cancelled by hand while the charge was unknown, and the charge then succeeded.
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    result = GatewayResult(succeeded=True, gateway_reference=f"ch_test_{charge_in_flight.pk}")
    payment_settle(payment_id=charge_in_flight.pk, result=result)
    assert [m.problem for m in payment_audit()] == ["a succeeded charge that was not refunded"]

    assert order_payments_reconcile() == 1

    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert (refund.status, refund.amount_cents) == (Payment.Status.SUCCEEDED, 2000)
    assert payment_audit() == []
    # The ledger is untouched by the status forced in SQL: put the reservation back in step.
    stock_release(lines=_stock_lines(order), actor=None, reference="test", note="cleanup")


def test_reconciliation_leaves_a_paid_order_without_charge_to_a_person(
    order, caplog, allow_payment_mismatch
):
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)  # forced in SQL
    assert order_payments_reconcile() == 0  # it only looks at recent succeeded charges
    mismatch = payment_audit()[0]
    assert order_reconcile._resolve_mismatch(mismatch) is False
    assert "without a succeeded charge" in caplog.text
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("audit_payments", stdout=out)
    assert failure.value.returncode == 1
    assert f"order {order.number}" in out.getvalue()
    assert "is paid: no succeeded charge (charged 0, refunded 0)" in out.getvalue()
    Order.objects.filter(pk=order.pk).update(status=Order.Status.PENDING)


def test_a_crashed_payment_settles_within_the_reconcile_settings(settings):
    """A crash mid-pay took 14 min 25 s to settle with a 5-minute beat and a 10-minute age;
    both are settings now, one minute each by default."""
    assert settings.PAYMENT_RECONCILE_AFTER_SECONDS == 60
    assert settings.PAYMENT_RECONCILE_INTERVAL_SECONDS == 60
    for job in ("payments-reconcile-pending", "orders-reconcile-payments"):
        schedule = settings.CELERY_BEAT_SCHEDULE[job]["schedule"]
        assert schedule == timedelta(seconds=60)


def test_a_slow_gateway_times_out_cleanly_and_a_retry_with_the_same_key_charges_once(
    customer, customer_client, order, monkeypatch, settings
):
    """The gateway takes the money but answers after our timeout; the customer retries."""
    settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS = 0.2
    charged_at_the_network: list[str] = []
    real_charge = TestGateway.charge

    def slow_network(self, **kwargs):
        key = kwargs["idempotency_key"]
        result = real_charge(self, **kwargs)
        if key not in charged_at_the_network:
            charged_at_the_network.append(key)  # the card network charges once per key
            time.sleep(kwargs["timeout"])
            raise GatewayError("read timed out")
        return result

    monkeypatch.setattr(TestGateway, "charge", slow_network)
    method = method_for(customer)
    customer_client.raise_request_exception = False  # a 502 is logged like any 5xx
    headers = {"HTTP_IDEMPOTENCY_KEY": "pay-1"}
    url = f"/api/v1/orders/{order.pk}/pay/"

    first = customer_client.post(url, {"payment_method": str(method.pk)}, **headers)
    assert first.status_code == 502
    assert first.json()["errors"][0]["code"] == "gateway_error"
    detail = customer_client.get(f"/api/v1/orders/{order.pk}/").json()
    assert detail["status"] == "pending"
    assert [p["status"] for p in detail["payments"]] == ["pending"]
    assert detail["payment_confirming"] is True  # the customer sees it is being confirmed

    # Until the gateway client's retries and their backoff are certainly over, the charge may
    # still be in flight: a retry then is refused, never a second request to the gateway.
    early = customer_client.post(url, {"payment_method": str(method.pk)}, **headers)
    assert early.status_code == 409
    assert early.json()["errors"][0]["code"] == "payment_in_progress"
    assert len(charged_at_the_network) == 1
    in_flight = timedelta(seconds=order_money.charge_in_flight_seconds())
    assert in_flight == timedelta(seconds=0.2 * 3 + 2)
    Payment.objects.update(created_at=timezone.now() - in_flight - timedelta(seconds=1))

    retry = customer_client.post(url, {"payment_method": str(method.pk)}, **headers)
    assert retry.status_code == 200
    assert retry.json()["status"] == "paid"
    assert retry.json()["payment_confirming"] is False
    assert len(charged_at_the_network) == 1
    charge = Payment.objects.get()
    assert (charge.kind, charge.status, charge.amount_cents) == ("charge", "succeeded", 2000)
    replay = customer_client.post(url, {"payment_method": str(method.pk)}, **headers)
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == retry.json()


def test_reconciliation_goes_on_past_an_order_it_cannot_resolve(
    customer, place_order, make_product, monkeypatch, caplog
):
    """Two charged-but-pending orders; resolving the first raises: the second is still paid."""
    first, second = (
        place_order(customer, [(make_product(price_cents=1000, on_hand=5), 1)]) for _ in range(2)
    )
    method = method_for(customer)
    for order in (first, second):
        charge = payment_charge_begin(
            user=customer,
            payment_method_id=method.pk,
            order_id=order.pk,
            amount_cents=order.total_cents,
            currency=order.currency,
        )
        result = GatewayResult(succeeded=True, gateway_reference=f"ch_test_{charge.pk}")
        payment_settle(payment_id=charge.pk, result=result)
    real = order_money._apply_charge

    def flaky(order, **kwargs):
        if order.pk == first.pk:
            raise RuntimeError("deadlock detected")
        return real(order, **kwargs)

    monkeypatch.setattr(order_reconcile, "_apply_charge", flaky)
    assert order_payments_reconcile() == 1
    assert Order.objects.get(pk=second.pk).status == Order.Status.PAID
    assert "could not resolve an order's payments" in caplog.text
    monkeypatch.undo()
    assert order_payments_reconcile() == 1  # the next run resolves the first
    assert Order.objects.get(pk=first.pk).status == Order.Status.PAID
