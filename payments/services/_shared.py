"""What the services modules share: the logger, asking a gateway, and small lookups."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError

from accounts.models import User

from ..exceptions import PaymentGatewayError, PaymentMethodNotFound, PaymentNotAtGateway
from ..gateways import get_gateway
from ..gateways.base import Gateway, GatewayError, GatewayNotFound, GatewayResult
from ..models import Payment, PaymentMethod

# The package's one logger name (what its log lines said before it was split in modules).
logger = logging.getLogger("payments.services")

UNREACHABLE = "The payment provider could not be reached. Try again in a moment."


def _constraint_name(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _lock_user(user: User) -> None:
    """Serializes one user's method changes (the default flag moves between rows)."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).get()


def _own_method(user: User, payment_method_id: UUID) -> PaymentMethod:
    """One of the user's saved methods; another user's, or none, is `PaymentMethodNotFound`."""
    method = PaymentMethod.objects.filter(user=user, pk=payment_method_id).first()
    if method is None:
        raise PaymentMethodNotFound
    return method


def _timeout() -> float:
    return float(settings.PAYMENT_GATEWAY_TIMEOUT_SECONDS)


def _metadata(payment: Payment) -> dict[str, str]:
    """What the gateway keeps beside the money: our ids, so its dashboard and its webhooks name
    the payment and the order."""
    return {
        "payment_id": str(payment.pk),
        "order_id": str(payment.order_id),
        "order_number": payment.order_number,
    }


def _disagrees(payment: Payment, *, amount_cents: int | None, currency: str | None) -> bool:
    """Whether what the gateway states (when it states it) is another amount or currency."""
    return (amount_cents is not None and amount_cents != payment.amount_cents) or (
        currency is not None and currency.upper() != payment.currency
    )


def _ask_gateway(
    payment: Payment, call: Callable[[Gateway], GatewayResult], *, action: str
) -> GatewayResult:
    """Ask the payment's own gateway (`call` makes the request) and log what it said.

    An unknown outcome (`GatewayError`), or an answer about another amount or currency than the
    payment's, is `PaymentGatewayError`: the payment stays pending. A lookup that found nothing
    at the gateway (`GatewayNotFound`) is the distinct `PaymentNotAtGateway`."""
    gateway = get_gateway(payment.gateway)
    extra = {
        "payment_id": str(payment.pk),
        "kind": payment.kind,
        "action": action,
        "amount_cents": payment.amount_cents,
        "gateway": payment.gateway,
    }
    try:
        result = call(gateway)
    except GatewayNotFound as error:
        logger.warning("payment not found at the gateway: %s", error, extra=extra)
        raise PaymentNotAtGateway from error
    except GatewayError as error:
        logger.warning("payment gateway error: %s", error, extra=extra)
        raise PaymentGatewayError from error
    if _disagrees(payment, amount_cents=result.amount_cents, currency=result.currency):
        logger.error(
            "the gateway states another amount or currency than the payment's",
            extra={**extra, "stated_cents": result.amount_cents, "currency": result.currency},
        )
        raise PaymentGatewayError
    logger.info(
        "payment gateway answered",
        extra={
            **extra,
            "succeeded": result.succeeded,
            "failure_code": result.failure_code,
            "requires_action": result.requires_action,
            "pending": result.pending,
        },
    )
    return result


def _recorded_result(payment: Payment) -> GatewayResult:
    """A settled payment's outcome, as a gateway result (asking again changes nothing)."""
    return GatewayResult(
        succeeded=payment.status == Payment.Status.SUCCEEDED,
        gateway_reference=payment.gateway_reference,
        failure_code=payment.failure_code or None,
    )
