"""Reading Stripe objects (PaymentIntent, Refund, error bodies) as plain dicts: one rule for the
gateway's answers, its lookups and its webhooks."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .base import GatewayError, GatewayResult

BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "amex": "amex",
    "discover": "discover",
    "diners": "diners",
    "jcb": "jcb",
    "unionpay": "unionpay",
}
# Declines Stripe advises never to explain to the customer (card testing): a generic decline.
HIDDEN_DECLINES = frozenset(
    {
        "fraudulent",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "merchant_blacklist",
        "restricted_card",
        "security_violation",
        "generic_decline",
    }
)


def object_id(value: Any) -> str:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def money(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`amount_cents` and `currency` (upper case) of an object that has them, else None."""
    amount, currency = obj.get("amount"), obj.get("currency")
    return {
        "amount_cents": amount
        if isinstance(amount, int) and not isinstance(amount, bool)
        else None,
        "currency": currency.upper() if isinstance(currency, str) and currency else None,
    }


def payment_id(obj: Mapping[str, Any]) -> uuid.UUID | None:
    """Our Payment id from the object's `metadata.payment_id`; None when absent or malformed."""
    metadata = obj.get("metadata")
    value = metadata.get("payment_id") if isinstance(metadata, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def decline_code(error: Mapping[str, Any]) -> str:
    """The code a customer may be told: the issuer's decline code when it is explainable
    (`insufficient_funds`, `expired_card`, …), else Stripe's error code (`card_declined`,
    `authentication_required`, `processing_error`, …)."""
    code = str(error.get("code") or "card_declined")
    declined = error.get("decline_code")
    if code == "card_declined" and declined and declined not in HIDDEN_DECLINES:
        return str(declined)
    return code


def refund_failure_code(refund: Mapping[str, Any]) -> str:
    if refund.get("failure_reason"):
        return str(refund["failure_reason"])
    return "canceled" if refund.get("status") == "canceled" else "refund_failed"


def intent_result(intent: Mapping[str, Any]) -> GatewayResult:
    """A PaymentIntent's state as our outcome (create answers and lookups alike)."""
    status, reference = intent.get("status"), object_id(intent)
    amounts = money(intent)
    if status == "succeeded":
        return GatewayResult(succeeded=True, gateway_reference=reference, **amounts)
    if status == "requires_action":
        return GatewayResult(
            succeeded=False,
            gateway_reference=reference,
            requires_action=True,
            client_secret=str(intent.get("client_secret") or ""),
            **amounts,
        )
    if status == "canceled":
        return GatewayResult(False, reference, "canceled", **amounts)
    if status == "requires_payment_method":
        last_error = intent.get("last_payment_error")
        code = decline_code(last_error) if isinstance(last_error, Mapping) else "card_declined"
        return GatewayResult(False, reference, code, **amounts)
    # processing, requires_confirmation, requires_capture: not decided (a webhook will say).
    raise GatewayError(f"Stripe: the PaymentIntent is {status}; the outcome is not known yet.")


def refund_result(refund: Mapping[str, Any], *, accepted: bool = False) -> GatewayResult:
    """A Refund's state as our outcome. `pending` (or `requires_action`) is not decided: the
    answer to the create call (`accepted`) says so (`pending=True` with the `re_…`, settled
    later by a webhook or a lookup); a lookup of it cannot tell yet (GatewayError)."""
    status, reference = refund.get("status"), object_id(refund)
    if status == "succeeded":
        return GatewayResult(succeeded=True, gateway_reference=reference, **money(refund))
    if status in ("failed", "canceled"):
        return GatewayResult(False, reference, refund_failure_code(refund), **money(refund))
    if accepted and reference and status in ("pending", "requires_action"):
        return GatewayResult(False, reference, pending=True, **money(refund))
    raise GatewayError(f"Stripe: the refund is {status}; the outcome is not known yet.")
