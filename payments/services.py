"""Every state change of payments: saved methods, charges, refunds, webhooks, reconciliation.

Paying is three steps so that no transaction or row lock is held across a network call:
`payment_charge_begin` (in the caller's transaction, under the order's lock) records a pending
charge; `payment_charge_execute` (no transaction) asks the gateway, with the payment id as the
idempotency key; `payment_settle` (in the caller's next transaction) records the outcome. A crash
between the steps leaves the payment pending, and `payment_reconcile_pending` asks the gateway
again with the same key, which never charges twice. Refunds work the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import User
from common import metrics

from . import events
from .cards import is_expired
from .crypto import card_fingerprint, token_fingerprint
from .exceptions import (
    DuplicatePaymentMethod,
    InvalidPaymentToken,
    PaymentDeclined,
    PaymentGatewayError,
    PaymentInProgress,
    PaymentMethodNotFound,
    RefundExceedsCaptured,
)
from .gateways import get_gateway
from .gateways.base import (
    CardDetails,
    Gateway,
    GatewayError,
    GatewayEvent,
    GatewayResult,
    InvalidToken,
)
from .models import Payment, PaymentMethod, WebhookEvent

logger = logging.getLogger(__name__)

ONE_PENDING_CHARGE = "payments_payment_one_pending_charge_per_order"
ONE_FINGERPRINT = "payments_method_user_fingerprint_unique"
# Gateways keep idempotency keys for at least a day (Stripe: 24 h). Past that, asking again
# could charge twice, so older pending payments are left to a person (logged as errors).
RECONCILE_MAX_AGE = dt.timedelta(hours=23)
UNREACHABLE = "The payment provider could not be reached. Try again in a moment."


def _constraint_name(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


# =============================================================================
# Payment methods
# =============================================================================
def payment_method_create(
    *,
    user: User,
    card: CardDetails | None = None,
    token: str | None = None,
    billing_details: dict[str, Any] | None = None,
    is_default: bool = False,
) -> PaymentMethod:
    """Save a card: hand it to the gateway at once, keep only what the gateway gives back.

    Exactly one of `card` (already validated) and `token` (client-side tokenization)."""
    if (card is None) == (token is None):
        raise ValueError("Pass exactly one of card and token.")
    gateway = get_gateway()
    if card is not None:
        fingerprint = card_fingerprint(card.number)
        # Refused before the gateway is even asked, so a duplicate leaves no token behind.
        if PaymentMethod.objects.filter(user=user, fingerprint=fingerprint).exists():
            raise DuplicatePaymentMethod
        try:
            tokenized = gateway.tokenize(card)
        except GatewayError as error:
            raise PaymentGatewayError(UNREACHABLE) from error
    else:
        assert token is not None
        try:
            tokenized = gateway.describe_token(token)
        except InvalidToken:
            raise InvalidPaymentToken from None
        except GatewayError as error:
            raise PaymentGatewayError(UNREACHABLE) from error
        fingerprint = token_fingerprint(gateway.name, tokenized.gateway_fingerprint or token)
    return _payment_method_save(
        user=user,
        gateway=gateway.name,
        gateway_token=tokenized.token,
        brand=tokenized.brand,
        last4=tokenized.last4,
        exp_month=tokenized.exp_month,
        exp_year=tokenized.exp_year,
        fingerprint=fingerprint,
        billing_details=billing_details or {},
        is_default=is_default,
    )


@transaction.atomic
def _payment_method_save(*, user: User, is_default: bool, **fields: Any) -> PaymentMethod:
    _lock_user(user)
    has_default = PaymentMethod.objects.filter(user=user, is_default=True).exists()
    make_default = is_default or not has_default  # a user's first card is the default
    if make_default and has_default:
        PaymentMethod.objects.filter(user=user, is_default=True).update(is_default=False)
    try:
        with transaction.atomic():
            method = PaymentMethod.objects.create(user=user, is_default=make_default, **fields)
    except IntegrityError as error:
        if _constraint_name(error) == ONE_FINGERPRINT:
            raise DuplicatePaymentMethod from None
        raise
    logger.info(
        "payment method saved",
        extra={"payment_method_id": str(method.pk), "user_id": user.pk, "brand": method.brand},
    )
    return method


def _lock_user(user: User) -> None:
    """Serializes one user's method changes (the default flag moves between rows)."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()


def _own_method(user: User, payment_method_id: UUID) -> PaymentMethod:
    """One of the user's saved methods; another user's, or none, is `PaymentMethodNotFound`."""
    method = PaymentMethod.objects.filter(user=user, pk=payment_method_id).first()
    if method is None:
        raise PaymentMethodNotFound
    return method


@transaction.atomic
def payment_method_set_default(*, user: User, payment_method_id: UUID) -> PaymentMethod:
    _lock_user(user)
    method = _own_method(user, payment_method_id)
    if not method.is_default:
        PaymentMethod.objects.filter(user=user, is_default=True).update(is_default=False)
        method.is_default = True
        method.save(update_fields=["is_default", "updated_at"])
    return method


@transaction.atomic
def payment_method_delete(*, user: User, payment_method_id: UUID) -> None:
    """Forget a saved card; the newest other card becomes the default if this one was."""
    _lock_user(user)
    method = _own_method(user, payment_method_id)
    was_default = method.is_default
    method.delete()
    if was_default:
        successor = PaymentMethod.objects.filter(user=user).order_by("-created_at").first()
        if successor is not None:
            successor.is_default = True
            successor.save(update_fields=["is_default", "updated_at"])


# =============================================================================
# Charges
# =============================================================================
@transaction.atomic
def payment_charge_begin(
    *, user: User, payment_method_id: UUID, order_id: UUID, amount_cents: int, currency: str
) -> Payment:
    """Record a pending charge. One pending charge per order (a partial unique constraint)."""
    if amount_cents <= 0:
        raise ValueError("amount_cents must be positive.")
    method = _own_method(user, payment_method_id)
    if is_expired(method.exp_month, method.exp_year, today=timezone.now().date()):
        raise PaymentDeclined("expired_card", "The card has expired.")
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                user=user,
                order_id=order_id,
                kind=Payment.Kind.CHARGE,
                amount_cents=amount_cents,
                currency=currency,
                gateway=method.gateway,
                payment_method=method,
            )
    except IntegrityError as error:
        if _constraint_name(error) == ONE_PENDING_CHARGE:
            raise PaymentInProgress from None
        raise
    return payment


def payment_charge_execute(*, payment_id: UUID) -> GatewayResult:
    """Ask the gateway to charge. No transaction here: nothing is held during the call.

    Asking again for the same payment is safe (the payment id is the idempotency key); a
    payment already settled answers with its recorded outcome without asking."""
    payment = Payment.objects.select_related("payment_method").get(
        pk=payment_id, kind=Payment.Kind.CHARGE
    )
    if not payment.is_pending:
        return _recorded_result(payment)
    if payment.payment_method is None:
        return GatewayResult(succeeded=False, gateway_reference="", failure_code="card_removed")
    token = payment.payment_method.gateway_token
    return _call_gateway(payment, lambda gateway: partial(gateway.charge, token=token))


class _GatewayCall(Protocol):
    """A gateway's `charge` or `refund`, its card token or charge reference already given."""

    def __call__(
        self, *, amount_cents: int, currency: str, idempotency_key: str, timeout: float
    ) -> GatewayResult: ...


def _call_gateway(payment: Payment, method: Callable[[Gateway], _GatewayCall]) -> GatewayResult:
    """Ask the payment's gateway (`method` picks the call) for the payment's amount, under the
    payment's id as the idempotency key and within the gateway timeout."""
    gateway = get_gateway(payment.gateway)
    extra = {
        "payment_id": str(payment.pk),
        "kind": payment.kind,
        "amount_cents": payment.amount_cents,
        "gateway": payment.gateway,
    }
    try:
        result = method(gateway)(
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            idempotency_key=str(payment.pk),
            timeout=settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS,
        )
    except GatewayError as error:
        logger.warning("payment gateway error: %s", error, extra=extra)
        raise PaymentGatewayError from error
    logger.info(
        "payment gateway answered",
        extra={**extra, "succeeded": result.succeeded, "failure_code": result.failure_code},
    )
    return result


def _recorded_result(payment: Payment) -> GatewayResult:
    return GatewayResult(
        succeeded=payment.status == Payment.Status.SUCCEEDED,
        gateway_reference=payment.gateway_reference,
        failure_code=payment.failure_code or None,
    )


@transaction.atomic
def payment_settle(*, payment_id: UUID, result: GatewayResult, publish: bool = False) -> Payment:
    """pending → succeeded | failed. Idempotent: a settled payment is returned unchanged.

    `publish=True` (webhooks, reconciliation) tells subscribers after commit; the synchronous
    pay and refund flows use the return value instead."""
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if not payment.is_pending:
        if payment.status != (
            Payment.Status.SUCCEEDED if result.succeeded else Payment.Status.FAILED
        ):
            logger.error(
                "payment outcome disagrees with the recorded one",
                extra={"payment_id": str(payment.pk), "status": payment.status},
            )
        return payment
    if result.succeeded:
        payment.status = Payment.Status.SUCCEEDED
        payment.failure_code = ""
    else:
        payment.status = Payment.Status.FAILED
        default_code = "card_declined" if payment.kind == Payment.Kind.CHARGE else "refund_failed"
        payment.failure_code = result.failure_code or default_code
    payment.gateway_reference = result.gateway_reference or payment.gateway_reference
    payment.settled_at = timezone.now()
    payment.save(
        update_fields=["status", "failure_code", "gateway_reference", "settled_at", "updated_at"]
    )
    if payment.kind == Payment.Kind.REFUND:
        metrics.refund_settled(amount_cents=payment.amount_cents, succeeded=result.succeeded)
    elif not result.succeeded:
        metrics.payment_declined(code=payment.failure_code)
    if publish:
        events.publish(_event_name(payment), payment_id=payment.pk, order_id=payment.order_id)
    return payment


def _event_name(payment: Payment) -> events.EventName:
    if payment.status == Payment.Status.FAILED:
        return "payment.failed"
    return "payment.succeeded" if payment.kind == Payment.Kind.CHARGE else "payment.refunded"


# =============================================================================
# Refunds
# =============================================================================
@transaction.atomic
def payment_refund_begin(*, order_id: UUID, amount_cents: int, user: User | None) -> Payment:
    """Record a pending refund of `amount_cents`, never more than captured and not yet refunded
    (pending refunds count as refunded). `user` is who asks for it (staff), if anyone."""
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
        user=parent.user,
        order_id=order_id,
        kind=Payment.Kind.REFUND,
        amount_cents=amount_cents,
        currency=parent.currency,
        gateway=parent.gateway,
        payment_method=parent.payment_method,
        parent=parent,
        initiated_by=user,
    )


def payment_refund_execute(*, payment_id: UUID) -> GatewayResult:
    """Ask the gateway to refund (no transaction; the payment id is the idempotency key)."""
    payment = Payment.objects.select_related("parent").get(pk=payment_id, kind=Payment.Kind.REFUND)
    if not payment.is_pending:
        return _recorded_result(payment)
    assert payment.parent is not None
    charge_reference = payment.parent.gateway_reference
    return _call_gateway(
        payment, lambda gateway: partial(gateway.refund, gateway_reference=charge_reference)
    )


def payment_captured_cents(*, order_id: UUID) -> int:
    """Succeeded charges minus succeeded refunds of an order, in one query."""
    totals = Payment.objects.filter(order_id=order_id, status=Payment.Status.SUCCEEDED).aggregate(
        charged=Sum("amount_cents", filter=Q(kind=Payment.Kind.CHARGE), default=0),
        refunded=Sum("amount_cents", filter=Q(kind=Payment.Kind.REFUND), default=0),
    )
    return int(totals["charged"]) - int(totals["refunded"])


# =============================================================================
# Asynchronous outcomes: reconciliation and webhooks
# =============================================================================
def payment_reconcile_pending(*, older_than: dt.timedelta | None = None, limit: int = 100) -> int:
    """Settle payments left pending (a timeout, a crash between steps) by asking the gateway
    again with the same idempotency key. Returns how many were settled; each settles and
    publishes its event in its own short transaction."""
    now = timezone.now()
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.PAYMENT_RECONCILE_AFTER_SECONDS)
    stale = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lte=now - older_than)
    too_old = stale.filter(created_at__lt=now - RECONCILE_MAX_AGE)
    for payment_id in too_old.values_list("pk", flat=True)[:limit]:
        logger.error(
            "payment pending for too long; check it at the gateway",
            extra={"payment_id": str(payment_id)},
        )
    settled = 0
    candidates = stale.filter(created_at__gte=now - RECONCILE_MAX_AGE).order_by("created_at")
    for payment_id, kind in candidates.values_list("pk", "kind")[:limit]:
        execute = payment_charge_execute if kind == Payment.Kind.CHARGE else payment_refund_execute
        try:
            result = execute(payment_id=payment_id)
        except PaymentGatewayError:
            continue  # still unknown: the next run asks again
        payment_settle(payment_id=payment_id, result=result, publish=True)
        settled += 1
    return settled


@transaction.atomic
def webhook_event_handle(*, gateway: str, event: GatewayEvent) -> bool:
    """Apply a verified gateway event once. Returns False for an event id seen before.

    The event row is inserted first under its unique constraint: a replay, even a concurrent
    one, fails that insert and does nothing else."""
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                gateway=gateway,
                event_id=event.event_id,
                event_type=event.raw_type or event.type,
                payment_id=event.payment_id,
                summary={
                    "type": event.type,
                    "gateway_reference": event.gateway_reference,
                    "failure_code": event.failure_code,
                },
            )
    except IntegrityError:
        return False
    if event.type == "ignored" or event.payment_id is None:
        return True
    payment = Payment.objects.filter(pk=event.payment_id, gateway=gateway).first()
    if payment is None:
        logger.warning("webhook for an unknown payment", extra={"event_id": event.event_id})
        return True
    expected = "payment.succeeded" if payment.kind == Payment.Kind.CHARGE else "payment.refunded"
    if event.type not in (expected, "payment.failed"):
        logger.warning(
            "webhook event does not fit the payment",
            extra={"event_id": event.event_id, "payment_id": str(payment.pk)},
        )
        return True
    result = GatewayResult(
        succeeded=event.type == expected,
        gateway_reference=event.gateway_reference,
        failure_code=event.failure_code,
    )
    payment_settle(payment_id=payment.pk, result=result, publish=True)
    return True
