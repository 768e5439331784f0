"""Stripe, on the official `stripe` package: Customers, SetupIntents, PaymentMethods,
PaymentIntents and Refunds.

Selected with `PAYMENT_GATEWAY=stripe`, `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET`. Each of
our users has one Stripe Customer (`customer_create`) and every card of theirs is attached to it;
our token is `<customer id>/<payment method id>`. Our Payment id is the idempotency key of every
charge and refund and travels as `metadata.payment_id`, which is how a webhook or a lookup names
the Payment. Checkout charges are customer-present (`off_session=false`): a card that needs
3-D Secure answers `requires_action` with the PaymentIntent's client secret, for Stripe.js.

What Stripe answers to a charge or refund is final (a failed result with a clear code) or
unknown (`GatewayError`: the payment stays pending and is looked up later):

- 402 `card_error` (a decline; off-session `authentication_required`) → failed, the decline code
  (`insufficient_funds`, `expired_card`; reasons never told to a customer → `card_declined`).
- 400/404 `invalid_request_error` → failed, its `code` (`amount_too_small`, `resource_missing`,
  `charge_already_refunded`, `payment_method_unexpected_state`, …).
- 401 → failed `gateway_authentication_failed`; 403 → failed `gateway_permission_denied`.
- 400 `idempotency_error`, 409, 429, 5xx, no connection or a timeout → GatewayError (Stripe's
  client retries 409, 5xx and connection errors twice first, with the same idempotency key).
- PaymentIntent `processing` (or `requires_capture`/`requires_confirmation`) → GatewayError;
  PaymentIntent `requires_action` → `requires_action` with the client secret; a Refund answered
  `pending` (or `requires_action`) → `pending` with its `re_…` (a webhook or a lookup settles it).

Saving a card (`customer_create`, `setup_intent_create`, `tokenize`, `attach`) follows the same
rule: what is final for a charge is `CardRefused(code)` there (a decline, a 400/404 with its
code — the 400 refusing raw card numbers is `raw_card_data_not_allowed` —, 401, 403); an unknown
PaymentMethod is `InvalidToken`; only connection errors, 5xx, 409, 429 are GatewayErrors.

Lookups (`lookup_charge`, `lookup_refund`) read the current object (by id, else by
`metadata.payment_id`) and never create anything. Stripe having no such object (404
`resource_missing`, an empty search or list) is `GatewayNotFound`; any other error while reading
says nothing about the payment: a plain GatewayError. `cancel_charge` cancels a PaymentIntent
waiting for the customer; one that cannot be canceled any more is read and its state returned.
Webhooks are parsed in `stripe_webhooks`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Unpack

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from stripe.params import PaymentIntentCreateParams, RefundCreateParams

from .base import (
    CardDetails,
    CardRefused,
    ChargeLookup,
    ChargeRequest,
    GatewayError,
    GatewayEvent,
    GatewayNotFound,
    GatewayResult,
    InvalidToken,
    RefundLookup,
    RefundRequest,
    SetupIntentResult,
    TokenizedCard,
)
from .stripe_objects import BRANDS, decline_code, intent_result, object_id, refund_result
from .stripe_webhooks import parse_event

# Stripe's own retries reuse the request's idempotency key, so they never move money twice.
MAX_NETWORK_RETRIES = 2
# The refund reasons Stripe accepts; any other reason travels in metadata only.
REFUND_REASONS = frozenset({"requested_by_customer", "duplicate", "fraudulent"})
# Stripe's rule for `statement_descriptor_suffix`.
SUFFIX_MAX_LENGTH = 22
SUFFIX_FORBIDDEN = set("<>\\'\"*")
NOT_CREATED = "not created at the gateway yet"
# Stripe's 400 (no `code`) when the account may not send card numbers from its server.
RAW_CARD_DATA_MESSAGE = "card numbers directly"
RAW_CARD_DATA_NOT_ALLOWED = "raw_card_data_not_allowed"
# What `payment_intents.cancel` answers for an intent that can no longer be canceled.
UNEXPECTED_STATE = "payment_intent_unexpected_state"


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        timeout: float = 10.0,
        statement_descriptor_suffix: str = "",
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        if len(statement_descriptor_suffix) > SUFFIX_MAX_LENGTH or (
            SUFFIX_FORBIDDEN & set(statement_descriptor_suffix)
        ):
            raise ImproperlyConfigured(
                "STRIPE_STATEMENT_DESCRIPTOR_SUFFIX: at most 22 characters, none of < > \\ ' \" *."
            )
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.statement_descriptor_suffix = statement_descriptor_suffix
        # One client (and one connection pool) for the gateway's life. `timeout` bounds each
        # network attempt; the `timeout` arguments of the calls are this same setting.
        self._client = stripe.StripeClient(
            secret_key,
            http_client=http_client or stripe.RequestsClient(timeout=timeout),
            max_network_retries=MAX_NETWORK_RETRIES,
        )

    # --- customers and cards -------------------------------------------------------------------
    def customer_create(self, *, email: str, user_id: str) -> str:
        try:
            customer = self._client.v1.customers.create(
                params={"email": email, "metadata": {"user_id": user_id}},
                # A retry after a lost answer finds the same Customer, not a second one.
                options={"idempotency_key": f"customer-{user_id}"},
            )
        except stripe.StripeError as error:
            raise _card_refusal(error) from None
        return customer.id

    def setup_intent_create(self, *, customer: str) -> SetupIntentResult:
        try:
            intent = self._client.v1.setup_intents.create(
                params={
                    "customer": customer,
                    "usage": "off_session",
                    "allowed_payment_method_types": ["card"],
                }
            )
        except stripe.StripeError as error:
            raise _card_refusal(error) from None
        return SetupIntentResult(id=intent.id, client_secret=intent.client_secret or "")

    def tokenize(self, card: CardDetails, *, customer: str) -> TokenizedCard:
        try:
            method = self._client.v1.payment_methods.create(
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
            raise _card_refusal(error) from None
        return self._attach(method.to_dict(), customer)

    def attach(self, *, token: str, customer: str) -> TokenizedCard:
        if not token.startswith("pm_") or "/" in token:
            raise InvalidToken("Not a Stripe PaymentMethod id.")
        try:
            method = self._client.v1.payment_methods.retrieve(token)
        except stripe.StripeError as error:
            raise _card_refusal(error, missing="Unknown payment method.") from None
        return self._attach(method.to_dict(), customer)

    def _attach(self, method: dict[str, Any], customer: str) -> TokenizedCard:
        card = method.get("card")
        if not isinstance(card, dict):
            raise InvalidToken("Not a card payment method.")
        owner = object_id(method.get("customer"))
        if owner and owner != customer:
            # Someone else's card: never ours to charge.
            raise InvalidToken("The payment method belongs to another customer.")
        if not owner:
            try:
                self._client.v1.payment_methods.attach(method["id"], params={"customer": customer})
            except stripe.StripeError as error:
                # Used once without a customer, or detached: `payment_method_unexpected_state`
                # (Stripe never reuses it: the card must be added again).
                raise _card_refusal(error, missing="Unknown payment method.") from None
        return TokenizedCard(
            token=f"{customer}/{method['id']}",
            brand=BRANDS.get(str(card.get("brand")), "unknown"),
            last4=str(card.get("last4") or ""),
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
            gateway_fingerprint=str(card.get("fingerprint") or method["id"]),
        )

    def detach(self, *, token: str) -> None:
        _, _, method_id = token.rpartition("/")
        try:
            self._client.v1.payment_methods.detach(method_id)
        except stripe.InvalidRequestError:
            return  # unknown (404) or not attached (400): it cannot be charged either way
        except stripe.StripeError as error:
            raise _gateway_error(error) from None

    # --- money ---------------------------------------------------------------------------------
    def charge(self, **request: Unpack[ChargeRequest]) -> GatewayResult:
        customer_id, _, method_id = request["token"].rpartition("/")
        key = request["idempotency_key"]
        params: PaymentIntentCreateParams = {
            "amount": request["amount_cents"],
            "currency": request["currency"].lower(),
            "customer": customer_id,
            "payment_method": method_id,
            # Cards only, so confirming never needs a redirect (`return_url`).
            "allowed_payment_method_types": ["card"],
            "confirm": True,
            # Customer present: the bank may ask for 3-D Secure (`requires_action`).
            "off_session": not request["customer_present"],
            "metadata": {**request["metadata"], "payment_id": key},
        }
        if request["description"]:
            params["description"] = request["description"]
        if self.statement_descriptor_suffix:
            params["statement_descriptor_suffix"] = self.statement_descriptor_suffix
        if request["receipt_email"]:
            params["receipt_email"] = request["receipt_email"]
        try:
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": f"charge-{key}"}
            )
        except stripe.StripeError as error:
            return _final_result(error, key=key)
        result = intent_result(intent.to_dict())
        if result.requires_action and not request["customer_present"]:
            # Nobody is there to authenticate a merchant-initiated charge.
            return replace(
                result,
                requires_action=False,
                client_secret="",
                failure_code="authentication_required",
            )
        return result

    def refund(self, **request: Unpack[RefundRequest]) -> GatewayResult:
        key = request["idempotency_key"]
        reason = request["reason"]
        metadata = {**request["metadata"], "payment_id": key}
        params: RefundCreateParams = {
            "payment_intent": request["gateway_reference"],
            "amount": request["amount_cents"],
        }
        if reason in REFUND_REASONS:
            params["reason"] = reason
        elif reason:
            metadata["reason"] = reason
        params["metadata"] = metadata
        try:
            refund = self._client.v1.refunds.create(
                params=params, options={"idempotency_key": f"refund-{key}"}
            )
        except stripe.StripeError as error:
            return _final_result(error, key=key)
        return refund_result(refund.to_dict(), accepted=True)

    def cancel_charge(
        self, *, gateway_reference: str, idempotency_key: str, timeout: float
    ) -> GatewayResult:
        if not gateway_reference.startswith("pi_"):
            raise GatewayError("Stripe: no PaymentIntent to cancel.")
        try:
            intent = self._client.v1.payment_intents.cancel(
                gateway_reference,
                params={"cancellation_reason": "abandoned"},
                options={"idempotency_key": f"cancel-{idempotency_key}"},
            )
        except stripe.InvalidRequestError as error:
            if error.code != UNEXPECTED_STATE:
                raise _gateway_error(error, key=idempotency_key) from None
            # Succeeded (or already canceled) meanwhile: what it is now is the answer.
            try:
                intent = self._client.v1.payment_intents.retrieve(gateway_reference)
            except stripe.StripeError as retrieve_error:
                raise _gateway_error(retrieve_error, key=idempotency_key) from None
        except stripe.StripeError as error:
            raise _gateway_error(error, key=idempotency_key) from None
        return intent_result(intent.to_dict())

    def lookup_charge(self, **lookup: Unpack[ChargeLookup]) -> GatewayResult:
        reference, key = lookup["gateway_reference"], lookup["idempotency_key"]
        if reference.startswith("pi_"):
            intent = _read("charge", lambda: self._client.v1.payment_intents.retrieve(reference))
        else:
            intent = _read("charge", lambda: self._search_intent(key))
        return intent_result(intent)

    def _search_intent(self, key: str) -> dict[str, Any] | None:
        query = f"metadata['payment_id']:'{_quote(key)}'"
        found = self._client.v1.payment_intents.search(params={"query": query})
        intents = [item.to_dict() for item in found.data]
        # One create call per key: several would be a bug; then the succeeded one counts.
        return max(
            intents,
            key=lambda intent: (intent.get("status") == "succeeded", intent.get("created", 0)),
            default=None,
        )

    def lookup_refund(self, **lookup: Unpack[RefundLookup]) -> GatewayResult:
        reference, key = lookup["gateway_reference"], lookup["idempotency_key"]
        charge_reference = lookup["charge_reference"]
        if reference.startswith("re_"):
            refund = _read("refund", lambda: self._client.v1.refunds.retrieve(reference))
        elif charge_reference:
            refund = _read("refund", lambda: self._list_refund(charge_reference, key))
        else:
            raise GatewayError("Stripe: a refund of a charge Stripe never named.")
        return refund_result(refund)

    def _list_refund(self, charge_reference: str, key: str) -> dict[str, Any] | None:
        listed = self._client.v1.refunds.list(
            params={"payment_intent": charge_reference, "limit": 100}
        )
        refunds = [item.to_dict() for item in listed.data]
        return next(
            (item for item in refunds if (item.get("metadata") or {}).get("payment_id") == key),
            None,
        )

    # --- webhooks ------------------------------------------------------------------------------
    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        return parse_event(headers=headers, raw_body=raw_body, secret=self.webhook_secret)


def _final_code(error: stripe.StripeError) -> str | None:
    """The code of an error that is final (402, 400/404, 401, 403); None when the outcome is
    unknown: IdempotencyError, RateLimitError (429), APIError (409, 5xx), APIConnectionError."""
    body = _error_body(error)
    if isinstance(error, stripe.CardError):
        return decline_code(body)
    if isinstance(error, stripe.InvalidRequestError):
        if body.get("code"):
            return str(body["code"])
        if RAW_CARD_DATA_MESSAGE in str(body.get("message") or ""):
            return RAW_CARD_DATA_NOT_ALLOWED
        return "invalid_request"
    if isinstance(error, stripe.AuthenticationError):
        return "gateway_authentication_failed"
    if isinstance(error, stripe.PermissionError):
        return "gateway_permission_denied"
    return None


def _final_result(error: stripe.StripeError, *, key: str) -> GatewayResult:
    """A charge or refund Stripe refused: final (a failed result) or unknown (GatewayError)."""
    code = _final_code(error)
    if code is None:
        raise _gateway_error(error, key=key) from None
    intent = _error_body(error).get("payment_intent")
    reference = object_id(intent) if isinstance(intent, dict) else ""
    return GatewayResult(False, reference, code)


def _card_refusal(
    error: stripe.StripeError, *, missing: str = ""
) -> CardRefused | InvalidToken | GatewayError:
    """Saving a card failed: refused for good (CardRefused with the code), an unknown payment
    method (InvalidToken, when `missing` says what is missing), or unknown (GatewayError)."""
    code = _final_code(error)
    if code is None:
        return _gateway_error(error)
    if missing and code == "resource_missing":
        return InvalidToken(missing)
    return CardRefused(code)


def _error_body(error: stripe.StripeError) -> dict[str, Any]:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else {}


def _read(
    what: str, fetch: Callable[[], stripe.StripeObject | dict[str, Any] | None]
) -> dict[str, Any]:
    """A lookup's read: what Stripe has now. Not found (404 `resource_missing`, or no search or
    list result: not created yet, or not searchable yet) is GatewayNotFound; any other error
    says nothing about the payment: a plain GatewayError."""
    try:
        found = fetch()
    except stripe.InvalidRequestError as error:
        if error.code == "resource_missing":
            raise GatewayNotFound(f"Stripe: the {what} is {NOT_CREATED}.") from None
        raise _gateway_error(error) from None
    except stripe.StripeError as error:
        raise _gateway_error(error) from None
    if found is None:
        raise GatewayNotFound(f"Stripe: the {what} is {NOT_CREATED} (or not searchable yet).")
    return found.to_dict() if isinstance(found, stripe.StripeObject) else found


def _quote(value: str) -> str:
    """A string value inside a Stripe search query ('…')."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _gateway_error(error: stripe.StripeError, *, key: str = "") -> GatewayError:
    # The Stripe message names the failure, never the card; the request id helps support.
    status = f" HTTP {error.http_status}" if error.http_status else ""
    about = f" for {key}" if key else ""
    return GatewayError(
        f"Stripe: {type(error).__name__}{status}{about} (request {error.request_id})"
    )


@functools.lru_cache(maxsize=4)
def _gateway(secret_key: str, webhook_secret: str, timeout: float, suffix: str) -> StripeGateway:
    return StripeGateway(
        secret_key=secret_key,
        webhook_secret=webhook_secret,
        timeout=timeout,
        statement_descriptor_suffix=suffix,
    )


def from_settings() -> StripeGateway:
    """One gateway (so one client and connection pool) per process and configuration."""
    return _gateway(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_WEBHOOK_SECRET,
        float(settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS),
        getattr(settings, "STRIPE_STATEMENT_DESCRIPTOR_SUFFIX", ""),
    )
