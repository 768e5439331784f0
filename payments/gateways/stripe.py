"""Stripe, on the official `stripe` package (PaymentMethods, Customers, PaymentIntents, Refunds).

Selected with `PAYMENT_GATEWAY=stripe`, `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET`. A Stripe
PaymentMethod can be charged more than once only when it is attached to a Customer, so each saved
card gets a Customer and our token is `<customer id>/<payment method id>`. Our Payment id is the
idempotency key of every charge and refund and travels as `metadata.payment_id`, which is how a
webhook names the Payment it settles.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Unpack

import stripe
from django.conf import settings

from .base import (
    CardDetails,
    ChargeRequest,
    EventType,
    GatewayError,
    GatewayEvent,
    GatewayResult,
    InvalidSignature,
    InvalidToken,
    RefundRequest,
    TokenizedCard,
)

SIGNATURE_HEADER = "Stripe-Signature"
WEBHOOK_TOLERANCE_SECONDS = 300


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self._http_client = http_client  # a stand-in in tests; else requests with a timeout

    def _client(self, timeout: float) -> stripe.StripeClient:
        http_client = self._http_client or stripe.RequestsClient(timeout=timeout)
        # No retries inside one call: a retry is a reconcile run, with the same idempotency key.
        return stripe.StripeClient(self.secret_key, http_client=http_client, max_network_retries=0)

    # --- cards -------------------------------------------------------------------------------
    def tokenize(self, card: CardDetails) -> TokenizedCard:
        client = self._client(settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS)
        try:
            method = client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": card.number,
                        "exp_month": card.exp_month,
                        "exp_year": card.exp_year,
                        "cvc": card.cvc,
                    },
                }
            )
        except stripe.StripeError as error:
            raise _gateway_error(error) from None
        return self._attach(client, method)

    def describe_token(self, token: str) -> TokenizedCard:
        client = self._client(settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS)
        try:
            method = client.v1.payment_methods.retrieve(token)
        except stripe.InvalidRequestError as error:
            raise InvalidToken("Unknown payment method.") from error
        except stripe.StripeError as error:
            raise _gateway_error(error) from None
        return self._attach(client, method)

    def _attach(self, client: stripe.StripeClient, method: stripe.PaymentMethod) -> TokenizedCard:
        card = method.card
        if card is None:
            raise InvalidToken("Not a card payment method.")
        try:
            customer = client.v1.customers.create(params={"payment_method": method.id})
        except stripe.StripeError as error:
            raise _gateway_error(error) from None
        return TokenizedCard(
            token=f"{customer.id}/{method.id}",
            brand=_BRANDS.get(card.brand, "unknown"),
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            gateway_fingerprint=card.fingerprint or method.id,
        )

    # --- money -------------------------------------------------------------------------------
    def charge(self, **request: Unpack[ChargeRequest]) -> GatewayResult:
        customer_id, _, method_id = request["token"].partition("/")
        key = request["idempotency_key"]
        try:
            intent = self._client(request["timeout"]).v1.payment_intents.create(
                params={
                    "amount": request["amount_cents"],
                    "currency": request["currency"].lower(),
                    "customer": customer_id,
                    "payment_method": method_id,
                    "confirm": True,
                    "off_session": True,
                    "metadata": {"payment_id": key},
                },
                options={"idempotency_key": f"charge-{key}"},
            )
        except stripe.CardError as error:
            body = _error_body(error)
            intent_id = str((body.get("payment_intent") or {}).get("id") or "")
            return GatewayResult(
                succeeded=False, gateway_reference=intent_id, failure_code=_failure_code(body)
            )
        except stripe.StripeError as error:
            raise _gateway_error(error) from None
        if intent.status == "succeeded":
            return GatewayResult(succeeded=True, gateway_reference=intent.id)
        if intent.status == "processing":
            raise GatewayError("Stripe is still processing the payment; a webhook will settle it.")
        code: str | None
        if intent.status == "requires_action":
            # An off-session charge cannot ask the customer for 3-D Secure.
            code = "authentication_required"
        else:
            last_error = intent.last_payment_error
            code = (last_error.decline_code or last_error.code) if last_error else None
        return GatewayResult(
            succeeded=False, gateway_reference=intent.id, failure_code=code or "card_declined"
        )

    def refund(self, **request: Unpack[RefundRequest]) -> GatewayResult:
        key = request["idempotency_key"]
        try:
            refund = self._client(request["timeout"]).v1.refunds.create(
                params={
                    "payment_intent": request["gateway_reference"],
                    "amount": request["amount_cents"],
                    "metadata": {"payment_id": key},
                },
                options={"idempotency_key": f"refund-{key}"},
            )
        except stripe.StripeError as error:
            raise _gateway_error(error) from None
        if refund.status == "succeeded":
            return GatewayResult(succeeded=True, gateway_reference=refund.id)
        if refund.status in ("failed", "canceled"):
            return GatewayResult(
                succeeded=False,
                gateway_reference=refund.id,
                failure_code=refund.failure_reason or "refund_failed",
            )
        raise GatewayError("Stripe is still processing the refund; a webhook will settle it.")

    # --- webhooks ----------------------------------------------------------------------------
    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        if not self.webhook_secret:
            raise InvalidSignature("STRIPE_WEBHOOK_SECRET is not set.")
        try:
            payload = raw_body.decode()
            stripe.WebhookSignature.verify_header(
                payload,
                headers.get(SIGNATURE_HEADER),
                self.webhook_secret,
                WEBHOOK_TOLERANCE_SECONDS,
            )
            body = json.loads(payload)
            obj: dict[str, Any] = body["data"]["object"]
            event_id, raw_type = str(body["id"]), str(body["type"])
            metadata = obj.get("metadata") or {}
            payment_id = uuid.UUID(metadata["payment_id"]) if metadata.get("payment_id") else None
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
            raise InvalidSignature("The Stripe signature does not match.") from error
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidSignature("The webhook body is not a Stripe event.") from error
        event_type, failure_code = _normalize(raw_type, obj)
        return GatewayEvent(
            event_id=event_id,
            type=event_type,
            payment_id=payment_id,
            gateway_reference=str(obj.get("id") or ""),
            failure_code=failure_code,
            raw_type=raw_type,
        )


_BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "amex": "amex",
    "discover": "discover",
    "diners": "diners",
    "jcb": "jcb",
    "unionpay": "unionpay",
}


def _normalize(raw_type: str, obj: dict[str, Any]) -> tuple[EventType, str | None]:
    if raw_type == "payment_intent.succeeded":
        return "payment.succeeded", None
    if raw_type == "payment_intent.payment_failed":
        return "payment.failed", _failure_code(obj.get("last_payment_error") or {})
    if raw_type in ("refund.created", "refund.updated"):
        if obj.get("status") == "succeeded":
            return "payment.refunded", None
        if obj.get("status") in ("failed", "canceled"):
            return "payment.failed", str(obj.get("failure_reason") or "refund_failed")
    return "ignored", None


def _error_body(error: stripe.StripeError) -> dict[str, Any]:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else {}


def _failure_code(error: dict[str, Any]) -> str:
    code = str(error.get("code") or "card_declined")
    decline_code = error.get("decline_code")
    if code == "card_declined" and decline_code == "insufficient_funds":
        return "insufficient_funds"
    return code


def _gateway_error(error: stripe.StripeError) -> GatewayError:
    # The Stripe message names the failure, never the card; the request id helps support.
    return GatewayError(f"Stripe: {type(error).__name__} (request {error.request_id})")


def from_settings() -> StripeGateway:
    return StripeGateway(
        secret_key=settings.STRIPE_SECRET_KEY, webhook_secret=settings.STRIPE_WEBHOOK_SECRET
    )
