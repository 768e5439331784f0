"""Errors of the catalog and the stock services, each with a stable `code`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rest_framework import status

from common.exceptions import ConflictError, DomainError, ErrorItem


@dataclass(frozen=True)
class Shortage:
    """One product that cannot cover a requested quantity."""

    product_id: int
    sku: str
    requested: int
    available: int


class InsufficientStock(ConflictError):  # noqa: N818 - names the failure (ARCHITECTURE.md)
    """Not enough available units; one error item per short product, all reported at once."""

    code = "insufficient_stock"
    status_code = status.HTTP_409_CONFLICT
    message = "Not enough stock."

    def __init__(self, *, shortages: Sequence[Shortage]) -> None:
        self.shortages: tuple[Shortage, ...] = tuple(shortages)
        super().__init__(
            items=[
                ErrorItem(
                    f"{shortage.sku}: {shortage.available} available, "
                    f"{shortage.requested} requested.",
                    "items",
                )
                for shortage in self.shortages
            ]
        )


class StockLimitExceeded(ConflictError):  # noqa: N818 - names the failure (ARCHITECTURE.md)
    """A change that would take a product's units past what a stock level can hold."""

    code = "stock_limit_exceeded"
    message = "The stock level cannot hold that many units."
    attr = "delta"


class ReservationMismatch(ConflictError):  # noqa: N818 - names the failure (ARCHITECTURE.md)
    """A release or sale asked for more units than are reserved: a caller's bookkeeping bug."""

    code = "reservation_mismatch"
    message = "More units were released or sold than are reserved."


class UnknownProduct(DomainError):  # noqa: N818 - names the failure (ARCHITECTURE.md)
    code = "unknown_product"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "No such product."


class InvalidCategoryParent(DomainError):  # noqa: N818 - names the failure (ARCHITECTURE.md)
    code = "invalid_parent"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "A category cannot be moved under itself or one of its descendants."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(items=[ErrorItem(detail or self.message, "parent")])


class CatalogValidationError(DomainError):
    """Input a service refuses (a duplicate SKU, metadata too large, a foreign currency)."""

    code = "invalid"
    status_code = status.HTTP_400_BAD_REQUEST
    message = "Invalid input."

    def __init__(self, detail: str, *, attr: str | None = None) -> None:
        super().__init__(detail, items=[ErrorItem(detail, attr)])
