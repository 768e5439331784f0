"""The Stripe gateway against recorded Stripe responses (payments/tests/stripe_recorded.py).

A stand-in for stripe's HTTP client answers each (method, path) with what Stripe answers for the
pinned API version and keeps the requests, so the tests see exactly what Stripe would receive.
No network is reachable.

Longer than 500 lines on purpose: one case per Stripe answer the design names (every error class,
every PaymentIntent and Refund state, every webhook type), mostly parametrize tables, read best
in one place beside the gateway's mapping."""

import json
import time
import uuid

import pytest
import stripe
from django.core.exceptions import ImproperlyConfigured

from payments.gateways import get_gateway
from payments.gateways.base import (
    CardDetails,
    CardRefused,
    GatewayError,
    GatewayNotFound,
    GatewayResult,
    InvalidSignature,
    InvalidToken,
)
from payments.gateways.stripe import StripeGateway

from . import stripe_recorded as rec

TOKEN = f"{rec.CUSTOMER_ID}/{rec.METHOD_ID}"
KEY = rec.PAYMENT_ID
CARD = CardDetails(number="4242424242424242", exp_month=12, exp_year=2040, cvc="123")
INTENTS = "/v1/payment_intents"
INTENT = f"/v1/payment_intents/{rec.INTENT_ID}"
SEARCH = "/v1/payment_intents/search"
METHOD = f"/v1/payment_methods/{rec.METHOD_ID}"
ATTACH = f"{METHOD}/attach"


def gateway(responses, **options):
    http = rec.RecordedStripe(responses)
    options.setdefault("secret_key", "sk_test_x")
    options.setdefault("webhook_secret", rec.WEBHOOK_SECRET)
    return StripeGateway(http_client=http, **options), http


def charge(stripe_, **overrides):
    request = {
        "token": TOKEN,
        "amount_cents": 2500,
        "currency": "USD",
        "idempotency_key": KEY,
        "timeout": 3,
        "customer_present": True,
        "description": "Order SO-00042",
        "metadata": {"payment_id": KEY, "order_id": "42", "order_number": "SO-00042"},
        "receipt_email": "",
        **overrides,
    }
    return stripe_.charge(**request)


def refund(stripe_, **overrides):
    request = {
        "gateway_reference": rec.INTENT_ID,
        "amount_cents": 700,
        "currency": "USD",
        "idempotency_key": rec.REFUND_PAYMENT_ID,
        "timeout": 3,
        "reason": "requested_by_customer",
        "metadata": {"order_id": "42"},
        **overrides,
    }
    return stripe_.refund(**request)


# --- customers and cards ----------------------------------------------------------------------
def test_one_customer_per_user_with_email_and_user_id():
    stripe_, http = gateway({("post", "/v1/customers"): (200, rec.customer())})

    assert stripe_.customer_create(email="ada@example.com", user_id=rec.USER_ID) == rec.CUSTOMER_ID

    (sent,) = http.requests
    assert sent["params"]["email"] == ["ada@example.com"]
    assert sent["params"]["metadata[user_id]"] == [rec.USER_ID]
    assert sent["headers"]["Idempotency-Key"] == f"customer-{rec.USER_ID}"
    assert sent["headers"]["Authorization"] == "Bearer sk_test_x"


def test_setup_intent_for_off_session_use():
    stripe_, http = gateway({("post", "/v1/setup_intents"): (200, rec.setup_intent())})

    created = stripe_.setup_intent_create(customer=rec.CUSTOMER_ID)

    assert (created.id, created.client_secret) == (
        rec.SETUP_INTENT_ID,
        rec.setup_intent()["client_secret"],
    )
    (sent,) = http.requests
    assert sent["params"]["customer"] == [rec.CUSTOMER_ID]
    assert sent["params"]["usage"] == ["off_session"]
    assert sent["params"]["allowed_payment_method_types[0]"] == ["card"]


def test_tokenize_creates_the_method_and_attaches_it_to_the_users_customer():
    stripe_, http = gateway(
        {
            ("post", "/v1/payment_methods"): (200, rec.payment_method()),
            ("post", ATTACH): (200, rec.payment_method(rec.CUSTOMER_ID)),
        }
    )

    tokenized = stripe_.tokenize(CARD, customer=rec.CUSTOMER_ID)

    assert tokenized.token == TOKEN
    assert (tokenized.brand, tokenized.last4, tokenized.exp_month, tokenized.exp_year) == (
        "visa",
        "4242",
        12,
        2040,
    )
    assert tokenized.gateway_fingerprint == "Xt5EWLLDS7FJjR1c"
    create, attach = http.requests
    assert create["params"]["card[number]"] == ["4242424242424242"]
    assert (attach["path"], attach["params"]) == (ATTACH, {"customer": [rec.CUSTOMER_ID]})


@pytest.mark.parametrize(
    ("where", "answer", "code"),
    [
        ("attach", rec.CARD_DECLINED, "card_declined"),
        ("attach", rec.INSUFFICIENT_FUNDS, "insufficient_funds"),
        ("attach", rec.STOLEN_CARD, "card_declined"),
        (
            "create",
            rec.card_error("incorrect_number", None, param="number"),
            "incorrect_number",
        ),
    ],
)
def test_a_card_stripe_declines_is_refused_with_its_code(where, answer, code):
    responses = {
        ("post", "/v1/payment_methods"): answer
        if where == "create"
        else (200, rec.payment_method()),
        ("post", ATTACH): answer,
    }
    stripe_, _ = gateway(responses)
    with pytest.raises(CardRefused) as refused:
        stripe_.tokenize(CARD, customer=rec.CUSTOMER_ID)
    assert refused.value.code == code


def test_attach_a_client_confirmed_method():
    stripe_, http = gateway(
        {
            ("get", METHOD): (200, rec.payment_method()),
            ("post", ATTACH): (200, rec.payment_method(rec.CUSTOMER_ID)),
        }
    )

    assert stripe_.attach(token=rec.METHOD_ID, customer=rec.CUSTOMER_ID).token == TOKEN
    assert [request["path"] for request in http.requests] == [METHOD, ATTACH]


def test_attach_again_to_the_same_customer_is_a_no_op():
    # A SetupIntent confirmed with Stripe.js leaves the method attached already.
    stripe_, http = gateway({("get", METHOD): (200, rec.payment_method(rec.CUSTOMER_ID))})

    assert stripe_.attach(token=rec.METHOD_ID, customer=rec.CUSTOMER_ID).token == TOKEN
    assert [request["method"] for request in http.requests] == ["get"]


@pytest.mark.parametrize(
    ("token", "responses"),
    [
        (
            "pm_nope",
            {
                ("get", "/v1/payment_methods/pm_nope"): rec.resource_missing(
                    "PaymentMethod", "pm_nope"
                )
            },
        ),
        (
            rec.METHOD_ID,
            {("get", METHOD): (200, {**rec.payment_method(), "card": None, "type": "sepa_debit"})},
        ),
        (rec.METHOD_ID, {("get", METHOD): (200, rec.payment_method("cus_SomeoneElse0000"))}),
        (
            rec.METHOD_ID,
            {
                ("get", METHOD): (200, rec.payment_method()),
                ("post", ATTACH): rec.resource_missing("PaymentMethod", rec.METHOD_ID),
            },
        ),
        (TOKEN, {}),
    ],
    ids=["unknown", "not-a-card", "another-customers", "vanished", "not-a-pm-id"],
)
def test_attach_refuses_tokens_we_cannot_save(token, responses):
    stripe_, http = gateway(responses)
    with pytest.raises(InvalidToken):
        stripe_.attach(token=token, customer=rec.CUSTOMER_ID)
    if ("post", ATTACH) not in responses:
        assert all(request["method"] == "get" for request in http.requests)


def test_attach_declined_and_unreachable():
    declined, _ = gateway(
        {("get", METHOD): (200, rec.payment_method()), ("post", ATTACH): rec.INSUFFICIENT_FUNDS}
    )
    with pytest.raises(CardRefused) as refused:
        declined.attach(token=rec.METHOD_ID, customer=rec.CUSTOMER_ID)
    assert refused.value.code == "insufficient_funds"

    down, _ = gateway({("get", METHOD): rec.API_ERROR})
    with pytest.raises(GatewayError):
        down.attach(token=rec.METHOD_ID, customer=rec.CUSTOMER_ID)


ATTACH_CALL = ("post", ATTACH)
SAVING = {
    "customer": (
        ("post", "/v1/customers"),
        lambda stripe_: stripe_.customer_create(email="ada@example.com", user_id=rec.USER_ID),
    ),
    "setup-intent": (
        ("post", "/v1/setup_intents"),
        lambda stripe_: stripe_.setup_intent_create(customer=rec.CUSTOMER_ID),
    ),
    "tokenize": (
        ("post", "/v1/payment_methods"),
        lambda stripe_: stripe_.tokenize(CARD, customer=rec.CUSTOMER_ID),
    ),
    "attach-read": (
        ("get", METHOD),
        lambda stripe_: stripe_.attach(token=rec.METHOD_ID, customer=rec.CUSTOMER_ID),
    ),
    "attach": (
        ATTACH_CALL,
        lambda stripe_: stripe_.attach(token=rec.METHOD_ID, customer=rec.CUSTOMER_ID),
    ),
}
FINAL_SAVING_ERRORS = {
    "bad-key": (rec.BAD_API_KEY, "gateway_authentication_failed"),
    "permission": (rec.PERMISSION_DENIED, "gateway_permission_denied"),
    "invalid": (rec.EMAIL_INVALID, "email_invalid"),
    "no-code": (
        rec.error(400, "invalid_request_error", "Invalid request."),
        "invalid_request",
    ),
}


def saving(step, answer):
    """A gateway whose answer to one step of saving a card is `answer` (the others succeed)."""
    call, act = SAVING[step]
    responses = {
        ("get", METHOD): (200, rec.payment_method()),
        ATTACH_CALL: (200, rec.payment_method(rec.CUSTOMER_ID)),
        call: answer,
    }
    stripe_, http = gateway(responses)
    return (lambda: act(stripe_)), http


@pytest.mark.parametrize("error", FINAL_SAVING_ERRORS.values(), ids=FINAL_SAVING_ERRORS.keys())
@pytest.mark.parametrize("step", SAVING.keys())
def test_stripes_final_errors_while_saving_a_card_refuse_it_with_their_code(step, error):
    answer, code = error
    act, http = saving(step, answer)
    with pytest.raises(CardRefused) as refused:
        act()
    assert refused.value.code == code
    assert len(http.requests) <= 2  # nothing retried


@pytest.mark.parametrize(
    ("step", "answer", "code"),
    [
        # The account may not send card numbers from its server (test mode without the option).
        ("tokenize", rec.RAW_CARD_DATA, "raw_card_data_not_allowed"),
        ("setup-intent", rec.NO_SUCH_CUSTOMER, "resource_missing"),
        # Used once without a customer, or detached: Stripe never reuses it; add it again.
        ("attach", rec.DETACHED_METHOD, "payment_method_unexpected_state"),
    ],
)
def test_stripes_refusals_while_saving_a_card_keep_their_code(step, answer, code):
    act, _ = saving(step, answer)
    with pytest.raises(CardRefused) as refused:
        act()
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("answer", "attempts"),
    [
        (rec.API_ERROR, 3),
        (rec.IDEMPOTENCY_IN_USE, 3),
        (rec.RATE_LIMITED, 1),
        (stripe.APIConnectionError("Read timed out.", should_retry=True), 3),
    ],
    ids=["api-error-500", "idempotency-409", "rate-limit-429", "timeout"],
)
@pytest.mark.parametrize("step", SAVING.keys())
def test_unknown_outcomes_while_saving_a_card_are_gateway_errors(step, answer, attempts):
    act, http = saving(step, answer)
    with pytest.raises(GatewayError):
        act()
    call = SAVING[step][0]
    # Stripe's client retries 5xx, 409 and timeouts twice; each is still unknown.
    assert sum((r["method"], r["path"]) == call for r in http.requests) == attempts


@pytest.mark.parametrize(
    "answer",
    [
        (200, rec.payment_method()),
        rec.resource_missing("PaymentMethod", rec.METHOD_ID),
        rec.NOT_ATTACHED,
    ],
    ids=["detached", "unknown", "already-detached"],
)
def test_detach_the_method_of_a_deleted_card(answer):
    stripe_, http = gateway({("post", f"{METHOD}/detach"): answer})

    assert stripe_.detach(token=TOKEN) is None

    (sent,) = http.requests
    assert sent["path"] == f"{METHOD}/detach"


def test_detach_while_stripe_is_down_is_a_gateway_error():
    stripe_, _ = gateway({("post", f"{METHOD}/detach"): rec.API_ERROR})
    with pytest.raises(GatewayError):
        stripe_.detach(token=TOKEN)


# --- charges ----------------------------------------------------------------------------------
def test_a_customer_present_charge_sends_what_a_shop_sends():
    stripe_, http = gateway(
        {("post", INTENTS): (200, rec.payment_intent())}, statement_descriptor_suffix="SO-00042"
    )

    result = charge(stripe_, receipt_email="ada@example.com")

    assert result == GatewayResult(True, rec.INTENT_ID, None, amount_cents=2500, currency="USD")
    (sent,) = http.requests
    params = sent["params"]
    assert sent["headers"]["Idempotency-Key"] == f"charge-{KEY}"
    assert params["amount"] == ["2500"]
    assert params["currency"] == ["usd"]
    assert params["customer"] == [rec.CUSTOMER_ID]
    assert params["payment_method"] == [rec.METHOD_ID]
    assert params["confirm"] == ["true"]
    assert params["off_session"] == ["false"]
    assert params["allowed_payment_method_types[0]"] == ["card"]
    assert params["description"] == ["Order SO-00042"]
    assert params["metadata[payment_id]"] == [KEY]
    assert params["metadata[order_id]"] == ["42"]
    assert params["metadata[order_number]"] == ["SO-00042"]
    assert params["statement_descriptor_suffix"] == ["SO-00042"]
    assert params["receipt_email"] == ["ada@example.com"]


def test_a_merchant_initiated_charge_is_off_session_and_sends_no_optional_fields():
    stripe_, http = gateway({("post", INTENTS): (200, rec.payment_intent())})

    charge(
        stripe_, customer_present=False, description="", metadata={"payment_id": "something-else"}
    )

    params = http.requests[0]["params"]
    assert params["off_session"] == ["true"]
    assert "description" not in params
    assert params["metadata[payment_id]"] == [KEY]  # always the idempotency key
    assert "statement_descriptor_suffix" not in params
    assert "receipt_email" not in params


@pytest.mark.parametrize(
    "next_action", [rec.USE_STRIPE_SDK, rec.REDIRECT_TO_URL], ids=["stripe-sdk", "redirect"]
)
def test_a_card_needing_3d_secure_requires_action_with_the_client_secret(next_action):
    stripe_, _ = gateway({("post", INTENTS): (200, rec.requires_action(next_action))})

    result = charge(stripe_)

    assert (result.succeeded, result.requires_action, result.failure_code) == (False, True, None)
    assert result.client_secret == rec.payment_intent()["client_secret"]
    assert result.gateway_reference == rec.INTENT_ID


def test_off_session_authentication_required_is_final():
    status, body = rec.AUTHENTICATION_REQUIRED
    assert (status, body["error"]["type"]) == (402, "card_error")
    stripe_, http = gateway({("post", INTENTS): rec.AUTHENTICATION_REQUIRED})

    result = charge(stripe_, customer_present=False)

    assert result == GatewayResult(False, rec.INTENT_ID, "authentication_required")
    assert len(http.requests) == 1


def test_an_off_session_charge_answered_requires_action_fails():
    # Stripe answers a 402 (above); were it to answer requires_action, nobody could act on it.
    stripe_, _ = gateway({("post", INTENTS): (200, rec.requires_action())})
    result = charge(stripe_, customer_present=False)
    assert (result.requires_action, result.client_secret, result.failure_code) == (
        False,
        "",
        "authentication_required",
    )


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (rec.CARD_DECLINED, "card_declined"),
        (rec.INSUFFICIENT_FUNDS, "insufficient_funds"),
        (rec.STOLEN_CARD, "card_declined"),  # never told to the customer
        (rec.EXPIRED_CARD, "expired_card"),
        (rec.PROCESSING_ERROR, "processing_error"),
        (rec.AMOUNT_TOO_SMALL, "amount_too_small"),
        (rec.DETACHED_METHOD, "payment_method_unexpected_state"),
        (
            rec.resource_missing("PaymentMethod", rec.METHOD_ID, "payment_method"),
            "resource_missing",
        ),
        (rec.BAD_API_KEY, "gateway_authentication_failed"),
        (rec.PERMISSION_DENIED, "gateway_permission_denied"),
    ],
)
def test_final_errors_fail_the_charge_with_a_clear_code(answer, code):
    stripe_, http = gateway({("post", INTENTS): answer})

    result = charge(stripe_)

    assert (result.succeeded, result.requires_action, result.failure_code) == (False, False, code)
    assert len(http.requests) == 1  # nothing to retry


def test_a_decline_keeps_the_failed_payment_intent_as_reference():
    stripe_, _ = gateway({("post", INTENTS): rec.INSUFFICIENT_FUNDS})
    assert charge(stripe_).gateway_reference == rec.INTENT_ID


@pytest.mark.parametrize(
    ("answer", "attempts"),
    [
        (rec.IDEMPOTENCY_MISMATCH, 1),
        (rec.IDEMPOTENCY_IN_USE, 3),
        (rec.RATE_LIMITED, 1),
        (rec.API_ERROR, 3),
        (stripe.APIConnectionError("Read timed out.", should_retry=True), 3),
        ((200, rec.payment_intent("processing")), 1),
        ((200, rec.payment_intent("requires_capture")), 1),
    ],
    ids=[
        "idempotency-400",
        "idempotency-409",
        "rate-limit-429",
        "api-error-500",
        "timeout",
        "processing",
        "requires-capture",
    ],
)
def test_unknown_outcomes_are_gateway_errors(answer, attempts):
    stripe_, http = gateway({("post", INTENTS): answer})
    with pytest.raises(GatewayError):
        charge(stripe_)
    assert len(http.requests) == attempts  # Stripe's client retries 409, 5xx, timeouts twice
    assert {request["headers"]["Idempotency-Key"] for request in http.requests} == {f"charge-{KEY}"}


def test_a_retry_after_a_server_error_succeeds_under_the_same_key():
    stripe_, http = gateway({("post", INTENTS): [rec.API_ERROR, (200, rec.payment_intent())]})

    assert charge(stripe_).succeeded

    assert [request["headers"]["Idempotency-Key"] for request in http.requests] == [
        f"charge-{KEY}",
        f"charge-{KEY}",
    ]


@pytest.mark.parametrize(
    ("intent", "code"),
    [
        (rec.payment_intent("requires_payment_method"), "insufficient_funds"),
        (rec.payment_intent("canceled"), "canceled"),
    ],
)
def test_an_intent_answered_failed(intent, code):
    stripe_, _ = gateway({("post", INTENTS): (200, intent)})
    assert charge(stripe_).failure_code == code


# --- refunds ----------------------------------------------------------------------------------
def test_a_refund_sends_the_reason_metadata_and_key():
    stripe_, http = gateway({("post", "/v1/refunds"): (200, rec.refund())})

    result = refund(stripe_)

    assert result == GatewayResult(True, rec.REFUND_ID, None, amount_cents=700, currency="USD")
    (sent,) = http.requests
    assert sent["headers"]["Idempotency-Key"] == f"refund-{rec.REFUND_PAYMENT_ID}"
    params = sent["params"]
    assert (params["payment_intent"], params["amount"]) == ([rec.INTENT_ID], ["700"])
    assert params["reason"] == ["requested_by_customer"]
    assert params["metadata[payment_id]"] == [rec.REFUND_PAYMENT_ID]
    assert params["metadata[order_id]"] == ["42"]


@pytest.mark.parametrize(
    ("reason", "sent_reason", "metadata_reason"),
    [
        ("damaged in transit", None, ["damaged in transit"]),
        ("", None, None),
        ("duplicate", ["duplicate"], None),
    ],
)
def test_only_stripes_reasons_are_sent_as_reason(reason, sent_reason, metadata_reason):
    stripe_, http = gateway({("post", "/v1/refunds"): (200, rec.refund())})
    refund(stripe_, reason=reason)
    params = http.requests[0]["params"]
    assert params.get("reason") == sent_reason
    assert params.get("metadata[reason]") == metadata_reason


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((200, rec.refund("failed")), "expired_or_canceled_card"),
        ((200, rec.refund("canceled")), "canceled"),
        (rec.CHARGE_ALREADY_REFUNDED, "charge_already_refunded"),
        (rec.BAD_API_KEY, "gateway_authentication_failed"),
    ],
)
def test_a_refund_that_failed(answer, code):
    stripe_, _ = gateway({("post", "/v1/refunds"): answer})
    result = refund(stripe_)
    assert (result.succeeded, result.failure_code) == (False, code)


@pytest.mark.parametrize(
    "answer",
    [rec.refund("pending"), rec.refund("requires_action", next_action=rec.REFUND_NEXT_ACTION)],
    ids=["pending", "requires-action"],
)
def test_a_refund_stripe_accepted_but_has_not_decided_is_pending_with_its_reference(answer):
    stripe_, _ = gateway({("post", "/v1/refunds"): (200, answer)})

    result = refund(stripe_)

    assert result == GatewayResult(
        False, rec.REFUND_ID, None, pending=True, amount_cents=700, currency="USD"
    )


@pytest.mark.parametrize("answer", [rec.API_ERROR, rec.RATE_LIMITED, rec.IDEMPOTENCY_IN_USE])
def test_a_refund_whose_answer_is_unknown_is_a_gateway_error(answer):
    stripe_, _ = gateway({("post", "/v1/refunds"): answer})
    with pytest.raises(GatewayError):
        refund(stripe_)


# --- lookups ----------------------------------------------------------------------------------
def lookup_charge(stripe_, reference=rec.INTENT_ID):
    return stripe_.lookup_charge(
        idempotency_key=KEY, gateway_reference=reference, token=TOKEN, timeout=3
    )


@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        (
            rec.payment_intent(),
            GatewayResult(True, rec.INTENT_ID, None, amount_cents=2500, currency="USD"),
        ),
        (
            rec.payment_intent("requires_payment_method"),
            GatewayResult(
                False, rec.INTENT_ID, "insufficient_funds", amount_cents=2500, currency="USD"
            ),
        ),
        (
            rec.payment_intent("canceled"),
            GatewayResult(False, rec.INTENT_ID, "canceled", amount_cents=2500, currency="USD"),
        ),
    ],
)
def test_lookup_a_charge_by_id_reads_its_current_state(intent, expected):
    stripe_, http = gateway({("get", INTENT): (200, intent)})

    assert lookup_charge(stripe_) == expected
    assert [request["method"] for request in http.requests] == ["get"]  # nothing created


def test_lookup_a_charge_still_waiting_for_authentication():
    stripe_, _ = gateway({("get", INTENT): (200, rec.requires_action())})
    result = lookup_charge(stripe_)
    assert result.requires_action
    assert result.client_secret == rec.payment_intent()["client_secret"]


def test_lookup_a_charge_whose_create_call_never_answered_searches_the_metadata():
    found = rec.search_result([rec.payment_intent()], SEARCH)
    stripe_, http = gateway({("get", SEARCH): (200, found)})

    assert lookup_charge(stripe_, reference="").succeeded

    (sent,) = http.requests
    assert sent["params"]["query"] == [f"metadata['payment_id']:'{KEY}'"]


@pytest.mark.parametrize(
    ("reference", "responses"),
    [
        ("", {("get", SEARCH): (200, rec.search_result([], SEARCH))}),
        (rec.INTENT_ID, {("get", INTENT): rec.resource_missing("payment_intent", rec.INTENT_ID)}),
    ],
    ids=["empty-search", "404-by-id"],
)
def test_a_charge_stripe_does_not_have_is_not_found(reference, responses):
    stripe_, http = gateway(responses)
    with pytest.raises(GatewayNotFound):
        lookup_charge(stripe_, reference=reference)
    assert all(request["method"] == "get" for request in http.requests)


@pytest.mark.parametrize("reference", ["", rec.INTENT_ID], ids=["search", "by-id"])
@pytest.mark.parametrize(
    "answer",
    [
        (200, rec.payment_intent("processing")),
        rec.API_ERROR,
        rec.RATE_LIMITED,
        rec.BAD_API_KEY,  # reading failed: says nothing about the charge
        rec.PERMISSION_DENIED,
        stripe.APIConnectionError("Read timed out.", should_retry=True),
    ],
    ids=["processing", "500", "429", "401", "403", "timeout"],
)
def test_a_charge_lookup_that_cannot_tell_is_a_gateway_error_not_a_not_found(reference, answer):
    if reference:
        responses = {("get", INTENT): answer}
    elif isinstance(answer, tuple) and answer[0] == 200:
        responses = {("get", SEARCH): (200, rec.search_result([answer[1]], SEARCH))}
    else:
        responses = {("get", SEARCH): answer}
    stripe_, http = gateway(responses)

    with pytest.raises(GatewayError) as raised:
        lookup_charge(stripe_, reference=reference)

    assert not isinstance(raised.value, GatewayNotFound)
    assert all(request["method"] == "get" for request in http.requests)


def lookup_refund(stripe_, reference=rec.REFUND_ID, charge_reference=rec.INTENT_ID):
    return stripe_.lookup_refund(
        idempotency_key=rec.REFUND_PAYMENT_ID,
        gateway_reference=reference,
        charge_reference=charge_reference,
        timeout=3,
    )


@pytest.mark.parametrize(
    ("status", "succeeded", "code"),
    [("succeeded", True, None), ("failed", False, "expired_or_canceled_card")],
)
def test_lookup_a_refund_by_id(status, succeeded, code):
    stripe_, _ = gateway({("get", f"/v1/refunds/{rec.REFUND_ID}"): (200, rec.refund(status))})
    result = lookup_refund(stripe_)
    assert (result.succeeded, result.failure_code, result.amount_cents) == (succeeded, code, 700)


def test_lookup_a_refund_by_its_metadata_among_the_charges_refunds():
    listed = rec.list_of([rec.dashboard_refund(), rec.refund()], "/v1/refunds")
    stripe_, http = gateway({("get", "/v1/refunds"): (200, listed)})

    assert lookup_refund(stripe_, reference="").gateway_reference == rec.REFUND_ID

    assert http.requests[0]["params"]["payment_intent"] == [rec.INTENT_ID]


REFUND = f"/v1/refunds/{rec.REFUND_ID}"


@pytest.mark.parametrize(
    ("reference", "responses"),
    [
        ("", {("get", "/v1/refunds"): (200, rec.list_of([], "/v1/refunds"))}),
        (
            "",
            {("get", "/v1/refunds"): (200, rec.list_of([rec.dashboard_refund()], "/v1/refunds"))},
        ),
        (rec.REFUND_ID, {("get", REFUND): rec.resource_missing("refund", rec.REFUND_ID)}),
    ],
    ids=["empty-list", "not-among-the-charges-refunds", "404-by-id"],
)
def test_a_refund_stripe_does_not_have_is_not_found(reference, responses):
    stripe_, _ = gateway(responses)
    with pytest.raises(GatewayNotFound):
        lookup_refund(stripe_, reference=reference)


@pytest.mark.parametrize(
    ("reference", "charge_reference", "responses"),
    [
        ("", "", {}),
        (rec.REFUND_ID, rec.INTENT_ID, {("get", REFUND): (200, rec.refund("pending"))}),
        (
            rec.REFUND_ID,
            rec.INTENT_ID,
            {("get", REFUND): (200, rec.refund("requires_action"))},
        ),
        (rec.REFUND_ID, rec.INTENT_ID, {("get", REFUND): rec.API_ERROR}),
        ("", rec.INTENT_ID, {("get", "/v1/refunds"): rec.RATE_LIMITED}),
        (rec.REFUND_ID, rec.INTENT_ID, {("get", REFUND): rec.BAD_API_KEY}),
    ],
    ids=["unknown-charge", "pending", "requires-action", "500", "429", "401"],
)
def test_a_refund_lookup_that_cannot_tell_is_a_gateway_error_not_a_not_found(
    reference, charge_reference, responses
):
    stripe_, _ = gateway(responses)
    with pytest.raises(GatewayError) as raised:
        lookup_refund(stripe_, reference=reference, charge_reference=charge_reference)
    assert not isinstance(raised.value, GatewayNotFound)


# --- canceling a charge waiting for the customer ---------------------------------------------
CANCEL = f"{INTENT}/cancel"


def cancel(stripe_, reference=rec.INTENT_ID):
    return stripe_.cancel_charge(gateway_reference=reference, idempotency_key=KEY, timeout=3)


def test_cancel_a_charge_waiting_for_authentication():
    stripe_, http = gateway({("post", CANCEL): (200, rec.payment_intent("canceled"))})

    result = cancel(stripe_)

    assert result == GatewayResult(
        False, rec.INTENT_ID, "canceled", amount_cents=2500, currency="USD"
    )
    (sent,) = http.requests
    assert sent["path"] == CANCEL
    assert sent["headers"]["Idempotency-Key"] == f"cancel-{KEY}"
    assert sent["params"]["cancellation_reason"] == ["abandoned"]


@pytest.mark.parametrize(
    ("status", "succeeded", "code"),
    [("succeeded", True, None), ("canceled", False, "canceled")],
)
def test_a_charge_that_cannot_be_canceled_any_more_answers_its_state(status, succeeded, code):
    # The customer authenticated meanwhile (or it was canceled already): Stripe says 400.
    stripe_, http = gateway(
        {
            ("post", CANCEL): rec.cannot_cancel(status),
            ("get", INTENT): (200, rec.payment_intent(status)),
        }
    )

    result = cancel(stripe_)

    assert (result.succeeded, result.failure_code, result.gateway_reference) == (
        succeeded,
        code,
        rec.INTENT_ID,
    )
    assert [(r["method"], r["path"]) for r in http.requests] == [("post", CANCEL), ("get", INTENT)]


@pytest.mark.parametrize(
    ("reference", "responses"),
    [
        (rec.INTENT_ID, {("post", CANCEL): rec.API_ERROR}),
        (rec.INTENT_ID, {("post", CANCEL): rec.RATE_LIMITED}),
        (rec.INTENT_ID, {("post", CANCEL): rec.BAD_API_KEY}),
        (rec.INTENT_ID, {("post", CANCEL): rec.resource_missing("payment_intent", rec.INTENT_ID)}),
        (
            rec.INTENT_ID,
            {("post", CANCEL): rec.cannot_cancel("processing"), ("get", INTENT): rec.API_ERROR},
        ),
        (
            rec.INTENT_ID,
            {
                ("post", CANCEL): rec.cannot_cancel("processing"),
                ("get", INTENT): (200, rec.payment_intent("processing")),
            },
        ),
        ("", {}),
    ],
    ids=["500", "429", "401", "404", "read-fails", "processing", "no-reference"],
)
def test_a_cancel_whose_outcome_is_unknown_is_a_gateway_error(reference, responses):
    stripe_, _ = gateway(responses)
    with pytest.raises(GatewayError):
        cancel(stripe_, reference=reference)


# --- webhooks ---------------------------------------------------------------------------------
def verify(stripe_, payload, header=None):
    header = rec.signature(payload) if header is None else header
    return stripe_.verify_webhook(headers={"Stripe-Signature": header}, raw_body=payload.encode())


def webhook(event_type, obj):
    stripe_, _ = gateway({})
    return verify(stripe_, json.dumps(rec.event(event_type, obj)))


CHARGE_PAYMENT = uuid.UUID(rec.PAYMENT_ID)
REFUND_PAYMENT = uuid.UUID(rec.REFUND_PAYMENT_ID)
OURS = rec.refund()
DASHBOARD = rec.dashboard_refund()


@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        (
            "payment_intent.succeeded",
            rec.payment_intent(),
            ("payment.succeeded", CHARGE_PAYMENT, rec.INTENT_ID, None),
        ),
        (
            "payment_intent.payment_failed",
            rec.payment_intent("requires_payment_method"),
            ("payment.failed", CHARGE_PAYMENT, rec.INTENT_ID, "insufficient_funds"),
        ),
        (
            "payment_intent.requires_action",
            rec.requires_action(),
            ("payment.requires_action", CHARGE_PAYMENT, rec.INTENT_ID, None),
        ),
        (
            "payment_intent.canceled",
            rec.payment_intent("canceled"),
            ("payment.failed", CHARGE_PAYMENT, rec.INTENT_ID, "canceled"),
        ),
        ("refund.created", OURS, ("payment.refunded", REFUND_PAYMENT, rec.REFUND_ID, None)),
        ("refund.updated", OURS, ("payment.refunded", REFUND_PAYMENT, rec.REFUND_ID, None)),
        ("refund.created", rec.refund("pending"), ("ignored", REFUND_PAYMENT, rec.REFUND_ID, None)),
        (
            "refund.updated",
            rec.refund("failed"),
            ("refund.failed", REFUND_PAYMENT, rec.REFUND_ID, "expired_or_canceled_card"),
        ),
        (
            "refund.updated",
            rec.refund("canceled"),
            ("refund.failed", REFUND_PAYMENT, rec.REFUND_ID, "canceled"),
        ),
        (
            "refund.failed",
            rec.refund("failed"),
            ("refund.failed", REFUND_PAYMENT, rec.REFUND_ID, "expired_or_canceled_card"),
        ),
        ("refund.created", DASHBOARD, ("refund.external", None, rec.DASHBOARD_REFUND_ID, None)),
        ("refund.updated", DASHBOARD, ("refund.external", None, rec.DASHBOARD_REFUND_ID, None)),
        (
            "refund.created",
            rec.dashboard_refund("pending"),
            ("ignored", None, rec.DASHBOARD_REFUND_ID, None),
        ),
        (
            "refund.failed",
            rec.dashboard_refund("failed"),
            ("refund.failed", None, rec.DASHBOARD_REFUND_ID, "expired_or_canceled_card"),
        ),
        # Expanded refunds (older versions): the newest one, never the charge's own metadata.
        (
            "charge.refunded",
            rec.charge(
                refunds=[
                    {**OURS, "created": rec.CREATED},
                    {**DASHBOARD, "created": rec.CREATED + 9},
                ]
            ),
            ("refund.external", None, rec.DASHBOARD_REFUND_ID, None),
        ),
        (
            "charge.refunded",
            rec.charge(refunds=[OURS]),
            ("payment.refunded", REFUND_PAYMENT, rec.REFUND_ID, None),
        ),
        # The pinned version sends no refunds: the refund.* events carry the refund.
        (
            "charge.refunded",
            rec.charge(amount_refunded=1000, refunded=False),
            ("ignored", None, "", None),
        ),
        (
            "charge.dispute.created",
            rec.dispute(),
            ("dispute.created", None, rec.DISPUTE_ID, "fraudulent"),
        ),
        (
            "charge.dispute.closed",
            rec.dispute("lost"),
            ("dispute.closed", None, rec.DISPUTE_ID, "lost"),
        ),
        ("charge.dispute.updated", rec.dispute("under_review"), ("ignored", None, "", None)),
        (
            "setup_intent.succeeded",
            rec.setup_intent("succeeded"),
            ("setup.succeeded", None, rec.METHOD_ID, None),
        ),
        ("customer.created", rec.customer(), ("ignored", None, "", None)),
        (
            "payment_intent.created",
            rec.payment_intent("requires_payment_method"),
            ("ignored", CHARGE_PAYMENT, rec.INTENT_ID, None),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_webhooks_are_verified_and_normalized(event_type, obj, expected):
    event = webhook(event_type, obj)

    assert (event.type, event.payment_id, event.gateway_reference, event.failure_code) == expected
    assert (event.event_id, event.raw_type) == ("evt_1SNf5gJvEtkwdCNYxQ2w3E4r", event_type)


@pytest.mark.parametrize(
    ("event_type", "obj", "payment_intent", "amount"),
    [
        ("payment_intent.succeeded", rec.payment_intent(), rec.INTENT_ID, 2500),
        ("refund.updated", rec.refund(), rec.INTENT_ID, 700),
        ("refund.created", rec.dashboard_refund(), rec.INTENT_ID, 1000),
        ("charge.refunded", rec.charge(refunds=[DASHBOARD]), rec.INTENT_ID, 1000),
        ("charge.dispute.created", rec.dispute(), rec.INTENT_ID, 2500),
    ],
)
def test_events_carry_the_payment_intent_and_amount_to_check(
    event_type, obj, payment_intent, amount
):
    event = webhook(event_type, obj)
    assert (event.payment_intent, event.amount_cents, event.currency) == (
        payment_intent,
        amount,
        "USD",
    )


def test_a_saved_card_event_names_the_method_and_its_customer():
    event = webhook("setup_intent.succeeded", rec.setup_intent("succeeded"))
    assert (event.gateway_reference, event.customer) == (rec.METHOD_ID, rec.CUSTOMER_ID)


@pytest.mark.parametrize(
    "metadata",
    [{"payment_id": "not-a-uuid"}, {"payment_id": 12}, {"payment_id": ""}, {}, None],
)
def test_malformed_metadata_parses_without_a_payment_id(metadata):
    event = webhook("payment_intent.succeeded", rec.payment_intent(metadata=metadata))
    assert (event.type, event.payment_id, event.gateway_reference) == (
        "payment.succeeded",
        None,
        rec.INTENT_ID,
    )


def test_a_refund_with_malformed_metadata_is_ours_without_an_id():
    # Not a dashboard refund: it has our key, just unreadable; the service logs it.
    event = webhook("refund.updated", rec.refund(metadata={"payment_id": "oops"}))
    assert (event.type, event.payment_id) == ("payment.refunded", None)


@pytest.mark.parametrize(
    "header",
    [
        lambda payload: rec.signature(payload, secret="whsec_other"),
        lambda payload: rec.signature(payload, timestamp=int(time.time()) - 301),
        lambda payload: rec.signature(payload + " "),
        lambda payload: "",
    ],
    ids=["wrong-secret", "stale", "other-body", "missing"],
)
def test_bad_stripe_signatures(header):
    payload = json.dumps(rec.event("payment_intent.succeeded", rec.payment_intent()))
    stripe_, _ = gateway({})
    with pytest.raises(InvalidSignature):
        verify(stripe_, payload, header(payload))


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        json.dumps({"id": "evt_1"}),
        json.dumps({**rec.event("customer.created", rec.customer()), "object": "list"}),
        json.dumps({**rec.event("customer.created", rec.customer()), "data": {"object": "cus_1"}}),
        json.dumps([rec.event("customer.created", rec.customer())]),
    ],
    ids=["not-json", "no-type", "not-an-event", "object-not-an-object", "a-list"],
)
def test_signed_bodies_that_are_not_events(payload):
    stripe_, _ = gateway({})
    with pytest.raises(InvalidSignature):
        verify(stripe_, payload)


def test_without_a_webhook_secret_nothing_is_trusted():
    payload = json.dumps(rec.event("payment_intent.succeeded", rec.payment_intent()))
    stripe_, _ = gateway({}, webhook_secret="")
    with pytest.raises(InvalidSignature):
        verify(stripe_, payload, rec.signature(payload, secret=""))


# --- the client and the settings ---------------------------------------------------------------
def test_one_client_per_gateway_with_retries(monkeypatch):
    built = []
    real = stripe.StripeClient

    def counting(*args, **kwargs):
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(stripe, "StripeClient", counting)
    stripe_, http = gateway({("post", INTENTS): (200, rec.payment_intent())})

    charge(stripe_)
    charge(stripe_)

    assert len(built) == 1
    assert built[0]["max_network_retries"] == 2
    assert len(http.requests) == 2


def test_the_default_client_uses_requests_with_the_gateway_timeout():
    stripe_ = StripeGateway(secret_key="sk_test_x", webhook_secret="w", timeout=4.5)
    http = stripe_._client._requestor._client
    assert isinstance(http, stripe.RequestsClient)
    assert http._timeout == 4.5


def test_get_gateway_reads_the_settings_and_keeps_one_gateway(settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_settings"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_settings"
    settings.STRIPE_STATEMENT_DESCRIPTOR_SUFFIX = "SHOP"
    chosen = get_gateway()
    assert isinstance(chosen, StripeGateway)
    assert (chosen.secret_key, chosen.webhook_secret) == ("sk_test_settings", "whsec_settings")
    assert chosen.statement_descriptor_suffix == "SHOP"
    assert get_gateway() is chosen  # one client (and connection pool) per process

    settings.STRIPE_SECRET_KEY = "sk_test_rotated"
    rotated = get_gateway()
    assert isinstance(rotated, StripeGateway)
    assert rotated.secret_key == "sk_test_rotated"
    assert get_gateway("test").name == "test"
    with pytest.raises(LookupError):
        get_gateway("paypal")


@pytest.mark.parametrize("suffix", ["X" * 23, "SO*42", "O'Brien"])
def test_a_suffix_stripe_would_refuse_stops_at_once(suffix):
    with pytest.raises(ImproperlyConfigured):
        StripeGateway(
            secret_key="sk_test_x", webhook_secret="w", statement_descriptor_suffix=suffix
        )
