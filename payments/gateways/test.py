"""The built-in test gateway: deterministic, no network (the default outside production).

It answers by card number as API.md lists: `4000000000000002` → `card_declined`,
`4000000000009995` → `insufficient_funds`, `4000000000000119` → `processing_error`,
`4000000000000077` → succeeds after SLOW_CARD_DELAY_SECONDS (a slow gateway, for the live worker
test and the load test; a call whose timeout is shorter fails as a gateway timeout once that
timeout has passed, and the payment stays pending, as with a real gateway), `4000002500003155`
→ needs 3-D Secure (below); any other valid number succeeds. Like Stripe's test tokens, its
token carries the outcome the card will have (and the safe details: brand, last4, expiry, a
keyed fingerprint), so the number itself is never kept anywhere:
`tok_test.<outcome>.<brand>.<last4>.<mm>.<yyyy>.<fp>`. Charges and refunds are idempotent by
construction: the reference is derived from the key. Customers are `cus_test_<user id>`.

Strong customer authentication mirrors Stripe: charging the `4000002500003155` card with the
customer present answers `requires_action` (reference `pi_test_<key>`, client secret
`pi_test_<key>_secret_test`) and the payment stays pending; without the customer it fails
`authentication_required`. The customer "authenticates" by the confirm step: a signed test
webhook `payment.succeeded` for that payment, `confirm_webhook_body(payment_id, reference)`
signed with `sign()`. Looking the charge up meanwhile still says `requires_action`; canceling it
(`cancel_charge`, the customer gave up or pays with another card) answers failed `canceled`.

Webhooks are signed `X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with
`PAYMENT_WEBHOOK_SECRET`, accepted for five minutes. Body:
`{"id": "evt_…", "type": "<an EventType>", "data": {"payment_id": "<uuid>",
  "gateway_reference": "…", "failure_code": null, "payment_intent"?: "…", "amount_cents"?: 0,
  "currency"?: "USD", "customer"?: "…"}}`. Other types are ignored; a malformed `payment_id`
parses as None.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any, Unpack, get_args

from django.conf import settings

from payments.cards import brand_from_number

from .base import (
    CardDetails,
    ChargeLookup,
    ChargeRequest,
    EventType,
    GatewayError,
    GatewayEvent,
    GatewayResult,
    InvalidSignature,
    InvalidToken,
    RefundLookup,
    RefundRequest,
    SetupIntentResult,
    TokenizedCard,
)

SUCCEEDED = "ok"
SLOW = "slow"
SCA = "sca"
# How long the slow card's charge takes before it succeeds (tests/test_workers.py, bench/load.py).
SLOW_CARD_DELAY_SECONDS = 5.0
OUTCOME_BY_NUMBER = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": "processing_error",
    "4000000000000077": SLOW,
    "4000002500003155": SCA,
}
OUTCOMES = (SUCCEEDED, *OUTCOME_BY_NUMBER.values())
SIGNATURE_HEADER = "X-Signature"
WEBHOOK_TOLERANCE_SECONDS = 300
EVENT_TYPES: tuple[EventType, ...] = tuple(t for t in get_args(EventType) if t != "ignored")
# A charge's reference: `pi_test_<key>` when it needed authentication, else `ch_test_<key>`.
CHARGE_PREFIXES = ("ch_test_", "pi_test_")


def sign(raw_body: bytes, *, timestamp: int, secret: str) -> str:
    """The `X-Signature` header value for a body (used by tests and to try webhooks locally)."""
    signed = f"{timestamp}.".encode() + raw_body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def confirm_webhook_body(payment_id: uuid.UUID | str, reference: str) -> bytes:
    """The webhook that completes a charge waiting for authentication (the `4000002500003155`
    card): what Stripe sends once the customer has passed 3-D Secure. Sign it with `sign()` and
    POST it to `payments/webhooks/test/`. The event id is derived from the payment, so sending
    it twice is a replay."""
    return json.dumps(
        {
            "id": f"evt_test_confirm_{payment_id}",
            "type": "payment.succeeded",
            "data": {
                "payment_id": str(payment_id),
                "gateway_reference": reference,
                "payment_intent": reference,
                "failure_code": None,
            },
        }
    ).encode()


class TestGateway:
    name = "test"
    __test__ = False  # not a pytest test class

    def __init__(self, *, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

    # --- customers and cards -------------------------------------------------------------------
    def customer_create(self, *, email: str, user_id: str) -> str:
        return f"cus_test_{user_id}"

    def setup_intent_create(self, *, customer: str) -> SetupIntentResult:
        intent_id = f"seti_test_{secrets.token_hex(12)}"
        return SetupIntentResult(
            id=intent_id, client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}"
        )

    def tokenize(self, card: CardDetails, *, customer: str = "") -> TokenizedCard:
        outcome = OUTCOME_BY_NUMBER.get(card.number, SUCCEEDED)
        brand = brand_from_number(card.number)
        fingerprint = hmac.new(
            self.webhook_secret.encode(), f"card:{card.number}".encode(), hashlib.sha256
        ).hexdigest()[:24]
        token = ".".join(
            [
                "tok_test",
                outcome,
                brand,
                card.number[-4:],
                f"{card.exp_month:02d}",
                str(card.exp_year),
                fingerprint,
            ]
        )
        return self.describe_token(token)

    def attach(self, *, token: str, customer: str) -> TokenizedCard:
        return self.describe_token(token)

    def detach(self, *, token: str) -> None:
        return None  # nothing is kept here: a detached card is simply never charged again

    def describe_token(self, token: str) -> TokenizedCard:
        """The card a token stands for. Raises InvalidToken."""
        parts = token.split(".")
        if len(parts) != 7 or parts[0] != "tok_test" or parts[1] not in OUTCOMES:
            raise InvalidToken("Unknown token.")
        _, _, brand, last4, month, year, fingerprint = parts
        if not (last4.isdigit() and len(last4) == 4 and month.isdigit() and year.isdigit()):
            raise InvalidToken("Unknown token.")
        return TokenizedCard(
            token=token,
            brand=brand,
            last4=last4,
            exp_month=int(month),
            exp_year=int(year),
            gateway_fingerprint=fingerprint,
        )

    # --- money ---------------------------------------------------------------------------------
    def charge(self, **request: Unpack[ChargeRequest]) -> GatewayResult:
        outcome = self._outcome(request["token"])
        key, timeout = request["idempotency_key"], request["timeout"]
        amounts: dict[str, Any] = {
            "amount_cents": request["amount_cents"],
            "currency": request["currency"],
        }
        if outcome == SLOW:
            if timeout < SLOW_CARD_DELAY_SECONDS:
                time.sleep(timeout)
                raise GatewayError(f"The test gateway did not answer within {timeout:g} s.")
            time.sleep(SLOW_CARD_DELAY_SECONDS)
        if outcome == SCA and not request.get("customer_present", True):
            # A merchant-initiated charge cannot ask for 3-D Secure: Stripe's 402.
            return GatewayResult(False, f"pi_test_{key}", "authentication_required", **amounts)
        return _charge_result(outcome, key, **amounts)

    def refund(self, **request: Unpack[RefundRequest]) -> GatewayResult:
        if not request["gateway_reference"].startswith(CHARGE_PREFIXES):
            raise GatewayError("The test gateway does not know this charge.")
        return GatewayResult(
            succeeded=True,
            gateway_reference=f"re_test_{request['idempotency_key']}",
            amount_cents=request["amount_cents"],
            currency=request["currency"],
        )

    def cancel_charge(
        self, *, gateway_reference: str, idempotency_key: str, timeout: float
    ) -> GatewayResult:
        """A charge waiting for authentication (`pi_test_…`) is canceled. Any other charge was
        decided when it was made, and without its card this gateway cannot tell how: unknown."""
        if gateway_reference == f"pi_test_{idempotency_key}":
            return GatewayResult(False, gateway_reference, "canceled")
        raise GatewayError("The test gateway has no charge waiting for the customer here.")

    def lookup_charge(self, **lookup: Unpack[ChargeLookup]) -> GatewayResult:
        """The charge as it stands now: computed from the token like `charge` (the slow card
        has finished by now; a card waiting for authentication still waits: the webhook
        settles it)."""
        return _charge_result(self._outcome(lookup["token"]), lookup["idempotency_key"])

    def lookup_refund(self, **lookup: Unpack[RefundLookup]) -> GatewayResult:
        if not lookup["charge_reference"].startswith(CHARGE_PREFIXES):
            raise GatewayError("The test gateway does not know this charge.")
        return GatewayResult(
            succeeded=True, gateway_reference=f"re_test_{lookup['idempotency_key']}"
        )

    def _outcome(self, token: str) -> str:
        try:
            self.describe_token(token)
        except InvalidToken as error:
            raise GatewayError("The test gateway does not know this token.") from error
        return token.split(".")[1]

    # --- webhooks ------------------------------------------------------------------------------
    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        timestamp, signatures = _parse_signature_header(headers.get(SIGNATURE_HEADER, ""))
        if abs(time.time() - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
            raise InvalidSignature("The signature is too old.")
        expected = sign(raw_body, timestamp=timestamp, secret=self.webhook_secret).split("v1=")[1]
        if not any(hmac.compare_digest(expected, given) for given in signatures):
            raise InvalidSignature("The signature does not match.")
        return _parse_event(raw_body)


def _charge_result(outcome: str, key: str, **amounts: Any) -> GatewayResult:
    if outcome == SCA:
        reference = f"pi_test_{key}"
        return GatewayResult(
            succeeded=False,
            gateway_reference=reference,
            requires_action=True,
            client_secret=f"{reference}_secret_test",
            **amounts,
        )
    reference = f"ch_test_{key}"
    if outcome in (SUCCEEDED, SLOW):
        return GatewayResult(succeeded=True, gateway_reference=reference, **amounts)
    return GatewayResult(
        succeeded=False, gateway_reference=reference, failure_code=outcome, **amounts
    )


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("The signature header is missing or malformed.")
    return timestamp, signatures


def _parse_event(raw_body: bytes) -> GatewayEvent:
    try:
        body = json.loads(raw_body)
        event_id, raw_type = str(body["id"]), str(body["type"])
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidSignature("The webhook body is not a valid event.") from error
    event_type: EventType = "ignored"
    for known in EVENT_TYPES:
        if raw_type == known:
            event_type = known
    failure_code = data.get("failure_code")
    amount = data.get("amount_cents")
    currency = data.get("currency")
    return GatewayEvent(
        event_id=event_id,
        type=event_type,
        payment_id=_uuid_or_none(data.get("payment_id")),
        gateway_reference=str(data.get("gateway_reference") or ""),
        failure_code=str(failure_code) if failure_code else None,
        raw_type=raw_type,
        payment_intent=str(data.get("payment_intent") or ""),
        amount_cents=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=currency.upper() if isinstance(currency, str) and currency else None,
        customer=str(data.get("customer") or ""),
    )


def _uuid_or_none(value: object) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def from_settings() -> TestGateway:
    return TestGateway(webhook_secret=settings.PAYMENT_WEBHOOK_SECRET)
