"""Races (real transactions, threads) and gateway failures around saving cards and webhooks."""

import threading
import uuid

import pytest
from django.db import connection

from conftest import client_for
from payments import events, services
from payments.exceptions import PaymentMethodNotFound
from payments.gateways.base import CardDetails, GatewayError, GatewayEvent, GatewayResult
from payments.gateways.test import TestGateway
from payments.models import Payment, PaymentMethod, WebhookEvent

from .conftest import SUCCESS, card_body

URL = "/api/v1/payment-methods/"


def run_at_once(count, target):
    barrier = threading.Barrier(count)
    results = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait()
            outcome = target()
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_the_same_card_saved_at_once_is_saved_once(customer):
    def save():
        return client_for(customer).post(URL, card_body(), format="json").status_code

    assert sorted(run_at_once(4, save)) == [201, 409, 409, 409]
    assert PaymentMethod.objects.count() == 1
    assert PaymentMethod.objects.get().is_default is True


@pytest.mark.django_db(transaction=True)
def test_a_webhook_delivered_twice_at_once_is_applied_once(customer, make_method):
    payment = services.payment_charge_begin(
        user=customer,
        payment_method_id=make_method(customer).pk,
        order_id=uuid.uuid4(),
        amount_cents=900,
        currency="USD",
    )
    event = GatewayEvent(
        event_id="evt_race",
        type="payment.succeeded",
        payment_id=payment.pk,
        gateway_reference="ch_race",
        raw_type="payment.succeeded",
    )
    seen = []

    def handler(*, payment_id, order_id):
        seen.append(payment_id)

    events.subscribe("payment.succeeded", handler)
    try:
        results = run_at_once(4, lambda: services.webhook_event_handle(gateway="test", event=event))
    finally:
        events.unsubscribe("payment.succeeded", handler)

    assert sorted(results) == [False, False, False, True]
    assert seen == [payment.pk]
    assert WebhookEvent.objects.count() == 1
    payment.refresh_from_db()
    assert payment.status == "succeeded"


@pytest.mark.django_db
def test_gateway_down_while_saving_a_card_is_502_and_nothing_saved(customer, monkeypatch):
    def down(self, card, *, customer):
        raise GatewayError("connection refused")

    monkeypatch.setattr(TestGateway, "tokenize", down)
    client = client_for(customer)
    client.raise_request_exception = False  # a 5xx is reported like a crash; see the body

    response = client.post(URL, card_body(), format="json")

    assert response.status_code == 502
    assert response.json()["errors"][0] == {
        "code": "gateway_error",
        "detail": "The payment provider could not be reached. Try again in a moment.",
        "attr": None,
    }
    assert PaymentMethod.objects.count() == 0


@pytest.mark.django_db
def test_gateway_down_while_reading_a_token_is_502(customer, monkeypatch):
    def down(self, *, token, customer):
        raise GatewayError("connection refused")

    monkeypatch.setattr(TestGateway, "attach", down)
    client = client_for(customer)
    client.raise_request_exception = False
    response = client.post(URL, {"token": "tok_whatever"}, format="json")
    assert response.status_code == 502
    assert PaymentMethod.objects.count() == 0


@pytest.mark.django_db
def test_services_refuse_another_users_method(customer, make_user, make_method):
    method = make_method(customer)
    stranger = make_user()
    with pytest.raises(PaymentMethodNotFound):
        services.payment_method_set_default(user=stranger, payment_method_id=method.pk)
    with pytest.raises(PaymentMethodNotFound):
        services.payment_method_delete(user=stranger, payment_method_id=method.pk)
    assert PaymentMethod.objects.filter(pk=method.pk, is_default=True).exists()


@pytest.mark.django_db
def test_card_or_token_exactly(customer):
    card = CardDetails(number=SUCCESS, exp_month=1, exp_year=2040, cvc="123")
    with pytest.raises(ValueError, match="exactly one"):
        services.payment_method_create(user=customer, card=card, token="tok")
    with pytest.raises(ValueError, match="exactly one"):
        services.payment_method_create(user=customer)


@pytest.mark.django_db
def test_the_synchronous_flow_publishes_nothing(
    paid_charge, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.payment_refund_begin(
            order_id=paid_charge.order_id, amount_cents=10, user=None
        )
        result = services.payment_refund_execute(payment_id=refund.pk)
        services.payment_settle(payment_id=refund.pk, result=result)
    assert published == []
    # Asking the gateway about a settled refund answers from our records.
    assert services.payment_refund_execute(payment_id=refund.pk) == GatewayResult(
        True, f"re_test_{refund.pk}", None
    )
    assert Payment.objects.get(pk=refund.pk).status == "succeeded"
