from __future__ import annotations

from celery import shared_task

from .services import order_expire_unpaid, order_payments_reconcile


@shared_task
def expire_unpaid_orders() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE, critical queue): cancel unpaid orders past
    `expires_at`; a due order whose charge succeeded is marked paid instead."""
    return order_expire_unpaid()


@shared_task
def reconcile_order_payments() -> int:
    """Every `PAYMENT_RECONCILE_INTERVAL_SECONDS` (critical queue): resolve orders whose status
    and money disagree (mark paid, or refund)."""
    return order_payments_reconcile()
