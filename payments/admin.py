"""Staff console: saved methods (masked) and payments, both read-only.

Money moves only through the services (refunds from the order page, wired by orders)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Payment, PaymentMethod, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("masked", "user", "gateway", "is_default", "created_at")
    list_filter = ("brand", "gateway", "is_default")
    search_fields = ("user__email", "last4")
    list_select_related = ("user",)
    # No token, no fingerprint, no billing details: what staff need is who and which card.
    fields = ("masked", "user", "kind", "gateway", "is_default", "created_at")
    readonly_fields = fields

    @admin.display(description="card")
    def masked(self, obj: PaymentMethod) -> str:
        return obj.masked


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "order_id",
        "user",
        "kind",
        "amount_cents",
        "currency",
        "status",
        "failure_code",
        "created_at",
    )
    list_filter = ("status", "kind", "gateway")
    search_fields = ("=id", "=order_id", "gateway_reference", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = (
        "id",
        "order_id",
        "user",
        "kind",
        "amount_cents",
        "currency",
        "status",
        "failure_code",
        "gateway",
        "gateway_reference",
        "payment_method",
        "parent",
        "initiated_by",
        "created_at",
        "settled_at",
    )
    readonly_fields = fields


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "gateway", "event_type", "payment_id", "received_at")
    list_filter = ("gateway", "event_type")
    search_fields = ("=event_id", "=payment_id")
    fields = ("gateway", "event_id", "event_type", "payment_id", "summary", "received_at")
    readonly_fields = fields
