"""Staff console: saved methods (masked), payments and disputes, all read-only.

Money moves only through the services (refunds from the order page, wired by orders). Amounts
read as money ("$99.98"); a payment links to its order's page by the order's id alone, since
payments knows nothing of orders beyond that id.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from common.admin import ReadOnlyAdmin
from common.money import store_money

from .models import Dispute, Payment, PaymentMethod, WebhookEvent


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin[PaymentMethod]):
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


def _short(payment_id: Any) -> str:
    """The first block of a UUID: enough to tell rows apart, narrow enough for the list."""
    return str(payment_id).split("-", 1)[0]


def describe(payment: Payment) -> str:
    """ "Charge $99.98 (succeeded)": a payment named for staff (`Payment.__str__`)."""
    return str(payment)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin[Payment]):
    list_display = (
        "payment",
        "created_at",
        "kind",
        "status",
        "amount",
        "order",
        "user",
        "failure_code",
    )
    list_filter = ("status", "kind", "gateway")
    search_fields = ("=id", "=order_id", "gateway_reference", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("id", "kind", "status", "failure_code", ("amount", "currency"))}),
        ("For", {"fields": ("order", "description", "user", "payment_method", "initiated_by")}),
        ("Gateway", {"fields": ("gateway", "gateway_reference", "refund_of", "disputes")}),
        ("Record", {"fields": ("created_at", "settled_at")}),
    )
    readonly_fields = (
        "id",
        "kind",
        "status",
        "failure_code",
        "amount",
        "currency",
        "order",
        "description",
        "user",
        "payment_method",
        "initiated_by",
        "gateway",
        "gateway_reference",
        "refund_of",
        "disputes",
        "created_at",
        "settled_at",
    )

    def extra_object_context(self, request: HttpRequest, obj: Payment) -> dict[str, Any]:
        return {"subtitle": describe(obj)}  # the title and breadcrumb name it in money, not cents

    @admin.display(description="payment", ordering="id")
    def payment(self, obj: Payment) -> str:
        return _short(obj.pk)

    @admin.display(description="amount", ordering="amount_cents")
    def amount(self, obj: Payment) -> str:
        return store_money(obj.amount_cents)

    @admin.display(description="refund of")
    def refund_of(self, obj: Payment) -> SafeString | str:
        """For a refund, the charge it gives money back from."""
        if obj.parent is None:
            return "—"
        url = reverse("admin:payments_payment_change", args=[obj.parent.pk])
        return format_html('<a href="{}">{}</a>', url, describe(obj.parent))

    @admin.display(description="disputes")
    def disputes(self, obj: Payment) -> SafeString | str:
        """A charge's disputes (chargebacks), each linked to its page."""
        rows = [
            format_html(
                '<a href="{}">{}</a> {}',
                reverse("admin:payments_dispute_change", args=[dispute.pk]),
                str(dispute),
                dispute.reason,
            )
            for dispute in obj.disputes.all()
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((row,) for row in rows)) if rows else "—"

    @admin.display(description="order", ordering="order_id")
    def order(self, obj: Payment) -> SafeString | str:
        """A link to the order's page (the orders admin), labelled with the order's id."""
        try:
            url = reverse("admin:orders_order_change", args=[obj.order_id])
        except NoReverseMatch:
            return str(obj.order_id)
        return format_html(
            '<a href="{}" title="{}">{}</a>', url, obj.order_id, _short(obj.order_id)
        )


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin[WebhookEvent]):
    list_display = ("event_id", "gateway", "event_type", "payment_id", "received_at")
    list_filter = ("gateway", "event_type")
    search_fields = ("=event_id", "=payment_id")
    fields = ("gateway", "event_id", "event_type", "payment_id", "summary", "received_at")
    readonly_fields = fields


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin[Dispute]):
    """Disputes as the gateway reported them: answered in the gateway's dashboard, not here."""

    list_display = ("__str__", "opened_at", "status", "reason", "charge", "closed_at")
    list_filter = ("status", "reason")
    search_fields = ("=gateway_reference", "=payment__id", "=payment__order_id")
    list_select_related = ("payment",)
    date_hierarchy = "opened_at"
    fields = (
        "gateway_reference",
        "charge",
        "amount",
        "currency",
        "reason",
        "status",
        "opened_at",
        "closed_at",
    )
    readonly_fields = fields

    @admin.display(description="amount", ordering="amount_cents")
    def amount(self, obj: Dispute) -> str:
        return store_money(obj.amount_cents)

    @admin.display(description="charge")
    def charge(self, obj: Dispute) -> SafeString:
        url = reverse("admin:payments_payment_change", args=[obj.payment_id])
        return format_html('<a href="{}">{}</a>', url, describe(obj.payment))
