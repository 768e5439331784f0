"""Reconciliation of orders with their money: orders whose status and money disagree (what
`audit_payments` reports) are put right where a machine can (`order_payments_reconcile`), from
the charges and refunds the gateway has settled. Builds on `payment` (applying a charge) and
`outcomes` (a refunded order whose refund failed).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from uuid import UUID

from django.db import transaction

from payments.exceptions import PaymentGatewayError, RefundExceedsCaptured
from payments.models import Payment
from payments.selectors import orders_with_payments_settled_since, payment_succeeded_charge
from payments.services import (
    payment_captured_cents,
    payment_refund_begin,
    payment_refund_execute,
    payment_settle,
)

from ..models import Order
from ..selectors import PaymentMismatch, payment_audit
from .outcomes import order_unrefund_money_kept
from .payment import _apply_charge
from .state import _order_lock

# The package's one logger name (what its log lines said before it was split in modules).
logger = logging.getLogger("orders.services")

# What a refund sent again after one failed says (its description, and the reason the gateway is
# told): reconciliation sends one such refund per order, never a second.
RETRIED_REFUND = "refund sent again after a failed one"


def order_payments_reconcile(*, since: timedelta = timedelta(days=2), limit: int = 100) -> int:
    """Resolve orders whose status and money disagree (what `audit_payments` reports), among
    orders with a charge that succeeded or a refund that failed (at once or late) in the last
    `since`. Beat runs it on the critical queue every `PAYMENT_RECONCILE_INTERVAL_SECONDS`.
    Returns how many orders it resolved.

    - a pending order with a succeeded charge is marked paid (the outcome arrived, its handler
      did not run: never a reason to cancel);
    - a cancelled order with a succeeded charge not refunded is refunded (begun under the
      order's lock, then sent to the gateway outside any transaction). After a refund failed it
      is sent again once (`RETRIED_REFUND`); should that fail too, staff pay the customer back
      another way (they were emailed when the refund failed late; `audit_payments` reports it);
    - a refunded order holding captured money (its refund failed late) goes back to its status
      before the refund, as `payment.refund_failed` does;
    - a paid order without its succeeded charge cannot be put right by a machine: logged as an
      error for a person (and reported by `audit_payments`).
    """
    candidates = {
        *orders_with_payments_settled_since(
            kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED, since=since
        ),
        *orders_with_payments_settled_since(
            kind=Payment.Kind.REFUND, status=Payment.Status.FAILED, since=since
        ),
    }
    resolved = 0
    for mismatch in payment_audit(order_ids=candidates)[:limit]:
        try:
            resolved += _resolve_mismatch(mismatch)
        except Exception:  # one order must not keep the others waiting; the next run retries
            logger.exception(
                "could not resolve an order's payments", extra={"order_id": str(mismatch.order_id)}
            )
    return resolved


def _resolve_mismatch(mismatch: PaymentMismatch) -> bool:
    extra = {"order_id": str(mismatch.order_id), "status": mismatch.status}
    if mismatch.status == Order.Status.PENDING:
        with transaction.atomic():
            order = _order_lock(mismatch.order_id)
            charge = payment_succeeded_charge(order_id=order.pk)
            if order.status != Order.Status.PENDING or charge is None:
                return False
            logger.warning("succeeded charge on an unpaid order; marking it paid", extra=extra)
            _apply_charge(order, charge=charge, actor=None)
        return True
    if mismatch.status == Order.Status.CANCELLED:
        return _refund_kept_charge(mismatch.order_id)
    if mismatch.status == Order.Status.REFUNDED and mismatch.charged_cents > 0:
        return order_unrefund_money_kept(order_id=mismatch.order_id)
    logger.error("order is %s without a succeeded charge", mismatch.status, extra=extra)
    return False


def _refund_kept_charge(order_id: UUID) -> bool:
    """A cancelled order still holding captured money: refund what no refund covers yet, and
    send every pending refund of the order to the gateway now. After a failed refund, once."""
    extra = {"order_id": str(order_id)}
    with transaction.atomic():
        order = _order_lock(order_id)
        if order.status != Order.Status.CANCELLED:
            return False
        failed = Payment.objects.filter(
            order_id=order.pk, kind=Payment.Kind.REFUND, status=Payment.Status.FAILED
        )
        if failed.filter(description=RETRIED_REFUND).exists():
            logger.error(
                "a cancelled order's refund failed again; the customer must be paid back "
                "another way",
                extra=extra,
            )
            return False
        owed = payment_captured_cents(order_id=order.pk)
        if owed > 0:
            with contextlib.suppress(RefundExceedsCaptured):  # pending refunds cover it
                payment_refund_begin(
                    order_id=order.pk,
                    amount_cents=owed,
                    user=None,
                    reason=RETRIED_REFUND if failed.exists() else "",
                )
        pending = list(
            Payment.objects.filter(
                order_id=order.pk, kind=Payment.Kind.REFUND, status=Payment.Status.PENDING
            ).values_list("pk", flat=True)
        )
    logger.warning("succeeded charge on a cancelled order; refunding it", extra=extra)
    for refund_id in pending:
        try:
            result = payment_refund_execute(payment_id=refund_id)
        except PaymentGatewayError:
            continue  # unknown outcome: payment reconciliation asks again
        payment_settle(payment_id=refund_id, result=result)
    return True
