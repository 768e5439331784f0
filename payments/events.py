"""A tiny registry of payment events for the apps above payments (orders subscribes).

Published only for asynchronous outcomes (a webhook, a reconcile run): the synchronous pay and
refund flows get the outcome as a return value. Handlers run after the transaction that settled
the payment commits; they must be idempotent, since a gateway may tell us twice in two ways.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Literal, Protocol
from uuid import UUID

from django.db import transaction

logger = logging.getLogger(__name__)

EventName = Literal["payment.succeeded", "payment.failed", "payment.refunded"]
EVENT_NAMES: tuple[EventName, ...] = ("payment.succeeded", "payment.failed", "payment.refunded")


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
    """Deliver on commit of the current transaction (at once outside one)."""
    if event_name not in EVENT_NAMES:
        raise ValueError(f"Unknown payment event {event_name!r}.")
    transaction.on_commit(lambda: _dispatch(event_name, payment_id=payment_id, order_id=order_id))


def _dispatch(event_name: EventName, *, payment_id: UUID, order_id: UUID) -> None:
    logger.info(
        "payment event",
        extra={"event": event_name, "payment_id": str(payment_id), "order_id": str(order_id)},
    )
    for handler in list(_handlers[event_name]):
        handler(payment_id=payment_id, order_id=order_id)
