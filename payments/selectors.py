"""Reads of payments shared by the API and the admin."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.permissions import owned_by, owned_or_all_for_staff

from .models import Dispute, Payment, PaymentMethod


def payment_method_list(*, user: User) -> QuerySet[PaymentMethod]:
    """The user's own saved methods, default first, then newest."""
    return owned_by(PaymentMethod.objects.all(), user).order_by("-is_default", "-created_at")


def payment_list(*, user: User | Any) -> QuerySet[Payment]:
    """Own payments for a customer, all for staff; newest first."""
    return owned_or_all_for_staff(Payment.objects.all(), user).order_by("-created_at", "id")


def payment_get(*, payment_id: UUID) -> Payment:
    """One payment by id; raises `Payment.DoesNotExist`."""
    return Payment.objects.get(pk=payment_id)


def pending_charges() -> QuerySet[Payment]:
    """Charges whose outcome is not known yet (in flight, or left by a timeout or a crash)."""
    return Payment.objects.filter(kind=Payment.Kind.CHARGE, status=Payment.Status.PENDING)


def payment_succeeded_charge(*, order_id: UUID) -> Payment | None:
    """The order's latest succeeded charge, if any."""
    return (
        Payment.objects.filter(
            order_id=order_id, kind=Payment.Kind.CHARGE, status=Payment.Status.SUCCEEDED
        )
        .order_by("-settled_at", "-created_at")
        .first()
    )


def orders_with_payments_settled_since(
    *, kind: str, status: str, since: dt.timedelta
) -> list[UUID]:
    """Orders with a payment of `kind` settled `status` within `since` (reconciliation's
    candidates: charges that succeeded, refunds that failed, at once or late)."""
    cutoff = timezone.now() - since
    return list(
        Payment.objects.filter(kind=kind, status=status, settled_at__gte=cutoff)
        .values_list("order_id", flat=True)
        .distinct()
    )


def payment_list_for_orders(*, order_ids: Iterable[UUID]) -> dict[UUID, list[Payment]]:
    """Each order's payments, oldest first, in one query (for order pages and lists)."""
    by_order: dict[UUID, list[Payment]] = defaultdict(list)
    for payment in Payment.objects.filter(order_id__in=list(order_ids)).order_by(
        "created_at", "id"
    ):
        by_order[payment.order_id].append(payment)
    return dict(by_order)


def disputes_of_order(order_id: UUID) -> list[Dispute]:
    """The disputes of the order's charges, oldest first (`is_open`; `status` is "open" or,
    once closed, the gateway's outcome: `won`, `lost`, `warning_closed`, ...)."""
    return list(
        Dispute.objects.filter(payment__order_id=order_id).order_by("opened_at", "created_at")
    )
