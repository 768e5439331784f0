"""The staff dashboard on the admin index: what staff open every morning.

Today's money and orders, orders by status (each a link to the filtered order list), the products
running low, and revenue per day over the last 30 days as an inline SVG bar chart drawn here (no
JavaScript, no CDN) with the same numbers in a table. The figures come from the reports'
selectors, so the dashboard and `reports/sales/` never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import Any

from django.db.models import Count
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from common.money import store_money as money
from inventory.selectors import stock_low_list
from orders.models import Order

from .selectors import SalesRow, sales_report, store_today

CHART_DAYS = 30
LOW_STOCK_SHOWN = 10


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class LowStockItem:
    sku: str
    name: str
    available: int
    threshold: int
    url: str


@dataclass(frozen=True)
class Dashboard:
    today: SalesRow
    by_status: list[StatusCount]
    low_stock: list[LowStockItem]
    days: list[SalesRow]
    chart: SafeString

    @property
    def today_revenue(self) -> str:
        return money(self.today.revenue_cents)

    @property
    def today_refunds(self) -> str:
        return money(self.today.refunded_cents)

    @property
    def days_revenue(self) -> list[tuple[date, str, int]]:
        return [(row.period, money(row.revenue_cents), row.orders) for row in self.days]


def dashboard_build(*, today: date | None = None) -> Dashboard:
    """Everything the admin index shows above the app list (a handful of queries)."""
    today = today or store_today()
    days = sales_report(date_from=today - timedelta(days=CHART_DAYS - 1), date_to=today)
    return Dashboard(
        today=days[-1],
        by_status=_orders_by_status(),
        low_stock=_low_stock(),
        days=days,
        chart=revenue_chart_svg(days),
    )


def _orders_by_status() -> list[StatusCount]:
    counts = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
    changelist = reverse("admin:orders_order_changelist")
    return [
        StatusCount(
            status=status,
            label=str(label),
            count=int(counts.get(status, 0)),
            url=f"{changelist}?status__exact={status}",
        )
        for status, label in Order.Status.choices
    ]


def _low_stock() -> list[LowStockItem]:
    return [
        LowStockItem(
            sku=level.product.sku,
            name=level.product.name,
            available=level.available_units,  # type: ignore[attr-defined]
            threshold=level.low_stock_threshold,
            url=reverse("admin:inventory_product_change", args=[level.product_id]),
        )
        for level in stock_low_list().filter(product__is_active=True)[:LOW_STOCK_SHOWN]
    ]


def revenue_chart_svg(days: list[SalesRow], *, width: int = 600, height: int = 160) -> SafeString:
    """Bars of revenue per day, scaled to the largest day; every bar has a <title> tooltip.

    The viewBox scales the chart to any width (a phone, a narrow window); the table next to it
    carries the same numbers for screen readers and for copying."""
    top = max((row.revenue_cents for row in days), default=0)
    slot = width / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    plot = height - 20  # room for the first and last date under the bars
    parts: list[str] = []
    for index, row in enumerate(days):
        bar_height = 0.0 if top == 0 else plot * row.revenue_cents / top
        x = index * slot + (slot - bar) / 2
        y = plot - bar_height
        label = f"{row.period:%a %d %b}: {money(row.revenue_cents)}, {row.orders} orders"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
            f'height="{max(bar_height, 0.5):.1f}"><title>{escape(label)}</title></rect>'
        )
    if days:
        parts.append(
            f'<text x="0" y="{height - 4}" class="axis">{days[0].period:%d %b}</text>'
            f'<text x="{width}" y="{height - 4}" class="axis" text-anchor="end">'
            f"{days[-1].period:%d %b}</text>"
        )
    caption = f"Revenue per day, last {len(days)} days; highest {money(top)}"
    svg = (
        f'<svg class="revenue-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(caption)}" preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(caption)}</title>{''.join(parts)}</svg>"
    )
    return mark_safe(svg)  # noqa: S308 (every interpolated text is escaped above)


def dashboard_context(user: Any) -> dict[str, Any]:
    """For the admin index template: the dashboard for staff and admins, nothing for others."""
    if not getattr(user, "is_staff", False):
        return {}
    return {"dashboard": dashboard_build()}
