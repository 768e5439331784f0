"""Recording what the gateway decided: `payment_settle`, including the two late outcomes a
settled payment may still have.

- a charge settled failed that the gateway later reports succeeded (a timeout, a crash, an
  authentication finished late) becomes succeeded: `payment.succeeded` is published and orders
  applies it (paid, or refunded when the order no longer wants it);
- a refund settled succeeded that later fails (the card account is closed: the money came back
  to the shop, the customer never got it) becomes failed: `payment.refund_failed` is published
  and staff are emailed.

Any other change to a settled payment is refused and logged.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from accounts.selectors import staff_emails
from common import metrics
from common.emails import send_email
from common.money import format_money_display

from .. import events
from ..gateways.base import GatewayResult
from ..models import Payment
from ._shared import logger

REFUND_FAILED_EMAIL = "refund_failed"


@transaction.atomic
def payment_settle(*, payment_id: UUID, result: GatewayResult, publish: bool = False) -> Payment:
    """pending → succeeded | failed, or still pending while the customer must authenticate
    (`result.requires_action`: the client secret is kept for their browser) or while the
    gateway has accepted a refund without deciding it (`result.pending`: its reference is kept,
    so a webhook or a lookup by that id settles it). Idempotent: the same outcome again changes
    nothing.

    `publish=True` (webhooks, reconciliation) tells subscribers after commit; the synchronous
    pay and refund flows use the return value instead. A late outcome (see the module) is always
    published: whoever settled the payment first has moved on."""
    payment = Payment.objects.select_for_update().get(pk=payment_id)
    if not payment.is_pending:
        return _settled_again(payment, result)
    if result.requires_action:
        return _awaiting_authentication(payment, result)
    if result.pending:
        return _accepted_undecided(payment, result)
    payment.status = Payment.Status.SUCCEEDED if result.succeeded else Payment.Status.FAILED
    payment.failure_code = "" if result.succeeded else result.failure_code or _default_code(payment)
    payment.gateway_reference = result.gateway_reference or payment.gateway_reference
    payment.client_secret = ""  # it only ever let the customer finish this payment
    payment.settled_at = timezone.now()
    payment.save(
        update_fields=[
            "status",
            "failure_code",
            "gateway_reference",
            "client_secret",
            "settled_at",
            "updated_at",
        ]
    )
    if payment.kind == Payment.Kind.REFUND:
        metrics.refund_settled(amount_cents=payment.amount_cents, succeeded=result.succeeded)
    elif not result.succeeded:
        metrics.payment_declined(code=payment.failure_code)
    if publish:
        events.publish(_event_name(payment), payment_id=payment.pk, order_id=payment.order_id)
    return payment


def _default_code(payment: Payment) -> str:
    return "card_declined" if payment.kind == Payment.Kind.CHARGE else "refund_failed"


def _awaiting_authentication(payment: Payment, result: GatewayResult) -> Payment:
    """A charge the customer must authenticate stays pending, with what their browser needs."""
    payment.gateway_reference = result.gateway_reference or payment.gateway_reference
    payment.client_secret = result.client_secret or payment.client_secret
    payment.save(update_fields=["gateway_reference", "client_secret", "updated_at"])
    logger.info("payment waits for authentication", extra={"payment_id": str(payment.pk)})
    return payment


def _accepted_undecided(payment: Payment, result: GatewayResult) -> Payment:
    """A refund the gateway accepted but has not decided (Stripe `pending`) stays pending, with
    the gateway's reference to look it up by."""
    if result.gateway_reference and result.gateway_reference != payment.gateway_reference:
        payment.gateway_reference = result.gateway_reference
        payment.save(update_fields=["gateway_reference", "updated_at"])
    logger.info("the gateway has not decided yet", extra={"payment_id": str(payment.pk)})
    return payment


def _event_name(payment: Payment) -> events.EventName:
    if payment.status == Payment.Status.FAILED:
        return "payment.failed"
    return "payment.succeeded" if payment.kind == Payment.Kind.CHARGE else "payment.refunded"


def _settled_again(payment: Payment, result: GatewayResult) -> Payment:
    """An outcome for a settled payment: the same one changes nothing; a late success of a
    failed charge or a late failure of a succeeded refund is applied; any other is logged."""
    extra = {"payment_id": str(payment.pk), "status": payment.status, "kind": payment.kind}
    charge, refund = Payment.Kind.CHARGE, Payment.Kind.REFUND
    failed, succeeded = Payment.Status.FAILED, Payment.Status.SUCCEEDED
    undecided = result.requires_action or result.pending
    if undecided or payment.status == (succeeded if result.succeeded else failed):
        return payment
    if payment.kind == charge and payment.status == failed and result.succeeded:
        logger.warning(
            "a charge settled failed (%s) succeeded at the gateway; applying it",
            payment.failure_code,
            extra=extra,
        )
        payment.status, payment.failure_code = succeeded, ""
        event: events.EventName = "payment.succeeded"
    elif payment.kind == refund and payment.status == succeeded and not result.succeeded:
        payment.status, payment.failure_code = failed, result.failure_code or "refund_failed"
        logger.error(
            "a refund that had succeeded failed at the gateway (%s): the money is back with "
            "the shop, the customer did not get it",
            payment.failure_code,
            extra=extra,
        )
        _refund_failed_alert(payment)
        event = "payment.refund_failed"
    else:
        logger.error("payment outcome disagrees with the recorded one", extra=extra)
        return payment
    payment.gateway_reference = result.gateway_reference or payment.gateway_reference
    payment.settled_at = timezone.now()
    payment.save(
        update_fields=["status", "failure_code", "gateway_reference", "settled_at", "updated_at"]
    )
    events.publish(event, payment_id=payment.pk, order_id=payment.order_id)
    return payment


def _refund_failed_alert(refund: Payment) -> None:
    """Email staff (after commit, through the outbox) that a refund failed after it had
    succeeded: someone must pay the customer back another way."""
    recipients = staff_emails()
    if not recipients:
        logger.error("no staff to tell about a failed refund", extra={"payment_id": str(refund.pk)})
        return
    send_email(
        template=REFUND_FAILED_EMAIL,
        to=recipients,
        context={
            "payment_id": str(refund.pk),
            "order_id": str(refund.order_id),
            "order_number": refund.order_number,
            "amount": format_money_display(cents=refund.amount_cents, currency=refund.currency),
            "failure_code": refund.failure_code,
            "gateway": refund.gateway,
            "gateway_reference": refund.gateway_reference,
        },
    )
