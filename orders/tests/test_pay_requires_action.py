"""Paying with a card whose bank asks the customer to authenticate (3-D Secure; API.md, the pay
row): 202 `requires_action` with the client secret, the order pending and not expired until the
gateway reports the outcome. The built-in test gateway's `4000002500003155` card behaves as
Stripe does; its documented confirm step is a signed `payment.succeeded` webhook."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from orders.services import order_expire_unpaid, order_pay_attempt
from orders.tests.helpers import (
    SCA_NUMBER,
    card_for,
    pay_url,
    post_signed_webhook,
    send_webhook,
    stock_of,
)
from payments.gateways.base import GatewayError, GatewayResult
from payments.gateways.test import TestGateway, confirm_webhook_body
from payments.models import Payment
from payments.services import payment_reconcile_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting(customer, customer_client, order):
    """The order's charge waits for the customer to authenticate: the 202's body."""
    method = card_for(customer, SCA_NUMBER)
    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})
    assert response.status_code == 202, response.content
    return response.json()


def test_a_card_that_needs_authentication_answers_202_and_the_order_stays_pending(
    customer_client, order, waiting
):
    charge = Payment.objects.get()
    assert waiting == {
        "status": "requires_action",
        "client_secret": f"pi_test_{charge.pk}_secret_test",
        "payment": str(charge.pk),
    }
    assert (charge.kind, charge.status, charge.client_secret) == (
        Payment.Kind.CHARGE,
        Payment.Status.PENDING,
        waiting["client_secret"],
    )
    detail = customer_client.get(f"/api/v1/orders/{order.pk}/").json()
    assert (detail["status"], detail["payment_confirming"]) == ("pending", True)
    assert stock_of(order) == (10, 2)  # still reserved, not sold


def test_paying_again_with_the_same_card_while_it_waits_answers_the_same_202(
    customer_client, order, waiting, monkeypatch
):
    asked = []
    monkeypatch.setattr(TestGateway, "charge", lambda self, **request: asked.append(request))
    monkeypatch.setattr(TestGateway, "cancel_charge", lambda self, **request: asked.append(request))
    same_card = Payment.objects.get().payment_method_id

    for _ in range(2):
        again = customer_client.post(pay_url(order), {"payment_method": str(same_card)})
        assert (again.status_code, again.json()) == (202, waiting)

    assert asked == []  # the gateway is not asked again: its webhook settles the charge
    assert Payment.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


def test_paying_with_another_card_cancels_the_waiting_charge_first(
    customer, customer_client, order, waiting, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    for name in ("charge", "cancel_charge"):
        real = getattr(TestGateway, name)

        def recording(self, _name=name, _real=real, **request):
            calls.append((_name, request.get("gateway_reference", "")))
            return _real(self, **request)

        monkeypatch.setattr(TestGateway, name, recording)
    waiting_charge = Payment.objects.get()
    other_card = card_for(customer)

    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(pay_url(order), {"payment_method": str(other_card.pk)})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paid"
    # Canceled at the gateway before the new card was charged: it can never be completed too.
    assert calls == [("cancel_charge", waiting_charge.gateway_reference), ("charge", "")]
    waiting_charge.refresh_from_db()
    assert (waiting_charge.status, waiting_charge.failure_code, waiting_charge.client_secret) == (
        Payment.Status.FAILED,
        "canceled",
        "",
    )
    paid_by = Payment.objects.get(status=Payment.Status.SUCCEEDED)
    assert (paid_by.payment_method_id, paid_by.kind) == (other_card.pk, Payment.Kind.CHARGE)
    assert stock_of(order) == (8, 0)
    assert not Payment.objects.filter(kind=Payment.Kind.REFUND).exists()


def test_a_waiting_charge_that_succeeded_meanwhile_pays_the_order_instead(
    customer, customer_client, order, waiting, monkeypatch, django_capture_on_commit_callbacks
):
    """The customer authenticated just before asking to pay with another card: the gateway
    cannot cancel the charge any more, it succeeded. It pays the order; the other card is never
    charged."""
    charged = []
    monkeypatch.setattr(TestGateway, "charge", lambda self, **request: charged.append(request))
    monkeypatch.setattr(
        TestGateway,
        "cancel_charge",
        lambda self, **request: GatewayResult(True, request["gateway_reference"]),
    )
    waiting_charge = Payment.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post(
            pay_url(order), {"payment_method": str(card_for(customer).pk)}
        )

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "paid"
    assert charged == []
    assert list(Payment.objects.values_list("pk", "status")) == [
        (waiting_charge.pk, Payment.Status.SUCCEEDED)
    ]
    assert stock_of(order) == (8, 0)
    paid = [e for e in Order.objects.get(pk=order.pk).events.all() if e.to_status == "paid"]
    assert len(paid) == 1  # the published late outcome changed nothing more


def test_a_waiting_charge_the_gateway_cannot_cancel_now_is_a_502_and_keeps_waiting(
    customer, customer_client, order, waiting, monkeypatch
):
    def unreachable(self, **request):
        raise GatewayError("connection reset")

    monkeypatch.setattr(TestGateway, "cancel_charge", unreachable)
    customer_client.raise_request_exception = False

    response = customer_client.post(pay_url(order), {"payment_method": str(card_for(customer).pk)})

    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "gateway_error"
    charge = Payment.objects.get()
    assert charge.is_pending
    assert charge.client_secret == waiting["client_secret"]
    again = customer_client.post(pay_url(order), {"payment_method": str(charge.payment_method_id)})
    assert (again.status_code, again.json()) == (202, waiting)


def test_the_service_says_requires_action_with_the_client_secret(customer, order):
    method = card_for(customer, SCA_NUMBER)

    outcome = order_pay_attempt(order_id=order.pk, user=customer, payment_method_id=method.pk)

    assert outcome.requires_action
    assert outcome.order.status == Order.Status.PENDING
    assert outcome.payment.is_pending
    assert outcome.client_secret == outcome.payment.client_secret != ""


def test_checkout_charges_are_customer_present_and_name_the_order(
    customer, customer_client, order, monkeypatch
):
    requests = []
    real_charge = TestGateway.charge

    def recording(self, **request):
        requests.append(request)
        return real_charge(self, **request)

    monkeypatch.setattr(TestGateway, "charge", recording)
    method = card_for(customer)

    response = customer_client.post(pay_url(order), {"payment_method": str(method.pk)})

    assert response.status_code == 200
    (request,) = requests
    charge = Payment.objects.get()
    assert request["customer_present"] is True
    assert request["description"] == f"Order {order.number}"
    assert request["metadata"] == {
        "payment_id": str(charge.pk),
        "order_id": str(order.pk),
        "order_number": order.number,
    }
    assert request["idempotency_key"] == str(charge.pk)


def test_the_webhook_that_confirms_it_pays_the_order(
    api_client, settings, customer_client, order, waiting, django_capture_on_commit_callbacks
):
    charge = Payment.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        post_signed_webhook(
            api_client, settings, confirm_webhook_body(charge.pk, charge.gateway_reference)
        )

    order.refresh_from_db()
    charge.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert (charge.status, charge.client_secret) == (Payment.Status.SUCCEEDED, "")
    assert stock_of(order) == (8, 0)
    # Paying again now is an ordinary 409: the order is paid.
    again = customer_client.post(pay_url(order), {"payment_method": str(charge.payment_method_id)})
    assert again.status_code == 409


def test_authentication_failed_then_another_card_pays(
    api_client,
    settings,
    customer,
    customer_client,
    order,
    waiting,
    django_capture_on_commit_callbacks,
):
    charge = Payment.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        send_webhook(
            api_client,
            settings,
            "payment.failed",
            payment_id=str(charge.pk),
            gateway_reference=charge.gateway_reference,
            failure_code="payment_intent_authentication_failure",
        )
    assert Payment.objects.get().status == Payment.Status.FAILED
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING

    response = customer_client.post(pay_url(order), {"payment_method": str(card_for(customer).pk)})

    assert response.status_code == 200
    assert response.json()["status"] == "paid"


def test_expiry_waits_for_a_charge_that_awaits_authentication(
    order, waiting, settings, django_capture_on_commit_callbacks
):
    later = timezone.now() + timedelta(days=1)

    assert order_expire_unpaid(now=later) == 0

    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert stock_of(order) == (10, 2)

    # Never authenticated: once payments fails the charge as abandoned, expiry proceeds.
    abandoned_after = timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES * 2)
    Payment.objects.update(created_at=timezone.now() - abandoned_after - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        payment_reconcile_pending(older_than=timedelta(0))
    charge = Payment.objects.get()
    assert (charge.status, charge.failure_code) == ("failed", "authentication_abandoned")

    assert order_expire_unpaid(now=later) == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED
    assert stock_of(order) == (10, 0)
