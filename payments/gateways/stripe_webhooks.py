"""Stripe webhooks: the signature check and the normalization into `GatewayEvent`.

Only a bad signature, a body that is not JSON or not an event is `InvalidSignature` (a 400 makes
Stripe retry for days). Anything else parses: an event about something we do not handle is
`ignored`, and a missing or malformed `metadata.payment_id` gives `payment_id=None` (the service
logs it and answers 200).

- `payment_intent.succeeded` → `payment.succeeded`; `payment_intent.payment_failed` →
  `payment.failed` (the last error's code); `payment_intent.requires_action` →
  `payment.requires_action`; `payment_intent.canceled` → `payment.failed` (`canceled`).
- `refund.created` / `refund.updated` of ours (`metadata.payment_id`): succeeded →
  `payment.refunded`, failed or canceled → `refund.failed` (`failure_reason`), pending → ignored.
  `refund.failed` → `refund.failed`.
- A refund without our `metadata.payment_id` (made in the dashboard), succeeded →
  `refund.external` (the `re_…`, its PaymentIntent, amount and currency); failed later →
  `refund.failed` with `payment_id` None (the service matches the `re_…` it recorded).
- `charge.refunded` → its newest refund, as `refund.updated` gives it. Since API version
  2022-11-15 a Charge no longer carries `refunds` (unless expanded): then it is ignored, and the
  `refund.*` events of the same refund carry it.
- `charge.dispute.created` → `dispute.created` (the `dp_…`, reason); `charge.dispute.closed` →
  `dispute.closed` (status: `won`, `lost`, …).
- `setup_intent.succeeded` → `setup.succeeded` (the `pm_…` and its customer).

Subscribe the webhook endpoint to these events (README, "Trying Stripe for real").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import stripe

from .base import EventType, GatewayEvent, InvalidSignature
from .stripe_objects import decline_code, money, object_id, refund_failure_code
from .stripe_objects import payment_id as metadata_payment_id

SIGNATURE_HEADER = "Stripe-Signature"
WEBHOOK_TOLERANCE_SECONDS = 300


def parse_event(*, headers: Mapping[str, str], raw_body: bytes, secret: str) -> GatewayEvent:
    if not secret:
        raise InvalidSignature("STRIPE_WEBHOOK_SECRET is not set.")
    try:
        payload = raw_body.decode()
        stripe.WebhookSignature.verify_header(
            payload, headers.get(SIGNATURE_HEADER), secret, WEBHOOK_TOLERANCE_SECONDS
        )
        body = json.loads(payload)
        if not isinstance(body, dict) or body.get("object", "event") != "event":
            raise TypeError("not an event")
        obj = body["data"]["object"]
        if not isinstance(obj, dict):
            raise TypeError("data.object is not an object")
        event_id, raw_type = str(body["id"]), str(body["type"])
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
        raise InvalidSignature("The Stripe signature does not match.") from error
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidSignature("The webhook body is not a Stripe event.") from error
    return _normalize(event_id, raw_type, obj)


def _normalize(event_id: str, raw_type: str, obj: dict[str, Any]) -> GatewayEvent:
    base = {"event_id": event_id, "raw_type": raw_type, **money(obj)}
    if raw_type.startswith("payment_intent."):
        event_type, code = _INTENT_EVENTS.get(raw_type, ("ignored", None))
        if raw_type == "payment_intent.payment_failed":
            last_error = obj.get("last_payment_error")
            code = decline_code(last_error) if isinstance(last_error, dict) else code
        return GatewayEvent(
            type=event_type,
            payment_id=metadata_payment_id(obj),
            gateway_reference=object_id(obj.get("id")),
            payment_intent=object_id(obj.get("id")),
            failure_code=code,
            **base,
        )
    if raw_type in ("refund.created", "refund.updated", "refund.failed"):
        return _refund_event(event_id, raw_type, obj, failed=raw_type == "refund.failed")
    if raw_type == "charge.refunded":
        refunds = obj.get("refunds")
        listed = refunds.get("data") if isinstance(refunds, dict) else None
        known = [refund for refund in listed or () if isinstance(refund, dict)]
        if not known:
            return GatewayEvent(
                type="ignored", payment_intent=object_id(obj.get("payment_intent")), **base
            )
        newest = max(known, key=lambda refund: refund.get("created") or 0)
        refund = {"payment_intent": obj.get("payment_intent"), **newest}
        return _refund_event(event_id, raw_type, refund, failed=False)
    if raw_type in ("charge.dispute.created", "charge.dispute.closed"):
        created = raw_type == "charge.dispute.created"
        return GatewayEvent(
            type="dispute.created" if created else "dispute.closed",
            gateway_reference=object_id(obj.get("id")),
            payment_intent=object_id(obj.get("payment_intent")),
            failure_code=str(obj.get("reason" if created else "status") or "") or None,
            **base,
        )
    if raw_type == "setup_intent.succeeded":
        return GatewayEvent(
            type="setup.succeeded",
            gateway_reference=object_id(obj.get("payment_method")),
            customer=object_id(obj.get("customer")),
            event_id=event_id,
            raw_type=raw_type,
        )
    return GatewayEvent(type="ignored", **base)


_INTENT_EVENTS: dict[str, tuple[EventType, str | None]] = {
    "payment_intent.succeeded": ("payment.succeeded", None),
    "payment_intent.payment_failed": ("payment.failed", "card_declined"),
    "payment_intent.requires_action": ("payment.requires_action", None),
    "payment_intent.canceled": ("payment.failed", "canceled"),
}


def _refund_event(
    event_id: str, raw_type: str, refund: dict[str, Any], *, failed: bool
) -> GatewayEvent:
    status = refund.get("status")
    metadata = refund.get("metadata")
    ours = isinstance(metadata, dict) and bool(metadata.get("payment_id"))
    event_type: EventType = "ignored"
    code: str | None = None
    if failed or status in ("failed", "canceled"):
        # Ours, or a dashboard refund recorded earlier: the service matches it by reference.
        event_type, code = "refund.failed", refund_failure_code(refund)
    elif status == "succeeded":
        event_type = "payment.refunded" if ours else "refund.external"
    return GatewayEvent(
        event_id=event_id,
        type=event_type,
        payment_id=metadata_payment_id(refund) if ours else None,
        gateway_reference=object_id(refund.get("id")),
        payment_intent=object_id(refund.get("payment_intent")),
        failure_code=code,
        raw_type=raw_type,
        **money(refund),
    )
