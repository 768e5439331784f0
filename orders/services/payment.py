"""Money on orders: pay (`order_pay_attempt`, `order_pay`) and refund (`order_refund_attempt`,
`order_refund`) through the gateway, and apply outcomes the gateway reports later
(`order_on_payment_event`). Orders whose status and money disagree are put right by
`reconcile`.

No transaction or row lock is held while a gateway answers. Each flow is three steps: a short
transaction under the order's lock records a pending payment; the gateway is called outside
any transaction (the payment id is its idempotency key); a second short transaction under the
order's lock settles the payment and moves the order. A crash or timeout between the steps
leaves a pending payment, which reconciliation settles later and `order_on_payment_event`
applies: no order is paid without a succeeded charge, no succeeded charge is left on an order
that is not paid (it is refunded), and an order keeps one charge: a second one that succeeds
(a late success of a charge thought failed, while another card paid) is refunded. Locks: the
order row first, then payment rows.

A checkout charge is made with the customer present: the gateway may ask them to authenticate
(3-D Secure). The charge then stays pending with a client secret their browser finishes it with;
the order stays pending (expiry waits for a pending charge) until the gateway reports the
outcome (a webhook: `order_on_payment_event`), and asking to pay again meanwhile answers the same.

The private helpers that open their own transactions take an order id; those that run under
their caller's lock (`_apply_charge`, `_apply_refund`, `_charge_to_resume`, ...) take the
locked `Order`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from payments.exceptions import (
    PaymentDeclined,
    PaymentGatewayError,
    PaymentInProgress,
    RefundExceedsCaptured,
)
from payments.models import Payment
from payments.selectors import (
    payment_get,
    pending_charges,
)
from payments.services import (
    payment_captured_cents,
    payment_charge_begin,
    payment_charge_cancel,
    payment_charge_execute,
    payment_refund_begin,
    payment_refund_execute,
    payment_settle,
)

from ..exceptions import InvalidTransition, OrderExpired, PartialRestock, RefundFailed
from ..models import Order
from ..selectors import charges_left_to_refund
from .state import _cancel_paid, _mark_paid, _mark_refunded, _order_lock

# Statuses from which money can go back (API.md: refund on paid, shipped or delivered).
_REFUNDABLE = frozenset({Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED})

# The package's one logger name (what its log lines said before it was split in modules).
logger = logging.getLogger("orders.services")


@dataclass(frozen=True)
class PayOutcome:
    """What a pay request ended with: the order paid (`requires_action` False), or still pending
    while `payment`, a charge, waits for the customer to authenticate it in their browser with
    `client_secret` (it lets that browser finish this payment, nothing else)."""

    order: Order
    payment: Payment
    requires_action: bool = False
    client_secret: str = field(default="", repr=False)


def order_pay_attempt(*, order_id: UUID, user: User, payment_method_id: UUID) -> PayOutcome:
    """pending → paid by charging exactly the order's total with one of the user's methods, the
    customer present (description "Order <number>"; the order's id and number in the gateway's
    metadata). A charge the gateway wants authenticated keeps the order pending and comes back
    with `requires_action`; asking again with the same card while it waits answers the same,
    without asking the gateway (the webhook settles it). Asking with another card cancels the
    waiting charge at the gateway first (so it can never be completed as well) and charges the
    new card; if the waiting charge had succeeded meanwhile, the order is paid by it.

    Raises `Order.DoesNotExist` for another user's order, `InvalidTransition` unless pending,
    `OrderExpired`, `PaymentMethodUnusable` (a card of another gateway), `PaymentInProgress`
    while another charge of the order is in flight,
    `PaymentDeclined` (the failed charge is recorded first) and `PaymentGatewayError`.

    A retry after a timeout (the charge is still pending, its request certainly over: see
    `charge_in_flight_seconds`) resumes that charge with the same card: the gateway is asked again
    under the same idempotency key, so the customer is charged once and learns the outcome.
    """
    for _ in range(2):
        order, charge = _charge_for(order_id=order_id, user=user, method_id=payment_method_id)
        if not _awaits_authentication(charge):
            break
        if charge.payment_method_id == payment_method_id:
            return PayOutcome(
                order=order,
                payment=charge,
                requires_action=True,
                client_secret=charge.client_secret,
            )
        # Another card: the waiting charge is canceled first, so it can never be completed too.
        charge = payment_charge_cancel(payment_id=charge.pk)
        if charge.status == Payment.Status.SUCCEEDED:  # authenticated just before: it pays
            return _paid_by_waiting_charge(order_id, charge=charge, actor=user)
    else:  # another request began a charge waiting for authentication meanwhile
        raise PaymentInProgress(f"Order {order.number} is being paid right now.")
    result = payment_charge_execute(payment_id=charge.pk)
    with transaction.atomic():
        order = _order_lock(order_id)
        was_pending = order.status == Order.Status.PENDING
        charge = payment_settle(payment_id=charge.pk, result=result)
        order = _apply_charge(order, charge=charge, actor=user)
    if charge.status == Payment.Status.FAILED:
        raise PaymentDeclined(charge.failure_code or "card_declined")
    if charge.is_pending:  # the gateway wants the customer to authenticate (3-D Secure)
        return PayOutcome(
            order=order,
            payment=charge,
            requires_action=True,
            client_secret=result.client_secret or charge.client_secret,
        )
    if not was_pending:
        # Paid meanwhile by another charge (a late success told while this one was at the
        # gateway): this one is given back now (or by reconciliation if the gateway is down).
        _send_system_refunds(order_id, raise_errors=False)
    return PayOutcome(order=order, payment=charge)


def _charge_for(*, order_id: UUID, user: User, method_id: UUID) -> tuple[Order, Payment]:
    """Under the order's lock: the pending charge to answer with (`_charge_to_resume`), else a
    new pending charge of the order's total with the method."""
    with transaction.atomic():
        order = _order_lock(order_id)
        if order.user_id != user.pk:
            raise Order.DoesNotExist
        if not order.can_transition_to(Order.Status.PAID):
            raise InvalidTransition(f"Order {order.number} is {order.status}; it cannot be paid.")
        charge = _charge_to_resume(order, payment_method_id=method_id)
        if charge is not None:
            return order, charge
        if order.expires_at is not None and order.expires_at <= timezone.now():
            raise OrderExpired(f"Order {order.number} expired unpaid.")
        charge = payment_charge_begin(
            user=user,
            payment_method_id=method_id,
            order_id=order.pk,
            amount_cents=order.total_cents,
            currency=order.currency,
            description=f"Order {order.number}",
            order_number=order.number,
            customer_present=True,  # checkout: the gateway may ask for 3-D Secure
        )
        return order, charge


def _paid_by_waiting_charge(order_id: UUID, *, charge: Payment, actor: User) -> PayOutcome:
    """The waiting charge succeeded after all (the customer authenticated just before it was
    canceled): it pays the order, under the order's lock (its published event then changes
    nothing). Had the order stopped waiting for it, its money is given back."""
    with transaction.atomic():
        order = _order_lock(order_id)
        was_pending = order.status == Order.Status.PENDING
        order = _apply_charge(order, charge=charge, actor=actor)
    if not was_pending:
        _send_system_refunds(order_id, raise_errors=False)
    return PayOutcome(order=order, payment=charge)


def order_pay(*, order_id: UUID, user: User, payment_method_id: UUID) -> Order:
    """`order_pay_attempt`, for callers that only need the order (pending while a charge waits
    for authentication)."""
    return order_pay_attempt(
        order_id=order_id, user=user, payment_method_id=payment_method_id
    ).order


def _awaits_authentication(charge: Payment) -> bool:
    """A pending charge the gateway answered `requires_action` for (its client secret is kept
    until it settles)."""
    return charge.is_pending and bool(charge.client_secret)


@dataclass(frozen=True)
class RefundOutcome:
    """What a refund (or a paid order's cancel) ended with: `refund` is the refund payment (None
    when nothing captured had to go back). `pending`: the gateway accepted it without deciding
    yet; the order keeps its status until the outcome arrives (the `payment.refunded` event
    moves it then, as for any refund; a failure leaves it as it is)."""

    order: Order
    refund: Payment | None = None

    @property
    def pending(self) -> bool:
        return self.refund is not None and self.refund.is_pending


def order_refund(
    *,
    order_id: UUID,
    actor: User | None,
    amount_cents: int | None = None,
    restock: bool = False,
    reason: str = "",
) -> Order:
    """`order_refund_attempt`, for callers that only need the order."""
    return order_refund_attempt(
        order_id=order_id, actor=actor, amount_cents=amount_cents, restock=restock, reason=reason
    ).order


def order_refund_attempt(
    *,
    order_id: UUID,
    actor: User | None,
    amount_cents: int | None = None,
    restock: bool = False,
    reason: str = "",
) -> RefundOutcome:
    """Refund a paid, shipped or delivered order through the gateway, in full (the default) or
    in part. A refund that leaves nothing captured moves the order to `refunded` (restocking
    its units if asked); a partial one keeps the status and is recorded as a refund payment.
    Never more than what was captured and not yet refunded (`RefundExceedsCaptured`). A refund
    the gateway answers `pending` keeps the order as it is (`RefundOutcome.pending`); a final
    refusal is `RefundFailed`."""
    return _refund_through_gateway(
        order_id=order_id,
        actor=actor,
        amount_cents=amount_cents,
        restock=restock,
        note=reason,
        cancel=False,
    )


def _refund_through_gateway(
    *,
    order_id: UUID,
    actor: User | None,
    amount_cents: int | None,
    restock: bool,
    note: str,
    cancel: bool,
) -> RefundOutcome:
    with transaction.atomic():
        order = _order_lock(order_id)
        allowed = {Order.Status.PAID} if cancel else _REFUNDABLE
        if order.status not in allowed:
            action = "cancelled" if cancel else "refunded"
            raise InvalidTransition(
                f"Order {order.number} is {order.status}; it cannot be {action}."
            )
        refundable = payment_captured_cents(order_id=order.pk)
        if cancel and refundable == 0:
            # Paid without money captured here (e.g. marked paid by hand): nothing to send back.
            return RefundOutcome(order=_cancel_paid(order, actor=actor, note=note))
        amount = refundable if amount_cents is None else amount_cents
        if restock and amount < refundable:
            raise PartialRestock
        refund = payment_refund_begin(order_id=order.pk, amount_cents=amount, user=actor)
    result = payment_refund_execute(payment_id=refund.pk)
    with transaction.atomic():
        order = _order_lock(order_id)
        refund = payment_settle(payment_id=refund.pk, result=result)
        if refund.status == Payment.Status.SUCCEEDED:
            order = _apply_refund(order, actor=actor, restock=restock, note=note, cancel=cancel)
    if refund.status == Payment.Status.FAILED:
        raise RefundFailed(f"The gateway refused the refund ({refund.failure_code}).")
    return RefundOutcome(order=order, refund=refund)


def order_on_payment_event(*, payment_id: UUID, order_id: UUID) -> None:
    """Apply a charge or refund outcome learnt later (a webhook, reconciliation, a dashboard
    refund, a late success of a charge thought failed). Idempotent: applying the same outcome
    twice, or after the synchronous flow applied it, changes nothing.

    A succeeded charge pays a pending order; on an order it cannot pay (cancelled, refunded, or
    already paid by another charge: a double charge) it is refunded at once, and an error of the
    gateway then raises, so the event is delivered again until the refund is sent."""
    with transaction.atomic():
        try:
            order = _order_lock(order_id)
        except Order.DoesNotExist:
            logger.error("payment event for an unknown order", extra={"order_id": str(order_id)})
            return
        payment = payment_get(payment_id=payment_id)
        if payment.status != Payment.Status.SUCCEEDED:
            return  # a failed charge leaves the order pending; a failed refund: see `outcomes`
        if payment.kind == Payment.Kind.CHARGE:
            pays_the_order = order.status == Order.Status.PENDING
            _apply_charge(order, charge=payment, actor=None)
            if pays_the_order:
                return
        else:
            _apply_refund(
                order,
                actor=None,
                restock=order.status == Order.Status.PAID,  # the units never left the shelf
                note="refund settled by the gateway",
                cancel=False,
            )
            return
    _send_system_refunds(order_id, raise_errors=True)


def _apply_charge(order: Order, *, charge: Payment, actor: User | None) -> Order:
    """`order` is locked by the caller. A succeeded charge pays a pending order. On an order it
    cannot pay (cancelled, refunded) or that another charge paid (a double charge: a late
    success of a charge thought failed), its money goes back: a refund is begun here, and sent
    by the caller once the lock is released (`_send_system_refunds`; reconciliation otherwise)."""
    if charge.status != Payment.Status.SUCCEEDED:
        return order
    if order.status == Order.Status.PENDING:
        return _mark_paid(order, actor=actor, note="payment received")
    left = charges_left_to_refund(order_id=order.pk)
    owed = left.get(charge.pk, 0)
    if owed == 0:
        return order  # already given back, or being given back
    kept = any(cents > 0 for charge_id, cents in left.items() if charge_id != charge.pk)
    if order.status in _REFUNDABLE and not kept:
        return order  # the charge that paid the order: already applied
    logger.warning(
        "charge succeeded on an order %s; refunding it",
        "paid by another charge" if order.status in _REFUNDABLE else "that is no longer payable",
        extra={"order_id": str(order.pk), "payment_id": str(charge.pk), "status": order.status},
    )
    with contextlib.suppress(RefundExceedsCaptured):  # already being refunded
        payment_refund_begin(
            order_id=order.pk,
            amount_cents=owed,
            user=None,
            reason="duplicate" if order.status in _REFUNDABLE else "",
        )
    return order


def _system_refunds(order_id: UUID) -> QuerySet[Payment]:
    """The order's pending refunds that no person asked for (money a charge must give back)."""
    return Payment.objects.filter(
        order_id=order_id,
        kind=Payment.Kind.REFUND,
        status=Payment.Status.PENDING,
        initiated_by__isnull=True,
    )


def _send_system_refunds(order_id: UUID, *, raise_errors: bool) -> None:
    """Send the order's pending system refunds to the gateway (no lock or transaction held) and
    settle them. A gateway that does not answer leaves one pending; with `raise_errors` (an event
    handler, which the outbox delivers again) that raises once the others are sent."""
    failed: PaymentGatewayError | None = None
    for refund_id in list(_system_refunds(order_id).values_list("pk", flat=True)):
        try:
            result = payment_refund_execute(payment_id=refund_id)
        except PaymentGatewayError as error:
            failed = error
            continue
        payment_settle(payment_id=refund_id, result=result, publish=True)
    if failed is not None and raise_errors:
        raise failed


def _apply_refund(
    order: Order, *, actor: User | None, restock: bool, note: str, cancel: bool
) -> Order:
    """Under the order's lock, after a refund succeeded: cancel (a paid order's cancel) or mark
    refunded once nothing captured is left; a partial refund leaves the order as it is."""
    if cancel and order.status == Order.Status.PAID:
        return _cancel_paid(order, actor=actor, note=note)
    if payment_captured_cents(order_id=order.pk) == 0 and order.can_transition_to(
        Order.Status.REFUNDED
    ):
        return _mark_refunded(order, actor=actor, restock=restock, note=note or "refunded")
    return order


def charge_in_flight_seconds() -> float:
    """How long a pay request may still be waiting for the gateway after it began its charge:
    the gateway client makes up to three attempts (two network retries under the same
    idempotency key), each up to `PAYMENT_GATEWAY_TIMEOUT_SECONDS`, plus its backoff between
    them (under 2 s in all). Only after this may another request resume the charge."""
    return float(settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS) * 3 + 2


def _charge_to_resume(order: Order, *, payment_method_id: UUID) -> Payment | None:
    """The order's pending charge to answer with: one waiting for the customer to authenticate
    (whatever the card: the caller decides), or one with this card whose request has certainly
    stopped waiting for the gateway (`charge_in_flight_seconds`). A younger one is still in
    flight (`PaymentInProgress`); one with another card too."""
    pending = pending_charges().filter(order_id=order.pk).first()
    if pending is None:
        return None
    if _awaits_authentication(pending):
        return pending
    waited = timezone.now() - pending.created_at
    if pending.payment_method_id != payment_method_id or waited < timedelta(
        seconds=charge_in_flight_seconds()
    ):
        raise PaymentInProgress(f"Order {order.number} is being paid right now.")
    return pending


def _charge_in_flight(order: Order) -> bool:
    return pending_charges().filter(order_id=order.pk).exists()
