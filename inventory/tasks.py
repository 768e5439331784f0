"""Background work of the inventory app."""

from __future__ import annotations

from celery import shared_task

from .services import stock_low_alert_send


@shared_task
def send_low_stock_alert(*, product_id: int) -> bool:
    """Tell staff a product crossed its low-stock threshold (if it is still low)."""
    return stock_low_alert_send(product_id=product_id)
