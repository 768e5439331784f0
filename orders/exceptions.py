"""Domain errors of the orders app, each with a stable `code`.

Named after the failure, without an `Error` suffix, as ARCHITECTURE.md asks; `attr` is the input
field an error is about, where there is one.
"""
# ruff: noqa: N818

from __future__ import annotations

from common.exceptions import ConflictError, DomainError, ForbiddenError


class InvalidTransition(ConflictError):
    code = "invalid_transition"
    message = "The order cannot make this move from its current status."


class OrderDisputed(ConflictError):
    """The customer disputed a charge of the order with their bank: it is not shipped until the
    dispute is closed."""

    code = "order_disputed"
    message = "The order's payment is disputed; it cannot be shipped until the dispute closes."


class CartEmpty(DomainError):
    code = "cart_empty"
    message = "The cart is empty."


class EmailNotVerified(ForbiddenError):
    code = "email_not_verified"
    message = "Verify your email address before checking out."


class ProductUnavailable(DomainError):
    code = "product_unavailable"
    message = "This product is not for sale."


class OrderExpired(ConflictError):
    code = "order_expired"
    message = "The order expired unpaid."


class PartialRestock(DomainError):
    code = "restock_needs_full_refund"
    message = "Units can be restocked only with a full refund."
    attr = "restock"


class RefundFailed(ConflictError):
    """The gateway refused the refund for good (its code in the detail): a final answer, not an
    outage, so a 4xx (an outage is `PaymentGatewayError`'s 502, the refund left pending)."""

    code = "refund_failed"
    message = "The gateway refused the refund."


class OrderTotalTooLarge(DomainError):
    code = "order_total_too_large"
    message = "The order's total is larger than a payment can be."
    attr = "items"
