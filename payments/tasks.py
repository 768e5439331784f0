from __future__ import annotations

from celery import shared_task

from .services import payment_reconcile_pending


@shared_task
def reconcile_pending_payments() -> int:
    """Beat, every five minutes: settle payments a timeout or crash left pending."""
    return payment_reconcile_pending()
