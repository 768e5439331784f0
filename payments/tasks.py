from __future__ import annotations

from uuid import UUID

from celery import shared_task

from common.outbox import OutboxTask

from . import events
from .services import payment_reconcile_pending


@shared_task
def reconcile_pending_payments() -> int:
    """Beat, every `PAYMENT_RECONCILE_INTERVAL_SECONDS`: settle payments a timeout or crash left
    pending (critical queue)."""
    return payment_reconcile_pending()


class PaymentEventTask(OutboxTask):
    """Never given up: the outbox retries (with capped backoff) until the order is updated."""

    outbox_max_attempts = None


@shared_task(base=PaymentEventTask)
def deliver_payment_event(*, event_name: events.EventName, payment_id: str, order_id: str) -> None:
    """Apply a settled payment's outcome (critical queue). Queued through the outbox in the
    settlement's transaction and retried until the handlers succeed: a charged customer's order
    is never left behind because one attempt failed."""
    events.dispatch(event_name, payment_id=UUID(payment_id), order_id=UUID(order_id))
