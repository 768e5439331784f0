"""Reads of users that several callers share."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import User


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
