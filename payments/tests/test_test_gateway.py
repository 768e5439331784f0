"""The built-in test gateway: the same interface and outcomes as Stripe, deterministic, offline."""

import json
import time
import uuid

import pytest

from payments.gateways.base import CardDetails, GatewayError, InvalidSignature, InvalidToken
from payments.gateways.test import (
    EVENT_TYPES,
    TestGateway,
    confirm_webhook_body,
    sign,
)

SECRET = "whsec_test_gateway"
KEY = "5f0c7a51-0000-4000-8000-000000000001"
SUCCESS = "4242424242424242"
SCA = "4000002500003155"
SLOW = "4000000000000077"


@pytest.fixture
def gateway():
    return TestGateway(webhook_secret=SECRET)


def token_of(gateway, number):
    card = CardDetails(number=number, exp_month=12, exp_year=2040, cvc="123")
    return gateway.tokenize(card, customer="cus_test_1").token


def charge(gateway, number, **overrides):
    request = {
        "token": token_of(gateway, number),
        "amount_cents": 2500,
        "currency": "USD",
        "idempotency_key": KEY,
        "timeout": 10,
        "customer_present": True,
        "description": "Order SO-00042",
        "metadata": {"payment_id": KEY, "order_id": "42", "order_number": "SO-00042"},
        "receipt_email": "",
        **overrides,
    }
    return gateway.charge(**request)


def lookup(gateway, number):
    return gateway.lookup_charge(
        idempotency_key=KEY, gateway_reference="", token=token_of(gateway, number), timeout=10
    )


# --- customers and cards ----------------------------------------------------------------------
def test_a_customer_per_user(gateway):
    assert gateway.customer_create(email="ada@example.com", user_id="42") == "cus_test_42"


def test_setup_intents_are_new_each_time(gateway):
    first = gateway.setup_intent_create(customer="cus_test_42")
    second = gateway.setup_intent_create(customer="cus_test_42")
    assert first.id.startswith("seti_test_")
    assert first.client_secret.startswith(f"{first.id}_secret_")
    assert first.id != second.id


def test_attach_describes_a_client_side_token(gateway):
    token = token_of(gateway, SUCCESS)

    card = gateway.attach(token=token, customer="cus_test_42")

    assert (card.token, card.brand, card.last4, card.exp_month, card.exp_year) == (
        token,
        "visa",
        "4242",
        12,
        2040,
    )
    with pytest.raises(InvalidToken):
        gateway.attach(token="pm_1SNf3dJvEtkwdCNY", customer="cus_test_42")


def test_detach_is_quiet(gateway):
    assert gateway.detach(token=token_of(gateway, SUCCESS)) is None


# --- charges ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("number", "succeeded", "code"),
    [
        (SUCCESS, True, None),
        ("4000000000000002", False, "card_declined"),
        ("4000000000009995", False, "insufficient_funds"),
        ("4000000000000119", False, "processing_error"),
    ],
)
def test_charges_answer_by_card(gateway, number, succeeded, code):
    result = charge(gateway, number)
    assert (result.succeeded, result.failure_code, result.requires_action) == (
        succeeded,
        code,
        False,
    )
    assert result.gateway_reference == f"ch_test_{KEY}"
    assert (result.amount_cents, result.currency) == (2500, "USD")


def test_the_3d_secure_card_requires_action_when_the_customer_is_there(gateway):
    result = charge(gateway, SCA)

    assert (result.succeeded, result.requires_action, result.failure_code) == (False, True, None)
    assert result.gateway_reference == f"pi_test_{KEY}"
    assert result.client_secret == f"pi_test_{KEY}_secret_test"


def test_the_3d_secure_card_fails_without_the_customer(gateway):
    result = charge(gateway, SCA, customer_present=False)

    assert (result.succeeded, result.requires_action, result.failure_code) == (
        False,
        False,
        "authentication_required",
    )
    assert result.client_secret == ""


def test_an_unknown_token_is_not_a_decision(gateway):
    with pytest.raises(GatewayError):
        charge(gateway, SUCCESS, token="tok_test.nope")


def test_a_charge_waiting_for_authentication_can_be_canceled(gateway):
    waiting = charge(gateway, SCA)

    canceled = gateway.cancel_charge(
        gateway_reference=waiting.gateway_reference, idempotency_key=KEY, timeout=10
    )

    assert (canceled.succeeded, canceled.requires_action, canceled.failure_code) == (
        False,
        False,
        "canceled",
    )
    assert canceled.gateway_reference == waiting.gateway_reference


@pytest.mark.parametrize(
    "reference", [f"ch_test_{KEY}", "", f"pi_test_{uuid.UUID(int=7)}"], ids=str
)
def test_canceling_what_does_not_wait_for_the_customer_is_not_a_decision(gateway, reference):
    # A decided charge (`ch_test_…`), no reference, another payment's intent: never "canceled".
    with pytest.raises(GatewayError):
        gateway.cancel_charge(gateway_reference=reference, idempotency_key=KEY, timeout=10)


# --- lookups ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("number", "succeeded", "requires_action", "code"),
    [
        (SUCCESS, True, False, None),
        ("4000000000009995", False, False, "insufficient_funds"),
        (SCA, False, True, None),  # the webhook settles it
    ],
)
def test_lookup_charge_computes_from_the_token(gateway, number, succeeded, requires_action, code):
    result = lookup(gateway, number)
    assert (result.succeeded, result.requires_action, result.failure_code) == (
        succeeded,
        requires_action,
        code,
    )


def test_the_slow_cards_lookup_has_finished_by_now(gateway):
    started = time.monotonic()
    assert lookup(gateway, SLOW).succeeded
    assert time.monotonic() - started < 1


def test_lookup_of_an_unknown_token_is_a_gateway_error(gateway):
    with pytest.raises(GatewayError):
        gateway.lookup_charge(idempotency_key=KEY, gateway_reference="", token="x", timeout=1)


@pytest.mark.parametrize("charge_reference", [f"ch_test_{KEY}", f"pi_test_{KEY}"])
def test_refunds_and_their_lookup(gateway, charge_reference):
    refunded = gateway.refund(
        gateway_reference=charge_reference,
        amount_cents=700,
        currency="USD",
        idempotency_key="r1",
        timeout=10,
        reason="requested_by_customer",
        metadata={},
    )
    looked_up = gateway.lookup_refund(
        idempotency_key="r1", gateway_reference="", charge_reference=charge_reference, timeout=10
    )
    assert refunded.succeeded
    assert looked_up.succeeded
    assert refunded.gateway_reference == looked_up.gateway_reference == "re_test_r1"


def test_refunds_of_unknown_charges_are_gateway_errors(gateway):
    with pytest.raises(GatewayError):
        gateway.lookup_refund(
            idempotency_key="r1", gateway_reference="", charge_reference="pi_3SNf", timeout=1
        )


# --- webhooks ---------------------------------------------------------------------------------
def verify(gateway, body: bytes, *, secret=SECRET, timestamp=None):
    header = sign(body, timestamp=timestamp or int(time.time()), secret=secret)
    return gateway.verify_webhook(headers={"X-Signature": header}, raw_body=body)


def test_confirm_completes_the_3d_secure_charge(gateway):
    reference = charge(gateway, SCA).gateway_reference
    body = confirm_webhook_body(uuid.UUID(KEY), reference)

    event = verify(gateway, body)

    assert (event.type, event.payment_id, event.gateway_reference, event.payment_intent) == (
        "payment.succeeded",
        uuid.UUID(KEY),
        f"pi_test_{KEY}",
        f"pi_test_{KEY}",
    )
    # Sending it again is the same event: a replay, applied once.
    assert verify(gateway, confirm_webhook_body(KEY, reference)).event_id == event.event_id


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_parses_with_its_fields(gateway, event_type):
    body = {
        "id": "evt_1",
        "type": event_type,
        "data": {
            "payment_id": KEY,
            "gateway_reference": "re_test_1",
            "failure_code": "lost",
            "payment_intent": f"pi_test_{KEY}",
            "amount_cents": 700,
            "currency": "usd",
            "customer": "cus_test_42",
        },
    }

    event = verify(gateway, json.dumps(body).encode())

    assert (event.type, event.raw_type, event.payment_id) == (
        event_type,
        event_type,
        uuid.UUID(KEY),
    )
    assert (event.gateway_reference, event.failure_code, event.payment_intent) == (
        "re_test_1",
        "lost",
        f"pi_test_{KEY}",
    )
    assert (event.amount_cents, event.currency, event.customer) == (700, "USD", "cus_test_42")


def test_the_event_types_mirror_stripes():
    assert set(EVENT_TYPES) == {
        "payment.succeeded",
        "payment.failed",
        "payment.requires_action",
        "payment.refunded",
        "refund.failed",
        "refund.external",
        "dispute.created",
        "dispute.closed",
        "setup.succeeded",
    }


@pytest.mark.parametrize(
    ("data", "payment_id"),
    [
        ({"payment_id": "not-a-uuid"}, None),
        ({"payment_id": 12}, None),
        ({}, None),
        ({"payment_id": KEY, "amount_cents": "700", "currency": 3}, uuid.UUID(KEY)),
    ],
)
def test_malformed_data_parses_without_the_bad_fields(gateway, data, payment_id):
    body = json.dumps({"id": "evt_1", "type": "payment.succeeded", "data": data}).encode()
    event = verify(gateway, body)
    assert (event.type, event.payment_id, event.amount_cents, event.currency) == (
        "payment.succeeded",
        payment_id,
        None,
        None,
    )


def test_unknown_types_are_ignored(gateway):
    body = json.dumps({"id": "evt_1", "type": "charge.captured", "data": {}}).encode()
    event = verify(gateway, body)
    assert (event.type, event.raw_type) == ("ignored", "charge.captured")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"type": "payment.succeeded"}',
        b'{"id": "e", "type": "x", "data": [1]}',
        b"[]",
    ],
    ids=["not-json", "no-id", "data-not-an-object", "a-list"],
)
def test_signed_bodies_that_are_not_events(gateway, body):
    with pytest.raises(InvalidSignature):
        verify(gateway, body)


@pytest.mark.parametrize(
    "options",
    [{"secret": "other"}, {"timestamp": int(time.time()) - 301}],
    ids=["wrong-secret", "stale"],
)
def test_bad_signatures(gateway, options):
    with pytest.raises(InvalidSignature):
        verify(gateway, confirm_webhook_body(KEY, f"pi_test_{KEY}"), **options)
