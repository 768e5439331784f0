from __future__ import annotations

from rest_framework import status

from common.exceptions import ConflictError, DomainError, ErrorItem


class InvalidTransition(ConflictError):  # noqa: N818 (names the failure, as ARCHITECTURE.md asks)
    code = "invalid_transition"
    message = "The order cannot make this move from its current status."


class CartEmpty(DomainError):  # noqa: N818
    code = "cart_empty"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The cart is empty."


class EmailNotVerified(DomainError):  # noqa: N818
    code = "email_not_verified"
    status_code = status.HTTP_403_FORBIDDEN
    message = "Verify your email address before checking out."


class ProductUnavailable(DomainError):  # noqa: N818
    code = "product_unavailable"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "This product is not for sale."


class OrderExpired(ConflictError):  # noqa: N818
    code = "order_expired"
    message = "The order expired unpaid."


class PartialRestock(DomainError):  # noqa: N818
    code = "restock_needs_full_refund"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "Units can be restocked only with a full refund."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, items=[ErrorItem(detail or self.message, attr="restock")])


class RefundFailed(DomainError):  # noqa: N818
    code = "refund_failed"
    status_code = status.HTTP_502_BAD_GATEWAY
    message = "The gateway refused the refund."


class OrderTotalTooLarge(DomainError):  # noqa: N818
    code = "order_total_too_large"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "The order's total is larger than a payment can be."

    def __init__(self) -> None:
        super().__init__(items=[ErrorItem(self.message, "items")])
