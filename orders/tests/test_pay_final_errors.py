"""Final errors of the gateway at the till (issue 16, API.md's pay row): Stripe's 400/401/404
answers are final, so pay answers 402 with the code and the order stays pending to be paid
again, never a 502 and never a charge left pending for good. Codes of the shop's own setup
(`gateway_*`) are not the customer's declines: they do not count against the decline limit. A
card saved under another gateway than the configured one cannot pay (409).

The Stripe gateway runs for real, answered by recorded Stripe responses
(payments/tests/stripe_recorded.py)."""

from __future__ import annotations

import pytest

from orders.models import Order
from orders.tests.helpers import card_for, pay_url, stock_of
from payments.gateways import stripe as stripe_gateway
from payments.gateways.stripe import StripeGateway
from payments.models import Payment, PaymentMethod
from payments.tests import stripe_recorded as rec

pytestmark = pytest.mark.django_db

INTENTS = "/v1/payment_intents"
NO_SUCH_METHOD = rec.error(
    400,
    "invalid_request_error",
    f"No such PaymentMethod: '{rec.METHOD_ID}'",
    code="resource_missing",
    param="payment_method",
)


@pytest.fixture
def stripe_answers(monkeypatch, settings):
    """Stripe is the configured gateway; `stripe_answers(answer)` makes it answer every
    PaymentIntent create with that recorded response. Returns what Stripe received."""
    settings.PAYMENT_GATEWAY = "stripe"

    def install(answer):
        http = rec.RecordedStripe({("post", INTENTS): answer})
        gateway = StripeGateway(
            secret_key="sk_test_x", webhook_secret=rec.WEBHOOK_SECRET, http_client=http
        )
        monkeypatch.setattr(stripe_gateway, "from_settings", lambda: gateway)
        return http.requests

    return install


def stripe_card(user) -> PaymentMethod:
    """A card saved at Stripe (attached to the user's customer)."""
    return PaymentMethod.objects.create(
        user=user,
        gateway="stripe",
        gateway_token=f"{rec.CUSTOMER_ID}/{rec.METHOD_ID}",
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2040,
        fingerprint="fp-stripe-4242",
    )


def pay(client, order, method, address="10.0.0.8"):
    return client.post(
        pay_url(order), {"payment_method": str(method.pk)}, format="json", REMOTE_ADDR=address
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (rec.AMOUNT_TOO_SMALL, "amount_too_small"),
        (NO_SUCH_METHOD, "resource_missing"),
        (rec.BAD_API_KEY, "gateway_authentication_failed"),
        (rec.PERMISSION_DENIED, "gateway_permission_denied"),
    ],
)
def test_a_final_error_of_the_gateway_is_a_402_with_its_code(
    customer, customer_client, order, stripe_answers, answer, code
):
    received = stripe_answers(answer)

    response = pay(customer_client, order, stripe_card(customer))

    assert response.status_code == 402, response.content
    (error,) = response.json()["errors"]
    assert error["code"] == code
    assert error["detail"]  # a sentence for the customer, never Stripe's own message
    assert len(received) == 1  # final: Stripe is not asked again
    charge = Payment.objects.get()
    assert (charge.status, charge.failure_code) == (Payment.Status.FAILED, code)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
    assert stock_of(order) == (10, 2)  # still reserved: the customer may pay again


def test_the_shops_own_gateway_errors_do_not_count_as_declines(
    customer, customer_client, place_order, make_product, stripe_answers, throttle_rates
):
    throttle_rates(payment_decline="1/hour")
    stripe_answers(rec.BAD_API_KEY)
    method = stripe_card(customer)
    product = make_product(price_cents=1000, on_hand=10)
    orders = [place_order(customer, [(product, 1)]) for _ in range(3)]

    for order in orders[:2]:
        refused = pay(customer_client, order, method)
        assert refused.json()["errors"][0]["code"] == "gateway_authentication_failed"

    # A decline of the card itself counts: over the limit it is a 429 before Stripe is asked.
    stripe_answers(rec.CARD_DECLINED)
    assert pay(customer_client, orders[2], method).status_code == 402
    assert pay(customer_client, orders[2], method).status_code == 429


def test_a_card_saved_under_another_gateway_cannot_pay(
    customer, customer_client, order, settings, stripe_answers
):
    received = stripe_answers(rec.CARD_DECLINED)
    settings.PAYMENT_GATEWAY = "test"  # the card was saved while the test gateway was in use
    saved_in_test_mode = card_for(customer)
    settings.PAYMENT_GATEWAY = "stripe"

    response = pay(customer_client, order, saved_in_test_mode)

    assert response.status_code == 409, response.content
    (error,) = response.json()["errors"]
    assert (error["code"], error["attr"]) == ("payment_method_unusable", "payment_method")
    assert "Add the card again" in error["detail"]
    assert received == []
    assert not Payment.objects.exists()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING
