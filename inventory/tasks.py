"""Background work of the inventory app."""

from __future__ import annotations

from celery import shared_task

from .services import stock_low_alert_send


@shared_task
def send_low_stock_alert(*, product_ids: list[int], total: int | None = None) -> bool:
    """Tell staff, in one email, which products crossed their low-stock threshold."""
    return stock_low_alert_send(product_ids=product_ids, total=total)
