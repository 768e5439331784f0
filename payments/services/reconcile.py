"""Settling payments left pending (a timeout, a crash between the steps, a customer who has not
authenticated yet) from the gateway's own state: each is looked up, never created again (a
create call answers with the gateway's first stored answer, which can never tell that a
`processing` charge or a `pending` refund finished since).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from ..exceptions import PaymentGatewayError
from ..gateways.base import GatewayResult
from ..models import Payment
from ._shared import logger
from .charges import payment_charge_lookup
from .refunds import payment_refund_lookup
from .settle import payment_settle

# Still unknown after this long: a person should look at it at the gateway (logged as an error
# on every run; the lookups go on).
UNKNOWN_FOR_TOO_LONG = dt.timedelta(hours=23)


def payment_reconcile_pending(*, older_than: dt.timedelta | None = None, limit: int = 100) -> int:
    """Settle payments pending for longer than `older_than` (default
    `PAYMENT_RECONCILE_AFTER_SECONDS`) by asking the gateway for their current state. Returns how
    many were settled; each settles and publishes its event in its own short transaction.

    - a charge the gateway has no record of, whose create call never answered, is failed
      `not_created` once older than `PAYMENT_RECONCILE_NOT_FOUND_SECONDS` (younger ones may not
      be searchable yet);
    - a charge waiting for the customer to authenticate stays pending (its order does not
      expire) until it is older than twice `ORDER_PAYMENT_TIMEOUT_MINUTES`, then it is failed
      `authentication_abandoned`.
    """
    now = timezone.now()
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    candidates = Payment.objects.filter(
        status=Payment.Status.PENDING, created_at__lte=now - older_than
    ).order_by("created_at")
    settled = 0
    for payment_id in candidates.values_list("pk", flat=True)[:limit]:
        settled += _reconcile_one(payment_id, now=now)
    return settled


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
    except PaymentGatewayError:
        result = _still_unknown(payment, age=age)
    if result is None:
        return False
    if result.requires_action:
        abandon_after = dt.timedelta(minutes=2 * settings.ORDER_PAYMENT_TIMEOUT_MINUTES)
        if age < abandon_after:
            payment_settle(payment_id=payment.pk, result=result)  # keeps its client secret
            return False
        logger.warning(
            "the customer never authenticated the charge", extra={"payment_id": str(payment.pk)}
        )
        result = GatewayResult(
            succeeded=False,
            gateway_reference=result.gateway_reference,
            failure_code="authentication_abandoned",
        )
    payment = payment_settle(payment_id=payment.pk, result=result, publish=True)
    return not payment.is_pending


def _still_unknown(payment: Payment, *, age: dt.timedelta) -> GatewayResult | None:
    """What to do with a payment the gateway could not tell us about: wait (None), or fail a
    charge that was never created there."""
    extra = {"payment_id": str(payment.pk), "kind": payment.kind}
    not_found_after = dt.timedelta(
        seconds=getattr(settings, "PAYMENT_RECONCILE_NOT_FOUND_SECONDS", 600)
    )
    if (
        payment.kind == Payment.Kind.CHARGE
        and not payment.gateway_reference
        and age >= not_found_after
    ):
        logger.warning("the gateway has no record of the charge; failing it", extra=extra)
        return GatewayResult(succeeded=False, gateway_reference="", failure_code="not_created")
    if age >= UNKNOWN_FOR_TOO_LONG:
        logger.error("payment pending for too long; check it at the gateway", extra=extra)
    return None
