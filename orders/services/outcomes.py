"""What the gateway reports about an order's money after the fact, besides a charge or refund
succeeding (`payment.order_on_payment_event`): a refund that failed after it had succeeded, and
disputes (chargebacks) opened and closed by the customer's bank. Each handler runs from the
outbox (`payments.events`), under the order's lock, and is idempotent.

- `order_on_refund_failed`: the money is back with the shop and the customer was never paid,
  so a `refunded` order returns to the status it had before the refund (the one move back,
  `Order.REFUND_FAILED_TRANSITIONS`), and `audit_payments` stays clean. Units a refund put back
  on hand stay there: staff (emailed by payments) decide what happens to the order.
- `order_on_payment_disputed`: the order is flagged (`disputed_at`, an event) so it is not
  shipped (`OrderDisputed`), and staff are emailed (`order_disputed`).
- `order_on_dispute_closed`: the flag is cleared once no dispute of the order is open or lost
  (the events keep both); a lost dispute keeps the flag, writes an event and emails staff
  (`order_dispute_lost`).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.selectors import staff_emails
from common.emails import send_email
from payments.models import Dispute, Payment
from payments.selectors import disputes_of_order, payment_get
from payments.services import payment_captured_cents

from ..models import Order, OrderEvent
from ..pricing import format_money
from .state import _order_lock, _transition

logger = logging.getLogger("orders.services")

REFUND_FAILED_NOTE = "refund failed at the gateway"
DISPUTED_NOTE = "payment disputed by the customer's bank"
DISPUTE_CLOSED_NOTE = "payment dispute closed"
DISPUTE_LOST_NOTE = "payment dispute lost"


def order_on_refund_failed(*, payment_id: UUID, order_id: UUID) -> None:
    """A refund failed after it had succeeded: a `refunded` order that holds money again goes
    back to the status it had before it was refunded (event note "refund failed at the
    gateway"). A partial refund that failed changes no status; a cancelled order keeping money
    is refunded again by reconciliation (`order_payments_reconcile`)."""
    with transaction.atomic():
        order = _locked(order_id)
        if order is None or order.status != Order.Status.REFUNDED:
            return
        refund = payment_get(payment_id=payment_id)
        if refund.kind != Payment.Kind.REFUND or refund.status != Payment.Status.FAILED:
            return
        _back_from_refunded(order)


def order_unrefund_money_kept(*, order_id: UUID) -> bool:
    """Reconciliation's twin of `order_on_refund_failed` (its event lost or failed): a
    `refunded` order that holds captured money goes back to its status before the refund.
    Returns whether it moved."""
    with transaction.atomic():
        order = _locked(order_id)
        if order is None or order.status != Order.Status.REFUNDED:
            return False
        return _back_from_refunded(order)


def _back_from_refunded(order: Order) -> bool:
    """Under the order's lock: refunded → the status before, if money is captured again."""
    extra = {"order_id": str(order.pk)}
    if payment_captured_cents(order_id=order.pk) <= 0:
        return False  # other refunds still give everything back: refunded it stays
    before = (
        order.events.filter(to_status=Order.Status.REFUNDED)
        .order_by("-created_at", "-id")
        .values_list("from_status", flat=True)
        .first()
    )
    if not before or not order.can_transition_to(before, refund_failed=True):
        logger.error(
            "refund failed on a refunded order whose status before it is not known", extra=extra
        )
        return False
    logger.warning("refund failed at the gateway; the order is %s again", before, extra=extra)
    _transition(order, to_status=before, actor=None, note=REFUND_FAILED_NOTE, refund_failed=True)
    return True


def order_on_payment_disputed(*, payment_id: UUID, order_id: UUID) -> None:
    """The customer disputed a charge of the order: flag the order (not shipped meanwhile),
    write an event and email staff. Once per dispute (a flagged order is left as it is)."""
    with transaction.atomic():
        order = _locked(order_id)
        if order is None or order.is_disputed:
            return
        charge = payment_get(payment_id=payment_id)
        dispute = _latest_dispute(charge)
        reason = dispute.reason if dispute is not None else ""
        order.disputed_at = timezone.now()
        order.save(update_fields=["disputed_at", "updated_at"])
        _log_event(order, note=f"{DISPUTED_NOTE} ({reason})" if reason else DISPUTED_NOTE)
        logger.warning(
            "payment disputed; the order is not shipped until the dispute closes",
            extra={"order_id": str(order.pk), "payment_id": str(charge.pk), "reason": reason},
        )
        _email_staff(
            "order_disputed", _dispute_email_context(order, charge=charge, dispute=dispute)
        )


def order_on_dispute_closed(*, payment_id: UUID, order_id: UUID) -> None:
    """A dispute of the order closed. Lost (the bank gave the money back to the customer): the
    order stays flagged, an event is written and staff are emailed ("dispute lost"), once per
    lost dispute. Otherwise (won, warning closed, ...): the flag is cleared unless another
    dispute of the order is still open or was lost, with an event."""
    with transaction.atomic():
        order = _locked(order_id)
        if order is None:
            return
        charge = payment_get(payment_id=payment_id)
        disputes = disputes_of_order(order.pk)
        closed = max(
            (d for d in disputes if d.payment_id == charge.pk and not d.is_open),
            key=lambda d: (d.closed_at, d.opened_at),
            default=None,
        )
        if closed is not None and closed.status == Dispute.LOST:
            _dispute_lost(order, charge=charge, dispute=closed, disputes=disputes)
            return
        if not order.is_disputed or any(d.is_open or d.status == Dispute.LOST for d in disputes):
            return  # already cleared, or another dispute still keeps the flag
        outcome = closed.status if closed is not None else ""
        order.disputed_at = None
        order.save(update_fields=["disputed_at", "updated_at"])
        _log_event(
            order, note=f"{DISPUTE_CLOSED_NOTE} ({outcome})" if outcome else DISPUTE_CLOSED_NOTE
        )


def _dispute_lost(
    order: Order, *, charge: Payment, dispute: Dispute, disputes: list[Dispute]
) -> None:
    """Under the order's lock: the flag stays (set again if it was not), an event and an email
    to staff, once per lost dispute of the order (events told again change nothing)."""
    lost = sum(1 for d in disputes if d.status == Dispute.LOST)
    if order.events.filter(note__startswith=DISPUTE_LOST_NOTE).count() >= lost:
        return
    if not order.is_disputed:
        order.disputed_at = timezone.now()
        order.save(update_fields=["disputed_at", "updated_at"])
    _log_event(
        order,
        note=f"{DISPUTE_LOST_NOTE} ({dispute.reason})" if dispute.reason else DISPUTE_LOST_NOTE,
    )
    logger.warning(
        "payment dispute lost; the disputed money went back to the customer",
        extra={"order_id": str(order.pk), "payment_id": str(charge.pk)},
    )
    _email_staff(
        "order_dispute_lost", _dispute_email_context(order, charge=charge, dispute=dispute)
    )


def _locked(order_id: UUID) -> Order | None:
    try:
        return _order_lock(order_id)
    except Order.DoesNotExist:
        logger.error("payment event for an unknown order", extra={"order_id": str(order_id)})
        return None


def _log_event(order: Order, *, note: str) -> None:
    """An event that is no move: the status stays, the history says what happened."""
    OrderEvent.objects.create(
        order=order, from_status=order.status, to_status=order.status, actor=None, note=note
    )


def _latest_dispute(charge: Payment) -> Dispute | None:
    return max(
        (d for d in disputes_of_order(charge.order_id) if d.payment_id == charge.pk),
        key=lambda d: d.opened_at,
        default=None,
    )


def _email_staff(template: str, context: dict[str, Any]) -> None:
    recipients = staff_emails()
    if recipients:
        send_email(template=template, to=recipients, context=context)


def _dispute_email_context(
    order: Order, *, charge: Payment, dispute: Dispute | None
) -> dict[str, Any]:
    """JSON-serialisable: names and amounts, no instances."""
    amount_cents = dispute.amount_cents if dispute is not None else charge.amount_cents
    currency = dispute.currency if dispute is not None else charge.currency
    return {
        "number": order.number,
        "status": order.get_status_display(),
        "customer": order.user.email,
        "total": format_money(cents=order.total_cents, currency=order.currency),
        "disputed": format_money(cents=amount_cents, currency=currency),
        "reason": dispute.reason if dispute is not None else "",
        "gateway_reference": charge.gateway_reference,
        "admin_path": reverse("admin:orders_order_change", args=[order.pk]),
    }
