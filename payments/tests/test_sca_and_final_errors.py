"""Charges that need the customer to authenticate (3-D Secure), final gateway errors, what a
charge tells the gateway, and cards saved under another gateway."""

import time
import uuid

import pytest
from django.core.checks import run_checks
from django.db import IntegrityError, transaction

from payments import checks, services
from payments.exceptions import PaymentMethodUnusable
from payments.gateways.base import GatewayResult
from payments.gateways.test import TestGateway, confirm_webhook_body, sign
from payments.models import Payment, PaymentMethod
from payments.selectors import payment_method_list

from .conftest import SCA_CARD, WEBHOOK_URL

pytestmark = pytest.mark.django_db


def begin(user, method, **extra):
    return services.payment_charge_begin(
        user=user,
        payment_method_id=method.pk,
        order_id=uuid.uuid4(),
        amount_cents=4_200,
        currency="USD",
        **extra,
    )


def pay(user, method, **extra):
    payment = begin(user, method, **extra)
    result = services.payment_charge_execute(payment_id=payment.pk)
    return services.payment_settle(payment_id=payment.pk, result=result)


def test_a_card_that_needs_authentication_keeps_the_charge_pending_with_its_secret(
    customer, make_method
):
    payment = pay(customer, make_method(customer, SCA_CARD), order_number="SO-00042")

    assert payment.status == "pending"
    assert payment.gateway_reference == f"pi_test_{payment.pk}"
    assert payment.client_secret == f"pi_test_{payment.pk}_secret_test"
    assert payment.settled_at is None
    assert services.payment_captured_cents(order_id=payment.order_id) == 0
    # Asked again (a repeated pay), the charge is looked up, not made again: still waiting.
    again = services.payment_charge_execute(payment_id=payment.pk)
    assert (again.requires_action, again.client_secret) == (True, payment.client_secret)


def test_the_confirm_webhook_settles_it_clears_the_secret_and_publishes(
    customer, make_method, api_client, settings, published, django_capture_on_commit_callbacks
):
    settings.PAYMENT_WEBHOOK_SECRET = "whsec_test_secret"
    payment = pay(customer, make_method(customer, SCA_CARD))
    body = confirm_webhook_body(payment.pk, payment.gateway_reference)
    header = sign(body, timestamp=int(time.time()), secret=settings.PAYMENT_WEBHOOK_SECRET)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            WEBHOOK_URL, data=body, content_type="application/json", HTTP_X_SIGNATURE=header
        )

    assert response.status_code == 200, response.content
    payment.refresh_from_db()
    assert (payment.status, payment.client_secret) == ("succeeded", "")
    assert services.payment_captured_cents(order_id=payment.order_id) == 4_200
    assert published == [("payment.succeeded", payment.pk, payment.order_id)]


def test_requires_action_webhook_keeps_the_charge_pending(customer, make_method, webhook):
    payment = begin(customer, make_method(customer))

    response = webhook(
        "payment.requires_action",
        payment_id=payment.pk,
        gateway_reference="pi_3DS",
        payment_intent="pi_3DS",
    )

    assert response.status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == ("pending", "pi_3DS")


def test_a_merchant_initiated_charge_cannot_authenticate_and_fails(customer, make_method):
    payment = pay(customer, make_method(customer, SCA_CARD), customer_present=False)

    assert (payment.status, payment.failure_code, payment.client_secret) == (
        "failed",
        "authentication_required",
        "",
    )


def test_the_database_keeps_client_secrets_only_on_pending_payments(customer, make_method):
    payment = pay(customer, make_method(customer))
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(client_secret="pi_x_secret_y")


@pytest.mark.parametrize(
    "code",
    [
        "amount_too_small",
        "resource_missing",
        "gateway_authentication_failed",
        "payment_method_unexpected_state",
    ],
)
def test_final_gateway_errors_settle_the_charge_failed_with_their_code(
    customer, make_method, monkeypatch, published, django_capture_on_commit_callbacks, code
):
    """Stripe's 400/401/403/404 come back as a failed result (never an exception): the charge
    is failed for good, so another attempt may begin, and nothing stays pending."""

    def final(self, **request):
        return GatewayResult(succeeded=False, gateway_reference="", failure_code=code)

    monkeypatch.setattr(TestGateway, "charge", final)
    method = make_method(customer)
    payment = pay(customer, method)

    assert (payment.status, payment.failure_code) == ("failed", code)
    assert payment.settled_at is not None
    retry = services.payment_charge_begin(
        user=customer,
        payment_method_id=method.pk,
        order_id=payment.order_id,
        amount_cents=4_200,
        currency="USD",
    )
    assert retry.status == "pending"


def test_a_charge_tells_the_gateway_the_order_the_customer_and_the_receipt_email(
    customer, make_method, gateway_calls, settings
):
    settings.STRIPE_RECEIPT_EMAILS = True
    sent = gateway_calls("charge")
    method = make_method(customer)
    payment = begin(customer, method, order_number="SO-00042")

    services.payment_charge_execute(payment_id=payment.pk)

    (request,) = sent
    assert request["description"] == "Order SO-00042"
    assert request["customer_present"] is True
    assert request["metadata"] == {
        "payment_id": str(payment.pk),
        "order_id": str(payment.order_id),
        "order_number": "SO-00042",
    }
    assert request["receipt_email"] == customer.email
    assert request["token"] == method.gateway_token == payment.method_token


def test_an_explicit_description_and_a_merchant_initiated_charge(customer, make_method):
    payment = begin(
        customer,
        make_method(customer),
        description="Subscription renewal",
        order_number="SO-7",
        customer_present=False,
    )
    assert (payment.description, payment.order_number, payment.customer_present) == (
        "Subscription renewal",
        "SO-7",
        False,
    )


def test_a_card_saved_under_another_gateway_cannot_pay(customer, make_method):
    method = make_method(customer)
    PaymentMethod.objects.filter(pk=method.pk).update(gateway="stripe")

    with pytest.raises(PaymentMethodUnusable) as caught:
        begin(customer, method)

    assert (caught.value.status_code, caught.value.code) == (409, "payment_method_unusable")
    assert "add the card again" in str(caught.value.detail).lower()
    assert Payment.objects.count() == 0
    # It is still listed (the customer sees which card to replace).
    assert list(payment_method_list(user=customer)) == [method]


def test_check_deploy_warns_about_cards_of_another_gateway(customer, make_method):
    method = make_method(customer)
    assert checks.check_methods_of_other_gateways(databases=["default"]) == []
    PaymentMethod.objects.filter(pk=method.pk).update(gateway="stripe")

    messages = checks.check_methods_of_other_gateways(databases=["default"])

    assert [message.id for message in messages] == ["payments.W004"]
    assert "1 of 'stripe'" in messages[0].msg
    # Only with a database to ask, like Django's own database checks.
    assert checks.check_methods_of_other_gateways() == []
    ids = [m.id for m in run_checks(include_deployment_checks=True, databases=["default"])]
    assert "payments.W004" in ids
