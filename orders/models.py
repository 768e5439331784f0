"""Cart, orders and their audit trail.

An order's `status` moves only through `orders.services.order_transition` (one locking write path
that checks `can_transition_to` and writes an `OrderEvent`); the database rejects unknown values.
"""

from __future__ import annotations

import secrets
import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from common.models import TimeStampedModel

from .pricing import line_total_cents


class Cart(TimeStampedModel):
    """One per user, created on the first add."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cart"
    )

    def __str__(self) -> str:
        return f"cart of {self.user_id}"


class CartItem(TimeStampedModel):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("inventory.Product", on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["cart", "product"], name="orders_cartitem_one_line"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="orders_cartitem_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x product {self.product_id}"


# Unambiguous when read aloud or typed from a phone call: no 0/O, 1/I/L, U/V.
ORDER_NUMBER_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
ORDER_NUMBER_LENGTH = 6  # 29**6 ≈ 595 million numbers; a collision is retried (services)


def order_number_generate() -> str:
    """A human order number such as "SO-7K3M9Q" (random, so it leaks no sales volume)."""
    body = "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(ORDER_NUMBER_LENGTH))
    return f"SO-{body}"


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending payment"
    PAID = "paid", "Paid"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"


class Order(TimeStampedModel):
    Status = OrderStatus

    # The one transition table (API.md, "Statuses"). Anything not listed → InvalidTransition.
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.PENDING: frozenset({Status.PAID, Status.CANCELLED}),
        Status.PAID: frozenset({Status.SHIPPED, Status.CANCELLED, Status.REFUNDED}),
        Status.SHIPPED: frozenset({Status.DELIVERED, Status.REFUNDED}),
        Status.DELIVERED: frozenset({Status.REFUNDED}),
        Status.CANCELLED: frozenset(),
        Status.REFUNDED: frozenset(),
    }
    # The one way back: a refund that failed at the gateway after it had succeeded leaves the
    # money with the shop, so a `refunded` order returns to the status it had before the refund
    # (`orders.services.order_on_refund_failed`). Never a move anyone can ask for.
    REFUND_FAILED_TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.REFUNDED: frozenset({Status.PAID, Status.SHIPPED, Status.DELIVERED}),
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=16, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, editable=False
    )
    currency = models.CharField(max_length=3, editable=False)
    subtotal_cents = models.PositiveBigIntegerField(editable=False)
    total_cents = models.PositiveBigIntegerField(editable=False)
    shipping_address = models.JSONField()
    note = models.TextField(blank=True, max_length=1000)
    # Pending orders not paid by then are cancelled by `orders.tasks.expire_unpaid_orders`.
    expires_at = models.DateTimeField(null=True, blank=True)
    carrier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    # Set while the customer disputes a charge of the order with their bank (a chargeback): the
    # order is not shipped meanwhile. Cleared when the dispute closes; the events keep both.
    disputed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["number"], name="orders_order_number_unique"),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values),
                name="orders_order_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(total_cents__gte=F("subtotal_cents")),
                name="orders_order_total_covers_subtotal",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="orders_order_user_created"),
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending"),
                name="orders_order_pending_expiry",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def can_transition_to(self, status: str, *, refund_failed: bool = False) -> bool:
        """Pure: is `self.status → status` a move the state machine allows? `refund_failed`:
        the move back from `refunded` after the refund failed at the gateway (only then)."""
        table = self.REFUND_FAILED_TRANSITIONS if refund_failed else self.TRANSITIONS
        return status in table.get(self.status, frozenset())

    @property
    def is_disputed(self) -> bool:
        return self.disputed_at is not None


class OrderItem(models.Model):
    """A line as it was at checkout: SKU, name and unit price are copied, not looked up."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    # PROTECT: a product that was ever sold cannot be deleted (deactivate it instead).
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    unit_price_cents = models.PositiveBigIntegerField()
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="orders_orderitem_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total_cents(self) -> int:
        return line_total_cents(unit_price_cents=self.unit_price_cents, quantity=self.quantity)


class OrderEvent(models.Model):
    """One row per status change (and one for the order's creation, with no `from_status`)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who made the move; empty for the system (expiry).",
    )
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(to_status__in=OrderStatus.values)
                & Q(from_status__in=["", *OrderStatus.values]),
                name="orders_orderevent_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status or '∅'} → {self.to_status}"
