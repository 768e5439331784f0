"""Reads of users that several callers share."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import User


def staff_emails() -> list[str]:
    """Where alerts for the shop's staff go: every active staff member's and admin's address."""
    return list(
        User.objects.filter(is_active=True, role__in=[User.Role.STAFF, User.Role.ADMIN])
        .order_by("id")
        .values_list("email", flat=True)
    )


def user_list() -> QuerySet[User]:
    """Every user, oldest first (the admin's list)."""
    return User.objects.order_by("id")


def user_search(queryset: QuerySet[User], text: str) -> QuerySet[User]:
    """Every word must appear in the email, first name or last name (case-insensitive)."""
    for word in text.split():
        queryset = queryset.filter(
            Q(email__icontains=word) | Q(first_name__icontains=word) | Q(last_name__icontains=word)
        )
    return queryset
