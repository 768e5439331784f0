"""Errors of the payments app, each with a stable `code` (see API.md, Payments)."""

# ruff: noqa: N818 - exceptions name the failure (ARCHITECTURE.md), as InsufficientStock does

from __future__ import annotations

from rest_framework import status

from common.exceptions import ConflictError, DomainError, ErrorItem


class PaymentDeclined(DomainError):
    """The gateway refused the charge. The error code is the gateway's own code."""

    code = "card_declined"
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    message = "The payment was declined."

    MESSAGES = {
        "card_declined": "The card was declined.",
        "insufficient_funds": "The card has insufficient funds.",
        "processing_error": "The card could not be processed. Try again or use another card.",
    }

    def __init__(self, code: str = "card_declined", detail: str | None = None) -> None:
        # One class, several codes: the instance carries the gateway's code.
        self.code = code  # type: ignore[misc]
        super().__init__(detail or self.MESSAGES.get(code, self.message))


class PaymentInProgress(ConflictError):
    code = "payment_in_progress"
    message = "A payment for this order is already in progress."


class RefundExceedsCaptured(DomainError):
    code = "refund_exceeds_captured"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The refund exceeds what was captured and not yet refunded."

    def __init__(self, *, refundable_cents: int) -> None:
        self.refundable_cents = refundable_cents
        detail = f"At most {refundable_cents} cents can still be refunded."
        super().__init__(detail, items=[ErrorItem(detail, "amount_cents")])


class DuplicatePaymentMethod(ConflictError):
    code = "duplicate_payment_method"
    message = "This card is already saved."


class PaymentMethodNotFound(DomainError):
    """The method does not exist or belongs to someone else (never told apart)."""

    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND
    message = "Payment method not found."

    def __init__(self) -> None:
        super().__init__(items=[ErrorItem(self.message, "payment_method")])


class PaymentGatewayError(DomainError):
    """The gateway timed out, failed or has not decided yet: the payment stays pending."""

    code = "gateway_error"
    status_code = status.HTTP_502_BAD_GATEWAY
    message = (
        "The payment provider did not answer in time. The payment is being checked; "
        "it is never taken twice."
    )


class InvalidWebhook(DomainError):
    code = "invalid_signature"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The webhook signature is missing, invalid or too old."


class InvalidPaymentToken(DomainError):
    code = "invalid_token"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The payment gateway does not know this token."

    def __init__(self) -> None:
        super().__init__(items=[ErrorItem(self.message, "token")])
