"""Role-based DRF permissions and ownership helpers that every app reuses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from .models import User

M = TypeVar("M", bound=Model)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def is_staff_user(user: User | AnonymousUser) -> bool:
    """Staff or admin, active and signed in."""
    return bool(
        user.is_authenticated and user.is_active and isinstance(user, User) and user.is_staff
    )


def is_admin_user(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and isinstance(user, User) and user.is_superuser)


class IsStaff(BasePermission):
    message = "Only staff may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_staff_user(request.user)


class IsAdmin(BasePermission):
    message = "Only an admin may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_admin_user(request.user)


class IsStaffOrReadOnly(BasePermission):
    """Anyone may read; staff write. The catalog's rule."""

    message = "Only staff may change the catalog."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in SAFE_METHODS or is_staff_user(request.user)


def owned_by(queryset: QuerySet[M], user: User, *, field: str = "user") -> QuerySet[M]:
    """Objects of others are simply not there: callers answer 404, never 403."""
    return queryset.filter(**{field: user})


def owned_or_all_for_staff(
    queryset: QuerySet[M], user: User | Any, *, field: str = "user"
) -> QuerySet[M]:
    """Staff see every object; anyone else sees their own."""
    if is_staff_user(user):
        return queryset
    return owned_by(queryset, user, field=field)
