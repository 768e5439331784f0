"""Reads of carts and orders with the joins their callers need, and who may see what."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import owned_or_all_for_staff
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


def order_get(*, user: User | Any, order_id: Any) -> Order:
    """One visible order with everything its detail shows, its charges and refunds included (as
    `payment_list`); raises `Order.DoesNotExist` (→ 404)."""
    order = order_detail_queryset(user=user).get(pk=order_id)
    order.payment_list = payment_list_for_orders(order_ids=[order.pk]).get(order.pk, [])  # type: ignore[attr-defined]
    return order
