"""What the order modules share: an order's stock lines and ledger reference (the stock
services name an order by it), and the context of an order's emails."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.models import User
from inventory.services import StockLine

from ..models import Order, OrderItem
from ..pricing import format_money

EXPIRED_NOTE = "expired"


def _reference(order: Order) -> str:
    return f"order:{order.number}"


def _stock_lines(order: Order) -> list[StockLine]:
    return [
        StockLine(product_id=item.product_id, quantity=item.quantity) for item in order.items.all()
    ]


def _email_context(
    order: Order, *, user: User, items: list[OrderItem], note: str = ""
) -> dict[str, Any]:
    """JSON-serialisable (it travels in the Celery message): names and amounts, no instances."""
    return {
        "name": user.first_name or user.email,
        "number": order.number,
        "status": order.status,
        "items": [
            {
                "sku": item.sku,
                "name": item.name,
                "quantity": item.quantity,
                "line_total": format_money(cents=item.line_total_cents, currency=order.currency),
            }
            for item in items
        ],
        "total": format_money(cents=order.total_cents, currency=order.currency),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "expired": note == EXPIRED_NOTE,
        "expires_at": f"{order.expires_at:%Y-%m-%d %H:%M} UTC" if order.expires_at else None,
        "order_url": f"{settings.FRONTEND_URL}/orders/{order.pk}",
    }
