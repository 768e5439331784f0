"""A tiny registry of payment events for the apps above payments (orders subscribes).

Published only for asynchronous outcomes (a webhook, a reconcile run): the synchronous pay and
refund flows get the outcome as a return value. Publishing writes an outbox row in the
transaction that settles the payment (common/outbox.py), so the outcome's consequence for the
order is recorded with the settlement itself: a worker then runs the handlers, and if one fails
the outbox runs them again, with backoff, until they succeed (`payments.tasks.
deliver_payment_event`, critical queue). Handlers must therefore be idempotent, and a gateway may
tell us twice in two ways anyway.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Literal, Protocol, get_args
from uuid import UUID

from common.outbox import enqueue_after_commit

logger = logging.getLogger(__name__)

EventName = Literal[
    "payment.succeeded",  # a charge succeeded (also one settled failed before: a late success)
    "payment.failed",
    "payment.refunded",  # a refund succeeded (also one made in the gateway's dashboard)
    "payment.refund_failed",  # a refund failed after it had succeeded: the money is back with us
    "payment.disputed",  # the customer disputed a charge with their bank
    "payment.dispute_closed",
]
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)


class Handler(Protocol):
    def __call__(self, *, payment_id: UUID, order_id: UUID) -> None: ...


_handlers: defaultdict[str, list[Handler]] = defaultdict(list)


def subscribe(event_name: EventName, handler: Handler) -> None:
    """Call `handler(payment_id=..., order_id=...)` after each such event commits."""
    if event_name not in EVENT_NAMES:
        raise ValueError(f"Unknown payment event {event_name!r}.")
    if handler not in _handlers[event_name]:  # AppConfig.ready may run twice
        _handlers[event_name].append(handler)


def unsubscribe(event_name: EventName, handler: Handler) -> None:
    if handler in _handlers[event_name]:
        _handlers[event_name].remove(handler)


def publish(event_name: EventName, *, payment_id: UUID, order_id: UUID) -> None:
    """Record the event in the current transaction; its handlers run once it commits."""
    if event_name not in EVENT_NAMES:
        raise ValueError(f"Unknown payment event {event_name!r}.")
    enqueue_after_commit(
        "payments.tasks.deliver_payment_event",
        event_name=event_name,
        payment_id=str(payment_id),
        order_id=str(order_id),
    )


def dispatch(event_name: EventName, *, payment_id: UUID, order_id: UUID) -> None:
    """Run every handler of the event (the task does this); a handler's error propagates."""
    logger.info(
        "payment event",
        extra={"event": event_name, "payment_id": str(payment_id), "order_id": str(order_id)},
    )
    for handler in list(_handlers[event_name]):
        handler(payment_id=payment_id, order_id=order_id)
