"""Charges: begin (a pending row), execute (the gateway, no transaction), look up (the
gateway's current state, never by charging again), cancel one that waits for the customer."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User

from ..cards import is_expired
from ..exceptions import (
    PaymentDeclined,
    PaymentGatewayError,
    PaymentInProgress,
    PaymentMethodUnusable,
)
from ..gateways.base import GatewayResult
from ..models import Payment
from ._shared import (
    _ask_gateway,
    _constraint_name,
    _metadata,
    _own_method,
    _recorded_result,
    _timeout,
    logger,
)
from .settle import payment_settle

ONE_PENDING_CHARGE = "payments_payment_one_pending_charge_per_order"


@transaction.atomic
def payment_charge_begin(
    *,
    user: User,
    payment_method_id: UUID,
    order_id: UUID,
    amount_cents: int,
    currency: str,
    description: str = "",
    order_number: str = "",
    customer_present: bool = True,
) -> Payment:
    """Record a pending charge. One pending charge per order (a partial unique constraint).

    `description` is what the gateway shows ("Order SO-00042", the default when only
    `order_number` is given); `customer_present=False` only for a merchant-initiated charge
    (the gateway cannot ask the customer to authenticate). A card saved under another gateway
    than the configured one is `PaymentMethodUnusable`."""
    if amount_cents <= 0:
        raise ValueError("amount_cents must be positive.")
    method = _own_method(user, payment_method_id)
    if method.gateway != settings.PAYMENT_GATEWAY:
        raise PaymentMethodUnusable
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
                method_token=method.gateway_token,
                description=description or (f"Order {order_number}" if order_number else ""),
                order_number=order_number,
                customer_present=customer_present,
            )
    except IntegrityError as error:
        if _constraint_name(error) == ONE_PENDING_CHARGE:
            raise PaymentInProgress from None
        raise
    return payment


def payment_charge_execute(*, payment_id: UUID) -> GatewayResult:
    """Ask the gateway to charge. No transaction here: nothing is held during the call.

    Asking again for the same payment is safe (the payment id is the idempotency key); a
    payment already settled answers with its recorded outcome without asking. A charge the
    gateway has answered for (it waits for authentication), or whose card was deleted since,
    is looked up instead: its current state, never a new charge."""
    payment = Payment.objects.select_related("user").get(pk=payment_id, kind=Payment.Kind.CHARGE)
    if not payment.is_pending:
        return _recorded_result(payment)
    if payment.gateway_reference or payment.payment_method_id is None:
        return payment_charge_lookup(payment=payment)
    receipt_email = payment.user.email if getattr(settings, "STRIPE_RECEIPT_EMAILS", False) else ""
    return _ask_gateway(
        payment,
        lambda gateway: gateway.charge(
            token=payment.method_token,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            idempotency_key=str(payment.pk),
            timeout=_timeout(),
            customer_present=payment.customer_present,
            description=payment.description,
            metadata=_metadata(payment),
            receipt_email=receipt_email,
        ),
        action="charge",
    )


def payment_charge_lookup(*, payment: Payment) -> GatewayResult:
    """The charge's state at the gateway now (by its reference, else by our payment id).
    `PaymentGatewayError` while it is unknown: processing, unreachable, or not found."""
    return _ask_gateway(
        payment,
        lambda gateway: gateway.lookup_charge(
            idempotency_key=str(payment.pk),
            gateway_reference=payment.gateway_reference,
            token=payment.method_token,
            timeout=_timeout(),
        ),
        action="lookup_charge",
    )


def payment_charge_cancel(*, payment_id: UUID, failure_code: str = "canceled") -> Payment:
    """Cancel a pending charge that waits for the customer to authenticate (3-D Secure), so it
    can never be completed afterwards; returns the payment as settled.

    Call it outside any transaction (it asks the gateway). The gateway cancels it → settled
    failed `canceled`; it had succeeded meanwhile (cannot be canceled) → settled succeeded.
    Either outcome is published (`payment.failed` / `payment.succeeded`, as a webhook would).
    `failure_code` is what a cancel is recorded as (reconciliation: `authentication_abandoned`).
    A payment already settled is returned as it is. A pending charge the gateway never answered
    for (no reference: still in flight) is `PaymentInProgress`; an unknown outcome is
    `PaymentGatewayError` (the charge stays pending)."""
    payment = Payment.objects.get(pk=payment_id, kind=Payment.Kind.CHARGE)
    if not payment.is_pending:
        return payment
    if not payment.gateway_reference:
        raise PaymentInProgress
    reference = payment.gateway_reference
    result = _ask_gateway(
        payment,
        lambda gateway: gateway.cancel_charge(
            gateway_reference=reference, idempotency_key=str(payment.pk), timeout=_timeout()
        ),
        action="cancel_charge",
    )
    if result.requires_action or result.pending:
        logger.warning(
            "the gateway neither canceled the charge nor settled it",
            extra={"payment_id": str(payment.pk)},
        )
        raise PaymentGatewayError
    if not result.succeeded and result.failure_code == "canceled":
        result = replace(result, failure_code=failure_code)
    return payment_settle(payment_id=payment.pk, result=result, publish=True)
