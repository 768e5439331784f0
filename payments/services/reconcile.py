"""Settling payments left pending (a timeout, a crash between the steps, a customer who has not
authenticated yet) from the gateway's own state: each is looked up, never created again (a
create call answers with the gateway's first stored answer, which can never tell that a
`processing` charge or a `pending` refund finished since).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..exceptions import PaymentGatewayError, PaymentInProgress, PaymentNotAtGateway
from ..gateways.base import GatewayResult
from ..models import Payment
from ._shared import logger
from .charges import payment_charge_cancel, payment_charge_lookup
from .refunds import payment_refund_lookup
from .settle import payment_settle

# Still unknown after this long: a person should look at it at the gateway (logged as an error
# on every run; the lookups go on).
UNKNOWN_FOR_TOO_LONG = dt.timedelta(hours=23)


def payment_reconcile_pending(*, older_than: dt.timedelta | None = None, limit: int = 100) -> int:
    """Settle payments pending for longer than `older_than` (default
    `PAYMENT_RECONCILE_AFTER_SECONDS`) by asking the gateway for their current state. Returns how
    many were settled; each settles and publishes its event in its own short transaction.

    - a charge the gateway has no record of (`PaymentNotAtGateway`: nothing found, never another
      error), whose create call never answered, is failed `not_created` once older than
      `PAYMENT_RECONCILE_NOT_FOUND_SECONDS` (younger ones may not be searchable yet);
    - a charge waiting for the customer to authenticate is not a candidate (its webhook settles
      it; its order does not expire) until it is older than twice
      `ORDER_PAYMENT_TIMEOUT_MINUTES`: then it is looked up, and canceled at the gateway if it
      still waits (failed `authentication_abandoned`), so it can never be completed later.
    """
    now = timezone.now()
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    waiting = Q(kind=Payment.Kind.CHARGE, created_at__gt=now - _abandon_after()) & ~Q(
        client_secret=""
    )
    candidates = (
        Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=now - older_than)
        .exclude(waiting)
        .order_by("created_at")
    )
    settled = 0
    for payment_id in candidates.values_list("pk", flat=True)[:limit]:
        settled += _reconcile_one(payment_id, now=now)
    return settled


def _abandon_after() -> dt.timedelta:
    return dt.timedelta(minutes=2 * settings.ORDER_PAYMENT_TIMEOUT_MINUTES)


def _reconcile_one(payment_id: UUID, *, now: dt.datetime) -> bool:
    payment = Payment.objects.select_related("parent").get(pk=payment_id)
    if not payment.is_pending:
        return False
    age = now - payment.created_at
    try:
        if payment.kind == Payment.Kind.CHARGE:
            result: GatewayResult | None = payment_charge_lookup(payment=payment)
        else:
            result = payment_refund_lookup(payment=payment)
    except PaymentNotAtGateway:
        result = _not_found(payment, age=age)
    except PaymentGatewayError:
        _still_unknown(payment, age=age)
        result = None
    if result is None:
        return False
    if result.requires_action:
        payment_settle(payment_id=payment.pk, result=result)  # its reference and client secret
        if age < _abandon_after():
            return False
        return _abandon(payment.pk)
    payment = payment_settle(payment_id=payment.pk, result=result, publish=True)
    return not payment.is_pending


def _abandon(payment_id: UUID) -> bool:
    """Cancel a charge the customer never authenticated (failed `authentication_abandoned`);
    if it succeeded meanwhile, that success is applied instead."""
    extra = {"payment_id": str(payment_id)}
    logger.warning("the customer never authenticated the charge; canceling it", extra=extra)
    try:
        payment = payment_charge_cancel(
            payment_id=payment_id, failure_code="authentication_abandoned"
        )
    except (PaymentGatewayError, PaymentInProgress):
        return False  # unknown (or no reference to cancel by): asked again on the next run
    return not payment.is_pending


def _not_found(payment: Payment, *, age: dt.timedelta) -> GatewayResult | None:
    """A payment the gateway has no record of: a charge whose create call never answered is
    failed `not_created` once it is old enough to be searchable; anything else waits."""
    not_found_after = dt.timedelta(
        seconds=getattr(settings, "PAYMENT_RECONCILE_NOT_FOUND_SECONDS", 600)
    )
    if (
        payment.kind == Payment.Kind.CHARGE
        and not payment.gateway_reference
        and age >= not_found_after
    ):
        logger.warning(
            "the gateway has no record of the charge; failing it",
            extra={"payment_id": str(payment.pk), "kind": payment.kind},
        )
        return GatewayResult(succeeded=False, gateway_reference="", failure_code="not_created")
    _still_unknown(payment, age=age)
    return None


def _still_unknown(payment: Payment, *, age: dt.timedelta) -> None:
    """A payment the gateway could not tell us about waits; logged when it has waited long."""
    if age >= UNKNOWN_FOR_TOO_LONG:
        logger.error(
            "payment pending for too long; check it at the gateway",
            extra={"payment_id": str(payment.pk), "kind": payment.kind},
        )
