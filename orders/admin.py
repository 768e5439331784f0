"""Staff console for orders: read everything, change status only through the services.

The order page is view-only (no field of an order is edited by hand; a forged POST is refused):
what staff do to an order are the moves of `admin_moves`, one button each for the moves the
state machine allows from its status, each behind a confirmation page that calls the service.
The same services back the list's bulk actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts import admin as accounts_admin
from accounts.models import User
from common.admin import ReadOnlyAdmin
from common.exceptions import DomainError
from common.money import store_money
from payments.selectors import payment_list_for_orders
from payments.services import payment_captured_cents

from . import services
from .admin_moves import CANCEL_NOTE, MOVES, REFUND_NOTE, Move, MoveForm, error_text, moves_for
from .models import Order, OrderEvent, OrderItem

# The address keys of `ShippingAddressSerializer`, in the order a label prints them.
_ADDRESS_LINES: tuple[tuple[str, ...], ...] = (
    ("name",),
    ("line1",),
    ("line2",),
    ("postal_code", "city"),
    ("country",),
)


def format_address(address: Mapping[str, Any] | None) -> SafeString:
    """A shipping address as it goes on a parcel; keys we do not know are kept, after it."""
    address = dict(address or {})
    lines = [
        " ".join(str(address[key]) for key in keys if address.get(key)) for keys in _ADDRESS_LINES
    ]
    known = {key for keys in _ADDRESS_LINES for key in keys}
    lines += [f"{key}: {value}" for key, value in address.items() if key not in known and value]
    return format_html(
        '<address class="shipping-address">{}</address>',
        format_html_join("", "{}<br>", ((line,) for line in lines if line)),
    )


def status_badge(order: Order) -> SafeString:
    return format_html(
        '<span class="order-status status-{}">{}</span>', order.status, order.get_status_display()
    )


def _admin_link(url_name: str, object_id: Any, text: str) -> SafeString | str:
    """A link to another admin page; the bare text where that admin is not installed."""
    try:
        return format_html('<a href="{}">{}</a>', reverse(url_name, args=[object_id]), text)
    except NoReverseMatch:
        return text


@dataclass(frozen=True)
class PaymentRow:
    """One charge or refund of the order, as its page lists them."""

    url: str | None
    kind: str
    status: str
    status_value: str
    amount: str
    gateway_reference: str
    failure_code: str
    by: str
    created_at: datetime


def _payment_rows(request: HttpRequest, order: Order) -> list[PaymentRow]:
    can_open = request.user.has_perm("payments.view_payment")
    payments = payment_list_for_orders(order_ids=[order.pk]).get(order.pk, [])
    return [
        PaymentRow(
            url=reverse("admin:payments_payment_change", args=[payment.pk]) if can_open else None,
            kind=payment.get_kind_display(),
            status=payment.get_status_display(),
            status_value=payment.status,
            amount=store_money(payment.amount_cents),
            gateway_reference=payment.gateway_reference,
            failure_code=payment.failure_code,
            by=str(payment.initiated_by) if payment.initiated_by_id else "",
            created_at=payment.created_at,
        )
        for payment in payments
    ]


# --- inlines -----------------------------------------------------------------------------------


class _ReadOnlyInline(admin.TabularInline[Any, Any]):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(_ReadOnlyInline):
    model = OrderItem
    fields = readonly_fields = ("product", "sku", "name", "unit_price", "quantity", "line_total")
    verbose_name_plural = "items"

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderItem]:
        return super().get_queryset(request).select_related("product")

    @admin.display(description="unit price")
    def unit_price(self, item: OrderItem) -> str:
        return store_money(item.unit_price_cents)

    @admin.display(description="line total")
    def line_total(self, item: OrderItem) -> str:
        return store_money(item.line_total_cents)


class OrderEventInline(_ReadOnlyInline):
    model = OrderEvent
    fields = readonly_fields = ("created_at", "from_status", "to_status", "by", "note")
    verbose_name_plural = "history"

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderEvent]:
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="by")
    def by(self, event: OrderEvent) -> str:
        return str(event.actor) if event.actor_id else "system"


# --- bulk actions ------------------------------------------------------------------------------


class OrderActionForm(ActionForm):
    """The action bar's extra fields: carrier and tracking for "ship", restock for "refund"."""

    carrier = forms.CharField(max_length=100, required=False)
    tracking_number = forms.CharField(max_length=100, required=False)
    restock = forms.BooleanField(required=False, help_text="refund: put the units back on hand")


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
            messages.error(request, f"{order.number}: {error_text(error)}")
        else:
            succeeded += 1
    if succeeded:
        messages.success(request, f"{succeeded} order(s) {done}.")


# --- the order admin ---------------------------------------------------------------------------


class DisputedFilter(admin.SimpleListFilter):
    """Orders whose payment a customer disputes with their bank (a chargeback) right now."""

    title = "payment disputed"
    parameter_name = "disputed"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [("yes", "Disputed"), ("no", "Not disputed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(disputed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(disputed_at__isnull=True)
        return queryset


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin[Order]):
    list_display = ("number", "customer", "status_label", "total", "disputed", "created_at")
    list_filter = (
        "status",
        DisputedFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("number", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    inlines = (OrderItemInline, OrderEventInline)
    action_form = OrderActionForm
    actions = ("ship", "deliver", "cancel", "refund")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status_label",
                    "disputed_at",
                    "customer_link",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("Money", {"fields": (("subtotal", "total", "currency"), "refundable")}),
        ("Shipping", {"fields": ("address", ("carrier", "tracking_number"), "expires_at")}),
        ("Customer's note", {"fields": ("note",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "status_label",
        "disputed_at",
        "customer_link",
        "created_at",
        "updated_at",
        "subtotal",
        "total",
        "currency",
        "refundable",
        "address",
        "carrier",
        "tracking_number",
        "expires_at",
        "note",
    )

    class Media:
        css = {"all": ("orders/admin.css",)}

    # --- what staff may do ---------------------------------------------------------------------
    # `ReadOnlyAdmin`: no adding (orders are placed by checkout only), no deleting (financial
    # records), no field edited by hand (the page is view-only, a POST to it is refused). Status
    # changes are moves; see `has_move_permission`.

    def has_move_permission(self, request: HttpRequest) -> bool:
        """Ship, deliver, cancel and refund, from the page or the list: whoever holds
        `orders.change_order` (the Staff group, admins), as before the page had buttons."""
        return self.holds_change_permission(request)

    # --- columns and fields --------------------------------------------------------------------

    @admin.display(description="customer", ordering="user__email")
    def customer(self, order: Order) -> str:
        return order.user.email

    @admin.display(description="customer")
    def customer_link(self, order: Order) -> SafeString | str:
        return _admin_link("admin:accounts_user_change", order.user_id, order.user.email)

    @admin.display(description="status", ordering="status")
    def status_label(self, order: Order) -> SafeString:
        return status_badge(order)

    @admin.display(description="disputed", boolean=True, ordering="disputed_at")
    def disputed(self, order: Order) -> bool:
        """A customer disputes a charge with their bank: not to be shipped meanwhile."""
        return order.is_disputed

    @admin.display(description="total", ordering="total_cents")
    def total(self, order: Order) -> str:
        return store_money(order.total_cents)

    @admin.display(description="subtotal")
    def subtotal(self, order: Order) -> str:
        return store_money(order.subtotal_cents)

    @admin.display(description="captured, not refunded")
    def refundable(self, order: Order) -> str:
        return store_money(payment_captured_cents(order_id=order.pk))

    @admin.display(description="shipping address")
    def address(self, order: Order) -> SafeString:
        return format_address(order.shipping_address)

    # --- the order page ------------------------------------------------------------------------

    def extra_object_context(self, request: HttpRequest, obj: Order) -> dict[str, Any]:
        return {"moves": self._move_buttons(request, obj), "payments": _payment_rows(request, obj)}

    def _move_buttons(self, request: HttpRequest, order: Order) -> list[dict[str, Any]]:
        if not self.has_move_permission(request):
            return []
        return [
            {
                "name": move.name,
                "label": move.label,
                "danger": move.danger,
                "url": reverse(f"admin:orders_order_{move.name}", args=[order.pk]),
            }
            for move in moves_for(order)
        ]

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                f"<uuid:order_id>/{move.name}/",
                self.admin_site.admin_view(self._move_view(move)),
                name=f"orders_order_{move.name}",
            )
            for move in MOVES
        ] + super().get_urls()

    def _move_view(self, move: Move) -> Callable[[HttpRequest, UUID], HttpResponse]:
        def view(request: HttpRequest, order_id: UUID) -> HttpResponse:
            return self.move_view(request, order_id, move)

        return view

    def move_view(self, request: HttpRequest, order_id: UUID, move: Move) -> HttpResponse:
        """GET: the confirmation page. POST: the service call; a refusal is an error message and
        the form again, success goes back to the order page."""
        if not self.has_move_permission(request):
            raise PermissionDenied
        order = get_object_or_404(self.get_queryset(request), pk=order_id)
        assert isinstance(request.user, User)
        order_url = reverse("admin:orders_order_change", args=[order.pk])
        if not move.legal_for(order):
            self.message_user(request, move.refusal(order), messages.ERROR)
            return HttpResponseRedirect(order_url)
        posted = request.method == "POST"
        form = move.form_class(request.POST if posted else None, order=order)
        if posted and form.is_valid():
            try:
                moved = form.perform(actor=request.user)
            except DomainError as error:
                self.message_user(request, error_text(error), messages.ERROR)
            else:
                message = form.done_message(moved)
                self.log_change(request, moved, message)
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(order_url)
        return TemplateResponse(
            request, "admin/orders/order/move.html", self._move_context(request, order, move, form)
        )

    def _move_context(
        self, request: HttpRequest, order: Order, move: Move, form: MoveForm
    ) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{move.label}: order {order.number}",
            "subtitle": None,
            "order": order,
            "status": status_badge(order),
            "total": store_money(order.total_cents),
            "move": move,
            "form": form,
            "order_url": reverse("admin:orders_order_change", args=[order.pk]),
            "media": self.media + form.media,
        }

    # --- bulk actions (the same services, several orders at once) ------------------------------

    @admin.action(
        permissions=["move"],
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

    @admin.action(permissions=["move"], description="Mark selected shipped orders delivered")
    def deliver(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        _run(
            request,
            queryset,
            lambda order, user: services.order_deliver(order_id=order.pk, actor=user),
            "delivered",
        )

    @admin.action(
        permissions=["move"],
        description="Cancel selected orders (releases or restocks their units)",
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        _run(
            request,
            queryset,
            lambda order, user: services.order_cancel(
                order_id=order.pk, actor=user, note=CANCEL_NOTE
            ),
            "cancelled",
        )

    @admin.action(
        permissions=["move"],
        description="Refund selected paid, shipped or delivered orders in full",
    )
    def refund(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        restock = request.POST.get("restock") == "on"
        _run(
            request,
            queryset,
            lambda order, user: services.order_refund(
                order_id=order.pk, actor=user, restock=restock, reason=REFUND_NOTE
            ),
            "refunded",
        )


# --- the customer's orders on their user page ----------------------------------------------------

CUSTOMER_ORDERS_SHOWN = 10


def customer_orders_panel(user: User) -> SafeString:
    """The customer's latest orders (number, status, total, placed) with a link to all of them;
    two queries whatever the number of orders."""
    orders = Order.objects.filter(user=user)
    latest = list(orders.order_by("-created_at")[:CUSTOMER_ORDERS_SHOWN])
    if not latest:
        return format_html('<p class="customer-orders">{}</p>', "No orders yet.")
    total = len(latest) if len(latest) < CUSTOMER_ORDERS_SHOWN else orders.count()
    rows = format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td class="money">{}</td><td>{}</td></tr>',
        (
            (
                reverse("admin:orders_order_change", args=[order.pk]),
                order.number,
                order.get_status_display(),
                store_money(order.total_cents),
                order.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for order in latest
        ),
    )
    everything = f"{reverse('admin:orders_order_changelist')}?user={user.pk}"
    return format_html(
        '<table class="customer-orders"><thead><tr><th>Order</th><th>Status</th>'
        "<th>Total</th><th>Placed</th></tr></thead><tbody>{}</tbody></table>"
        '<p><a href="{}">All {} order(s) of this customer</a></p>',
        rows,
        everything,
        total,
    )


accounts_admin.user_page_panels.append(customer_orders_panel)
