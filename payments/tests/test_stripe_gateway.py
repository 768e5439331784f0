"""The Stripe gateway against recorded Stripe-shaped responses (no card network is reachable).

A stand-in for stripe's HTTP client answers each (method, path) with a recorded body and keeps
the requests, so the tests see exactly what would be sent to Stripe."""

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from payments import services
from payments.exceptions import PaymentGatewayError
from payments.gateways import get_gateway
from payments.gateways import stripe as stripe_gateway
from payments.gateways.base import (
    CardDetails,
    GatewayError,
    GatewayResult,
    InvalidSignature,
    InvalidToken,
)
from payments.gateways.stripe import StripeGateway
from payments.models import Payment

from .conftest import card_body

WEBHOOK_SECRET = "whsec_recorded"
PAYMENT_METHOD = {
    "id": "pm_1Q0PsIJvEtkwdCNYMSaVuRz6",
    "object": "payment_method",
    "type": "card",
    "card": {
        "brand": "visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2040,
        "fingerprint": "Xt5EWLLDS7FJjR1c",
        "funding": "credit",
        "country": "US",
    },
    "customer": None,
    "livemode": False,
}
CUSTOMER = {"id": "cus_QsA2mK3bVbVbVb", "object": "customer", "livemode": False}


def intent(status="succeeded", **fields):
    return {
        "id": "pi_3Q0PsJJvEtkwdCNY0Wm6b2Xk",
        "object": "payment_intent",
        "amount": 2500,
        "currency": "usd",
        "status": status,
        "last_payment_error": None,
        "metadata": {},
        **fields,
    }


def card_error(code="card_declined", decline_code="generic_decline"):
    return {
        "error": {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": "Your card was declined.",
            "payment_intent": intent("requires_payment_method", id="pi_declined"),
        }
    }


class RecordedStripe(stripe.HTTPClient):
    name = "recorded"

    def __init__(self, responses):
        super().__init__()
        self.responses = responses
        self.requests = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        path = urlsplit(url).path
        self.requests.append(
            {
                "method": method,
                "path": path,
                "headers": dict(headers or {}),
                "params": parse_qs(post_data or ""),
            }
        )
        answer = self.responses[(method, path)]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return json.dumps(body), status, {"request-id": "req_recorded"}

    def close(self):
        pass


def gateway(responses):
    http = RecordedStripe(responses)
    return StripeGateway(
        secret_key="sk_test_x", webhook_secret=WEBHOOK_SECRET, http_client=http
    ), http


CARD = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
SAVE = {
    ("post", "/v1/payment_methods"): (200, PAYMENT_METHOD),
    ("post", "/v1/customers"): (200, CUSTOMER),
}


def test_tokenize_creates_a_payment_method_and_a_customer():
    stripe_, http = gateway(SAVE)

    tokenized = stripe_.tokenize(CARD)

    assert tokenized.token == f"{CUSTOMER['id']}/{PAYMENT_METHOD['id']}"
    assert (tokenized.brand, tokenized.last4, tokenized.exp_month, tokenized.exp_year) == (
        "visa",
        "4242",
        12,
        2040,
    )
    assert tokenized.gateway_fingerprint == "Xt5EWLLDS7FJjR1c"
    create_method, create_customer = http.requests
    assert create_method["params"]["card[number]"] == ["4242424242424242"]
    assert create_method["headers"]["Authorization"] == "Bearer sk_test_x"
    assert create_customer["params"] == {"payment_method": [PAYMENT_METHOD["id"]]}


def test_describe_a_client_side_token():
    stripe_, _ = gateway(
        {
            ("get", f"/v1/payment_methods/{PAYMENT_METHOD['id']}"): (200, PAYMENT_METHOD),
            ("post", "/v1/customers"): (200, CUSTOMER),
        }
    )
    assert stripe_.describe_token(PAYMENT_METHOD["id"]).last4 == "4242"


def test_unknown_token():
    missing = {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
    stripe_, _ = gateway({("get", "/v1/payment_methods/pm_nope"): (404, missing)})
    with pytest.raises(InvalidToken):
        stripe_.describe_token("pm_nope")


def test_a_non_card_method_is_not_a_card():
    stripe_, _ = gateway(
        {("get", "/v1/payment_methods/pm_bank"): (200, {**PAYMENT_METHOD, "card": None})}
    )
    with pytest.raises(InvalidToken):
        stripe_.describe_token("pm_bank")


def charge(stripe_, key="5f0c7a51-0000-4000-8000-000000000001"):
    return stripe_.charge(
        token=f"{CUSTOMER['id']}/{PAYMENT_METHOD['id']}",
        amount_cents=2500,
        currency="USD",
        idempotency_key=key,
        timeout=3,
    )


def test_charge_succeeds_with_the_idempotency_key_and_metadata():
    stripe_, http = gateway({("post", "/v1/payment_intents"): (200, intent())})

    assert charge(stripe_) == GatewayResult(True, "pi_3Q0PsJJvEtkwdCNY0Wm6b2Xk", None)
    (sent,) = http.requests
    assert sent["headers"]["Idempotency-Key"] == "charge-5f0c7a51-0000-4000-8000-000000000001"
    assert sent["params"]["amount"] == ["2500"]
    assert sent["params"]["currency"] == ["usd"]
    assert sent["params"]["customer"] == [CUSTOMER["id"]]
    assert sent["params"]["payment_method"] == [PAYMENT_METHOD["id"]]
    assert sent["params"]["metadata[payment_id]"] == ["5f0c7a51-0000-4000-8000-000000000001"]
    assert sent["params"]["confirm"] == ["true"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (card_error(), "card_declined"),
        (card_error(decline_code="insufficient_funds"), "insufficient_funds"),
        (card_error(code="processing_error", decline_code=None), "processing_error"),
        (card_error(code="expired_card", decline_code=None), "expired_card"),
    ],
)
def test_declines_carry_the_gateway_code(error, code):
    stripe_, _ = gateway({("post", "/v1/payment_intents"): (402, error)})
    assert charge(stripe_) == GatewayResult(False, "pi_declined", code)


def test_an_intent_needing_authentication_fails():
    stripe_, _ = gateway({("post", "/v1/payment_intents"): (200, intent("requires_action"))})
    assert charge(stripe_).failure_code == "authentication_required"


def test_an_intent_that_failed_without_an_error_code():
    last_error = {"type": "card_error", "code": "card_declined", "decline_code": "do_not_honor"}
    answer = intent("requires_payment_method", last_payment_error=last_error)
    stripe_, _ = gateway({("post", "/v1/payment_intents"): (200, answer)})
    assert charge(stripe_).failure_code == "do_not_honor"


@pytest.mark.parametrize(
    "answer",
    [
        (200, intent("processing")),
        (500, {"error": {"type": "api_error", "message": "Something went wrong"}}),
        (429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}}),
        stripe.APIConnectionError("Read timed out."),
    ],
)
def test_no_decision_is_a_gateway_error(answer):
    stripe_, _ = gateway({("post", "/v1/payment_intents"): answer})
    with pytest.raises(GatewayError):
        charge(stripe_)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("succeeded", GatewayResult(True, "re_1", None)),
        ("failed", GatewayResult(False, "re_1", "expired_or_canceled_card")),
    ],
)
def test_refund(status, expected):
    answer = {
        "id": "re_1",
        "object": "refund",
        "status": status,
        "failure_reason": "expired_or_canceled_card" if status == "failed" else None,
    }
    stripe_, http = gateway({("post", "/v1/refunds"): (200, answer)})

    result = stripe_.refund(
        gateway_reference="pi_1", amount_cents=700, currency="USD", idempotency_key="k", timeout=3
    )

    assert result == expected
    (sent,) = http.requests
    assert sent["headers"]["Idempotency-Key"] == "refund-k"
    assert (sent["params"]["payment_intent"], sent["params"]["amount"]) == (["pi_1"], ["700"])


def test_a_pending_refund_is_left_to_the_webhook():
    answer = {"id": "re_1", "object": "refund", "status": "pending"}
    stripe_, _ = gateway({("post", "/v1/refunds"): (200, answer)})
    with pytest.raises(GatewayError):
        stripe_.refund(
            gateway_reference="pi_1", amount_cents=1, currency="USD", idempotency_key="k", timeout=3
        )


def stripe_signature(payload: str, timestamp=None, secret=WEBHOOK_SECRET) -> str:
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def stripe_event(event_type, obj):
    return json.dumps(
        {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}
    )


PAYMENT_ID = uuid.UUID("5f0c7a51-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("event_type", "obj", "normalized", "failure_code"),
    [
        ("payment_intent.succeeded", intent(), "payment.succeeded", None),
        (
            "payment_intent.payment_failed",
            intent(
                last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds"}
            ),
            "payment.failed",
            "insufficient_funds",
        ),
        ("refund.updated", {"id": "re_1", "status": "succeeded"}, "payment.refunded", None),
        (
            "refund.updated",
            {"id": "re_1", "status": "failed", "failure_reason": "lost_or_stolen_card"},
            "payment.failed",
            "lost_or_stolen_card",
        ),
        ("refund.created", {"id": "re_1", "status": "pending"}, "ignored", None),
        ("customer.created", CUSTOMER, "ignored", None),
    ],
)
def test_webhooks_are_verified_and_normalized(event_type, obj, normalized, failure_code):
    payload = stripe_event(event_type, {**obj, "metadata": {"payment_id": str(PAYMENT_ID)}})
    stripe_, _ = gateway({})

    event = stripe_.verify_webhook(
        headers={"Stripe-Signature": stripe_signature(payload)}, raw_body=payload.encode()
    )

    assert (event.event_id, event.type, event.payment_id, event.failure_code) == (
        "evt_1",
        normalized,
        PAYMENT_ID,
        failure_code,
    )
    assert event.raw_type == event_type


@pytest.mark.parametrize(
    "header",
    [
        lambda payload: stripe_signature(payload, secret="whsec_other"),
        lambda payload: stripe_signature(payload, timestamp=int(time.time()) - 301),
        lambda payload: stripe_signature(payload + " "),
        lambda payload: "",
    ],
    ids=["wrong-secret", "stale", "other-body", "missing"],
)
def test_bad_stripe_signatures(header):
    payload = stripe_event("payment_intent.succeeded", intent())
    stripe_, _ = gateway({})
    with pytest.raises(InvalidSignature):
        stripe_.verify_webhook(
            headers={"Stripe-Signature": header(payload)}, raw_body=payload.encode()
        )


def test_signed_but_malformed_event():
    stripe_, _ = gateway({})
    payload = json.dumps({"id": "evt_1"})
    with pytest.raises(InvalidSignature):
        stripe_.verify_webhook(
            headers={"Stripe-Signature": stripe_signature(payload)}, raw_body=payload.encode()
        )


def test_without_a_webhook_secret_nothing_is_trusted():
    payload = stripe_event("payment_intent.succeeded", intent())
    stripe_ = StripeGateway(secret_key="sk_test_x", webhook_secret="")
    with pytest.raises(InvalidSignature):
        stripe_.verify_webhook(
            headers={"Stripe-Signature": stripe_signature(payload, secret="")},
            raw_body=payload.encode(),
        )


def test_get_gateway_reads_the_settings(settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_settings"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_settings"
    chosen = get_gateway()
    assert isinstance(chosen, StripeGateway)
    assert (chosen.secret_key, chosen.webhook_secret) == ("sk_test_settings", "whsec_settings")
    assert get_gateway("test").name == "test"
    with pytest.raises(LookupError):
        get_gateway("paypal")


def test_the_default_client_uses_requests_with_the_timeout():
    client = StripeGateway(secret_key="sk_test_x", webhook_secret="w")._client(4.5)
    http = client._requestor._client
    assert isinstance(http, stripe.RequestsClient)
    assert http._timeout == 4.5


@pytest.mark.django_db
def test_save_and_pay_end_to_end_through_stripe(
    customer, customer_client, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    recorded, http = gateway(
        {
            **SAVE,
            ("post", "/v1/payment_intents"): (200, intent("processing")),
        }
    )
    monkeypatch.setattr(stripe_gateway, "from_settings", lambda: recorded)

    response = customer_client.post("/api/v1/payment-methods/", card_body(), format="json")
    assert response.status_code == 201, response.content
    payment = services.payment_charge_begin(
        user=customer,
        payment_method_id=response.json()["id"],
        order_id=uuid.uuid4(),
        amount_cents=2_500,
        currency="USD",
    )
    assert payment.gateway == "stripe"
    with pytest.raises(PaymentGatewayError):
        services.payment_charge_execute(payment_id=payment.pk)
    assert http.requests[-1]["headers"]["Idempotency-Key"] == f"charge-{payment.pk}"

    # Stripe finishes processing and tells us by webhook.
    payload = stripe_event(
        "payment_intent.succeeded", intent(metadata={"payment_id": str(payment.pk)})
    )
    with django_capture_on_commit_callbacks(execute=True):
        hook = customer_client.post(
            "/api/v1/payments/webhooks/stripe/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=stripe_signature(payload),
        )
    assert hook.status_code == 200, hook.content
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference) == (
        "succeeded",
        "pi_3Q0PsJJvEtkwdCNY0Wm6b2Xk",
    )
    assert Payment.objects.count() == 1
