"""Stripe's answers as Stripe sends them for the pinned API version (`stripe.api_version`), and a
stand-in HTTP client that answers with them (no network).

The shapes follow Stripe's API reference and its OpenAPI fixtures (github.com/stripe/openapi,
`openapi/fixtures3.json`) for the objects we read: PaymentIntent (a `requires_action` one with
`next_action.use_stripe_sdk` or `redirect_to_url` and its `client_secret`), Refund (`pending`,
`succeeded`, `failed` with `failure_reason`), Charge, Dispute, SetupIntent, Customer,
PaymentMethod, lists and `search_result`s, Event envelopes, and the error bodies with the HTTP
status Stripe answers them with: 402 `card_error` (with `decline_code` and the
`payment_intent`), 400/404 `invalid_request_error`, 401 and 403 (whose bodies Stripe types
`invalid_request_error` too), 400 `idempotency_error`, 409 `idempotency_key_in_use`, 429
`rate_limit`, 500 `api_error`. Since API version 2022-11-15 a Charge carries no `refunds` unless
expanded, and since this version a PaymentIntent is created with `allowed_payment_method_types`.

Longer than 500 lines on purpose: it is data (whole Stripe objects, field by field), kept whole so
that a test reads what Stripe really sends; other tests may use it and `RecordedStripe` too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stripe

API_VERSION = stripe.api_version
CREATED = 1_761_652_800

PAYMENT_ID = "5f0c7a51-0000-4000-8000-000000000001"
REFUND_PAYMENT_ID = "5f0c7a51-0000-4000-8000-0000000000f2"
USER_ID = "7d1e9a0c-3b7f-4e2a-9c55-0a4c1f2b8e61"
CUSTOMER_ID = "cus_TKjXb3vQm2Lw9p"
METHOD_ID = "pm_1SNf3dJvEtkwdCNYq8r0XyZa"
INTENT_ID = "pi_3SNf4eJvEtkwdCNY0Wm6b2Xk"
CHARGE_ID = "ch_3SNf4eJvEtkwdCNY0eF5vTq1"
REFUND_ID = "re_3SNf4eJvEtkwdCNY0rT7uHk2"
DASHBOARD_REFUND_ID = "re_3SNf4eJvEtkwdCNY1aB9cDe4"
DISPUTE_ID = "dp_1SNg7hJvEtkwdCNYm4LpQw8R"
SETUP_INTENT_ID = "seti_1SNf3aJvEtkwdCNYk2Vr6Tn0"
WEBHOOK_SECRET = "whsec_recorded"
REQUEST_ID = "req_Jv8Yd2kQm3Nx5a"
DASHBOARD = "https://dashboard.stripe.com/test/logs"


def customer(**fields: Any) -> dict[str, Any]:
    return {
        "id": CUSTOMER_ID,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": CREATED,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": "ada@example.com",
        "invoice_prefix": "7FE1103A",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {"user_id": USER_ID},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        **fields,
    }


def payment_method(customer: str | None = None, **card: Any) -> dict[str, Any]:
    return {
        "id": METHOD_ID,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": "visa",
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": "US",
            "display_brand": "visa",
            "exp_month": 12,
            "exp_year": 2040,
            "fingerprint": "Xt5EWLLDS7FJjR1c",
            "funding": "credit",
            "generated_from": None,
            "last4": "4242",
            "networks": {"available": ["visa"], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
            **card,
        },
        "created": CREATED,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def error_from(status: str) -> dict[str, Any] | None:
    """`last_payment_error` of an intent that failed, as Stripe embeds it."""
    if status != "requires_payment_method":
        return None
    return {
        "advice_code": "try_again_later",
        "charge": CHARGE_ID,
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "doc_url": "https://docs.stripe.com/error-codes/card-declined",
        "message": "Your card has insufficient funds.",
        "payment_method": payment_method(CUSTOMER_ID),
        "type": "card_error",
    }


def payment_intent(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {
        "id": INTENT_ID,
        "object": "payment_intent",
        "allowed_payment_method_types": ["card"],
        "amount": 2500,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 2500 if status == "succeeded" else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": CREATED + 60 if status == "canceled" else None,
        "cancellation_reason": "abandoned" if status == "canceled" else None,
        "capture_method": "automatic_async",
        "client_secret": f"{INTENT_ID}_secret_q2zH4XvLm9KpT0bWcR8sYdN3e",
        "confirmation_method": "automatic",
        "created": CREATED,
        "currency": "usd",
        "customer": CUSTOMER_ID,
        "description": "Order SO-00042",
        "excluded_payment_method_types": None,
        "last_payment_error": error_from(status),
        "latest_charge": CHARGE_ID if status in ("succeeded", "requires_payment_method") else None,
        "livemode": False,
        "metadata": {"payment_id": PAYMENT_ID, "order_id": "42", "order_number": "SO-00042"},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": METHOD_ID if status != "requires_payment_method" else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
        **fields,
    }


USE_STRIPE_SDK = {
    "type": "use_stripe_sdk",
    "use_stripe_sdk": {
        "directory_server_encryption": {
            "algorithm": "RSA",
            "certificate": "-----BEGIN CERTIFICATE-----\nMIIE...\n-----END CERTIFICATE-----\n",
            "directory_server_id": "A000000003",
            "root_certificate_authorities": [],
        },
        "directory_server_name": "visa",
        "merchant": "acct_1Pq2RsJvEtkwdCNY",
        "one_click_authn": None,
        "server_transaction_id": "0f1b6c5e-2d4a-4b8e-9a3f-7c6d5e4b3a21",
        "three_d_secure_2_source": "payatt_3SNf4eJvEtkwdCNY0bQ3nW1x",
        "three_ds_method_url": "",
        "three_ds_optimizations": "kf",
        "type": "stripe_3ds2_fingerprint",
    },
}
REDIRECT_TO_URL = {
    "type": "redirect_to_url",
    "redirect_to_url": {
        "return_url": "https://shop.example.com/orders/42/paid",
        "url": "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1Pq2RsJvEtkwdCNY"
        "&payment_intent=pi_3SNf4eJvEtkwdCNY0Wm6b2Xk&payment_intent_client_secret="
        "pi_3SNf4eJvEtkwdCNY0Wm6b2Xk_secret_q2zH4XvLm9KpT0bWcR8sYdN3e&publishable_key="
        "pk_test_51Pq2Rs&source=payatt_3SNf4eJvEtkwdCNY0bQ3nW1x",
    },
}


def requires_action(next_action: Mapping[str, Any] = USE_STRIPE_SDK) -> dict[str, Any]:
    return payment_intent("requires_action", next_action=dict(next_action))


def refund(status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    failed = status == "failed"
    return {
        "id": REFUND_ID,
        "object": "refund",
        "amount": 700,
        "balance_transaction": "txn_3SNf4eJvEtkwdCNY0pL2mK8j",
        "charge": CHARGE_ID,
        "created": CREATED + 3600,
        "currency": "usd",
        "customer": CUSTOMER_ID,
        "customer_account": None,
        "description": None,
        "destination_details": {
            "card": {
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "failure_balance_transaction": "txn_3SNf4eJvEtkwdCNY1qA4bX0c" if failed else None,
        "failure_reason": "expired_or_canceled_card" if failed else None,
        "metadata": {"payment_id": REFUND_PAYMENT_ID, "order_id": "42"},
        "payment_intent": INTENT_ID,
        "payment_method": METHOD_ID,
        "pending_reason": "processing" if status == "pending" else None,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
        **fields,
    }


REFUND_NEXT_ACTION = {
    "type": "display_details",
    "display_details": {
        "email_sent": {"email_sent_at": CREATED + 3600, "email_sent_to": "ada@example.com"},
        "expires_at": CREATED + 3600 + 45 * 86_400,
    },
}


def dashboard_refund(status: str = "succeeded") -> dict[str, Any]:
    """A refund made in the Stripe dashboard: none of our metadata."""
    return refund(status, id=DASHBOARD_REFUND_ID, amount=1000, metadata={}, reason=None)


def charge(*, refunds: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """A Charge as the pinned version sends it: `refunds` only when expanded."""
    refunded = sum(item["amount"] for item in refunds or () if item["status"] == "succeeded")
    body: dict[str, Any] = {
        "id": CHARGE_ID,
        "object": "charge",
        "amount": 2500,
        "amount_captured": 2500,
        "amount_refunded": refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": "txn_3SNf4eJvEtkwdCNY0Jk9Lm2n",
        "billing_details": payment_method()["billing_details"],
        "calculated_statement_descriptor": "SHOP* SO-00042",
        "captured": True,
        "created": CREATED,
        "currency": "usd",
        "customer": CUSTOMER_ID,
        "description": "Order SO-00042",
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        # Stripe copies the PaymentIntent's metadata: the CHARGE's payment id, not a refund's.
        "metadata": {"payment_id": PAYMENT_ID, "order_id": "42", "order_number": "SO-00042"},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": INTENT_ID,
        "payment_method": METHOD_ID,
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": "https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8x",
        "refunded": refunded >= 2500,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
        **fields,
    }
    if refunds is not None:
        body["refunds"] = list_of(refunds, f"/v1/charges/{CHARGE_ID}/refunds")
    return body


def dispute(status: str = "needs_response", reason: str = "fraudulent") -> dict[str, Any]:
    return {
        "id": DISPUTE_ID,
        "object": "dispute",
        "amount": 2500,
        "balance_transactions": [],
        "charge": CHARGE_ID,
        "created": CREATED + 86_400,
        "currency": "usd",
        "enhanced_eligibility_types": [],
        "evidence": {"customer_email_address": None, "uncategorized_text": None},
        "evidence_details": {
            "due_by": CREATED + 8 * 86_400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": INTENT_ID,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": reason,
        "status": status,
    }


def setup_intent(status: str = "requires_payment_method", **fields: Any) -> dict[str, Any]:
    succeeded = status == "succeeded"
    return {
        "id": SETUP_INTENT_ID,
        "object": "setup_intent",
        "allowed_payment_method_types": ["card"],
        "application": None,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{SETUP_INTENT_ID}_secret_TKjXnQ0aZ9bY8cX7dW6eV5fU4gT3hS2",
        "created": CREATED,
        "customer": CUSTOMER_ID,
        "description": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": "setatt_1SNf3fJvEtkwdCNYa1B2c3D4" if succeeded else None,
        "livemode": False,
        "mandate": None,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": METHOD_ID if succeeded else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": status,
        "usage": "off_session",
        **fields,
    }


def list_of(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def search_result(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {
        "object": "search_result",
        "data": data,
        "has_more": False,
        "next_page": None,
        "url": url,
    }


# --- errors: (HTTP status, body) ------------------------------------------------------------------
def error(status: int, type_: str, message: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"message": message, "type": type_, **fields}
    if "code" in fields:
        body["doc_url"] = f"https://docs.stripe.com/error-codes/{fields['code'].replace('_', '-')}"
    body["request_log_url"] = f"{DASHBOARD}/{REQUEST_ID}?t={CREATED}"
    return status, {"error": body}


def card_error(
    code: str = "card_declined",
    decline_code: str | None = "generic_decline",
    *,
    message: str = "Your card was declined.",
    **fields: Any,
) -> tuple[int, dict[str, Any]]:
    """402: the card was declined. Stripe sends the failed PaymentIntent along."""
    failed = payment_intent("requires_payment_method", payment_method=None)
    failed["last_payment_error"] = {
        "charge": CHARGE_ID,
        "code": code,
        "decline_code": decline_code,
        "message": message,
        "payment_method": payment_method(CUSTOMER_ID),
        "type": "card_error",
    }
    return error(
        402,
        "card_error",
        message,
        code=code,
        decline_code=decline_code,
        advice_code="do_not_try_again" if decline_code == "generic_decline" else None,
        charge=CHARGE_ID,
        payment_intent=failed,
        payment_method=payment_method(CUSTOMER_ID),
        **fields,
    )


AUTHENTICATION_REQUIRED = card_error(
    "authentication_required",
    "authentication_required",
    message="Your card was declined. This transaction requires authentication.",
)
CARD_DECLINED = card_error()
INSUFFICIENT_FUNDS = card_error(decline_code="insufficient_funds")
STOLEN_CARD = card_error(decline_code="stolen_card")
EXPIRED_CARD = card_error("expired_card", None, message="Your card has expired.", param="exp_month")
PROCESSING_ERROR = card_error(
    "processing_error", None, message="An error occurred while processing your card."
)
AMOUNT_TOO_SMALL = error(
    400,
    "invalid_request_error",
    "Amount must be at least $0.50 usd",
    code="amount_too_small",
    param="amount",
)
CHARGE_ALREADY_REFUNDED = error(
    400,
    "invalid_request_error",
    f"Charge {CHARGE_ID} has already been refunded.",
    code="charge_already_refunded",
)
DETACHED_METHOD = error(
    400,
    "invalid_request_error",
    "The provided PaymentMethod was previously used without being attached to a Customer or "
    "was detached from a Customer, and may not be used again.",
    code="payment_method_unexpected_state",
    param="payment_method",
)
NOT_ATTACHED = error(
    400,
    "invalid_request_error",
    "The payment method you provided is not attached to a customer so detachment is impossible.",
    code="payment_method_unexpected_state",
)


RAW_CARD_DATA = error(
    400,
    "invalid_request_error",
    "Sending credit card numbers directly to the Stripe API is generally unsafe. To continue "
    "processing use Stripe.js, the Stripe mobile bindings, or Stripe Elements. For more "
    "information, see https://dashboard.stripe.com/account/integration/settings. If you are "
    "qualified to handle card data directly, see "
    "https://support.stripe.com/questions/enabling-access-to-raw-card-data-apis.",
)
EMAIL_INVALID = error(
    400,
    "invalid_request_error",
    "Invalid email address: ada@example",
    code="email_invalid",
    param="email",
)
NO_SUCH_CUSTOMER = error(
    400,
    "invalid_request_error",
    f"No such customer: '{CUSTOMER_ID}'",
    code="resource_missing",
    param="customer",
)


def cannot_cancel(status: str = "succeeded") -> tuple[int, dict[str, Any]]:
    """400 from `POST /v1/payment_intents/:id/cancel` for an intent past waiting (Stripe sends
    the intent along)."""
    return error(
        400,
        "invalid_request_error",
        f"You cannot cancel this PaymentIntent because it has a status of {status}. Only a "
        "PaymentIntent with one of the following statuses may be canceled: "
        "requires_payment_method, requires_capture, requires_confirmation, requires_action, "
        "processing.",
        code="payment_intent_unexpected_state",
        payment_intent=payment_intent(status),
    )


def resource_missing(kind: str, object_id: str, param: str = "id") -> tuple[int, dict[str, Any]]:
    return error(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


BAD_API_KEY = error(401, "invalid_request_error", "Invalid API Key provided: sk_test_***********x")
PERMISSION_DENIED = error(
    403,
    "invalid_request_error",
    "The provided key 'rk_test_***x' does not have the required permissions for this endpoint "
    "on account 'acct_1Pq2RsJvEtkwdCNY'. Having the 'rak_payment_intent_write' permission would "
    "allow this request to continue.",
)
IDEMPOTENCY_MISMATCH = error(
    400,
    "idempotency_error",
    "Keys for idempotent requests can only be used with the same parameters they were first "
    f"used with. Try using a key other than 'charge-{PAYMENT_ID}' if you meant to execute a "
    "different request.",
)
IDEMPOTENCY_IN_USE = error(
    409,
    "invalid_request_error",
    "There is currently another in-progress request using this Idempotent Key (that probably "
    "means you submitted twice, and the other request is still going through): "
    f"charge-{PAYMENT_ID}. Please try again later.",
    code="idempotency_key_in_use",
)
RATE_LIMITED = error(
    429,
    "invalid_request_error",
    "Request rate limit exceeded. Learn more about rate limits here "
    "https://docs.stripe.com/rate-limits.",
    code="rate_limit",
)
API_ERROR = error(500, "api_error", "Something went wrong on Stripe's end.")


# --- events -------------------------------------------------------------------------------------
def event(
    type_: str, obj: Mapping[str, Any], *, event_id: str = "evt_1SNf5gJvEtkwdCNYxQ2w3E4r"
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": CREATED + 5,
        "data": {"object": dict(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": REQUEST_ID, "idempotency_key": f"charge-{PAYMENT_ID}"},
        "type": type_,
    }


def signature(payload: str, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    """A `Stripe-Signature` header as Stripe computes it."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


# --- the stand-in ---------------------------------------------------------------------------------
Answer = tuple[int, dict[str, Any]] | Exception


class RecordedStripe(stripe.HTTPClient):
    """Answers each (method, path) with a recorded answer (a list: one per attempt, in order)
    and keeps every request as Stripe would receive it. Stripe's retry logic runs as is; only
    its back-off sleep is skipped."""

    name = "recorded"

    def __init__(self, responses: Mapping[tuple[str, str], Answer | list[Answer]]) -> None:
        super().__init__()
        self.responses = {
            key: list(v) if isinstance(v, list) else v for key, v in responses.items()
        }
        self.requests: list[dict[str, Any]] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        parts = urlsplit(url)
        self.requests.append(
            {
                "method": method,
                "path": parts.path,
                "headers": dict(headers or {}),
                "params": parse_qs(post_data or parts.query or ""),
            }
        )
        answer = self.responses[(method, parts.path)]
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return json.dumps(body), status, {"request-id": REQUEST_ID}

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return 0.0

    def close(self) -> None:
        pass
