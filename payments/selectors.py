"""Reads of payments shared by the API and the admin."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import User
from accounts.permissions import owned_by, owned_or_all_for_staff

from .models import Payment, PaymentMethod


def payment_method_list(*, user: User) -> QuerySet[PaymentMethod]:
    """The user's own saved methods, default first, then newest."""
    return owned_by(PaymentMethod.objects.all(), user).order_by("-is_default", "-created_at")


def payment_list(*, user: User | Any) -> QuerySet[Payment]:
    """Own payments for a customer, all for staff; newest first."""
    return owned_or_all_for_staff(Payment.objects.all(), user).order_by("-created_at", "id")
