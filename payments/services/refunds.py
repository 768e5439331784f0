"""Refunds: begin (never more than captured), execute, look up; and refunds made outside the
API (the gateway's dashboard), recorded when its webhook tells us."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import User
from common import metrics

from .. import events
from ..exceptions import RefundExceedsCaptured
from ..gateways.base import GatewayEvent, GatewayResult
from ..models import Payment
from ._shared import _ask_gateway, _disagrees, _metadata, _recorded_result, _timeout, logger

EXTERNAL_REFUND = "refund made at the gateway"


@transaction.atomic
def payment_refund_begin(
    *, order_id: UUID, amount_cents: int, user: User | None, reason: str = ""
) -> Payment:
    """Record a pending refund of `amount_cents`, never more than captured and not yet refunded
    (pending refunds count as refunded). `user` is who asks for it (staff), if anyone; `reason`
    is sent to the gateway (`requested_by_customer`, `duplicate`, `fraudulent` as its own
    reason, anything else as text beside it)."""
    if amount_cents <= 0:
        raise ValueError("amount_cents must be positive.")
    # The charges' row locks serialize refunds of one order even if a caller forgot its own lock.
    charges = list(
        Payment.objects.select_for_update()
        .filter(order_id=order_id, kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED)
        .order_by("created_at", "id")
    )
    refunded_by_charge = dict(
        Payment.objects.filter(
            parent__in=charges,
            kind=Payment.Kind.REFUND,
            status__in=[Payment.Status.PENDING, Payment.Status.SUCCEEDED],
        )
        .values("parent_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("parent_id", "total")
    )
    remaining = [
        (charge, charge.amount_cents - refunded_by_charge.get(charge.pk, 0)) for charge in charges
    ]
    parent = next((charge for charge, left in remaining if left >= amount_cents), None)
    if parent is None:
        raise RefundExceedsCaptured(
            refundable_cents=max((left for _, left in remaining), default=0)
        )
    return Payment.objects.create(
        **_refund_of(parent), amount_cents=amount_cents, initiated_by=user, description=reason[:255]
    )


def _refund_of(charge: Payment) -> dict[str, Any]:
    """The fields a refund takes from the charge it gives money back from."""
    return {
        "user": charge.user,
        "order_id": charge.order_id,
        "kind": Payment.Kind.REFUND,
        "currency": charge.currency,
        "gateway": charge.gateway,
        "payment_method": charge.payment_method,
        "method_token": charge.method_token,
        "parent": charge,
        "order_number": charge.order_number,
    }


def payment_refund_execute(*, payment_id: UUID) -> GatewayResult:
    """Ask the gateway to refund (no transaction; the payment id is the idempotency key). A
    refund the gateway already answered for is looked up instead."""
    payment = Payment.objects.select_related("parent").get(pk=payment_id, kind=Payment.Kind.REFUND)
    if not payment.is_pending:
        return _recorded_result(payment)
    if payment.gateway_reference:
        return payment_refund_lookup(payment=payment)
    assert payment.parent is not None
    charge_reference = payment.parent.gateway_reference
    return _ask_gateway(
        payment,
        lambda gateway: gateway.refund(
            gateway_reference=charge_reference,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            idempotency_key=str(payment.pk),
            timeout=_timeout(),
            reason=payment.description,
            metadata=_metadata(payment),
        ),
        action="refund",
    )


def payment_refund_lookup(*, payment: Payment) -> GatewayResult:
    """The refund's state at the gateway now; `PaymentGatewayError` while it is unknown."""
    assert payment.parent is not None
    charge_reference = payment.parent.gateway_reference
    return _ask_gateway(
        payment,
        lambda gateway: gateway.lookup_refund(
            idempotency_key=str(payment.pk),
            gateway_reference=payment.gateway_reference,
            charge_reference=charge_reference,
            timeout=_timeout(),
        ),
        action="lookup_refund",
    )


def payment_captured_cents(*, order_id: UUID) -> int:
    """Succeeded charges minus succeeded refunds of an order, in one query."""
    totals = Payment.objects.filter(order_id=order_id, status=Payment.Status.SUCCEEDED).aggregate(
        charged=Sum("amount_cents", filter=Q(kind=Payment.Kind.CHARGE), default=0),
        refunded=Sum("amount_cents", filter=Q(kind=Payment.Kind.REFUND), default=0),
    )
    return int(totals["charged"]) - int(totals["refunded"])


def payment_refund_external_record(*, charge: Payment, event: GatewayEvent) -> Payment | None:
    """A refund made in the gateway's dashboard, of our succeeded `charge` (locked by the
    caller): recorded as a succeeded refund (once per gateway refund id) and published as
    `payment.refunded`, so the order moves as for any refund. Returns None when it was recorded
    before, or cannot be (no amount, another currency: logged)."""
    extra = {"payment_id": str(charge.pk), "refund": event.gateway_reference}
    amount = event.amount_cents
    if not amount or amount <= 0 or _disagrees(charge, amount_cents=None, currency=event.currency):
        logger.error(
            "a dashboard refund that cannot be recorded", extra={**extra, "amount": amount}
        )
        return None
    if amount > payment_captured_cents(order_id=charge.order_id):
        logger.error(
            "a dashboard refund of more than we hold as captured", extra={**extra, "amount": amount}
        )
    try:
        with transaction.atomic():
            refund = Payment.objects.create(
                **_refund_of(charge),
                amount_cents=amount,
                status=Payment.Status.SUCCEEDED,
                gateway_reference=event.gateway_reference,
                description=EXTERNAL_REFUND,
                settled_at=timezone.now(),
            )
    except IntegrityError:
        return None  # told before (the unique gateway reference of refunds)
    logger.warning("a refund made at the gateway recorded", extra={**extra, "amount": amount})
    metrics.refund_settled(amount_cents=amount, succeeded=True)
    events.publish("payment.refunded", payment_id=refund.pk, order_id=refund.order_id)
    return refund
