"""The built-in test gateway: deterministic, no network (the default outside production).

It answers by card number as API.md lists: `4000000000000002` → `card_declined`,
`4000000000009995` → `insufficient_funds`, `4000000000000119` → `processing_error`,
`4000000000000077` → succeeds after SLOW_CARD_DELAY_SECONDS (a slow gateway, for the live worker
test and the load test; a call whose timeout is shorter fails as a gateway timeout once that
timeout has passed, and the payment stays pending, as with a real gateway); any other valid
number succeeds. Like Stripe's test tokens, its token carries the outcome the card will have (and
the safe details: brand, last4, expiry, a keyed fingerprint), so the number itself is never kept
anywhere: `tok_test.<outcome>.<brand>.<last4>.<mm>.<yyyy>.<fp>`. Charges and refunds are
idempotent by construction: the reference is derived from the key.

Webhooks are signed `X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with
`PAYMENT_WEBHOOK_SECRET`, accepted for five minutes. Body:
`{"id": "evt_…", "type": "payment.succeeded|payment.failed|payment.refunded",
  "data": {"payment_id": "<uuid>", "gateway_reference": "…", "failure_code": null}}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, Unpack, cast

from django.conf import settings

from payments.cards import brand_from_number

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

SUCCEEDED = "ok"
SLOW = "slow"
# How long the slow card's charge takes before it succeeds (tests/test_workers.py, bench/load.py).
SLOW_CARD_DELAY_SECONDS = 5.0
OUTCOME_BY_NUMBER = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000119": "processing_error",
    "4000000000000077": SLOW,
}
OUTCOMES = (SUCCEEDED, *OUTCOME_BY_NUMBER.values())
SIGNATURE_HEADER = "X-Signature"
WEBHOOK_TOLERANCE_SECONDS = 300
EVENT_TYPES: tuple[EventType, ...] = ("payment.succeeded", "payment.failed", "payment.refunded")


def sign(raw_body: bytes, *, timestamp: int, secret: str) -> str:
    """The `X-Signature` header value for a body (used by tests and to try webhooks locally)."""
    signed = f"{timestamp}.".encode() + raw_body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class TestGateway:
    name = "test"
    __test__ = False  # not a pytest test class

    def __init__(self, *, webhook_secret: str) -> None:
        self.webhook_secret = webhook_secret

    # --- cards -------------------------------------------------------------------------------
    def tokenize(self, card: CardDetails) -> TokenizedCard:
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

    def describe_token(self, token: str) -> TokenizedCard:
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

    # --- money -------------------------------------------------------------------------------
    def charge(self, **request: Unpack[ChargeRequest]) -> GatewayResult:
        token, timeout = request["token"], request["timeout"]
        try:
            self.describe_token(token)
        except InvalidToken as error:
            raise GatewayError("The test gateway does not know this token.") from error
        outcome = token.split(".")[1]
        reference = f"ch_test_{request['idempotency_key']}"
        if outcome == SLOW:
            if timeout < SLOW_CARD_DELAY_SECONDS:
                time.sleep(timeout)
                raise GatewayError(f"The test gateway did not answer within {timeout:g} s.")
            time.sleep(SLOW_CARD_DELAY_SECONDS)
            return GatewayResult(succeeded=True, gateway_reference=reference)
        if outcome == SUCCEEDED:
            return GatewayResult(succeeded=True, gateway_reference=reference)
        return GatewayResult(succeeded=False, gateway_reference=reference, failure_code=outcome)

    def refund(self, **request: Unpack[RefundRequest]) -> GatewayResult:
        if not request["gateway_reference"].startswith("ch_test_"):
            raise GatewayError("The test gateway does not know this charge.")
        reference = f"re_test_{request['idempotency_key']}"
        return GatewayResult(succeeded=True, gateway_reference=reference)

    # --- webhooks ----------------------------------------------------------------------------
    def verify_webhook(self, *, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        timestamp, signatures = _parse_signature_header(headers.get(SIGNATURE_HEADER, ""))
        if abs(time.time() - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
            raise InvalidSignature("The signature is too old.")
        expected = sign(raw_body, timestamp=timestamp, secret=self.webhook_secret).split("v1=")[1]
        if not any(hmac.compare_digest(expected, given) for given in signatures):
            raise InvalidSignature("The signature does not match.")
        return _parse_event(raw_body)


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
        event_id = str(body["id"])
        raw_type = str(body["type"])
        data = cast(dict[str, Any], body.get("data") or {})
        payment_id = uuid.UUID(str(data["payment_id"])) if data.get("payment_id") else None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidSignature("The webhook body is not a valid event.") from error
    event_type: EventType = "ignored"
    for known in EVENT_TYPES:
        if raw_type == known:
            event_type = known
    failure_code = data.get("failure_code")
    return GatewayEvent(
        event_id=event_id,
        type=event_type,
        payment_id=payment_id,
        gateway_reference=str(data.get("gateway_reference") or ""),
        failure_code=str(failure_code) if failure_code else None,
        raw_type=raw_type,
    )


def from_settings() -> TestGateway:
    return TestGateway(webhook_secret=settings.PAYMENT_WEBHOOK_SECRET)
