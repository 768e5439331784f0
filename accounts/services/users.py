"""Profiles and administration: names, roles (with their groups), suspension.

Only an admin changes roles or suspends, never for their own account (nobody could undo it if
they were the last admin). A suspension ends every session at once (`sessions.sessions_end`).
"""

from __future__ import annotations

from django.db import transaction

from .. import security
from ..exceptions import NotAllowed, OwnAccountChange
from ..models import User
from ..roles import sync_role_groups
from .sessions import sessions_end, user_lock


def admin_required(actor: User) -> None:
    if not actor.is_superuser:
        raise NotAllowed("Only an admin may change roles or suspend users.")


@transaction.atomic
def user_update_profile(
    *, user: User, first_name: str | None = None, last_name: str | None = None
) -> User:
    """What a user may change about themselves: their name. Nothing else."""
    fields = []
    if first_name is not None:
        user.first_name = first_name
        fields.append("first_name")
    if last_name is not None:
        user.last_name = last_name
        fields.append("last_name")
    if fields:
        user.save(update_fields=fields)
    return user


@transaction.atomic
def user_set_role(*, actor: User, user: User, role: str) -> User:
    """Only an admin sets roles, never their own. Group membership follows the role."""
    admin_required(actor)
    if role not in User.Role.values:
        raise NotAllowed(f"Unknown role {role!r}.")
    if user.role == role:
        return user
    if actor.pk == user.pk:
        raise OwnAccountChange(attr="role")
    locked = user_lock(user)
    previous = locked.role
    locked.role = role
    locked.save(update_fields=["role"])
    sync_role_groups(locked)
    user.role = role
    security.security_event(
        security.ROLE_CHANGED,
        user=locked,
        actor_id=actor.pk,
        old_role=previous,
        new_role=role,
        on_commit=True,
    )
    return user


@transaction.atomic
def user_suspend(*, actor: User, user: User) -> User:
    """Suspend at once: access tokens fail on the next request, refresh tokens are blacklisted."""
    admin_required(actor)
    if actor.pk == user.pk:
        raise OwnAccountChange(attr="is_active")
    locked = user_lock(user)
    was_active = locked.is_active
    locked.is_active = False
    sessions_end(locked, changed=["is_active"])
    user.is_active = False
    user.session_generation = locked.session_generation
    if was_active:
        security.security_event(
            security.ACCOUNT_SUSPENDED, user=locked, actor_id=actor.pk, on_commit=True
        )
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User) -> User:
    """Lift a suspension. The user signs in again (old sessions stay ended)."""
    admin_required(actor)
    locked = user_lock(user)
    if not locked.is_active:
        locked.is_active = True
        locked.save(update_fields=["is_active"])
        security.security_event(
            security.ACCOUNT_REACTIVATED, user=locked, actor_id=actor.pk, on_commit=True
        )
    user.is_active = True
    return user


@transaction.atomic
def user_update_by_admin(
    *,
    actor: User,
    user: User,
    role: str | None = None,
    is_active: bool | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """An admin's edit of another user (role, suspension, name), all or nothing."""
    admin_required(actor)
    if role is not None:
        user_set_role(actor=actor, user=user, role=role)
    if is_active is False:
        user_suspend(actor=actor, user=user)
    elif is_active is True:
        user_reactivate(actor=actor, user=user)
    return user_update_profile(user=user, first_name=first_name, last_name=last_name)
