from __future__ import annotations

from celery import shared_task

from .services import order_expire_unpaid


@shared_task
def expire_unpaid_orders() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE): cancel unpaid orders past `expires_at`."""
    return order_expire_unpaid()
