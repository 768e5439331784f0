"""Reads of carts and orders with the joins their callers need, and who may see what."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from accounts.models import User
from accounts.permissions import owned_or_all_for_staff
from payments.models import Payment
from payments.selectors import payment_list_for_orders

from .models import CartItem, Order


def cart_item_list(*, user: User) -> QuerySet[CartItem]:
    """The user's cart lines with their product and stock level (current price, `available`)."""
    return (
        CartItem.objects.filter(cart__user=user)
        .select_related("product", "product__stock")
        .order_by("id")
    )


def order_list(*, user: User | Any) -> QuerySet[Order]:
    """Own orders for customers, every order for staff; newest first."""
    return owned_or_all_for_staff(Order.objects.select_related("user"), user).order_by(
        "-created_at", "-id"
    )


def order_detail_queryset(*, user: User | Any) -> QuerySet[Order]:
    """Visible orders with their items and events: three queries whatever their number."""
    return order_list(user=user).prefetch_related("items", "events")


@dataclass(frozen=True)
class OrderDetail:
    """What an order's detail shows: the order (its items and events loaded) and its charges
    and refunds, oldest first."""

    order: Order
    payments: list[Payment]


def order_get(*, user: User | Any, order_id: UUID) -> OrderDetail:
    """One visible order with everything its detail shows, its charges and refunds included;
    raises `Order.DoesNotExist` (→ 404)."""
    order = order_detail_queryset(user=user).get(pk=order_id)
    payments = payment_list_for_orders(order_ids=[order.pk]).get(order.pk, [])
    return OrderDetail(order=order, payments=payments)


def charges_left_to_refund(*, order_id: UUID) -> dict[UUID, int]:
    """Each succeeded charge of the order and what no refund (succeeded or pending) covers of it
    yet, in one query."""
    charges = Payment.objects.filter(
        order_id=order_id, kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED
    ).annotate(
        covered=Coalesce(
            Sum(
                "refunds__amount_cents",
                filter=Q(refunds__status__in=[Payment.Status.PENDING, Payment.Status.SUCCEEDED]),
            ),
            0,
        )
    )
    return {
        charge_id: max(amount - covered, 0)
        for charge_id, amount, covered in charges.values_list("pk", "amount_cents", "covered")
    }


@dataclass(frozen=True)
class PaymentMismatch:
    """An order whose status and money disagree (what `manage.py audit_payments` prints)."""

    order_id: UUID
    number: str
    status: str
    charged_cents: int
    refunded_cents: int
    problem: str

    def __str__(self) -> str:
        return (
            f"order {self.number} ({self.order_id}) is {self.status}: {self.problem} "
            f"(charged {self.charged_cents}, refunded {self.refunded_cents})"
        )


_PAID_STATUSES = (
    Order.Status.PAID,
    Order.Status.SHIPPED,
    Order.Status.DELIVERED,
    Order.Status.REFUNDED,
)


# Orders that must hold no captured money: whatever was charged has gone back.
_MONEY_BACK_STATUSES = (Order.Status.CANCELLED, Order.Status.REFUNDED)


def _succeeded_total(kind: str) -> Coalesce:
    """The order's succeeded payments of one kind, summed (0 when none), as a subquery."""
    total = (
        Payment.objects.filter(order_id=OuterRef("pk"), kind=kind, status=Payment.Status.SUCCEEDED)
        .values("order_id")
        .annotate(total=Sum("amount_cents"))
        .values("total")
    )
    return Coalesce(Subquery(total), 0)


def payment_audit(*, order_ids: Iterable[UUID] | None = None) -> list[PaymentMismatch]:
    """Orders that break the money invariants (API.md, end), in one query:

    - a paid, shipped, delivered or refunded order without a succeeded charge;
    - a succeeded charge on a pending order (it should have been paid);
    - a succeeded charge on a cancelled order that was not refunded (money kept for nothing);
    - a refunded order that still holds captured money (a refund failed after it succeeded:
      the money came back to the shop, the customer was never paid).

    A charge still pending is neither: its outcome is not known yet (reconciliation settles it).
    """
    orders = (
        Order.objects.alias(  # payments name their order by id, so join through subqueries
            charged=_succeeded_total(Payment.Kind.CHARGE),
            refunded=_succeeded_total(Payment.Kind.REFUND),
        )
        .filter(
            Q(status__in=_PAID_STATUSES, charged=0)
            | Q(status=Order.Status.PENDING, charged__gt=0)
            | Q(status__in=_MONEY_BACK_STATUSES, charged__gt=F("refunded"))
        )
        .annotate(charged_cents=F("charged"), refunded_cents=F("refunded"))
        .order_by("created_at")
    )
    if order_ids is not None:
        orders = orders.filter(pk__in=list(order_ids))
    return [
        PaymentMismatch(
            order_id=order.pk,
            number=order.number,
            status=order.status,
            charged_cents=order.charged_cents,
            refunded_cents=order.refunded_cents,
            problem=_problem(order.status, charged=order.charged_cents),
        )
        for order in orders
    ]


def _problem(status: str, *, charged: int) -> str:
    if status == Order.Status.PENDING:
        return "a succeeded charge on an unpaid order"
    if status == Order.Status.CANCELLED:
        return "a succeeded charge that was not refunded"
    if status == Order.Status.REFUNDED and charged > 0:
        return "refunded but money kept"
    return "no succeeded charge"
