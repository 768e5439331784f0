"""Cancelling orders: by a person (`order_cancel`: a pending order's reserved stock is released,
a paid one is refunded in full through the gateway and restocked) and by the clock
(`order_expire_unpaid`: pending orders past `expires_at`, or marked paid if their charge
succeeded meanwhile). It builds on both the state machine (`state`) and money (`payment`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import User
from inventory.services import stock_release
from payments.exceptions import PaymentInProgress
from payments.selectors import payment_succeeded_charge, pending_charges

from ..models import Order
from ._shared import EXPIRED_NOTE, _reference, _stock_lines
from .payment import RefundOutcome, _apply_charge, _charge_in_flight, _refund_through_gateway
from .state import _order_lock, _transition

# The package's one logger name (what its log lines said before it was split in modules).
logger = logging.getLogger("orders.services")


def order_cancel(*, order_id: UUID, actor: User | None, note: str = "") -> Order:
    """`order_cancel_attempt`, for callers that only need the order."""
    return order_cancel_attempt(order_id=order_id, actor=actor, note=note).order


def order_cancel_attempt(*, order_id: UUID, actor: User | None, note: str = "") -> RefundOutcome:
    """pending → cancelled releases the reserved stock; paid → cancelled refunds in full through
    the gateway and puts the units back on hand (see `_refund_through_gateway`). A refund the
    gateway answers `pending` leaves the order paid (`RefundOutcome.pending`): once it succeeds
    the order is refunded and restocked (`payment.refunded`)."""
    with transaction.atomic():
        order = _order_lock(order_id)
        charge = (
            payment_succeeded_charge(order_id=order.pk)
            if order.status == Order.Status.PENDING
            else None
        )
        if charge is not None:
            # Paid at the gateway, its outcome not applied yet: apply it, then cancel a paid
            # order (refund and restock) below. Never release stock the customer paid for.
            order = _apply_charge(order, charge=charge, actor=actor)
        if order.status != Order.Status.PAID:
            if _charge_in_flight(order):
                raise PaymentInProgress(
                    f"Order {order.number} is being paid right now; try again in a moment."
                )
            order = _transition(order, to_status=Order.Status.CANCELLED, actor=actor, note=note)
            stock_release(
                lines=_stock_lines(order),
                actor=actor,
                reference=_reference(order),
                note=note or "order cancelled",
                savepoint=False,
            )
            return RefundOutcome(order=order)
    return _refund_through_gateway(
        order_id=order_id, actor=actor, amount_cents=None, restock=True, note=note, cancel=True
    )


def order_expire_unpaid(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Cancel pending orders past `expires_at` (event note "expired"), releasing their stock.

    One short transaction per order, so a crash halfway leaves every order either fully
    cancelled or untouched (and still due). `SKIP LOCKED` lets two runs at once share the work
    without waiting and without touching the same order; an order being paid at this moment is
    locked and skipped, and the status check under the lock settles any race. A due order whose
    charge succeeded (its outcome not applied yet: a late webhook, a failed handler) is marked
    paid instead: never cancelled over. Returns how many orders were cancelled (at most `limit`
    orders are handled per run; the rest wait for the next minute). An order that fails is
    logged and left for the next run, never in the way of the orders due after it.
    """
    cutoff = now or timezone.now()
    cancelled = handled = 0
    failed: list[UUID] = []
    while handled < limit:
        order_id: UUID | None = None
        try:
            with transaction.atomic():
                due = (
                    Order.objects.select_for_update(skip_locked=True)
                    .filter(status=Order.Status.PENDING, expires_at__lte=cutoff)
                    # An order whose charge is in flight waits for its outcome (reconciliation).
                    .exclude(Exists(pending_charges().filter(order_id=OuterRef("pk"))))
                    .exclude(pk__in=failed)
                    .order_by("expires_at")
                    .only("id")
                    .first()
                )
                if due is None:
                    break
                order_id = due.pk
                cancelled += _expire_one(order_id)
        except Exception:
            if order_id is None:
                raise  # the database itself: nothing to skip, let the task fail and retry
            logger.exception(
                "could not expire an order; the next run tries again",
                extra={"order_id": str(order_id)},
            )
            failed.append(order_id)
        handled += 1
    return cancelled


def _expire_one(order_id: UUID) -> int:
    """Under the order's lock: cancel it (1), or mark it paid if its charge succeeded (0)."""
    charge = payment_succeeded_charge(order_id=order_id)
    if charge is None:
        order_cancel(order_id=order_id, actor=None, note=EXPIRED_NOTE)
        return 1
    logger.warning(
        "due order has a succeeded charge; marking it paid, not cancelling it",
        extra={"order_id": str(order_id), "payment_id": str(charge.pk)},
    )
    _apply_charge(_order_lock(order_id), charge=charge, actor=None)
    return 0
