"""The order state machine: the order's row lock, the one write path of `Order.status`
(`order_transition` / `_transition`: check `Order.TRANSITIONS`, write, log an `OrderEvent`,
queue the status email) and the named moves with their stock effects: mark paid (reserved units
sold), ship, deliver, mark refunded (units back on hand if asked), and a paid order's cancel.

Each public move locks the order itself; its private twin (`_mark_paid`, `_transition`, ...)
takes an `Order` its caller already locked with `_order_lock`, in the caller's transaction. Money
moves (`payment`) and cancelling (`cancel`) build on these.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from accounts.models import User
from common import metrics
from common.emails import send_email
from inventory.services import stock_commit_sale, stock_restock

from ..exceptions import InvalidTransition, OrderDisputed
from ..models import Order, OrderEvent
from ._shared import _email_context, _reference, _stock_lines

_STATUS_EMAILS: dict[str, str] = {
    Order.Status.SHIPPED: "order_shipped",
    Order.Status.CANCELLED: "order_cancelled",
    Order.Status.REFUNDED: "order_refunded",
}


def _order_lock(order_id: UUID) -> Order:
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("user")
        .prefetch_related("items")
        .get(pk=order_id)
    )


@transaction.atomic
def order_transition(
    *, order_id: UUID, to_status: str, actor: User | None, note: str = ""
) -> Order:
    """The one place that changes `Order.status`: lock, check the table, write, log, notify.

    Raises `Order.DoesNotExist` and `InvalidTransition`. Stock effects belong to the named
    services that call this (`order_cancel`, `order_mark_paid`, …).
    """
    return _transition(_order_lock(order_id), to_status=to_status, actor=actor, note=note)


def _transition(
    order: Order,
    *,
    to_status: str,
    actor: User | None,
    note: str = "",
    refund_failed: bool = False,
) -> Order:
    """`order_transition` of an order its caller locked (`_order_lock`) in the transaction it is
    in: no second lock, no savepoint (an error rolls back the caller's whole transaction).
    `refund_failed`: the move back from `refunded` (`Order.REFUND_FAILED_TRANSITIONS`), only for
    a refund the gateway failed after it had succeeded."""
    if not order.can_transition_to(to_status, refund_failed=refund_failed):
        raise InvalidTransition(
            f"Order {order.number} is {order.status}; it cannot become {to_status}."
        )
    from_status = order.status
    order.status = to_status
    order.expires_at = None  # only a pending order expires
    order.save(update_fields=["status", "expires_at", "updated_at"])
    OrderEvent.objects.create(
        order=order, from_status=from_status, to_status=to_status, actor=actor, note=note
    )
    template = _STATUS_EMAILS.get(to_status)
    if template is not None:
        send_email(
            template=template,
            to=[order.user.email],
            context=_email_context(
                order, user=order.user, items=list(order.items.all()), note=note
            ),
        )
    return order


@transaction.atomic
def order_mark_paid(*, order_id: UUID, actor: User | None, note: str = "") -> Order:
    """pending → paid: the reserved units become sold (`stock_commit_sale`)."""
    return _mark_paid(_order_lock(order_id), actor=actor, note=note)


def _mark_paid(order: Order, *, actor: User | None, note: str) -> Order:
    """`order_mark_paid` of an order locked by the caller, in its transaction."""
    order = _transition(order, to_status=Order.Status.PAID, actor=actor, note=note)
    stock_commit_sale(
        lines=_stock_lines(order), actor=actor, reference=_reference(order), savepoint=False
    )
    metrics.order_paid(total_cents=order.total_cents)
    return order


@transaction.atomic
def order_ship(
    *, order_id: UUID, actor: User | None, carrier: str = "", tracking_number: str = ""
) -> Order:
    """paid → shipped, keeping the carrier and tracking number (the shipped email shows them).
    Refused while the customer disputes the payment (`OrderDisputed`)."""
    order = _order_lock(order_id)
    if order.is_disputed and order.can_transition_to(Order.Status.SHIPPED):
        raise OrderDisputed(
            f"The payment of order {order.number} is disputed; it cannot be shipped until the "
            "dispute closes."
        )
    # Written first so the email sees them; a refused move rolls them back with everything else.
    order.carrier, order.tracking_number = carrier, tracking_number
    order.save(update_fields=["carrier", "tracking_number", "updated_at"])
    return _transition(order, to_status=Order.Status.SHIPPED, actor=actor)


@transaction.atomic
def order_deliver(*, order_id: UUID, actor: User | None) -> Order:
    """shipped → delivered."""
    return order_transition(order_id=order_id, to_status=Order.Status.DELIVERED, actor=actor)


@transaction.atomic
def order_mark_refunded(
    *, order_id: UUID, actor: User | None, restock: bool, note: str = ""
) -> Order:
    """paid | shipped | delivered → refunded; `restock` puts the units back on hand."""
    return _mark_refunded(_order_lock(order_id), actor=actor, restock=restock, note=note)


def _mark_refunded(order: Order, *, actor: User | None, restock: bool, note: str) -> Order:
    """`order_mark_refunded` of an order locked by the caller, in its transaction."""
    order = _transition(order, to_status=Order.Status.REFUNDED, actor=actor, note=note)
    if restock:
        stock_restock(
            lines=_stock_lines(order),
            actor=actor,
            reference=_reference(order),
            note=note or "order refunded",
            savepoint=False,
        )
    return order


def _cancel_paid(order: Order, *, actor: User | None, note: str) -> Order:
    """paid → cancelled: the sold units go back on hand."""
    order = _transition(order, to_status=Order.Status.CANCELLED, actor=actor, note=note)
    stock_restock(
        lines=_stock_lines(order),
        actor=actor,
        reference=_reference(order),
        note="order cancelled after payment",
        savepoint=False,
    )
    return order
