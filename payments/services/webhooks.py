"""Verified gateway events, applied once each (`webhook_event_handle`).

Events about one of our payments (its id in the gateway's metadata) settle it, after a check
that the gateway speaks of the same money: the payment's amount, currency and PaymentIntent. A
mismatch, an unknown or malformed payment id, or an event that does not fit the payment is
logged and acknowledged (200): an error answer would only make the gateway send it for days.

Events about the gateway's own objects name our charge by its PaymentIntent: a refund made in
the dashboard (recorded as a refund), a dispute opened or closed (recorded, published). When no
charge of ours is known by that PaymentIntent yet (its create call never answered: pending, or
failed `not_created`), or the charge is not settled succeeded here, the charge is looked up at
the gateway first (outside any transaction) and settled; only if that lookup cannot tell is the
event refused (409, the gateway sends it again). A refund failure without our payment id (a
dashboard refund recorded before) is matched by the refund's own id. A card saved through a
setup intent is stored for its customer's user.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .. import events
from ..exceptions import PaymentGatewayError, PaymentNotAtGateway, WebhookRetryLater
from ..gateways.base import EventType, GatewayEvent, GatewayResult
from ..models import Dispute, Payment, WebhookEvent
from ._shared import _disagrees, logger
from .charges import payment_charge_lookup
from .methods import payment_method_from_setup
from .refunds import payment_refund_external_record
from .settle import payment_settle

CHARGE_EVENTS: frozenset[EventType] = frozenset(
    {"payment.succeeded", "payment.failed", "payment.requires_action"}
)
REFUND_EVENTS: frozenset[EventType] = frozenset({"payment.refunded", "refund.failed"})
GATEWAY_OBJECT_EVENTS: frozenset[EventType] = frozenset(
    {"refund.external", "dispute.created", "dispute.closed"}
)
# How many of our charges without a gateway reference are looked up to find the one a dashboard
# refund or dispute is about (such charges are rare: a create call that never answered).
UNREFERENCED_CANDIDATES = 10


def webhook_event_handle(*, gateway: str, event: GatewayEvent) -> bool:
    """Apply a verified gateway event once. Returns False for an event id seen before.

    The event row is inserted in the transaction that applies it, under its unique constraint:
    a replay, even a concurrent one, fails that insert and does nothing else. A saved card asks
    the gateway first (outside any transaction); if the gateway does not answer, the event is
    not recorded (`PaymentGatewayError`) and the gateway sends it again; so does a dashboard
    refund or dispute of a charge not settled succeeded here, first looked up at the gateway
    (`WebhookRetryLater` when that cannot tell)."""
    if event.type in GATEWAY_OBJECT_EVENTS:
        if _seen(gateway, event):
            return False
        _settle_its_charge_first(gateway, event)
    if event.type == "setup.succeeded":
        if _seen(gateway, event):
            return False
        if event.customer and event.gateway_reference:
            payment_method_from_setup(
                gateway_name=gateway, customer_id=event.customer, token=event.gateway_reference
            )
        else:
            logger.warning("a saved card event without its card", extra=_about(event))
        with transaction.atomic():
            return _record(gateway, event)
    with transaction.atomic():
        if not _record(gateway, event):
            return False
        if event.type in GATEWAY_OBJECT_EVENTS:
            _gateway_object_event(gateway, event)
        elif event.type != "ignored":
            _payment_event(gateway, event)
    return True


def _seen(gateway: str, event: GatewayEvent) -> bool:
    return WebhookEvent.objects.filter(gateway=gateway, event_id=event.event_id).exists()


def _about(event: GatewayEvent) -> dict[str, str]:
    return {"event_id": event.event_id, "raw_type": event.raw_type, "type": event.type}


def _record(gateway: str, event: GatewayEvent) -> bool:
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                gateway=gateway,
                event_id=event.event_id,
                event_type=(event.raw_type or event.type)[:64],
                payment_id=event.payment_id,
                summary={
                    "type": event.type,
                    "gateway_reference": event.gateway_reference,
                    "payment_intent": event.payment_intent,
                    "failure_code": event.failure_code,
                    "amount_cents": event.amount_cents,
                    "currency": event.currency,
                },
            )
    except IntegrityError:
        return False
    return True


def _payment_event(gateway: str, event: GatewayEvent) -> None:
    extra = _about(event)
    payment = _payment_of(gateway, event)
    if payment is None and event.payment_id is None:
        logger.warning("webhook without a payment id of ours", extra=extra)
        return
    extra["payment_id"] = str(payment.pk if payment is not None else event.payment_id)
    if payment is None:
        logger.warning("webhook for an unknown payment", extra=extra)
        return
    kind = Payment.Kind.CHARGE if event.type in CHARGE_EVENTS else Payment.Kind.REFUND
    if payment.kind != kind:
        logger.warning("webhook event does not fit the payment", extra=extra)
        return
    if _other_money(payment, event):
        logger.error(
            "webhook speaks of other money than the payment's; ignored",
            extra={
                **extra,
                "amount_cents": event.amount_cents,
                "currency": event.currency,
                "payment_intent": event.payment_intent,
            },
        )
        return
    result = GatewayResult(
        succeeded=event.type in ("payment.succeeded", "payment.refunded"),
        gateway_reference=event.gateway_reference,
        failure_code=event.failure_code
        if event.type in ("payment.failed", "refund.failed")
        else None,
        requires_action=event.type == "payment.requires_action",
    )
    payment_settle(payment_id=payment.pk, result=result, publish=True)


def _payment_of(gateway: str, event: GatewayEvent) -> Payment | None:
    """The payment an event names by our id; a refund failure without it (a dashboard refund
    recorded earlier) by the refund's own id."""
    payments = Payment.objects.select_related("parent").filter(gateway=gateway)
    if event.payment_id is not None:
        return payments.filter(pk=event.payment_id).first()
    if event.type == "refund.failed" and event.gateway_reference:
        return payments.filter(
            kind=Payment.Kind.REFUND, gateway_reference=event.gateway_reference
        ).first()
    return None


def _other_money(payment: Payment, event: GatewayEvent) -> bool:
    """Whether the event's amount, currency, PaymentIntent (or refund id) are not the
    payment's, where both sides know them."""
    if _disagrees(payment, amount_cents=event.amount_cents, currency=event.currency):
        return True
    charge = payment.parent if payment.kind == Payment.Kind.REFUND else payment
    assert charge is not None
    intent = event.payment_intent
    if intent and charge.gateway_reference and intent != charge.gateway_reference:
        return True
    own = event.gateway_reference
    return bool(
        payment.kind == Payment.Kind.REFUND
        and own
        and payment.gateway_reference
        and own != payment.gateway_reference
    )


def _settle_its_charge_first(gateway: str, event: GatewayEvent) -> None:
    """Before a dashboard refund or a dispute is applied (no transaction held: this asks the
    gateway): if its charge is not settled succeeded here, look the charge up and settle it (a
    late success is published). The charge is the one with the event's PaymentIntent, else one
    of ours whose create call never answered (pending, or failed `not_created`), found by our
    payment id in the gateway's metadata. `WebhookRetryLater` when a lookup could not tell."""
    if not event.payment_intent:
        return
    charges = Payment.objects.filter(gateway=gateway, kind=Payment.Kind.CHARGE)
    charge = charges.filter(gateway_reference=event.payment_intent).first()
    if charge is not None and charge.status == Payment.Status.SUCCEEDED:
        return
    candidates = (
        [charge]
        if charge is not None
        else list(
            charges.filter(gateway_reference="")
            .filter(
                Q(status=Payment.Status.PENDING)
                | Q(status=Payment.Status.FAILED, failure_code="not_created")
            )
            .order_by("-created_at")[:UNREFERENCED_CANDIDATES]
        )
    )
    unknown = False
    for candidate in candidates:
        try:
            result = payment_charge_lookup(payment=candidate)
        except PaymentNotAtGateway:
            continue
        except PaymentGatewayError:
            unknown = True
            continue
        if result.gateway_reference == event.payment_intent:
            logger.warning(
                "a gateway event about a charge not settled here; settling it from the gateway",
                extra={**_about(event), "payment_id": str(candidate.pk)},
            )
            payment_settle(payment_id=candidate.pk, result=result, publish=True)
            return
    if unknown:
        logger.warning("gateway event before its charge could be looked up", extra=_about(event))
        raise WebhookRetryLater


def _gateway_object_event(gateway: str, event: GatewayEvent) -> None:
    """A dashboard refund or a dispute, of the charge whose PaymentIntent it names."""
    extra = {**_about(event), "payment_intent": event.payment_intent}
    charge = None
    if event.payment_intent and event.gateway_reference:
        charge = (
            Payment.objects.select_for_update()
            .filter(
                gateway=gateway, kind=Payment.Kind.CHARGE, gateway_reference=event.payment_intent
            )
            .first()
        )
    if charge is None:
        logger.warning("gateway event about a charge that is not ours", extra=extra)
        return
    if charge.status != Payment.Status.SUCCEEDED:
        # Refunded or disputed at the gateway, so it succeeded there: its own event is late.
        logger.warning("gateway event before its charge's success; to be sent again", extra=extra)
        raise WebhookRetryLater
    if event.type == "refund.external":
        payment_refund_external_record(charge=charge, event=event)
    elif event.type == "dispute.created":
        _dispute_opened(charge, event)
    else:
        _dispute_closed(charge, event)


def _dispute_amount(charge: Payment, event: GatewayEvent) -> int | None:
    """The disputed amount, or None when it is not about this charge's money (logged)."""
    amount = charge.amount_cents if event.amount_cents is None else event.amount_cents
    if amount > charge.amount_cents or _disagrees(
        charge, amount_cents=None, currency=event.currency
    ):
        logger.error(
            "dispute of other money than the charge's; ignored",
            extra={"payment_id": str(charge.pk), "dispute": event.gateway_reference},
        )
        return None
    return amount


def _dispute_opened(charge: Payment, event: GatewayEvent) -> None:
    amount = _dispute_amount(charge, event)
    if amount is None:
        return
    _, created = Dispute.objects.get_or_create(
        gateway_reference=event.gateway_reference,
        defaults={
            "payment": charge,
            "amount_cents": amount,
            "currency": charge.currency,
            "reason": (event.failure_code or "")[:64],
        },
    )
    if created:
        logger.warning(
            "a charge was disputed (%s)",
            event.failure_code,
            extra={"payment_id": str(charge.pk), "dispute": event.gateway_reference},
        )
        events.publish("payment.disputed", payment_id=charge.pk, order_id=charge.order_id)


def _dispute_closed(charge: Payment, event: GatewayEvent) -> None:
    amount = _dispute_amount(charge, event)
    if amount is None:
        return
    now = timezone.now()
    dispute, _ = Dispute.objects.select_for_update().get_or_create(
        gateway_reference=event.gateway_reference,
        defaults={"payment": charge, "amount_cents": amount, "currency": charge.currency},
    )
    if not dispute.is_open:
        return  # told before
    dispute.status = (event.failure_code or "closed")[:32]
    dispute.closed_at = now
    dispute.save(update_fields=["status", "closed_at", "updated_at"])
    logger.warning(
        "a dispute was closed (%s)",
        dispute.status,
        extra={"payment_id": str(charge.pk), "dispute": event.gateway_reference},
    )
    events.publish("payment.dispute_closed", payment_id=charge.pk, order_id=charge.order_id)
