"""Staff console for orders: read everything, change status only through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from common.exceptions import DomainError

from . import services
from .models import Order, OrderEvent, OrderItem
from .pricing import format_money


class OrderActionForm(ActionForm):
    """The action bar's extra fields: carrier and tracking for "ship", restock for "refund"."""

    carrier = forms.CharField(max_length=100, required=False)
    tracking_number = forms.CharField(max_length=100, required=False)
    restock = forms.BooleanField(required=False, help_text="refund: put the units back on hand")


class _ReadOnlyInline(admin.TabularInline[Any, Any]):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(_ReadOnlyInline):
    model = OrderItem
    fields = readonly_fields = ("product", "sku", "name", "unit_price_cents", "quantity")


class OrderEventInline(_ReadOnlyInline):
    model = OrderEvent
    fields = readonly_fields = ("created_at", "from_status", "to_status", "actor", "note")


def _run(
    request: HttpRequest,
    queryset: QuerySet[Order],
    move: Callable[[Order, User], object],
    done: str,
) -> None:
    """Apply a service to each selected order; report refusals without stopping the others."""
    assert isinstance(request.user, User)
    succeeded = 0
    for order in queryset:
        try:
            move(order, request.user)
        except DomainError as error:
            messages.error(request, f"{order.number}: {error.detail}")
        else:
            succeeded += 1
    if succeeded:
        messages.success(request, f"{succeeded} order(s) {done}.")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ("number", "customer", "status", "total", "created_at")
    list_filter = ("status", ("created_at", admin.DateFieldListFilter))
    search_fields = ("number", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = (OrderItemInline, OrderEventInline)
    action_form = OrderActionForm
    actions = ("ship", "deliver", "cancel", "refund")
    readonly_fields = (
        "number",
        "user",
        "status",
        "subtotal_cents",
        "total_cents",
        "currency",
        "shipping_address",
        "note",
        "carrier",
        "tracking_number",
        "expires_at",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    @admin.display(description="customer", ordering="user__email")
    def customer(self, order: Order) -> str:
        return order.user.email

    @admin.display(description="total", ordering="total_cents")
    def total(self, order: Order) -> str:
        return format_money(cents=order.total_cents, currency=order.currency)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are placed by checkout only

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False  # financial records

    @admin.action(
        permissions=["change"],
        description="Ship selected paid orders (carrier and tracking from the bar)",
    )
    def ship(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        carrier = request.POST.get("carrier", "").strip()[:100]
        tracking_number = request.POST.get("tracking_number", "").strip()[:100]
        _run(
            request,
            queryset,
            lambda order, user: services.order_ship(
                order_id=order.pk, actor=user, carrier=carrier, tracking_number=tracking_number
            ),
            "shipped",
        )

    @admin.action(permissions=["change"], description="Mark selected shipped orders delivered")
    def deliver(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        _run(
            request,
            queryset,
            lambda order, user: services.order_deliver(order_id=order.pk, actor=user),
            "delivered",
        )

    @admin.action(
        permissions=["change"],
        description="Cancel selected orders (releases or restocks their units)",
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        _run(
            request,
            queryset,
            lambda order, user: services.order_cancel(
                order_id=order.pk, actor=user, note="cancelled by staff"
            ),
            "cancelled",
        )

    @admin.action(
        permissions=["change"],
        description="Refund selected paid, shipped or delivered orders in full",
    )
    def refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        restock = request.POST.get("restock") == "on"
        _run(
            request,
            queryset,
            lambda order, user: services.order_refund(
                order_id=order.pk, actor=user, restock=restock, reason="refunded by staff"
            ),
            "refunded",
        )
