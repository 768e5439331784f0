"""Errors of the payments app, each with a stable `code` (see API.md, Payments)."""

# ruff: noqa: N818 - exceptions name the failure (ARCHITECTURE.md), as InsufficientStock does

from __future__ import annotations

from rest_framework import status

from common.exceptions import BadGatewayError, ConflictError, DomainError, NotFoundError


class PaymentDeclined(DomainError):
    """The gateway refused the charge. The error code is the gateway's own code."""

    code = "card_declined"
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    message = "The payment was declined."

    MESSAGES = {
        "card_declined": "The card was declined.",
        "insufficient_funds": "The card has insufficient funds.",
        "processing_error": "The card could not be processed. Try again or use another card.",
        "expired_card": "The card has expired.",
        "incorrect_cvc": "The card's security code is incorrect.",
        "authentication_required": (
            "The card needs the customer to authenticate the payment. Pay again while present."
        ),
        "authentication_abandoned": "The payment was not authenticated in time.",
        "not_created": "The payment provider has no record of this payment.",
        "amount_too_small": "The amount is below the payment provider's minimum.",
        "canceled": "The payment was canceled before it was completed.",
        # The card (its saved method) is gone or unusable at the gateway.
        "resource_missing": "The payment provider no longer knows this card. Add the card again.",
        "payment_method_unexpected_state": (
            "The payment provider can no longer use this card. Add the card again."
        ),
    }
    # `gateway_*` codes: the shop's own setup at the provider failed, not the card.
    SHOP_SETUP_FAILED = (
        "The shop's payment setup failed, not your card. Try again later or contact the shop."
    )

    def __init__(self, code: str = "card_declined", detail: str | None = None) -> None:
        # One class, several codes: the instance carries the gateway's code.
        self.code = code  # type: ignore[misc]
        super().__init__(detail or self.message_for(code))

    @classmethod
    def message_for(cls, code: str) -> str:
        if code.startswith("gateway_"):
            return cls.SHOP_SETUP_FAILED
        return cls.MESSAGES.get(code, cls.message)


class PaymentMethodUnusable(ConflictError):
    """A card saved while another payment gateway was configured: that gateway's token means
    nothing to the one in use now."""

    code = "payment_method_unusable"
    message = (
        "This card was saved with another payment provider and cannot be charged. "
        "Add the card again."
    )
    attr = "payment_method"


class PaymentInProgress(ConflictError):
    code = "payment_in_progress"
    message = "A payment for this order is already in progress."


class RefundExceedsCaptured(DomainError):
    code = "refund_exceeds_captured"
    message = "The refund exceeds what was captured and not yet refunded."
    attr = "amount_cents"

    def __init__(self, *, refundable_cents: int) -> None:
        self.refundable_cents = refundable_cents
        super().__init__(f"At most {refundable_cents} cents can still be refunded.")


class DuplicatePaymentMethod(ConflictError):
    code = "duplicate_payment_method"
    message = "This card is already saved."


class PaymentMethodNotFound(NotFoundError):
    """The method does not exist or belongs to someone else (never told apart)."""

    code = "not_found"
    message = "Payment method not found."
    attr = "payment_method"


class PaymentGatewayError(BadGatewayError):
    """The gateway timed out, failed or has not decided yet: the payment stays pending."""

    code = "gateway_error"
    message = (
        "The payment provider did not answer in time. The payment is being checked; "
        "it is never taken twice."
    )


class PaymentNotAtGateway(PaymentGatewayError):
    """A lookup found no such payment at the gateway: never created there (or not searchable
    yet). Only this, never another error, lets reconciliation fail a charge `not_created`."""

    message = "The payment provider has no record of this payment yet."


class InvalidWebhook(DomainError):
    code = "invalid_signature"
    message = "The webhook signature is missing, invalid or too old."


class WebhookRetryLater(ConflictError):
    """A webhook about a charge whose success we have not recorded yet (a dashboard refund or a
    dispute that arrived before the charge's own event): not recorded, so the gateway sends it
    again later (Stripe retries any answer but 2xx for days)."""

    code = "webhook_retry_later"
    message = "The charge this event is about is not settled here yet; send it again later."


class InvalidPaymentToken(DomainError):
    code = "invalid_token"
    message = "The payment gateway does not know this token."
    attr = "token"
