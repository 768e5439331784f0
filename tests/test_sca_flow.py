"""Strong customer authentication end to end over HTTP, with the built-in test gateway (issue 16;
API.md, the pay row and the test cards): a customer saves the `4000002500003155` card as a
browser does (a setup intent, confirmed client-side, then the confirmed method's token posted),
checks out and pays; pay answers 202 `requires_action` with the client secret and the order
stays pending, and is not expired by the expiry task while the charge waits; the gateway's
signed `payment.succeeded` webhook (the test gateway's documented confirm step) pays it. Real
commits (a transactional test): every consequence travels through the outbox as in
production."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from conftest import client_for
from inventory.services import category_create, product_create
from orders.models import Order
from orders.tasks import expire_unpaid_orders
from payments.gateways.base import CardDetails
from payments.gateways.test import TestGateway, confirm_webhook_body, sign

pytestmark = pytest.mark.django_db(transaction=True)

SCA_CARD = CardDetails(number="4000002500003155", exp_month=12, exp_year=2040, cvc="123")
ADDRESS = {
    "name": "Ann Smith",
    "line1": "1 Main Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
WEBHOOK_SECRET = "whsec_sca_flow"


def ok(response, status):
    assert response.status_code == status, response.content
    return response.json() if response.content else None


def test_a_card_that_needs_authentication_is_paid_once_the_gateway_confirms(
    api_client, settings, customer
):
    settings.PAYMENT_WEBHOOK_SECRET = WEBHOOK_SECRET
    product = product_create(
        sku="HP-SCA",
        name="Studio Headphones",
        category=category_create(name="Audio"),
        price_cents=4999,
        on_hand=5,
    )
    shopper = client_for(customer)

    # Saving the card: a setup intent for the browser, which confirms it with the gateway's
    # script (the card number goes to the gateway only) and posts the confirmed method's token.
    intent = ok(shopper.post("/api/v1/payment-methods/setup-intent/"), 201)
    assert intent["gateway"] == "test"
    assert intent["client_secret"].startswith("seti_test_")
    confirmed = TestGateway(webhook_secret=WEBHOOK_SECRET).tokenize(SCA_CARD).token
    method = ok(shopper.post("/api/v1/payment-methods/", {"token": confirmed}), 201)
    assert (method["brand"], method["last4"]) == ("visa", "3155")
    ok(shopper.post("/api/v1/cart/items/", {"product": product.pk, "quantity": 2}), 201)
    order = ok(shopper.post("/api/v1/orders/", {"shipping_address": ADDRESS}), 201)
    pay_url = f"/api/v1/orders/{order['id']}/pay/"

    action = ok(shopper.post(pay_url, {"payment_method": method["id"]}), 202)

    assert set(action) == {"status", "client_secret", "payment"}
    assert action["status"] == "requires_action"
    assert action["client_secret"].startswith("pi_test_")
    detail = ok(shopper.get(f"/api/v1/orders/{order['id']}/"), 200)
    assert detail["status"] == "pending"
    assert detail["payment_confirming"] is True
    (charge,) = detail["payments"]
    assert (charge["id"], charge["status"]) == (action["payment"], "pending")
    # Asked again while it waits: the same answer, no second charge.
    assert ok(shopper.post(pay_url, {"payment_method": method["id"]}), 202) == action

    # The customer takes their time: the order is past its payment deadline, yet the expiry
    # task leaves it alone while its charge waits for authentication.
    Order.objects.filter(pk=order["id"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_unpaid_orders() == 0
    assert ok(shopper.get(f"/api/v1/orders/{order['id']}/"), 200)["status"] == "pending"

    # The customer passed 3-D Secure: the gateway says so with its signed webhook.
    reference = action["client_secret"].removesuffix("_secret_test")
    body = confirm_webhook_body(action["payment"], reference)
    received = api_client.post(
        "/api/v1/payments/webhooks/test/",
        data=body,
        content_type="application/json",
        HTTP_X_SIGNATURE=sign(
            body, timestamp=int(timezone.now().timestamp()), secret=WEBHOOK_SECRET
        ),
    )
    assert ok(received, 200)["duplicate"] is False

    detail = ok(shopper.get(f"/api/v1/orders/{order['id']}/"), 200)
    assert detail["status"] == "paid"
    assert detail["payment_confirming"] is False
    assert [(p["kind"], p["status"], p["amount_cents"]) for p in detail["payments"]] == [
        ("charge", "succeeded", 9998)
    ]
    assert [(e["from_status"], e["to_status"]) for e in detail["events"]][-1] == ("pending", "paid")
    stock = product.stock
    stock.refresh_from_db()
    assert (stock.on_hand, stock.reserved) == (3, 0)
    out = io.StringIO()
    call_command("audit_payments", stdout=out)  # exits 1 on any mismatch
    assert "agree" in out.getvalue()
